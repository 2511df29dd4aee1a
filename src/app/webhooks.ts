// Webhooks: an org subscribes a URL to event types; every matching event of that org is POSTed to
// it at least once, in event order per subscription (one request in flight per subscription, the
// next waits until the previous was delivered or given up), signed per the Standard Webhooks
// convention (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body">). The signing secret is shown once at creation and kept sealed with the
// server's master key, as tenant secrets are. Failed attempts are retried with exponential backoff
// and given up after a bounded number; the subscription then goes on with the next event.
import { createHmac, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { SerialLoop } from '../domain/serial-loop.js';
import { type Page, type PageRequest, decodeCursor, page } from '../store/paging.js';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from '../store/schema.js';
import { type Ctx, findOrg, hasRole, requireRole, write } from './context.js';
import type { SecretBox } from '../tenancy/secret-box.js';
import { secretBoxFor } from '../tenancy/secrets.js';
import { eventView, headSeq, parseTypes, typeMatches } from './events.js';

export const MAX_WEBHOOKS_PER_ORG = 25;
export const MAX_URL_LENGTH = 2048;

export interface Webhook {
  id: string;
  org: string;
  url: string;
  /** Event types (or `prefix.*`) it receives; empty: all of the org's events. */
  types: string[];
  description: string;
  createdAt: string;
  createdBy: string;
  deliveries: { pending: number; delivered: number; failed: number };
}

/** The first answer to a creation: with the signing secret, shown this once. */
export interface CreatedWebhook extends Webhook {
  secret: string;
}

/** What an Idempotency-Key replay answers (and all that is stored as the replay): no secret. */
export interface ReplayedWebhook extends Webhook {
  secret: null;
  secretShownOnce: true;
}

export interface Delivery {
  id: string;
  webhook: string;
  event: { id: string; type: string };
  /** pending (to be tried, or tried again at nextAttemptAt), delivered, or failed (given up). */
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  deliveredAt: string | null;
}

const AT = (orgId: string, id: string) => ({ orgId, projectId: '', name: `webhook:${id}` });

/** Only absolute http(s) URLs without credentials: no file:, no unix sockets, no other schemes. */
export function checkTargetUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AppError(
      'INVALID_ARGUMENT',
      'url: not an absolute URL; give one such as https://hooks.example.com/fabrik',
      {
        field: 'url',
      },
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new AppError(
      'INVALID_ARGUMENT',
      `url: only http:// and https:// targets can receive webhooks, not ${u.protocol.slice(0, 20)}`,
      { field: 'url' },
    );
  }
  if (u.username || u.password) {
    throw new AppError('INVALID_ARGUMENT', 'url: no credentials in the URL; receivers verify the signature instead', {
      field: 'url',
    });
  }
  if (!u.hostname) throw new AppError('INVALID_ARGUMENT', 'url: the URL names no host', { field: 'url' });
  u.hash = '';
  if (u.toString().length > MAX_URL_LENGTH)
    throw new AppError('INVALID_ARGUMENT', `url: at most ${MAX_URL_LENGTH} characters`, { field: 'url' });
  return u.toString();
}

/** The Standard Webhooks signature header value for one request. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

async function webhookViews(db: Kysely<Database> | Trx, orgName: string, rows: WebhooksTable[]): Promise<Webhook[]> {
  const counts = new Map<string, Webhook['deliveries']>();
  if (rows.length) {
    const stats = await db
      .selectFrom('webhook_deliveries')
      .select(['webhook_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where(
        'webhook_id',
        'in',
        rows.map((r) => r.id),
      )
      .groupBy(['webhook_id', 'status'])
      .execute();
    for (const s of stats) {
      const c = counts.get(s.webhook_id) ?? { pending: 0, delivered: 0, failed: 0 };
      if (s.status === 'pending' || s.status === 'delivered' || s.status === 'failed') c[s.status] = Number(s.n);
      counts.set(s.webhook_id, c);
    }
  }
  return rows.map((r) => ({
    id: r.id,
    org: orgName,
    url: r.url,
    types: JSON.parse(r.types),
    description: r.description,
    createdAt: r.created_at,
    createdBy: r.created_by,
    deliveries: counts.get(r.id) ?? { pending: 0, delivered: 0, failed: 0 },
  }));
}

/** Subscriptions (their URLs may carry tokens) are for org-wide admins: to read and to write. */
function requireReader(ctx: Ctx, orgId: string): void {
  if (!hasRole(ctx, orgId, 'admin')) throw new AppError('FORBIDDEN', 'webhooks are managed by org admins');
}

