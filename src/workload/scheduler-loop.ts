// Drives the pure scheduler core from the database. A cycle reads a snapshot (fleet, quotas,
// running and pending workloads, recent usage), asks `schedule()` for decisions, and writes each
// resulting state change in its own audited transaction. Cycles run on events (submit, cancel,
// node or quota changes, finishes) and on a timer, and never two at once.
import type { Kysely } from 'kysely';
import { type ActorContext, type Trx, mutate } from '../audit/journal.js';
import { nowIso } from '../domain/ids.js';
import { SerialLoop } from '../domain/serial-loop.js';
import { decayUsage, schedule } from '../scheduler/index.js';
import type {
  Decisions,
  PolicyName,
  PoolQuota,
  RunningWorkload,
  Snapshot,
  WorkloadRequest,
} from '../scheduler/types.js';
import type { Database, WorkloadsTable } from '../store/schema.js';
import { addEvent, loadSchedNodes } from './service.js';
import { type WorkloadSpec, storedSpecRequest } from './spec.js';

const SCHEDULER: ActorContext = { keyId: '', principal: 'system:scheduler', requestId: '' };
/** Fair-share memory: usage older than this counts half (Slurm's PriorityDecayHalfLife, default 7 days). */
const USAGE_HALF_LIFE_S = 7 * 86_400;

export interface LoopOptions {
  readonly intervalMs?: number;
  readonly policy?: PolicyName;
  /** Called after a workload was placed (the executor starts it) or preempted (it stops it). */
  readonly onPlaced?: (workloadId: string) => void;
  readonly onPreempted?: (workloadId: string) => void;
}

export interface CycleReport {
  readonly placed: number;
  readonly preempted: number;
  readonly pending: number;
  readonly durationMs: number;
}

function toSeconds(iso: string): number {
  return Date.parse(iso) / 1000;
}

/** The scheduler knows projects by their `org.project` name, so its messages read well. */
function request(r: WorkloadsTable, projectRef: string): WorkloadRequest {
  return storedSpecRequest(JSON.parse(r.spec) as WorkloadSpec, {
    id: r.id,
    project: projectRef,
    submittedAt: toSeconds(r.queued_at ?? r.submitted_at),
  });
}

