// The `tiresias-las` baseline: Tiresias' Discretized Two-Dimensional LAS (Gu et al., "Tiresias: A
// GPU Cluster Manager for Distributed Deep Learning", NSDI '19), information-agnostic: it knows no
// run times, only what each job has received.
//   - Attained service = GPUs × seconds run so far (both dimensions: spatial and temporal).
//   - K priority queues split by thresholds on attained service (default K = 2, one threshold of
//     3,250 GPU-seconds, as in the authors' simulator, SymbioticLab/Tiresias simulator/jobs.py);
//     new work enters the top queue (Q0) and is demoted as it crosses a threshold.
//   - Within a queue FIFO by arrival (a requeued job arrives again when it was preempted).
//   - Work that does not fit is skipped (no reservation, no backfill rule).
//   - A workload in a higher queue preempts running work of lower queues (lowest queue, latest
//     arrival first) when that makes it fit; never work of its own or a higher queue.
//   - Starvation: a workload that ran before, sits in a lower queue and has waited STARVELIMIT
//     (`lasStarveLimitS`, 4 h) since its last run is promoted to Q0 and its attained service for
//     queueing restarts at 0 (the paper's promotion; the authors' simulator sets the limit as
//     PROMOTEKNOB × the job's executed time, a constant keeps the promoted entries of a queue a
//     prefix in arrival order).
// The core is pure: attained service comes from the snapshot. `attainedGpuS` on a request is what
// earlier runs gave it (the simulator's engine keeps it, using `tiresiasAttained` when it preempts);
// for running work the core adds GPUs × (now − startedAt). Demotion and promotion are evaluated at
// each cycle, i.e. at the simulator's events (arrivals, finishes).
import type { Capacity } from './capacity.js';
import { Heap } from './heap.js';
import { type LasOptions, lasLevel, tiresiasAttained } from './las.js';
import { overlaps, usableFor } from './preemption.js';
import { findPlacement, type Plan } from './placement.js';
import type { Shape } from './shape.js';
import type { PoolState, RunningRec } from './state.js';
import type { PoolTopo } from './topology.js';

export { lasLevel, lasPromoted, tiresiasAttained } from './las.js';

export interface LasVictims {
  readonly victims: readonly RunningRec[];
  readonly plan: Plan;
}

interface Ranked {
  readonly rec: RunningRec;
  readonly level: number;
}

/** Victim order: lowest queue first, then latest arrival, then id (descending). */
function victimBefore(a: Ranked, b: Ranked): boolean {
  if (a.level !== b.level) return a.level > b.level;
  if (a.rec.w.submittedAt !== b.rec.w.submittedAt) return a.rec.w.submittedAt > b.rec.w.submittedAt;
  return a.rec.w.id > b.rec.w.id;
}

/**
 * Per pool and cycle: running work in victim order (lowest queue first, then latest arrival, then
 * id), produced lazily (a heap, popped into a shared prefix: a claim usually needs a few victims,
 * and sorting thousands of running jobs every cycle was most of the simulator's time), and the
 * claims already found impossible (per shape and queue, until GPUs come back). Victims are
 * released one by one on a copy of the capacity until the claim fits; only those whose GPUs the
 * placement uses are preempted.
 */
export class LasVictimSearch {
  private heap: Heap<Ranked> | null = null;
  /** Popped so far, in victim order. */
  private readonly prefix: Ranked[] = [];
  /** GPUs of running work in queues below each level (index: claim level). */
  private below: number[] = [];
  private readonly failed = new Map<string, number>();

  constructor(
    readonly pool: PoolState,
    readonly stamp: number,
    readonly now: number,
    readonly opts: LasOptions,
  ) {}

  /** The k-th victim in order, or undefined past the end. */
  private at(k: number): Ranked | undefined {
    if (!this.heap) {
      const items: Ranked[] = [];
      const levels = this.opts.lasThresholdsGpuS.length + 1;
      const gpus = new Array<number>(levels).fill(0);
      for (const rec of this.pool.running) {
        if (rec.w.terminating || rec.nodes.length === 0) continue;
        const level = lasLevel(tiresiasAttained(rec.w, this.now, this.opts), this.opts.lasThresholdsGpuS);
        items.push({ rec, level });
        gpus[level] += rec.shape.charge;
      }
      // below[l]: GPUs held in queues l+1 and lower (an upper bound on what a claim of queue l frees).
      this.below = gpus.map((_, l) => gpus.slice(l + 1).reduce((s, x) => s + x, 0));
      this.heap = Heap.from(items, victimBefore);
    }
    while (this.prefix.length <= k) {
      const next = this.heap.pop();
      if (next === undefined) return undefined;
      this.prefix.push(next);
    }
    return this.prefix[k];
  }

  /** Victims that let a claim of queue `level` fit, or null. */
  find(cap: Capacity, topo: PoolTopo, level: number, shape: Shape, eligible: Uint8Array | null): LasVictims | null {
    // Work of the lowest queue has no one below it to take from.
    if (level >= this.opts.lasThresholdsGpuS.length) return null;
    const key = `${shape.key}\u0000${level}`;
    if (this.failed.get(key) === cap.grown) return null;
    const need = shape.nodes * shape.gpusPerNode;
    this.at(0);
    // Cheap bound: free GPUs plus everything of lower queues (this cycle's victims included: looser).
    if (cap.poolFree[topo.index] + this.below[level] < need) {
      this.failed.set(key, cap.grown);
      return null;
    }
    let sim: Capacity | null = null;
    const taken: RunningRec[] = [];
    for (let k = 0; ; k++) {
      const v = this.at(k);
      if (v === undefined || v.level <= level) break;
      const rec = v.rec;
      if (rec.victimStamp === this.stamp) continue;
      if (!sim) sim = cap.scratch('search');
      let usable = false;
      for (let k = 0; k < rec.nodes.length; k++) {
        const i = rec.nodes[k];
        const before = usableFor(sim, i, shape);
        sim.release(i, rec.masks[k]);
        if (!before && usableFor(sim, i, shape)) usable = true;
      }
      taken.push(rec);
      if (!usable || sim.poolFree[topo.index] < need) continue;
      const plan = findPlacement(sim, topo, shape, eligible);
      if (plan) return { victims: taken.filter((t) => overlaps(t, plan)), plan };
    }
    this.failed.set(key, cap.grown);
    return null;
  }
}
