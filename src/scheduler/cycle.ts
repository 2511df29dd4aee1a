// One scheduling cycle: reads a SchedulerState, decides, and leaves the state as it was (the
// cycle works on a copy of the free GPUs and restores quota usage). Per pool, in name order:
//   1. merge the pool's (project, shape) queues by policy order (queue-order.ts);
//   2. for each head: fleet reasons (pool, selector, topology) → quota limit → fit now (honouring
//      a backfill reservation) → preemption (fabrik; tiresias-las: lower LAS queues) → blocked: the
//      first blocked workloads get the pool's reservations (fifo-backfill, fabrik,
//      slurm-multifactor within bf_window) or stop the pool (fifo);
//   3. a failed head settles its whole queue when the rest would fail the same way;
//   4. after maxBlockedPerPool blocked heads the pool stops: the rest get a cheap Priority reason.
// Preemption and placement happen in the same cycle: the placement is valid once the preempted
// workloads have stopped, so callers apply `preempt` before `place`.
import {
  findReservation,
  holdBack,
  letGo,
  newReservation,
  type Release,
  type Reservation,
  Timeline,
} from './backfill.js';
import type { Capacity } from './capacity.js';
import { assignPenalties } from './fair-share.js';
import { Heap } from './heap.js';
import { assignFairShare, type MultifactorCycle } from './multifactor.js';
import { findPlacement, type Plan, toPlacement } from './placement.js';
import { type Claim, canPreempt, findVictims, VictimSearch } from './preemption.js';
import { type QueueEntry, queueBefore, refreshKey, type ShapeQueue, type Verdict } from './queue-order.js';
import { type Account, exceedsLimit, withinGuarantee } from './quota.js';
import {
  backfillVerdict,
  capacityVerdict,
  fifoBlockedVerdict,
  preemptingVerdict,
  quotaVerdict,
  reservedVerdict,
  scanBoundVerdict,
  policyVerdict,
  staticVerdict,
} from './reasons.js';
import type { Shape } from './shape.js';
import { type PoolState, type RunningRec, runningByEnd, type SchedulerState, sortedQueues } from './state.js';
import { DrainSearch } from './starvation.js';
import { LasVictimSearch } from './tiresias.js';
import { PendingList, type SegmentBuffer } from './pending-list.js';
import type { PoolTopo } from './topology.js';
import type { Decisions, PendingDecision, PlaceDecision, PreemptDecision } from './types.js';

type Outcome = 'placed' | 'drop' | 'single';

/** Per shape, per pool and cycle: capacity versions at which it was seen not to fit. */
interface Memo {
  noFitOutside: number;
  noFitFull: number;
  fitFullAt: number;
  missing: Verdict | null;
  /** slurm-multifactor: its earliest start lies beyond bf_window (this cycle only makes it later). */
  beyondWindow: boolean;
}

interface PoolCycle {
  readonly pool: PoolState;
  readonly topo: PoolTopo | undefined;
  /** Reservations in the order they were made; `minStart` is the earliest start among them. */
  readonly resv: Reservation[];
  minStart: number;
  readonly maxResv: number;
  readonly victims: VictimSearch;
  /** tiresias-las: running work of lower LAS queues, in victim order. */
  readonly las: LasVictimSearch | null;
  /** fabrik: victims for starved work (the wait bound, starvation.ts). */
  readonly drain: DrainSearch | null;
  /** slurm-multifactor: what ranks the queue heads. */
  readonly mf: MultifactorCycle | undefined;
  blocked: number;
  stop: Verdict | null;
  readonly placed: Release[];
  readonly memo: Map<string, Memo>;
}

// Identifies a cycle in the per-entry marks; never reaches the decisions.
let lastStamp = 0;

export function runCycle(st: SchedulerState, now: number): Decisions {
  return new Cycle(st, now).run();
}

class Cycle {
  private readonly stamp = ++lastStamp;
  private readonly cap: Capacity;
  private readonly place: PlaceDecision[] = [];
  private readonly preempt: PreemptDecision[] = [];
  private readonly usedBefore = new Map<Account, [number, number]>();
  private readonly interned = new Map<Verdict, Verdict>();

  constructor(
    private readonly st: SchedulerState,
    private readonly now: number,
  ) {
    this.cap = st.cap.scratch('cycle');
  }

