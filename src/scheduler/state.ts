// What the scheduler knows between cycles, indexed for fast cycles: the topology, free GPUs,
// quota usage, pending workloads in (pool, project, shape) queues, and running workloads with
// their GPUs. Changed by deltas (submit, start, remove, node and quota changes); a cycle reads
// it and works on copies. `schedule()` builds one from a snapshot; IncrementalScheduler keeps one.
import { Capacity, fullMask } from './capacity.js';
import { resolveOptions, type ResolvedOptions, PRIORITY_RANK } from './options.js';
import { entryBefore, orderKeys, type QueueEntry, queueTag, ShapeQueue } from './queue-order.js';
import { QuotaLedger } from './quota.js';
import { type Shape, shapeOf } from './shape.js';
import { type PendingList, SegmentBuffer } from './pending-list.js';
import type { PoolState, RunningRec } from './pool-state.js';
import { indexRunning, unindexRunning } from './running-order.js';
import { Topology } from './topology.js';
import type {
  PolicyName,
  PoolQuota,
  RunningWorkload,
  SchedNode,
  ScheduleOptions,
  Snapshot,
  WorkloadRequest,
} from './types.js';

export type { PoolState, RunningRec } from './pool-state.js';

export interface StateInit {
  readonly nodes: readonly SchedNode[];
  readonly quotas?: readonly PoolQuota[];
  readonly policy?: PolicyName;
  readonly usage?: Readonly<Record<string, number>>;
  readonly options?: ScheduleOptions;
}

export class SchedulerState {
  topo: Topology;
  cap: Capacity;
  ledger: QuotaLedger;
  policy: PolicyName;
  options: ResolvedOptions;
  rawOptions: ScheduleOptions | undefined;
  quotas: readonly PoolQuota[];
  usage: Readonly<Record<string, number>>;
  /** Bumped when usage, quotas, nodes, policy or options change: inputs of every pool. */
  inputs = 0;
  readonly pools = new Map<string, PoolState>();
  /** Insertion order is the order of `pending` in decisions and snapshots. */
  readonly pending = new Map<string, QueueEntry>();
  readonly running = new Map<string, RunningRec>();
  /** Verdicts by content, so that unchanged answers are the same object from cycle to cycle. */
  readonly verdicts = new Map<string, import('./queue-order.js').Verdict>();
  /**
   * The last cycle's pending decisions (and, in its buffer, the per-queue lists they are joined
   * from): a cycle whose lists are all the same objects hands back the same list.
   */
  lastPending: PendingList | null = null;
  /** Two buffers that take turns holding a cycle's per-queue lists (one is `lastPending`'s). */
  readonly segmentBuffers: readonly [SegmentBuffer, SegmentBuffer] = [new SegmentBuffer(), new SegmentBuffer()];

  constructor(init: StateInit) {
    this.topo = new Topology(init.nodes);
    this.cap = Capacity.empty(this.topo);
    this.quotas = init.quotas ?? [];
    this.ledger = new QuotaLedger(this.quotas);
    this.policy = init.policy ?? 'fabrik';
    this.rawOptions = init.options;
    this.options = resolveOptions(init.options);
    this.usage = init.usage ?? {};
  }

  static fromSnapshot(s: Snapshot): SchedulerState {
    const st = new SchedulerState({
      nodes: s.nodes,
      quotas: s.quotas,
      policy: s.policy,
      usage: s.usage,
      options: s.options,
    });
    for (const r of s.running) st.addRunning(r);
    st.submitMany(s.pending);
    return st;
  }

  pool(name: string): PoolState {
    let p = this.pools.get(name);
    if (!p) {
      p = {
        name,
        queues: new Map(),
        sorted: [],
        sortedDirty: false,
        running: new Set(),
        byAccount: new Map(),
        charges: new Map(),
        byAge: new Map(),
        preemptibleGpus: new Map(),
        restarted: new Set(),
        byEnd: null,
        drain: null,
        terminating: 0,
        preemptible: 0,
        heapBuf: [],
        version: 0,
        runningVersion: 0,
        staticVerdicts: new Map(),
      };
      this.pools.set(name, p);
    }
    return p;
  }

  private shapeFor(req: WorkloadRequest): Shape {
    return shapeOf(req, this.topo.poolByName.get(req.pool)?.nodeGpus ?? 0);
  }

  submit(req: WorkloadRequest): void {
    const e = this.queueEntry(req);
    e.queue.insert(e);
  }

  /** Many at once: appended, then each touched queue sorted once. */
  submitMany(reqs: readonly WorkloadRequest[]): void {
    const touched = new Set<ShapeQueue>();
    for (const req of reqs) {
      const e = this.queueEntry(req);
      e.queue.items.push(e);
      touched.add(e.queue);
    }
    for (const q of touched) {
      q.items.sort((a, b) => (entryBefore(a, b) ? -1 : entryBefore(b, a) ? 1 : 0));
      q.version++;
    }
  }

  /** Registers a pending workload and finds (or makes) its queue; the caller puts it in. */
  private queueEntry(req: WorkloadRequest): QueueEntry {
    if (this.pending.has(req.id) || this.running.has(req.id)) throw new Error(`workload "${req.id}" is already known`);
    const shape = this.shapeFor(req);
    const pool = this.pool(req.pool);
    pool.version++;
    const tag = queueTag(this.policy, req, this.options);
    const qkey = `${req.project}\u0000${shape.key}${tag}`;
    let q = pool.queues.get(qkey);
    if (!q) {
      q = new ShapeQueue(req.pool, req.project, shape, this.ledger.account(req.pool, req.project), tag);
      pool.queues.set(qkey, q);
      pool.sorted.push(q);
      pool.sortedDirty = true;
    }
    const [k1, k2] = orderKeys(this.policy, req, shape, this.options);
    const e: QueueEntry = {
      req,
      shape,
      rank: PRIORITY_RANK[req.priority],
      k1,
      k2,
      queue: q,
      stamp: 0,
      own: null,
      placedStamp: 0,
      cached: null,
      cachedVerdict: null,
    };
    this.pending.set(req.id, e);
    return e;
  }

