// Webhook delivery: a loop on the control-loop leader that sends every matching event of an org
// to its subscriptions at least once, in event order per subscription, signed (./webhooks.ts),
// with exponential backoff and a bounded number of attempts.
import type { Kysely } from 'kysely';
import { newId, nowIso } from '../domain/ids.js';
import { SerialLoop } from '../domain/serial-loop.js';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from '../store/schema.js';
import type { SecretBox } from './secret-box.js';
import { eventView, headSeq, parseTypes, typeMatches } from './events.js';
import { AT, signWebhook } from './webhooks.js';

export interface DelivererOptions {
  /** How often subscriptions are looked at (also after every finished request). Default 1 s. */
  readonly intervalMs?: number;
  /** Attempts per event before it is given up (status failed). Default 10. */
  readonly maxAttempts?: number;
  /** Wait after the first failed attempt; each further one waits 3× longer, up to backoffMaxMs. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Per request. Default 10 s. */
  readonly timeoutMs?: number;
  /** Requests in flight at once, over all subscriptions. Default 16. */
  readonly concurrency?: number;
}

const DEFAULTS = {
  intervalMs: 1000,
  maxAttempts: 10,
  backoffBaseMs: 5000,
  backoffMaxMs: 3_600_000,
  timeoutMs: 10_000,
  concurrency: 16,
} as const;

/** Wait after failed attempt n (1-based): 5 s, 15 s, 45 s, … capped at an hour (by default). */
export function retryDelayMs(n: number, base: number = DEFAULTS.backoffBaseMs, max: number = DEFAULTS.backoffMaxMs) {
  return Math.min(max, base * 3 ** Math.max(0, n - 1));
}

const ENQUEUE_BATCH = 1000;

/**
 * Turns each subscription's new events into deliveries and sends them, one request in flight per
 * subscription. Replicas may all run it: a lease on the subscription row keeps its requests one at
 * a time, and a guarded cursor keeps events from being queued twice.
 */
