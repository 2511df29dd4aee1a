// The scheduler core's view of the database: fleet, quotas, running and pending work. Attempts that
// are still stopping (preempted, cancelled, over their runtime) stay allocated as `terminating`
// until the engine says they ended, so their GPUs are never given to anyone else before then — the
// core reports `PreemptingVictims` for work waiting on them, as Kueue admits only after victims
// are gone. Pending work whose previous attempt is still live, or that backs off, waits.
import type { Kysely } from 'kysely';
import type { NodeAllowance, PoolQuota, RunningWorkload, WorkloadRequest } from '../scheduler/types.js';
import type { Database, WorkloadAttemptsTable, WorkloadsTable } from '../store/schema.js';
import { type WorkloadSpec, storedSpecRequest } from './spec.js';

export interface SnapshotRows {
  /** Workloads pending or running. */
  readonly active: readonly WorkloadsTable[];
  /** Attempts not ended yet, with the workloads they belong to when those are no longer active. */
  readonly liveAttempts: readonly WorkloadAttemptsTable[];
  readonly endedOwners: readonly WorkloadsTable[];
  readonly quotas: readonly { project_id: string; pool: string; guaranteed: number; gpu_limit: number }[];
  readonly projectRefs: ReadonlyMap<string, string>;
  /** Per project id: its org's name and residency (what placement policies read). */
  readonly projectOrgs: ReadonlyMap<string, { readonly name: string; readonly residency: string }>;
}

/** The nodes policies allow a pending workload (undefined: all); the loop asks the policy set in force. */
export type AllowanceOf = (
  org: { readonly name: string; readonly residency: string },
  projectRef: string,
  spec: WorkloadSpec,
) => NodeAllowance | undefined;

export interface WorkSnapshot {
  readonly quotas: PoolQuota[];
  readonly running: RunningWorkload[];
  readonly pending: WorkloadRequest[];
}

const toSeconds = (iso: string) => Date.parse(iso) / 1000;

/** The scheduler knows projects by their `org.project` name, so its messages read well. */
/** `allowedNodes`: for pending work, given the spec; running work keeps the placement it has. */
function request(
  r: WorkloadsTable,
  projectRef: string,
  allowedNodes?: (spec: WorkloadSpec) => NodeAllowance | undefined,
): WorkloadRequest {
  const spec = JSON.parse(r.spec) as WorkloadSpec;
  const req = storedSpecRequest(spec, {
    id: r.id,
    project: projectRef,
    submittedAt: toSeconds(r.queued_at ?? r.submitted_at),
  });
  const allowed = allowedNodes?.(spec);
  return allowed ? { ...req, allowedNodes: allowed } : req;
}

/** Pure: rows in, the core's running and pending lists out (pending work with its policy allowance). */
export function buildWorkSnapshot(rows: SnapshotRows, nowS: number, allowance?: AllowanceOf): WorkSnapshot {
  const refOf = (projectId: string) => rows.projectRefs.get(projectId) ?? projectId;
  const quotas: PoolQuota[] = rows.quotas.map((q) => ({
    project: refOf(q.project_id),
    pool: q.pool,
    guaranteed: q.guaranteed,
    limit: q.gpu_limit,
  }));
  const byId = new Map([...rows.active, ...rows.endedOwners].map((r) => [r.id, r]));
  const live = new Map(rows.liveAttempts.map((a) => [a.workload_id, a]));
  const running: RunningWorkload[] = [];
  for (const a of rows.liveAttempts) {
    const w = byId.get(a.workload_id);
    if (!w) continue;
    const current = w.status === 'running' && w.attempts === a.number && a.stop_reason === '';
    const startedAt = a.started_at || a.launched_at || a.created_at;
    running.push({
      ...request(w, refOf(w.project_id)),
      startedAt: toSeconds(startedAt),
      placement: JSON.parse(a.placement),
      borrowed: current && w.borrowed === 1,
      preemptions: w.preemptions,
      ...(current ? {} : { terminating: true }),
    });
  }
  // Running rows without a live attempt cannot occur (placement creates the attempt in the same
  // transaction); pending rows with one wait for it to end.
  const pending = rows.active
    .filter(
      (r) => r.status === 'pending' && !live.has(r.id) && !(r.not_before && Date.parse(r.not_before) > nowS * 1000),
    )
    .map((r) => {
      const ref = refOf(r.project_id);
      // An org that vanished cannot be placed anywhere: no facts, no permit.
      const org = rows.projectOrgs.get(r.project_id) ?? { name: '', residency: '' };
      return request(r, ref, allowance && ((spec) => allowance(org, ref, spec)));
    });
  return { quotas, running, pending };
}

export async function loadSnapshotRows(db: Kysely<Database>): Promise<SnapshotRows> {
  const projects = await db
    .selectFrom('projects')
    .innerJoin('orgs', 'orgs.id', 'projects.org_id')
    .select(['projects.id', 'projects.name', 'orgs.name as org_name', 'orgs.residency'])
    .execute();
  const projectRefs = new Map(projects.map((p) => [p.id, `${p.org_name}.${p.name}`]));
  const projectOrgs = new Map(projects.map((p) => [p.id, { name: p.org_name, residency: p.residency }]));
  const quotas = await db.selectFrom('quotas').select(['project_id', 'pool', 'guaranteed', 'gpu_limit']).execute();
  const active = await db.selectFrom('workloads').selectAll().where('status', 'in', ['pending', 'running']).execute();
  const liveAttempts = await db.selectFrom('workload_attempts').selectAll().where('state', '!=', 'ended').execute();
  const activeIds = new Set(active.map((r) => r.id));
  const missing = [...new Set(liveAttempts.map((a) => a.workload_id))].filter((id) => !activeIds.has(id));
  const endedOwners = missing.length
    ? await db.selectFrom('workloads').selectAll().where('id', 'in', missing).execute()
    : [];
  return { active, liveAttempts, endedOwners, quotas, projectRefs, projectOrgs };
}
