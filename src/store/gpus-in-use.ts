// The GPUs that live attempts hold, per project and pool: what quota listings (tenancy) show as
// `used` and the site metrics (metering) report. A read of the attempt rows (src/workload/ writes
// them) kept here, below both, as pool-guarantees.ts is; pure helpers beside.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A live attempt (not ended) with what its workload says of it. */
export interface LiveAttemptRow {
  readonly project: string;
  readonly pool: string;
  readonly gpus: number;
  readonly state: string;
  readonly createdAt: string;
  readonly stoppingSince: string;
  readonly stopReason: string;
}

export interface ProjectPoolUse {
  readonly project: string;
  readonly pool: string;
  /** GPUs held by live attempts (launching, running or still stopping). */
  readonly used: number;
}

/** Pure: GPUs used above the guarantee (what Kueue calls borrowing); no quota guarantees nothing. */
export const borrowedOf = (used: number, guaranteed = 0): number => Math.max(0, used - guaranteed);

/** Pure: per project and pool, the GPUs live attempts hold. */
export function gpusByProjectPool(live: readonly LiveAttemptRow[]): ProjectPoolUse[] {
  const by = new Map<string, { project: string; pool: string; used: number }>();
  for (const a of live) {
    const key = `${a.project}\0${a.pool}`;
    const u = by.get(key) ?? { project: a.project, pool: a.pool, used: 0 };
    u.used += a.gpus;
    by.set(key, u);
  }
  return [...by.values()].sort((x, y) => x.project.localeCompare(y.project) || x.pool.localeCompare(y.pool));
}

/** Live attempts, with project refs (`org.project`); bounded by what the fleet can run at once. */
export async function readLiveAttempts(
  db: Kysely<Database>,
  projectIds?: readonly string[],
): Promise<LiveAttemptRow[]> {
  if (projectIds && projectIds.length === 0) return [];
  let q = db
    .selectFrom('workload_attempts as a')
    .innerJoin('projects as p', 'p.id', 'a.project_id')
    .innerJoin('orgs as o', 'o.id', 'p.org_id')
    .select([
      'o.name as org_name',
      'p.name as project_name',
      'a.pool',
      'a.gpus',
      'a.state',
      'a.created_at',
      'a.stopping_since',
      'a.stop_reason',
    ])
    .where('a.state', '!=', 'ended');
  if (projectIds) q = q.where('a.project_id', 'in', [...projectIds]);
  const rows = await q.execute();
  return rows.map((r) => ({
    project: `${r.org_name}.${r.project_name}`,
    pool: r.pool,
    gpus: Number(r.gpus),
    state: r.state,
    createdAt: r.created_at,
    stoppingSince: r.stopping_since,
    stopReason: r.stop_reason,
  }));
}

/** Current use per project and pool, for quota listings. */
export async function currentUse(
  db: Kysely<Database>,
  projectIds: readonly string[],
): Promise<Map<string, ProjectPoolUse>> {
  const use = gpusByProjectPool(await readLiveAttempts(db, projectIds));
  return new Map(use.map((u) => [`${u.project}/${u.pool}`, u]));
}
