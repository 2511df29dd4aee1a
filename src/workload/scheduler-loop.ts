// Drives the pure scheduler core from the database. A cycle reads a snapshot (fleet, quotas,
// running and pending workloads, recent usage), asks `schedule()` for decisions, and writes each
// resulting state change in its own audited transaction. Cycles run on events (submit, cancel,
// node or quota changes, finishes) and on a timer, and never two at once.
import type { Kysely } from 'kysely';
import { type ActorContext, type Trx, mutate } from '../audit/journal.js';
import { SerialLoop } from '../domain/serial-loop.js';
import { decayUsage, schedule } from '../scheduler/index.js';
import type { Decisions, PolicyName, Snapshot } from '../scheduler/types.js';
import type { Database } from '../store/schema.js';
import { addEvent, applyEvent } from './repository.js';
import { loadSchedNodes } from './service.js';
import { allowanceOf, placementRules, rulesHash, subjectOf } from './placement-policy.js';
import { buildWorkSnapshot, loadSnapshotRows } from './snapshot.js';
import { loadUsage, saveUsage } from './usage-store.js';

const SCHEDULER: ActorContext = { keyId: '', principal: 'system:scheduler', requestId: '' };
/** Fair-share memory: usage older than this counts half (Slurm's PriorityDecayHalfLife, default 7 days). */
const USAGE_HALF_LIFE_S = 7 * 86_400;
/** How often the usage is stored (a new leader continues from it). */
const USAGE_SAVE_S = 5;

export interface LoopOptions {
  readonly intervalMs?: number;
  readonly policy?: PolicyName;
  /** Called after a workload was placed (the executor starts it) or preempted (it stops it). */
  readonly onPlaced?: (workloadId: string) => void;
  readonly onPreempted?: (workloadId: string) => void;
  /** The lease check of this replica's writes (src/app/lease.ts): a replica that lost it writes nothing. */
  readonly fence?: (trx: Trx) => Promise<void>;
  /** Called after each cycle with its figures (the site metrics: src/metering/site-metrics.ts). */
  readonly onCycle?: (report: CycleReport, decisions: Decisions, snapshot: Snapshot) => void;
}

export interface CycleReport {
  readonly placed: number;
  readonly preempted: number;
  readonly pending: number;
  readonly durationMs: number;
}

export class SchedulerLoop extends SerialLoop {
  private usage: Record<string, number> = {};
  private usageAt = Date.now() / 1000;
  /** The stored usage is read on the first cycle after each start (it may come from another leader). */
  private usageLoaded = false;
  private usageSavedAt = 0;
  lastReport: CycleReport | null = null;
  /** The policy set the last snapshot's allowances came from (recorded with each placement). */
  private policyHash = '';

  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: LoopOptions = {},
  ) {
    super(opts.intervalMs ?? 5000, (err) => process.emitWarning(`scheduling cycle failed: ${err.message}`));
  }

  override start(): void {
    this.usageLoaded = false;
    super.start();
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
    const report = {
      placed: decisions.place.length,
      preempted: decisions.preempt.length,
      pending: decisions.pending.length,
      durationMs: performance.now() - t0,
    };
    this.opts.onCycle?.(report, decisions, snapshot);
    return report;
  }

  private async snapshot(): Promise<Snapshot> {
    const now = Date.now() / 1000;
    const { specs, nodes } = await loadSchedNodes(this.db);
    // Sovereignty: each pending workload carries the nodes the policy set in force allows it.
    const rules = await placementRules(this.db, specs);
    this.policyHash = rulesHash(rules);
    const { quotas, running, pending } = buildWorkSnapshot(await loadSnapshotRows(this.db), now, (org, ref, spec) =>
      allowanceOf(rules, subjectOf(org, ref, spec)),
    );

    if (!this.usageLoaded) {
      const stored = await loadUsage(this.db);
      if (stored) {
        this.usage = stored.usage;
        this.usageAt = stored.at;
      }
      this.usageLoaded = true;
    }
    // Fair share looks at recent usage: decay what was, add what ran since the last cycle.
    const allocated: Record<string, number> = {};
    for (const r of running) allocated[r.project] = (allocated[r.project] ?? 0) + r.nodes * r.gpusPerNode;
    this.usage = decayUsage(this.usage, Math.max(0, now - this.usageAt), allocated, USAGE_HALF_LIFE_S);
    this.usageAt = now;
    if (now - this.usageSavedAt >= USAGE_SAVE_S) {
      await this.db.transaction().execute(async (trx) => {
        await this.opts.fence?.(trx);
        await saveUsage(trx, this.usage, now);
      });
      this.usageSavedAt = now;
    }
    return { now, nodes, quotas, running, pending, usage: this.usage, policy: this.opts.policy ?? 'fabrik' };
  }

  private async apply(d: Decisions, snap: Snapshot): Promise<void> {
    const orgOf = new Map<string, string>();
    const ids = [...d.preempt.map((p) => p.workloadId), ...d.place.map((p) => p.workloadId)];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .selectFrom('workloads')
        .select(['id', 'org_id'])
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
      for (const r of rows) orgOf.set(r.id, r.org_id);
    }
    const rowOf = (id: string) => ({ id, org_id: orgOf.get(id) ?? '' });

    const actor = { ...SCHEDULER, requestId: `cycle-${snap.now}`, fence: this.opts.fence };
    for (const p of d.preempt) {
      const done = await applyEvent(this.db, actor, rowOf(p.workloadId), {
        type: 'preempt',
        message: p.message,
        forWorkloadId: p.forWorkloadId,
      });
      if (done) this.opts.onPreempted?.(p.workloadId);
    }

    // A claim that needed victims is placed only once they have stopped (a later cycle, when the
    // snapshot shows them terminating until the engine confirms): no GPU is ever given twice.
    const waitsForVictims = new Set(d.preempt.map((p) => p.forWorkloadId).filter(Boolean));
    for (const p of d.place) {
      if (waitsForVictims.has(p.workloadId)) continue;
      const leaves = p.placement.leaves.length;
      const where = p.placement.nodes.map((n) => `${n.node}[${n.gpuIndexes.join(',')}]`).join(' ');
      const done = await applyEvent(
        this.db,
        actor,
        rowOf(p.workloadId),
        {
          type: 'place',
          placement: p.placement,
          borrowed: p.borrowed,
          message: `placed on ${where} in pod ${p.placement.pod}, ${leaves} leaf switch${leaves === 1 ? '' : 'es'}${p.borrowed ? ', borrowing idle capacity' : ''}`,
        },
        undefined,
        this.policyHash ? { policy: { hash: this.policyHash } } : undefined,
      );
      if (done) this.opts.onPlaced?.(p.workloadId);
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
      await this.db.transaction().execute(async (trx) => {
        await this.opts.fence?.(trx);
        await update(trx);
      });
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