export async function createWebhook(
  ctx: Ctx,
  orgName: string,
  input: { url: string; types?: string[]; description?: string },
): Promise<CreatedWebhook> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'webhook.create', resource: `orgs/${org.name}/webhooks`, orgId: org.id };
  await requireRole(ctx, spec, 'admin', 'managing webhooks');
  if (org.status !== 'active') throw new AppError('CONFLICT', `organization "${org.name}" is ${org.status}`);
  const url = checkTargetUrl(input.url);
  const types = [...new Set((input.types ?? []).map((t) => t.trim()))];
  parseTypes(types);
  // Looked up only now: a caller who may not see the org learns nothing about the server.
  const box = secretBoxFor(ctx.db);
  let secret = '';
  const replay = await write(ctx, spec, async (trx) => {
    const n = await trx
      .selectFrom('webhooks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', org.id)
      .executeTakeFirstOrThrow();
    if (Number(n.n) >= MAX_WEBHOOKS_PER_ORG)
      throw new AppError('UNPROCESSABLE', `at most ${MAX_WEBHOOKS_PER_ORG} webhooks per org`);
    const id = newId('whk');
    secret = newSecret();
    const sealed = box.seal(secret, AT(org.id, id));
    const row: WebhooksTable = {
      id,
      org_id: org.id,
      url,
      types: JSON.stringify(types),
      description: input.description ?? '',
      key_id: sealed.keyId,
      nonce: sealed.nonce,
      ciphertext: sealed.ciphertext,
      // Under the audit head lock every event up to the head is committed: it gets later ones.
      cursor: await headSeq(trx),
      lease_until: '',
      created_at: nowIso(),
      created_by: ctx.caller.principal,
    };
    await trx.insertInto('webhooks').values(row).execute();
    const [view] = await webhookViews(trx, org.name, [row]);
    const replayed: ReplayedWebhook = { ...view!, secret: null, secretShownOnce: true };
    // The audit digest and the event cover the subscription, never its secret.
    return { result: replayed, after: view, resource: `orgs/${org.name}/webhooks/${id}` };
  });
  const { secretShownOnce: _, ...view } = replay;
  return { ...view, secret };
}

export async function listWebhooks(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<Webhook>> {
  const org = await findOrg(ctx, orgName);
  requireReader(ctx, org.id);
  const q = ctx.db.selectFrom('webhooks').selectAll().where('org_id', '=', org.id);
  const rows = await page(q, 'id', req, (r) => r);
  return { items: await webhookViews(ctx.db, org.name, rows.items), nextCursor: rows.nextCursor };
}

async function findWebhook(ctx: Ctx, orgName: string, id: string, db: Kysely<Database> | Trx = ctx.db) {
  const org = await findOrg(ctx, orgName, db);
  const row = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('id', '=', id)
    .where('org_id', '=', org.id)
    .executeTakeFirst();
  return { org, row };
}

export async function getWebhook(ctx: Ctx, orgName: string, id: string): Promise<Webhook> {
  const { org, row } = await findWebhook(ctx, orgName, id);
  requireReader(ctx, org.id);
  if (!row) throw notFound('webhook', id);
  return (await webhookViews(ctx.db, org.name, [row]))[0]!;
}

export async function deleteWebhook(ctx: Ctx, orgName: string, id: string): Promise<void> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'webhook.delete', resource: `orgs/${org.name}/webhooks/${id}`, orgId: org.id };
  await requireRole(ctx, spec, 'admin', 'managing webhooks');
  await write(ctx, spec, async (trx) => {
    const { row } = await findWebhook(ctx, orgName, id, trx);
    if (!row) throw notFound('webhook', id);
    const [view] = await webhookViews(trx, org.name, [row]);
    await trx.deleteFrom('webhook_deliveries').where('webhook_id', '=', row.id).execute();
    await trx.deleteFrom('webhooks').where('id', '=', row.id).execute();
    return { result: undefined, before: view, after: null };
  });
}

function deliveryView(r: WebhookDeliveriesTable): Delivery {
  return {
    id: r.id,
    webhook: r.webhook_id,
    event: { id: `evt_${Number(r.event_seq)}`, type: r.event_type },
    status: r.status,
    attempts: r.attempts,
    lastStatusCode: r.last_status,
    lastError: r.last_error || null,
    nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deliveredAt: r.delivered_at || null,
  };
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

/** A subscription's deliveries, newest event first. */
export async function listDeliveries(
  ctx: Ctx,
  orgName: string,
  id: string,
  filter: { status?: string },
  req: PageRequest,
): Promise<Page<Delivery>> {
  const { org, row } = await findWebhook(ctx, orgName, id);
  requireReader(ctx, org.id);
  if (!row) throw notFound('webhook', id);
  if (filter.status !== undefined && !(DELIVERY_STATUSES as readonly string[]).includes(filter.status)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `status: unknown delivery status "${filter.status.slice(0, 40)}"; valid: ${DELIVERY_STATUSES.join(', ')}`,
      { field: 'status', valid: DELIVERY_STATUSES },
    );
  }
  // Ordered by event seq: a cursor must hold one.
  if (req.cursor !== undefined) decodeCursor(req.cursor, 'integer');
  let q = ctx.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', row.id);
  if (filter.status) q = q.where('status', '=', filter.status);
  return page(q, 'event_seq', req, deliveryView, 'desc');
}

// Delivery --------------------------------------------------------------------------------------

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