  addRunning(w: RunningWorkload): void {
    if (this.pending.has(w.id) || this.running.has(w.id)) throw new Error(`workload "${w.id}" is already known`);
    const shape = this.shapeFor(w);
    const pool = this.pool(w.pool);
    pool.version++;
    pool.runningVersion++;
    const rec: RunningRec = {
      w,
      pool,
      account: this.ledger.account(w.pool, w.project),
      shape,
      rank: PRIORITY_RANK[w.priority],
      nodes: [],
      masks: [],
      end: w.terminating ? Number.NEGATIVE_INFINITY : w.startedAt + w.maxRuntimeS,
      victimStamp: 0,
    };
    this.bindGpus(rec);
    rec.account.used += shape.charge;
    rec.account.base += shape.charge;
    indexRunning(pool, rec);
    this.running.set(w.id, rec);
  }

  /** Maps the placement onto node indexes and takes its GPUs (whole nodes for exclusive work). */
  private bindGpus(rec: RunningRec): void {
    rec.nodes = [];
    rec.masks = [];
    for (const a of rec.w.placement.nodes) {
      const i = this.topo.byName.get(a.node);
      if (i === undefined) continue;
      let mask = 0;
      if (rec.shape.exclusive) mask = fullMask(this.topo.gpus[i]);
      else for (const g of a.gpuIndexes) if (g >= 0 && g < this.topo.gpus[i]) mask |= 1 << g;
      mask >>>= 0;
      rec.nodes.push(i);
      rec.masks.push(mask);
      this.cap.allocate(i, mask);
    }
  }

  /** Moves a pending workload to running (or adds it when it was not pending). */
  start(w: RunningWorkload): void {
    this.removePending(w.id);
    this.addRunning(w);
  }

  /** Finish, cancel or preemption: forgets the workload and frees what it held. */
  remove(id: string): boolean {
    return this.removePending(id) || this.removeRunning(id);
  }

  private removePending(id: string): boolean {
    const e = this.pending.get(id);
    if (!e) return false;
    this.pending.delete(id);
    e.queue.remove(e);
    this.pool(e.req.pool).version++;
    return true;
  }

  private removeRunning(id: string): boolean {
    const rec = this.running.get(id);
    if (!rec) return false;
    this.running.delete(id);
    rec.pool.version++;
    rec.pool.runningVersion++;
    for (let k = 0; k < rec.nodes.length; k++) this.cap.release(rec.nodes[k], rec.masks[k]);
    rec.account.used -= rec.shape.charge;
    rec.account.base -= rec.shape.charge;
    unindexRunning(rec.pool, rec);
    return true;
  }

  setUsage(usage: Readonly<Record<string, number>>): void {
    if (usage !== this.usage) this.inputs++;
    this.usage = usage;
  }

  /** Labels or the schedulable flag of one node; anything else rebuilds the fleet. */
  updateNode(node: SchedNode): void {
    if (!this.topo.replaceNode(node)) {
      const nodes = this.topo.nodes.filter((n) => n.name !== node.name);
      nodes.push(node);
      this.setNodes(nodes);
      return;
    }
    this.cap.setSchedulable(this.topo.byName.get(node.name) as number, node.schedulable);
    for (const p of this.pools.values()) {
      p.staticVerdicts.clear();
      p.version++;
      p.runningVersion++;
    }
  }

  setNodes(nodes: readonly SchedNode[]): void {
    this.topo = new Topology(nodes);
    this.rebuild();
  }

  setQuotas(quotas: readonly PoolQuota[]): void {
    this.quotas = quotas;
    this.rebuild();
  }

  setPolicy(policy: PolicyName): void {
    this.policy = policy;
    this.rebuild();
  }

  setOptions(options: ScheduleOptions | undefined): void {
    this.rawOptions = options;
    this.options = resolveOptions(options);
    this.rebuild();
  }

  /** Re-derives every index from the workloads (rare events: fleet, quota, policy changes). */
  private rebuild(): void {
    this.inputs++;
    const running = [...this.running.values()].map((r) => r.w);
    const pending = [...this.pending.values()].map((e) => e.req);
    this.cap = Capacity.empty(this.topo);
    this.ledger = new QuotaLedger(this.quotas);
    this.pools.clear();
    this.running.clear();
    this.pending.clear();
    for (const r of running) this.addRunning(r);
    this.submitMany(pending);
  }

  /** The equivalent snapshot: schedule(toSnapshot(now)) decides what a cycle at `now` decides. */
  toSnapshot(now: number): Snapshot {
    return {
      now,
      nodes: [...this.topo.nodes],
      quotas: this.quotas,
      running: [...this.running.values()].map((r) => r.w),
      pending: [...this.pending.values()].map((e) => e.req),
      usage: this.usage,
      policy: this.policy,
      ...(this.rawOptions ? { options: this.rawOptions } : {}),
    };
  }
}

/** The pool's queues in key order: the order of its workloads in the decisions' `pending`. */
export function sortedQueues(pool: PoolState): readonly ShapeQueue[] {
  if (pool.sortedDirty) {
    pool.sorted.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    pool.sortedDirty = false;
  }
  return pool.sorted;
}

export { drainCandidates, olderFirst, runningByEnd } from './running-order.js';
