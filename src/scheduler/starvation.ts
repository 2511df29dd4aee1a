// The wait bound (fabrik): a workload that has waited `drainAfterS` past its aging key (so at
// most agingHorizonS + drainAfterS after submission, 3.5 h by default) is starved. Starved work
// goes first in its class, by key (queue-order.ts: tier 0), and if it does not fit it drains the
// GPUs it needs: it preempts running work of lower classes and of its own class, whatever the
// quotas (`drainVictims: 'any'`, the default, for a constant bound; `borrowed`: of its own class
// only work that borrows above its guarantee), on the nodes of one placement (checkpoint-resume
// in the simulator, as every preemption).
// Why: without it nothing bounded the wait of whole-pod gangs. On a two-pool site week at 90 %
// load (`fabrik sim generate --shape mixed`), 32-node gangs of borrowing projects waited up to
// 73 h: the pool's one reservation moved from one blocked head to another as fair share and the
// guarantee tiers reordered them, each move let backfill refill the pod that had begun to drain,
// and long small jobs scattered over every pod kept any 32 nodes of one pod from coming free
// (FIFO+backfill: 40.5 h). Ranking alone cannot bound this: a reservation waits for the declared
// max runtimes of what holds the pod (up to 14 days). Draining makes the bound a constant.
//
// Victims: not terminating, not picked already this cycle, not work that was starved itself when
// it started (waited drainAfterS or more) and has run less than drainGraceS (two starved workloads
// that need the same GPUs would take them from each other in turn), not work submitted before the claimant that started less than
// preemptionCooldownS ago (younger work that backfilled meanwhile is fair game); lower class
// first, then youngest first (least work lost). They are released one by one on a copy of the
// capacity; a placement is looked for only when a release made a node newly usable for the shape
// and the pool has enough free GPUs (placement depends only on which nodes are usable); then only
// those whose GPUs the placement uses are preempted. A shape and class that found no drain is not
// tried again until GPUs come back (memo per cycle, keyed by the capacity's `grown`), and a pool
// runs at most MAX_DRAIN_SEARCHES searches a cycle (the scheduler bench has most of its 100,000
// pending workloads starved; the rest are tried in later cycles).
import type { Capacity } from './capacity.js';
import { findPlacement } from './placement.js';
import { overlaps, usableFor, type Victims } from './preemption.js';
import type { Shape } from './shape.js';
import { drainCandidates } from './running-order.js';
import type { PoolState, RunningRec } from './state.js';
import type { PoolTopo } from './topology.js';
import type { DrainVictims } from './types.js';

/** Drain searches per pool and cycle; starved heads past it wait for the next cycle. */
export const MAX_DRAIN_SEARCHES = 4;

export class DrainSearch {
  /** (shape, class) → the capacity `grown` and the earliest submit time at which no drain was found. */
  private readonly failed = new Map<string, { grown: number; from: number }>();
  private searches = 0;

  constructor(
    readonly pool: PoolState,
    readonly stamp: number,
    readonly now: number,
    readonly cooldownS: number,
    readonly drainAfterS: number,
    readonly victims: DrainVictims = 'any',
    readonly graceS = 2 * 3600,
  ) {}

  /** After an eviction: earlier failures may no longer hold (victims are skipped by their stamp). */
  invalidate(): void {
    this.failed.clear();
  }

  find(
    cap: Capacity,
    topo: PoolTopo,
    rank: number,
    submittedAt: number,
    shape: Shape,
    eligible: Uint8Array | null,
  ): Victims | null {
    // A later submit time only spares more victims (the cooldown rule), so a failure stands for
    // every claim of the shape and class submitted at or after it, until GPUs come back.
    // Past the search bound first: either way the answer is no, and the key is a string to build.
    if (this.searches >= MAX_DRAIN_SEARCHES) return null;
    const key = `${shape.key}\u0000${rank}`;
    const f = this.failed.get(key);
    if (f && f.grown === cap.grown && submittedAt >= f.from) return null;
    this.searches++;
    const need = shape.nodes * shape.gpusPerNode;
    const sim = cap.scratch('search');
    const usable = (i: number) => (eligible === null || eligible[i] === 1) && usableFor(sim, i, shape);
    const candidates = drainCandidates(this.pool, this.now, this.drainAfterS, this.graceS);
    for (let c = 0; c < candidates.length; c++) {
      const rec = candidates[c];
      // Drain order puts lower classes first: the rest are of higher classes than the claim.
      if (rec.rank < rank) break;
      if (!this.drainable(rec, rank, submittedAt)) continue;
      let newly = false;
      for (let k = 0; k < rec.nodes.length; k++) {
        const i = rec.nodes[k];
        const before = usable(i);
        sim.release(i, rec.masks[k]);
        if (!before && usable(i)) newly = true;
      }
      if (!newly || sim.poolFree[topo.index] < need) continue;
      const plan = findPlacement(sim, topo, shape, eligible);
      if (!plan) continue;
      // The victims: of the work released so far (the same walk again), what the plan uses. Kept
      // no list during the walk: most walks fail, and the list was their garbage.
      const victims: RunningRec[] = [];
      for (let v = 0; v <= c; v++) {
        const w = candidates[v];
        if (this.drainable(w, rank, submittedAt) && overlaps(w, plan)) victims.push(w);
      }
      return { victims, plan };
    }
    this.failed.set(key, {
      grown: cap.grown,
      from: f && f.grown === cap.grown ? Math.min(f.from, submittedAt) : submittedAt,
    });
    return null;
  }

  /** Whether a drain for a claim of class `rank` submitted at `submittedAt` may take `rec` (of class `rank` or lower). */
  private drainable(rec: RunningRec, rank: number, submittedAt: number): boolean {
    if (rec.victimStamp === this.stamp || rec.w.terminating || rec.nodes.length === 0) return false;
    // `borrowed`: guarantees hold, of its own class only borrowed work is drained (lower classes always).
    if (this.victims === 'borrowed' && rec.rank === rank && !rec.w.borrowed) return false;
    // Work that was starved itself when it started is spared for graceS (drainCandidates: else two
    // starved workloads that need the same GPUs take them from each other in turn: the server
    // requeues a victim with its submit time, so it is starved again at once). Older work that
    // started less than the cooldown ago (placed ahead of this claim) is left alone for that long.
    return !(rec.w.submittedAt <= submittedAt && this.now - rec.w.startedAt < this.cooldownS);
  }
}
