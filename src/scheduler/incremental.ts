// For callers that run many cycles (server, simulator, benchmark): keeps the scheduler's indexes
// between cycles and takes deltas, so a cycle costs what changed rather than what exists.
// `cycle(now)` decides exactly what `schedule(this.snapshot(now))` decides.
import { runCycle } from './cycle.js';
import { SchedulerState, type StateInit } from './state.js';
import type {
  Decisions,
  PolicyName,
  PoolQuota,
  RunningWorkload,
  SchedNode,
  ScheduleOptions,
  Snapshot,
  WorkloadRequest,
} from './types.js';

export type IncrementalInit = StateInit;

export class IncrementalScheduler {
  private readonly st: SchedulerState;

  constructor(init: IncrementalInit) {
    this.st = new SchedulerState(init);
  }

  static fromSnapshot(s: Snapshot): IncrementalScheduler {
    const inc = new IncrementalScheduler({
      nodes: s.nodes,
      quotas: s.quotas,
      policy: s.policy,
      usage: s.usage,
      options: s.options,
    });
    for (const r of s.running) inc.st.addRunning(r);
    inc.st.submitMany(s.pending);
    return inc;
  }

  get pendingCount(): number {
    return this.st.pending.size;
  }

  get runningCount(): number {
    return this.st.running.size;
  }

  /** A new (or requeued) pending workload. Throws if the id is already pending or running. */
  submit(req: WorkloadRequest): void {
    this.st.submit(req);
  }

  /** Many new workloads at once (faster than one by one). */
  submitMany(reqs: readonly WorkloadRequest[]): void {
    this.st.submitMany(reqs);
  }

  /** A workload started: it leaves the queue (if it was there) and holds its placement's GPUs. */
  start(w: RunningWorkload): void {
    this.st.start(w);
  }

  /** A workload finished, was cancelled, or left after preemption. Returns false if unknown. */
  remove(id: string): boolean {
    return this.st.remove(id);
  }

  setUsage(usage: Readonly<Record<string, number>>): void {
    this.st.setUsage(usage);
  }

  /** A node's labels or schedulable flag changed (cordon, drain, down, ready). */
  updateNode(node: SchedNode): void {
    this.st.updateNode(node);
  }

  setNodes(nodes: readonly SchedNode[]): void {
    this.st.setNodes(nodes);
  }

  setQuotas(quotas: readonly PoolQuota[]): void {
    this.st.setQuotas(quotas);
  }

  setPolicy(policy: PolicyName): void {
    this.st.setPolicy(policy);
  }

  setOptions(options: ScheduleOptions | undefined): void {
    this.st.setOptions(options);
  }

  /** Decides a cycle at `now`. Changes nothing: report what happened through apply/start/remove. */
  cycle(now: number): Decisions {
    return runCycle(this.st, now);
  }

  /**
   * Takes decisions as done at `now`: preempted workloads leave, placed ones start. For callers
   * that act on decisions at once (benchmarks, tests); others call start/remove as things happen.
   */
  apply(d: Decisions, now: number): void {
    for (const p of d.preempt) this.st.remove(p.workloadId);
    for (const p of d.place) {
      const req = this.st.pending.get(p.workloadId)?.req;
      if (!req) continue;
      this.st.start({ ...req, startedAt: now, placement: p.placement, borrowed: p.borrowed });
    }
  }

  /** The equivalent snapshot. */
  snapshot(now: number): Snapshot {
    return this.st.toSnapshot(now);
  }
}