export class WebhookDeliverer extends SerialLoop {
  private readonly o: Required<DelivererOptions>;
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    opts: DelivererOptions = {},
  ) {
    const o = { ...DEFAULTS, ...opts };
    super(o.intervalMs, (err) => process.emitWarning(`webhook delivery failed: ${err.message}`));
    this.o = o;
  }

  protected override async work(): Promise<void> {
    await this.enqueue();
    await this.dispatch();
  }

  override async stop(): Promise<void> {
    await super.stop();
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Until nothing is in flight or due now (tests). */
  async drain(): Promise<void> {
    for (;;) {
      await this.work();
      if (this.inFlight.size === 0) return;
      await Promise.allSettled([...this.inFlight.values()]);
    }
  }

  /** New events of each subscription's org and types become pending deliveries, in seq order. */
  private async enqueue(): Promise<void> {
    const head = await headSeq(this.db);
    const subs = await this.db.selectFrom('webhooks').selectAll().where('cursor', '<', head).execute();
    for (const w of subs) {
      const from = Number(w.cursor);
      const events = await this.db
        .selectFrom('events')
        .select(['seq', 'type'])
        .where('org_id', '=', w.org_id)
        .where('seq', '>', from)
        .where('seq', '<=', head)
        .orderBy('seq')
        .limit(ENQUEUE_BATCH)
        .execute();
      const filter = parseTypes(JSON.parse(w.types) as string[]);
      const to = events.length === ENQUEUE_BATCH ? Number(events.at(-1)!.seq) : head;
      const now = nowIso();
      await this.db
        .transaction()
        .execute(async (trx) => {
          const moved = await trx
            .updateTable('webhooks')
            .set({ cursor: to })
            .where('id', '=', w.id)
            .where('cursor', '=', from)
            .executeTakeFirst();
          // Another replica queued them, or the subscription is gone.
          if (Number(moved.numUpdatedRows) === 0) throw new Skip();
          const rows = events
            .filter((e) => typeMatches(filter, e.type))
            .map((e) => ({
              id: newId('dlv'),
              webhook_id: w.id,
              event_seq: Number(e.seq),
              event_type: e.type,
              status: 'pending',
              attempts: 0,
              last_status: null,
              last_error: '',
              next_attempt_at: now,
              created_at: now,
              updated_at: now,
              delivered_at: '',
            }));
          for (let i = 0; i < rows.length; i += 100) {
            await trx
              .insertInto('webhook_deliveries')
              .values(rows.slice(i, i + 100))
              .execute();
          }
        })
        .catch((err) => {
          if (!(err instanceof Skip)) throw err;
        });
    }
  }

  /** For each subscription not in flight: its oldest pending delivery, when due, is sent. */
  private async dispatch(): Promise<void> {
    const heads = await this.db
      .selectFrom('webhook_deliveries')
      .select(['webhook_id', (eb) => eb.fn.min('event_seq').as('seq')])
      .where('status', '=', 'pending')
      .groupBy('webhook_id')
      .execute();
    const now = nowIso();
    for (const h of heads) {
      if (this.inFlight.size >= this.o.concurrency) return;
      if (this.inFlight.has(h.webhook_id)) continue;
      const d = await this.db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('webhook_id', '=', h.webhook_id)
        .where('event_seq', '=', Number(h.seq))
        .executeTakeFirst();
      if (d === undefined) continue;
      if (d.status !== 'pending' || d.next_attempt_at > now) continue;
      const leaseUntil = new Date(Date.now() + this.o.timeoutMs + 5000).toISOString();
      const claimed = await this.db
        .updateTable('webhooks')
        .set({ lease_until: leaseUntil })
        .where('id', '=', h.webhook_id)
        .where((eb) => eb.or([eb('lease_until', '=', ''), eb('lease_until', '<', now)]))
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 0) continue;
      const w = await this.db.selectFrom('webhooks').selectAll().where('id', '=', h.webhook_id).executeTakeFirst();
      if (!w) continue;
      const p = this.attempt(w, d).finally(() => {
        this.inFlight.delete(w.id);
        this.trigger();
      });
      this.inFlight.set(w.id, p);
    }
  }

  /** One request for one delivery; records the outcome and releases the subscription. */
  private async attempt(w: WebhooksTable, d: WebhookDeliveriesTable): Promise<void> {
    let code: number | null = null;
    let error = '';
    try {
      const ev = await this.db.selectFrom('events').selectAll().where('seq', '=', d.event_seq).executeTakeFirst();
      if (!ev) {
        await this.record(w, d, { final: 'failed', code: null, error: 'the event no longer exists' });
        return;
      }
      const body = JSON.stringify(eventView(ev));
      const id = `evt_${Number(ev.seq)}`;
      let secret: string | undefined;
      try {
        secret = this.box.open({ keyId: w.key_id, nonce: w.nonce, ciphertext: w.ciphertext }, AT(w.org_id, w.id));
      } catch (err) {
        // A master key this server lacks: the attempt fails (and is retried), visibly.
        error = `the signing secret does not open on this server: ${(err as Error).message}`;
      }
      if (secret !== undefined) {
        const ts = Math.floor(Date.now() / 1000);
        try {
          const res = await fetch(w.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/cloudevents+json; charset=utf-8',
              'user-agent': 'fabrik-webhooks/0.1',
              'webhook-id': id,
              'webhook-timestamp': String(ts),
              'webhook-signature': signWebhook(secret, id, ts, body),
            },
            body,
            // A redirect is not a delivery: following it would send tenant events where nobody asked.
            redirect: 'manual',
            signal: AbortSignal.timeout(this.o.timeoutMs),
          });
          code = res.status;
          await res.body?.cancel().catch(() => undefined);
          if (res.status >= 200 && res.status < 300) {
            await this.record(w, d, { final: 'delivered', code, error: '' });
            return;
          }
          error = `HTTP ${res.status}`;
        } catch (err) {
          const e = err as Error & { cause?: { code?: string; message?: string } };
          error =
            e.name === 'TimeoutError'
              ? `no answer within ${this.o.timeoutMs} ms`
              : `${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}`.slice(0, 300);
        }
      }
      const attempts = d.attempts + 1;
      await this.record(w, d, {
        final: attempts >= this.o.maxAttempts ? 'failed' : undefined,
        code,
        error,
      });
    } catch (err) {
      // Unexpected (the database): the lease expires and a later run tries again.
      process.emitWarning(`webhook ${w.id}: ${(err as Error).message}`);
      return;
    }
  }

  private async record(
    w: WebhooksTable,
    d: WebhookDeliveriesTable,
    r: { final?: 'delivered' | 'failed'; code: number | null; error: string },
  ): Promise<void> {
    const now = new Date();
    const attempts = d.attempts + 1;
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('webhook_deliveries')
        .set({
          status: r.final ?? 'pending',
          attempts,
          last_status: r.code,
          last_error: r.error,
          next_attempt_at: r.final
            ? ''
            : new Date(now.getTime() + retryDelayMs(attempts, this.o.backoffBaseMs, this.o.backoffMaxMs)).toISOString(),
          updated_at: now.toISOString(),
          delivered_at: r.final === 'delivered' ? now.toISOString() : '',
        })
        .where('id', '=', d.id)
        .where('status', '=', 'pending')
        .execute();
      await trx.updateTable('webhooks').set({ lease_until: '' }).where('id', '=', w.id).execute();
    });
  }
}

class Skip extends Error {}
