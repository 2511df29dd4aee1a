// The rollup loop (leader only, like the scheduler): samples each project's stored bytes, then
// re-derives the hours touched since its last run from the sources and replaces them. Attempts'
// ended_at is the time the reconciler observed the end, and the gateways flush token minutes within
// seconds, so the hours from (last run − LATE_MS) on are all that can have changed. Listeners
// (budgets) run after each rollup.
import type { Kysely } from 'kysely';
import { SerialLoop } from '../domain/serial-loop.js';
import type { Trx } from '../store/db.js';
import type { Database } from '../store/schema.js';
import type { EnergySite } from './energy.js';
import { HOUR_MS, hourFloor } from './types.js';
import { type RecomputeResult, recompute, sampleStoredBytes } from './usage-store.js';

/** How late a fact may arrive for an hour already rolled up (gateway batches, clock skew between replicas). */
export const LATE_MS = 10 * 60_000;
const WATERMARK = 'metering.rolled_up_at';
const CHUNK_MS = 24 * HOUR_MS;

export interface RollupEvent extends RecomputeResult {
  /** The time the rollup ran to (epoch ms). */
  readonly now: number;
}

export type RollupListener = (ev: RollupEvent) => void | Promise<void>;

export interface RollupLoopOptions {
  readonly site: EnergySite;
  /** Default 60 s. */
  readonly intervalMs?: number;
  readonly fence?: (trx: Trx) => Promise<void>;
  readonly clock?: () => number;
  readonly onError?: (err: Error) => void;
}

export class UsageRollupLoop extends SerialLoop {
  private readonly listeners = new Set<RollupListener>();
  private readonly clock: () => number;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: RollupLoopOptions,
  ) {
    super(opts.intervalMs ?? 60_000, opts.onError);
    this.clock = opts.clock ?? Date.now;
  }

  /** Runs `listener` after every rollup; returns the unsubscribe. A failing listener does not stop the loop. */
  onRollup(listener: RollupListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected override async work(): Promise<void> {
    await this.runOnce();
  }

  /** One rollup now (tests and `work()`): returns what was written. */
  async runOnce(): Promise<RollupEvent> {
    const now = this.clock();
    await sampleStoredBytes(this.db, now, this.opts.fence);
    const last = await this.watermark();
    const from = hourFloor((last ?? (await this.earliestFact()) ?? now) - LATE_MS);
    // A day per transaction: a first run over a long history never holds the writer for long.
    const records: RecomputeResult['records'][number][] = [];
    let rows = 0;
    for (let start = from; start <= now; start += CHUNK_MS) {
      const r = await recompute(
        this.db,
        { from: start, to: Math.min(start + CHUNK_MS, now + 1) },
        { site: this.opts.site, now, fence: this.opts.fence },
      );
      rows += r.rows;
      records.push(...r.records);
    }
    const result: RecomputeResult = {
      from: new Date(from).toISOString(),
      to: new Date(hourFloor(now) + HOUR_MS).toISOString(),
      rows,
      records,
    };
    await this.db.transaction().execute(async (trx) => {
      await this.opts.fence?.(trx);
      await trx
        .insertInto('fabrik_meta')
        .values({ key: WATERMARK, value: new Date(now).toISOString() })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: new Date(now).toISOString() }))
        .execute();
    });
    const ev = { ...result, now };
    for (const l of this.listeners) {
      try {
        await l(ev);
      } catch (err) {
        (this.opts.onError ?? ((e: Error) => process.emitWarning(e.message)))(err as Error);
      }
    }
    return ev;
  }

  private async watermark(): Promise<number | undefined> {
    const row = await this.db.selectFrom('fabrik_meta').select('value').where('key', '=', WATERMARK).executeTakeFirst();
    const v = row ? Date.parse(row.value) : Number.NaN;
    return Number.isFinite(v) ? v : undefined;
  }

  /** The first run ever rolls up from the oldest fact on record. */
  private async earliestFact(): Promise<number | undefined> {
    const [a, t, s] = await Promise.all([
      this.db
        .selectFrom('workload_attempts')
        .select((eb) => eb.fn.min('started_at').as('t'))
        .where('started_at', '<>', '')
        .executeTakeFirst(),
      this.db
        .selectFrom('token_usage')
        .select((eb) => eb.fn.min('minute').as('t'))
        .executeTakeFirst(),
      this.db
        .selectFrom('stored_bytes_samples')
        .select((eb) => eb.fn.min('at').as('t'))
        .executeTakeFirst(),
    ]);
    const times = [a?.t, t?.t, s?.t].filter((x): x is string => typeof x === 'string' && x !== '').map(Date.parse);
    return times.length ? Math.min(...times) : undefined;
  }
}