  run(): Decisions {
    const pools = [...this.st.pools.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    try {
      for (const pool of pools) this.runPool(pool);
    } finally {
      for (const [a, [used, base]] of this.usedBefore) {
        a.used = used;
        a.base = base;
      }
    }
    const pending = this.pendingDecisions(pools);
    // The flat list is made when read (the server reads it; the simulator does not).
    return {
      place: this.place,
      preempt: this.preempt,
      get pending() {
        return pending.list();
      },
    };
  }

  private runPool(pool: PoolState): void {
    const { st, stamp } = this;
    const pc: PoolCycle = {
      pool,
      topo: st.topo.poolByName.get(pool.name),
      resv: [],
      minStart: Number.POSITIVE_INFINITY,
      maxResv:
        st.policy === 'fabrik'
          ? st.options.reservationsPerPool
          : st.policy === 'slurm-multifactor'
            ? st.options.bfReservations
            : 1,
      victims: new VictimSearch(pool, stamp, this.now, st.options.preemptionCooldownS),
      las: st.policy === 'tiresias-las' ? new LasVictimSearch(pool, stamp, this.now, st.options) : null,
      drain:
        st.policy === 'fabrik' && Number.isFinite(st.options.drainAfterS)
          ? new DrainSearch(
              pool,
              stamp,
              this.now,
              st.options.preemptionCooldownS,
              st.options.drainAfterS,
              st.options.drainVictims,
              st.options.drainGraceS,
            )
          : null,
      mf:
        st.policy === 'slurm-multifactor'
          ? { now: this.now, opts: st.options, poolGpus: poolGpus(st, pool) }
          : undefined,
      blocked: 0,
      stop: null,
      placed: [],
      memo: new Map(),
    };
    if (st.policy === 'fabrik') {
      assignPenalties(st.ledger.accounts(pool.name), st.usage, st.options.fairShareHorizonS, st.ledger.enforced);
    }
    if (st.policy === 'slurm-multifactor') assignFairShare(st.ledger.accounts(pool.name), st.usage, st.ledger.enforced);
    // fabrik: overdue at or before it; tiresias-las: promoted (waited STARVELIMIT) at or before it.
    const cutoff =
      st.policy === 'fabrik'
        ? this.now - st.options.overdueAfterS
        : st.policy === 'tiresias-las'
          ? this.now - st.options.lasStarveLimitS
          : Number.NEGATIVE_INFINITY;
    // fabrik: starved (waited drainAfterS past the key) at or before it: the wait bound.
    const starve = st.policy === 'fabrik' ? this.now - st.options.drainAfterS : Number.NEGATIVE_INFINITY;
    const mf = pc.mf;
    // The heap's array is the pool's, reused from cycle to cycle (no garbage per cycle).
    const live = pool.heapBuf;
    let n = 0;
    // Indexed loops over the queues here and in pendingDecisions: thousands of queues a cycle, and
    // an iterator that is not optimised away allocates a result per step.
    const queues = sortedQueues(pool);
    for (let k = 0; k < queues.length; k++) {
      const q = queues[k];
      if (q.items.length === 0) continue;
      q.cursor = 0;
      q.stamp = stamp;
      q.verdict = null;
      refreshKey(q, st.policy, st.ledger, cutoff, mf, starve);
      live[n++] = q;
    }
    live.length = n;
    const heap = Heap.from(live, queueBefore);
    for (;;) {
      const q = heap.peek();
      if (!q) break;
      if (refreshKey(q, st.policy, st.ledger, cutoff, mf, starve)) {
        heap.fixTop();
        continue;
      }
      heap.pop();
      const e = q.items[q.cursor];
      e.stamp = stamp;
      e.own = null;
      const out = this.examine(pc, q, e);
      if (e.own) e.own = this.intern(e.own);
      q.cursor++;
      if (out !== 'placed') pc.blocked++;
      if (out !== 'drop' && q.cursor < q.items.length) {
        refreshKey(q, st.policy, st.ledger, cutoff, mf, starve);
        heap.push(q);
      }
      if (pc.stop) break;
      if (pc.blocked >= st.options.maxBlockedPerPool) {
        pc.stop = scanBoundVerdict(pool.name, st.options.maxBlockedPerPool);
        break;
      }
    }
    const stop = pc.stop ? this.intern(pc.stop) : null;
    for (let k = 0; k < queues.length; k++) {
      const q = queues[k];
      q.rest = q.verdict ? this.intern(q.verdict) : stop;
    }
    for (const r of pc.resv) letGo(this.cap, r);
  }

  private examine(pc: PoolCycle, q: ShapeQueue, e: QueueEntry): Outcome {
    const { st, now } = this;
    const { shape, account } = q;
    const eligible = st.topo.eligibleFor(shape);
    const fleet = this.staticFor(pc.pool, shape, eligible);
    if (fleet) return this.drop(q, e, fleet);
    const topo = pc.topo as PoolTopo;
    if (exceedsLimit(account, shape.charge)) return this.drop(q, e, quotaVerdict(account, shape, st.ledger.enforced));

    // Work may use reserved GPUs only if it ends before every reservation starts.
    const long = pc.resv.length > 0 && now + e.req.maxRuntimeS > pc.minStart;
    const plan = this.fitNow(pc, topo, shape, eligible, !long);
    if (plan) {
      this.commit(pc, q, e, plan);
      return 'placed';
    }
    if (long && this.fitsFull(pc, topo, shape, eligible)) {
      const first = this.earliest(pc);
      e.own = backfillVerdict(first.holder, first.start, pc.pool.name);
      return 'single';
    }

    // GPUs that victims are still releasing are as good as taken for this claim: wait for them
    // rather than preempting more (or other) work — what the core decided in an earlier cycle holds.
    const waitForTerminating = pc.pool.terminating > 0 && this.fitsAfterTerminating(pc, topo, shape, eligible);
    if (st.policy === 'fabrik' && !waitForTerminating) {
      const within = withinGuarantee(st.ledger, account, shape.charge);
      // The claim is made only when it may preempt (most blocked heads may not).
      if (canPreempt(within, e.rank, pc.pool)) {
        const claim: Claim = { account, rank: e.rank, withinGuarantee: within, shape, eligible };
        const found = findVictims(this.cap, topo, pc.victims, claim);
        if (found) {
          this.evict(pc, e, claim, found.victims);
          this.commit(pc, q, e, found.plan);
          return 'placed';
        }
      }
    }
    // fabrik: starved (tier 0) work drains the GPUs it needs from its own or lower classes.
    if (pc.drain && q.htier === 0 && !waitForTerminating) {
      const found = pc.drain.find(this.cap, topo, e.rank, e.req.submittedAt, shape, eligible);
      if (found) {
        this.evict(pc, e, null, found.victims, 0, st.options.agingHorizonS + st.options.drainAfterS);
        this.commit(pc, q, e, found.plan);
        return 'placed';
      }
    }
    // tiresias-las: the head's LAS queue (after promotion) is q.hk1; lower queues yield to it.
    if (pc.las && !waitForTerminating) {
      const found = pc.las.find(this.cap, topo, q.hk1, shape, eligible);
      if (found) {
        this.evict(pc, e, null, found.victims, q.hk1);
        this.commit(pc, q, e, found.plan);
        return 'placed';
      }
    }

    if (waitForTerminating) {
      if (st.policy === 'fifo') pc.stop = fifoBlockedVerdict(e, pc.pool.name);
      return this.drop(q, e, preemptingVerdict(pc.pool.name));
    }
    const missing = this.missing(pc, shape);
    const backfills = st.policy === 'fabrik' || st.policy === 'fifo-backfill' || st.policy === 'slurm-multifactor';
    if (backfills && pc.resv.length < pc.maxResv && !this.memo(pc, shape).beyondWindow) {
      let r = findReservation(this.cap, topo, shape, eligible, this.timeline(pc), now, pc.resv);
      // Slurm plans no start beyond bf_window: such a job holds no reservation and may be passed.
      // Placements and reservations only push starts later, so the shape stays beyond it this cycle.
      if (r && st.policy === 'slurm-multifactor' && r.start > now + st.options.bfWindowS) {
        this.memo(pc, shape).beyondWindow = true;
        r = null;
      }
      if (r) {
        const res = newReservation(e, r.start, r.plan);
        pc.resv.push(res);
        pc.minStart = Math.min(pc.minStart, res.start);
        holdBack(this.cap, res);
      }
      this.drop(q, e, missing);
      if (r) e.own = reservedVerdict(missing, r.start);
      return 'drop';
    }
    if (st.policy === 'fifo') {
      pc.stop = fifoBlockedVerdict(e, pc.pool.name);
      e.own = missing;
      return 'single';
    }
    return this.drop(q, e, missing);
  }

  /** The head and everything behind it in its queue get the same answer. */
  private drop(q: ShapeQueue, e: QueueEntry, v: Verdict): Outcome {
    q.verdict = v;
    e.own = v;
    return 'drop';
  }

  private staticFor(pool: PoolState, shape: Shape, eligible: Uint8Array | null): Verdict | null {
    let v = pool.staticVerdicts.get(shape.key);
    if (v === undefined) {
      v = staticVerdict(this.st.topo, pool.name, shape, eligible);
      // Fits the fleet but not what policies allow: the policy is the reason, named.
      if (v && shape.allowed) {
        const fleetOnly = staticVerdict(
          this.st.topo,
          pool.name,
          shape,
          this.st.topo.eligible(shape.selector, shape.selectorKey),
        );
        if (!fleetOnly) v = policyVerdict(this.st.topo, pool.name, shape, eligible);
      }
      pool.staticVerdicts.set(shape.key, v);
    }
    return v;
  }

  private memo(pc: PoolCycle, shape: Shape): Memo {
    let m = pc.memo.get(shape.key);
    if (!m) {
      m = { noFitOutside: -1, noFitFull: -1, fitFullAt: -1, missing: null, beyondWindow: false };
      pc.memo.set(shape.key, m);
    }
    return m;
  }

  /**
   * A placement on free GPUs. Without a reservation there is one view. With one, work that ends
   * after the reservation starts sees only GPUs outside it; shorter work may also use reserved
   * GPUs, but takes outside ones first.
   */
  private fitNow(
    pc: PoolCycle,
    topo: PoolTopo,
    shape: Shape,
    eligible: Uint8Array | null,
    mayUseReserved: boolean,
  ): Plan | null {
    const cap = this.cap;
    const m = this.memo(pc, shape);
    if (m.noFitOutside !== cap.grown) {
      const p = findPlacement(cap, topo, shape, eligible);
      if (p) return p;
      m.noFitOutside = cap.grown;
      if (pc.resv.length === 0) m.noFitFull = cap.grown;
    }
    if (pc.resv.length === 0 || !mayUseReserved) return null;
    return this.tryFull(pc.resv, topo, shape, eligible, m);
  }

  private earliest(pc: PoolCycle): Reservation {
    let best = pc.resv[0];
    for (const r of pc.resv) if (r.start < best.start) best = r;
    return best;
  }

  private fitsFull(pc: PoolCycle, topo: PoolTopo, shape: Shape, eligible: Uint8Array | null): boolean {
    const m = this.memo(pc, shape);
    if (m.fitFullAt === this.cap.version) return true;
    return this.tryFull(pc.resv, topo, shape, eligible, m) !== null;
  }

  /** Looks with the held-back GPUs given back, then holds them back again: a net no-op. */
  private tryFull(
    resv: readonly Reservation[],
    topo: PoolTopo,
    shape: Shape,
    eligible: Uint8Array | null,
    m: Memo,
  ): Plan | null {
    const cap = this.cap;
    if (m.noFitFull === cap.grown) return null;
    const version = cap.version;
    const grown = cap.grown;
    for (const r of resv) letGo(cap, r);
    const p = findPlacement(cap, topo, shape, eligible);
    for (const r of resv) holdBack(cap, r);
    cap.version = version;
    cap.grown = grown;
    if (p) m.fitFullAt = version;
    else m.noFitFull = grown;
    return p;
  }

  private commit(pc: PoolCycle, q: ShapeQueue, e: QueueEntry, plan: Plan): void {
    const { cap, st } = this;
    const grown = cap.grown;
    for (let k = 0; k < plan.nodes.length; k++) {
      const i = plan.nodes[k];
      for (const res of pc.resv) {
        const held = res.applied.get(i) ?? 0;
        if ((held & plan.masks[k]) === 0) continue;
        cap.release(i, held & plan.masks[k]);
        const left = (held & ~plan.masks[k]) >>> 0;
        if (left) res.applied.set(i, left);
        else res.applied.delete(i);
      }
      cap.allocate(i, plan.masks[k]);
    }
    cap.grown = grown;
    // Reserved GPUs freed by preemption are held back too.
    for (const res of pc.resv) holdBack(cap, res);
    const a = q.account;
    this.touch(a);
    const borrowed = st.ledger.enforced && a.used + q.shape.charge > a.guaranteed;
    a.used += q.shape.charge;
    e.placedStamp = this.stamp;
    pc.placed.push({ nodes: plan.nodes, masks: plan.masks, end: this.now + e.req.maxRuntimeS });
    this.place.push({ workloadId: e.req.id, placement: toPlacement(st.topo, plan, q.shape), borrowed });
  }

  /** `claim` null: a tiresias-las claim of LAS queue `lasQueue`. */
  private evict(
    pc: PoolCycle,
    e: QueueEntry,
    claim: Claim | null,
    victims: readonly RunningRec[],
    lasQueue = 0,
    boundS = 0,
  ): void {
    pc.victims.invalidate();
    pc.drain?.invalidate();
    for (const v of victims) {
      v.victimStamp = this.stamp;
      for (let k = 0; k < v.nodes.length; k++) this.cap.release(v.nodes[k], v.masks[k]);
      this.touch(v.account);
      const over = v.account.base - v.account.guaranteed;
      v.account.used -= v.shape.charge;
      v.account.base -= v.shape.charge;
      const message =
        boundS > 0
          ? `"${e.req.id}" (priority ${e.req.priority}) has waited past the wait bound (${Math.round(boundS / 3600)} h) in pool ${pc.pool.name}: its GPUs are drained for it`
          : !claim
            ? `in a lower LAS queue than "${e.req.id}" (queue ${lasQueue}) in pool ${pc.pool.name}: least attained service first`
            : v.w.priority === 'preemptible' && claim.rank < v.rank
              ? `preemptible; yields to "${e.req.id}" (priority ${e.req.priority}) in pool ${pc.pool.name}`
              : `project "${v.account.project}" was ${over} GPUs over its guarantee in pool ${pc.pool.name}; project "${claim.account.project}" reclaims its guaranteed GPUs for "${e.req.id}"`;
      this.preempt.push({ workloadId: v.w.id, forWorkloadId: e.req.id, message });
    }
  }

  private touch(a: Account): void {
    if (!this.usedBefore.has(a)) this.usedBefore.set(a, [a.used, a.base]);
  }

  private fitsAfterTerminating(pc: PoolCycle, topo: PoolTopo, shape: Shape, eligible: Uint8Array | null): boolean {
    const sim = this.cap.scratch('search');
    for (const rec of pc.pool.running) {
      if (!rec.w.terminating) continue;
      for (let k = 0; k < rec.nodes.length; k++) sim.release(rec.nodes[k], rec.masks[k]);
    }
    return findPlacement(sim, topo, shape, eligible) !== null;
  }

  private missing(pc: PoolCycle, shape: Shape): Verdict {
    const m = this.memo(pc, shape);
    if (!m.missing) {
      m.missing = capacityVerdict(this.cap, pc.pool.name, shape);
      // Room right now on nodes the policies forbid it: the policy, not the capacity, is why it waits.
      if (shape.allowed && pc.topo) {
        const fleetOnly = this.st.topo.eligible(shape.selector, shape.selectorKey);
        if (findPlacement(this.cap, pc.topo, shape, fleetOnly)) {
          const eligible = this.st.topo.eligibleFor(shape);
          m.missing = policyVerdict(this.st.topo, pc.pool.name, shape, eligible, true);
        }
      }
    }
    return m.missing;
  }

  /**
   * GPUs coming back, by time: running work (kept sorted by end in the state, less this cycle's
   * victims) merged lazily with this cycle's placements; no per-call sort of everything running.
   */
  private timeline(pc: PoolCycle): Timeline {
    const stamp = this.stamp;
    const placed = pc.placed.length > 1 ? [...pc.placed].sort((a, b) => a.end - b.end) : pc.placed;
    return new Timeline([runningByEnd(pc.pool), placed], (r) => (r as RunningRec).victimStamp === stamp);
  }

  /** One object per distinct verdict, so an unchanged answer is recognised by identity. */
  private intern(v: Verdict): Verdict {
    const seen = this.interned.get(v);
    if (seen) return seen;
    const canonical = this.internByContent(v);
    this.interned.set(v, canonical);
    return canonical;
  }

  private internByContent(v: Verdict): Verdict {
    const key = `${v.reason}\u0000${v.estimatedStart ?? ''}\u0000${v.message}`;
    const verdicts = this.st.verdicts;
    let canonical = verdicts.get(key);
    if (!canonical) {
      // Bounded: messages carry counts that drift over a long run.
      if (verdicts.size >= 50_000) verdicts.clear();
      canonical = v;
      verdicts.set(key, v);
    }
    return canonical;
  }

  /**
   * Every workload left pending, grouped by pool (by name) and queue (by project and shape), in
   * queue order. A queue whose workloads and answers did not change since the last cycle hands
   * back the same list, so an unchanged queue costs one comparison, not one per workload.
   */
  private pendingDecisions(pools: readonly PoolState[]): PendingList {
    // The queues' lists go into whichever of the state's two buffers the last cycle did not use,
    // so that a cycle allocates nothing here unless a list changed.
    const st = this.st;
    const last = st.lastPending?.buffer.lists ?? [];
    // Compared with the last cycle's lists until one differs; from there on written into the
    // buffer the last cycle did not use (and only then: an unchanged cycle writes nothing).
    let out: SegmentBuffer | null = null;
    let n = 0;
    let total = 0;
    for (const pool of pools) {
      let fallback: Verdict | null = null;
      const queues = sortedQueues(pool);
      for (let k = 0; k < queues.length; k++) {
        const q = queues[k];
        if (q.items.length === 0) continue;
        let rest = q.stamp === this.stamp ? q.rest : null;
        if (!rest) {
          fallback ??= this.intern(scanBoundVerdict(q.pool, st.options.maxBlockedPerPool));
          rest = fallback;
        }
        const seg = this.segment(q, rest);
        if (!out && seg !== last[n]) out = this.otherBuffer(n);
        if (out) out.lists[n] = seg;
        n++;
        total += seg.length;
      }
    }
    // Nothing changed in any queue: the previous list, as is (no 100,000-entry copy to make and collect).
    if (!out && n === last.length && st.lastPending) return st.lastPending;
    // (Without `out`, queues were emptied at the end: the same lists, fewer of them.)
    out ??= this.otherBuffer(n);
    out.lists.length = n;
    st.lastPending = new PendingList(out, total);
    return st.lastPending;
  }

  /** The buffer the last cycle's list does not use, holding its first `n` per-queue lists. */
  private otherBuffer(n: number): SegmentBuffer {
    const {
      segmentBuffers: [a, b],
      lastPending,
    } = this.st;
    const out = lastPending?.buffer === a ? b : a;
    out.writes++;
    const last = lastPending?.buffer.lists ?? [];
    for (let m = 0; m < n; m++) out.lists[m] = last[m];
    return out;
  }

  private segment(q: ShapeQueue, rest: Verdict): PendingDecision[] {
    const stamp = this.stamp;
    const examined = q.stamp === stamp ? q.cursor : 0;
    const own = q.segOwn;
    let same = q.segVersion === q.version && q.segRest === rest && own.length === examined;
    for (let k = 0; same && k < examined; k++) {
      const e = q.items[k];
      same = own[k] === (e.placedStamp === stamp ? null : e.own);
    }
    if (same) return q.segment;
    const items = q.items;
    const ownNow = new Array<Verdict | null>(examined);
    let placed = 0;
    for (let k = 0; k < examined; k++) {
      const e = items[k];
      ownNow[k] = e.placedStamp === stamp ? null : e.own;
      if (!ownNow[k]) placed++;
    }
    const out = new Array<PendingDecision>(items.length - placed);
    let n = 0;
    for (let k = 0; k < items.length; k++) {
      const e = items[k];
      const v = k < examined ? ownNow[k] : rest;
      if (v) out[n++] = e.cachedVerdict === v ? (e.cached as PendingDecision) : decisionFor(e, v);
    }
    q.segment = out;
    q.segVersion = q.version;
    q.segOwn = ownNow;
    q.segRest = rest;
    return out;
  }
}

function decisionFor(e: QueueEntry, v: Verdict): PendingDecision {
  const c = e.cached;
  e.cachedVerdict = v;
  if (c && c.reason === v.reason && c.message === v.message && c.estimatedStart === v.estimatedStart) return c;
  const d: PendingDecision =
    v.estimatedStart === undefined
      ? { workloadId: e.req.id, reason: v.reason, message: v.message }
      : { workloadId: e.req.id, reason: v.reason, message: v.message, estimatedStart: v.estimatedStart };
  e.cached = d;
  return d;
}

/** GPUs of a pool's nodes (schedulable or not): the job-size factor's denominator. */
function poolGpus(st: SchedulerState, pool: PoolState): number {
  const t = st.topo.poolByName.get(pool.name);
  if (!t) return 0;
  let n = 0;
  for (let i = t.start; i < t.end; i++) n += st.topo.gpus[i];
  return n;
}
