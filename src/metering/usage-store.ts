// Writing the rollups: the hours of a window are replaced as a whole in one transaction (delete,
// then insert what the sources give), so a rerun, a second leader or a recomputation converge on
// the same rows. Rollups are derived data, not state changes: they carry no audit entries (the
// facts they come from do), but the loop's writes are fenced by the control-loop lease.
import type { Kysely } from 'kysely';
import type { Trx } from '../store/db.js';
import type { Database, UsageHourlyTable } from '../store/schema.js';
import { type EnergySite, energySiteFromEnv } from './energy.js';
import { deriveUsage } from './usage-sources.js';
import { HOUR_MS, type UsageRecord, hourFloor } from './types.js';

export interface HourRange {
  /** RFC 3339 or epoch ms; widened to whole hours. */
  readonly from: string | number;
  readonly to: string | number;
}

export interface RecomputeOptions {
  readonly site?: EnergySite;
  /** Ends running attempts and stored bytes (default: the current time). */
  readonly now?: number;
  readonly fence?: (trx: Trx) => Promise<void>;
}

export interface RecomputeResult {
  readonly from: string;
  readonly to: string;
  readonly rows: number;
  /** The rows written, for listeners (budgets). */
  readonly records: readonly UsageRecord[];
}

function ms(t: string | number): number {
  const v = typeof t === 'number' ? t : Date.parse(t);
  if (!Number.isFinite(v)) throw new RangeError(`not a time: ${t}`);
  return v;
}

/** Rebuilds the rollups of [from, to) (whole hours) from the sources and stores them. */
export async function recompute(
  db: Kysely<Database>,
  range: HourRange,
  opts: RecomputeOptions = {},
): Promise<RecomputeResult> {
  const from = hourFloor(ms(range.from));
  const to = Math.ceil(ms(range.to) / HOUR_MS) * HOUR_MS;
  const now = opts.now ?? Date.now();
  const site = opts.site ?? energySiteFromEnv();
  const updatedAt = new Date(now).toISOString();
  return db.transaction().execute(async (trx) => {
    await opts.fence?.(trx);
    const records = (await deriveUsage(trx, site, { from, to, now })).rows(updatedAt);
    const fromIso = new Date(from).toISOString();
    const toIso = new Date(to).toISOString();
    await trx.deleteFrom('usage_hourly').where('hour', '>=', fromIso).where('hour', '<', toIso).execute();
    const rows = records.map(toRow);
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('usage_hourly')
        .values(rows.slice(i, i + 500))
        .execute();
    return { from: fromIso, to: toIso, rows: rows.length, records };
  });
}

/** A usage record as its `usage_hourly` row. */
export function toRow(r: UsageRecord): UsageHourlyTable {
  return {
    hour: r.hour,
    org_id: r.orgId,
    project_id: r.projectId,
    metric: r.metric,
    pool: r.pool,
    gpu_model: r.gpuModel,
    priority: r.priority,
    deployment_id: r.deploymentId,
    model: r.model,
    quantity: r.quantity,
    estimated: r.estimated ? 1 : 0,
    updated_at: r.updatedAt,
  };
}

/**
 * Records each project's stored registry bytes (the sum over project_blobs, as the storage quota
 * counts them) when it changed since the last sample: the rollups integrate this step function.
 * Returns how many samples were written.
 */
export async function sampleStoredBytes(
  db: Kysely<Database>,
  now: number,
  fence?: (trx: Trx) => Promise<void>,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await fence?.(trx);
    const current = await trx
      .selectFrom('project_blobs as b')
      .innerJoin('projects as p', 'p.id', 'b.project_id')
      .select(['b.project_id', 'p.org_id', (eb) => eb.fn.sum<number>('b.size').as('bytes')])
      .groupBy(['b.project_id', 'p.org_id'])
      .execute();
    const latest = trx
      .selectFrom('stored_bytes_samples')
      .select(['project_id', (eb) => eb.fn.max('at').as('at')])
      .groupBy('project_id')
      .as('m');
    const last = await trx
      .selectFrom('stored_bytes_samples as s')
      .innerJoin(latest, (j) => j.onRef('m.project_id', '=', 's.project_id').onRef('m.at', '=', 's.at'))
      .select(['s.project_id', 's.org_id', 's.bytes'])
      .execute();
    const before = new Map(last.map((r) => [r.project_id, r]));
    const at = new Date(now).toISOString();
    const writes: { project_id: string; org_id: string; at: string; bytes: number }[] = [];
    for (const c of current) {
      const bytes = Number(c.bytes);
      if (Number(before.get(c.project_id)?.bytes ?? 0) !== bytes)
        writes.push({ project_id: c.project_id, org_id: c.org_id, at, bytes });
      before.delete(c.project_id);
    }
    // Projects that hold nothing any more (their blobs gone, or the project deleted).
    for (const r of before.values()) if (Number(r.bytes) !== 0) writes.push({ ...r, at, bytes: 0 });
    for (let i = 0; i < writes.length; i += 500)
      await trx
        .insertInto('stored_bytes_samples')
        .values(writes.slice(i, i + 500))
        .onConflict((oc) => oc.columns(['project_id', 'at']).doUpdateSet((eb) => ({ bytes: eb.ref('excluded.bytes') })))
        .execute();
    return writes.length;
  });
}