export class SchedulerLoop extends SerialLoop {
  private usage: Record<string, number> = {};
  private usageAt = Date.now() / 1000;
  lastReport: CycleReport | null = null;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: LoopOptions = {},
  ) {
    super(opts.intervalMs ?? 5000, (err) => process.emitWarning(`scheduling cycle failed: ${err.message}`));
  }

  protected override async work(): Promise<void> {
    this.lastReport = await this.cycle();
  }

  /** One cycle, for tests and callers that want to wait for it. */
  async cycle(): Promise<CycleReport> {
    const t0 = performance.now();
    const snapshot = await this.snapshot();
    const decisions = schedule(snapshot);
    await this.apply(decisions, snapshot);
    return {
      placed: decisions.place.length,
      preempted: decisions.preempt.length,
      pending: decisions.pending.length,
      durationMs: performance.now() - t0,
    };
  }

  private async snapshot(): Promise<Snapshot> {
    const now = Date.now() / 1000;
    const { nodes } = await loadSchedNodes(this.db);
    const refs = new Map(
      (
        await this.db
          .selectFrom('projects')
          .innerJoin('orgs', 'orgs.id', 'projects.org_id')
          .select(['projects.id', 'projects.name', 'orgs.name as org_name'])
          .execute()
      ).map((p) => [p.id, `${p.org_name}.${p.name}`]),
    );
    const refOf = (projectId: string) => refs.get(projectId) ?? projectId;
    const quotas: PoolQuota[] = (await this.db.selectFrom('quotas').selectAll().execute()).map((q) => ({
      project: refOf(q.project_id),
      pool: q.pool,
      guaranteed: q.guaranteed,
      limit: q.gpu_limit,
    }));
    const active = await this.db
      .selectFrom('workloads')
      .selectAll()
      .where('status', 'in', ['pending', 'running'])
      .execute();
    const running: RunningWorkload[] = active
      .filter((r) => r.status === 'running' && r.placement)
      .map((r) => ({
        ...request(r, refOf(r.project_id)),
        startedAt: toSeconds(r.started_at!),
        placement: JSON.parse(r.placement!),
        borrowed: r.borrowed === 1,
      }));
    // Pending work whose previous attempt is still stopping, or that backs off after a failure, waits.
    const pending = active
      .filter(
        (r) => r.status === 'pending' && !r.exec_handle && !(r.not_before && Date.parse(r.not_before) > now * 1000),
      )
      .map((r) => request(r, refOf(r.project_id)));

    // Fair share looks at recent usage: decay what was, add what ran since the last cycle.
    const allocated: Record<string, number> = {};
    for (const r of running) allocated[r.project] = (allocated[r.project] ?? 0) + r.nodes * r.gpusPerNode;
    this.usage = decayUsage(this.usage, Math.max(0, now - this.usageAt), allocated, USAGE_HALF_LIFE_S);
    this.usageAt = now;
    return { now, nodes, quotas, running, pending, usage: this.usage, policy: this.opts.policy ?? 'fabrik' };
  }

  private async apply(d: Decisions, snap: Snapshot): Promise<void> {
    const orgOf = new Map<string, { org: string; name: string }>();
    const ids = [
      ...d.preempt.map((p) => p.workloadId),
      ...d.place.map((p) => p.workloadId),
      ...d.pending.map((p) => p.workloadId),
    ];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .selectFrom('workloads')
        .select(['id', 'org_id', 'name'])
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
      for (const r of rows) orgOf.set(r.id, { org: r.org_id, name: r.name });
    }
    const spec = (id: string, action: string) => ({
      action,
      resource: `workloads/${id}`,
      orgId: orgOf.get(id)?.org ?? '',
    });

    for (const p of d.preempt) {
      let changed = false;
      await mutate(
        this.db,
        { ...SCHEDULER, requestId: `cycle-${snap.now}` },
        spec(p.workloadId, 'workload.preempt'),
        async (trx) => {
          const cur = await trx
            .selectFrom('workloads')
            .selectAll()
            .where('id', '=', p.workloadId)
            .where('status', '=', 'running')
            .executeTakeFirst();
          if (!cur) return { result: undefined };
          const requeue = (JSON.parse(cur.spec) as WorkloadSpec).requeue;
          const now = nowIso();
          await trx
            .updateTable('workloads')
            .set({
              status: requeue ? 'pending' : 'preempted',
              reason: 'Preempted',
              message: p.message,
              placement: null,
              borrowed: 0,
              preemptions: cur.preemptions + 1,
              finished_at: requeue ? null : now,
              queued_at: requeue ? now : cur.queued_at,
              updated_at: now,
            })
            .where('id', '=', cur.id)
            .execute();
          await addEvent(trx, cur.id, 'Warning', 'Preempted', `${p.message}${requeue ? '; requeued' : ''}`);
          changed = true;
          return {
            result: undefined,
            before: { status: 'running' },
            after: { status: requeue ? 'pending' : 'preempted', for: p.forWorkloadId },
          };
        },
      );
      if (changed) this.opts.onPreempted?.(p.workloadId);
    }

    for (const p of d.place) {
      let changed = false;
      await mutate(
        this.db,
        { ...SCHEDULER, requestId: `cycle-${snap.now}` },
        spec(p.workloadId, 'workload.place'),
        async (trx) => {
          const cur = await trx
            .selectFrom('workloads')
            .selectAll()
            .where('id', '=', p.workloadId)
            .where('status', '=', 'pending')
            .executeTakeFirst();
          if (!cur) return { result: undefined };
          const now = nowIso();
          await trx
            .updateTable('workloads')
            .set({
              status: 'running',
              reason: 'Placed',
              message: `on ${p.placement.nodes.map((n) => n.node).join(',')}`,
              placement: JSON.stringify(p.placement),
              borrowed: p.borrowed ? 1 : 0,
              attempts: cur.attempts + 1,
              started_at: now,
              estimated_start: null,
              updated_at: now,
            })
            .where('id', '=', cur.id)
            .execute();
          const leaves = p.placement.leaves.length;
          await addEvent(
            trx,
            cur.id,
            'Normal',
            'Scheduled',
            `placed on ${p.placement.nodes.map((n) => `${n.node}[${n.gpuIndexes.join(',')}]`).join(' ')} in pod ${p.placement.pod}, ${leaves} leaf switch${leaves === 1 ? '' : 'es'}${p.borrowed ? ', borrowing idle capacity' : ''}`,
          );
          changed = true;
          return {
            result: undefined,
            before: { status: 'pending' },
            after: { status: 'running', placement: p.placement, borrowed: p.borrowed },
          };
        },
      );
      if (changed) this.opts.onPlaced?.(p.workloadId);
    }

    // Reasons change often; a new reason code gets an event, a new message or estimate only an update.
    const current = new Map<string, { reason: string; message: string; estimated_start: string | null }>();
    const pendingIds = d.pending.map((p) => p.workloadId);
    for (let i = 0; i < pendingIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('workloads')
        .select(['id', 'reason', 'message', 'estimated_start'])
        .where('id', 'in', pendingIds.slice(i, i + 500))
        .execute();
      for (const r of rows) current.set(r.id, r);
    }
    const changed = d.pending.filter((p) => {
      const cur = current.get(p.workloadId);
      const est = p.estimatedStart !== undefined ? new Date(p.estimatedStart * 1000).toISOString() : null;
      return cur && (cur.reason !== p.reason || cur.message !== p.message || cur.estimated_start !== est);
    });
    if (changed.length === 0) return;
    // All reason updates of a cycle go in one transaction with one audit entry listing the new
    // reason codes: a queue of thousands must not cost thousands of commits per cycle.
    const newReasons = changed.filter((p) => current.get(p.workloadId)!.reason !== p.reason);
    const update = async (trx: Trx) => {
      for (const p of changed) {
        const est = p.estimatedStart !== undefined ? new Date(p.estimatedStart * 1000).toISOString() : null;
        const res = await trx
          .updateTable('workloads')
          .set({ reason: p.reason, message: p.message, estimated_start: est })
          .where('id', '=', p.workloadId)
          .where('status', '=', 'pending')
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) > 0 && current.get(p.workloadId)!.reason !== p.reason) {
          await addEvent(trx, p.workloadId, 'Normal', p.reason, p.message);
        }
      }
    };
    if (newReasons.length === 0) {
      // Only messages and estimates moved: bookkeeping, not a transition.
      await this.db.transaction().execute(update);
      return;
    }
    await mutate(
      this.db,
      { ...SCHEDULER, requestId: `cycle-${snap.now}` },
      { action: 'workload.pending-reasons', resource: 'workloads', orgId: '' },
      async (trx) => {
        await update(trx);
        return { result: undefined, after: Object.fromEntries(newReasons.map((p) => [p.workloadId, p.reason])) };
      },
    );
  }
}
