// EASY backfill (fabrik: for the first K blocked workloads). The first workload of a pool that cannot start gets a reservation: the
// earliest time it fits if every running workload ends at startedAt + maxRuntimeS, and the GPUs
// it would get then. Later workloads may start if they end before that time, or if they use
// none of the reserved GPUs; the reserved GPUs that are free now are "held back" in the cycle's
// capacity so that longer work cannot take them. Backfill therefore never delays the reservation
// (running work may end earlier than its max runtime, which only helps).
import type { Capacity } from './capacity.js';
import { findPlacement, nodeSuits, type Plan } from './placement.js';
import type { QueueEntry } from './queue-order.js';
import type { Shape } from './shape.js';
import type { PoolTopo } from './topology.js';

/** GPUs that come back at `end`. */
export interface Release {
  readonly nodes: readonly number[];
  readonly masks: readonly number[];
  readonly end: number;
}

export interface Reservation {
  readonly holder: QueueEntry;
  readonly start: number;
  /** When the holder would end if it starts at `start`. */
  readonly end: number;
  /** Node → GPUs the holder will get at `start`. */
  readonly reserved: ReadonlyMap<number, number>;
  /** Node → reserved GPUs currently held back from other work. */
  readonly applied: Map<number, number>;
}

/**
 * GPUs coming back, in end order: merges sorted sources lazily (running work is kept sorted by
 * the state, this cycle's placements are few), skipping what `skip` says is gone. A reservation
 * is usually found among the first releases, so the whole timeline is rarely walked.
 */
export class Timeline {
  private readonly at: number[];
  /** The source `earliest()` found, until `next()` moves on (-2: not looked for yet). */
  private best = -2;
  constructor(
    private readonly sources: readonly (readonly Release[])[],
    private readonly skip: (r: Release) => boolean,
  ) {
    this.at = sources.map(() => 0);
  }

  next(): Release | null {
    const best = this.earliest();
    if (best < 0) return null;
    this.best = -2;
    return this.sources[best][this.at[best]++];
  }

  peekEnd(): number {
    const best = this.earliest();
    return best < 0 ? Number.POSITIVE_INFINITY : this.sources[best][this.at[best]].end;
  }

  /** The source whose next unskipped release ends first (-1 when all are exhausted). */
  private earliest(): number {
    if (this.best !== -2) return this.best;
    let best = -1;
    let bestEnd = Number.POSITIVE_INFINITY;
    for (let s = 0; s < this.sources.length; s++) {
      const src = this.sources[s];
      let k = this.at[s];
      while (k < src.length && this.skip(src[k])) k++;
      this.at[s] = k;
      if (k < src.length && (best < 0 || src[k].end < bestEnd)) {
        best = s;
        bestEnd = src[k].end;
      }
    }
    this.best = best;
    return best;
  }
}

/** One scratch capacity per topology, reused by every search (a copy per call was GC churn). */
let scratch: Capacity | null = null;

function scratchCopy(cap: Capacity): Capacity {
  if (scratch && scratch.topo === cap.topo) scratch.copyFrom(cap);
  else scratch = cap.clone();
  return scratch;
}

/**
 * Earliest time the shape fits as the timeline's releases come back, and where. Releases are
 * replayed in order; a placement is only looked for when a node that came back now suits the
 * shape on its own, since a placement that is new at that moment must use such a node.
 * `earlier` reservations (conservative backfill for the first K blocked workloads): their GPUs
 * that are free now are already held back in `cap`; those that come back later stay taken until
 * the reservation's holder would end, so a later reservation never plans on them before then.
 */
export function findReservation(
  cap: Capacity,
  pool: PoolTopo,
  shape: Shape,
  eligible: Uint8Array | null,
  timeline: Timeline,
  now: number,
  earlier: readonly Reservation[] = [],
): { start: number; plan: Plan } | null {
  const sim = scratchCopy(cap);
  // Pods where a node came back and suits the shape, at the instant being replayed.
  const pods: number[] = [];
  const gang = shape.whole && shape.nodes > 1;
  // Node → GPUs promised to earlier reservations, and when each comes back (latest holder end).
  let blocked: Map<number, number> | null = null;
  const comeBack: Release[] = [];
  if (earlier.length > 0) {
    blocked = new Map();
    for (const r of earlier) for (const [i, m] of r.reserved) blocked.set(i, ((blocked.get(i) ?? 0) | m) >>> 0);
    for (const r of earlier) {
      const nodes: number[] = [];
      const masks: number[] = [];
      for (const [i, m0] of r.reserved) {
        let m = m0;
        for (const o of earlier) {
          if (o === r || !(o.end > r.end || (o.end === r.end && earlier.indexOf(o) > earlier.indexOf(r)))) continue;
          m = (m & ~(o.reserved.get(i) ?? 0)) >>> 0;
        }
        if (m !== 0) {
          nodes.push(i);
          masks.push(m);
        }
      }
      if (nodes.length > 0) comeBack.push({ nodes, masks, end: r.end });
    }
    comeBack.sort((a, b) => a.end - b.end);
  }
  let c = 0;
  for (;;) {
    const tEnd = Math.min(timeline.peekEnd(), c < comeBack.length ? comeBack[c].end : Number.POSITIVE_INFINITY);
    if (tEnd === Number.POSITIVE_INFINITY) return null;
    const t = Math.max(now, tEnd);
    pods.length = 0;
    while (Math.max(now, timeline.peekEnd()) === t)
      replay(sim, timeline.next() as Release, blocked, pool, shape, eligible, pods);
    while (c < comeBack.length && Math.max(now, comeBack[c].end) === t) {
      replay(sim, comeBack[c++], null, pool, shape, eligible, pods);
    }
    if (pods.length === 0) continue;
    // A whole-node gang lies in one pod: a placement new at t is in a pod where a node came
    // back, and needs that many whole free nodes there (a counter) before it is worth a search.
    if (gang && !pods.some((p) => sim.podWhole[p] >= shape.nodes)) continue;
    const plan = findPlacement(sim, pool, shape, eligible);
    if (plan) return { start: t, plan };
  }
}

/**
 * Gives back one release's GPUs (less those promised to earlier reservations) and adds to `pods`
 * the pods where a node of the pool that came back now suits the shape.
 */
function replay(
  sim: Capacity,
  r: Release,
  blocked: Map<number, number> | null,
  pool: PoolTopo,
  shape: Shape,
  eligible: Uint8Array | null,
  pods: number[],
): void {
  const topo = sim.topo;
  for (let j = 0; j < r.nodes.length; j++) {
    const i = r.nodes[j];
    const m = blocked ? (r.masks[j] & ~(blocked.get(i) ?? 0)) >>> 0 : r.masks[j];
    if (m === 0) continue;
    sim.release(i, m);
    if (topo.nodePool[i] !== pool.index || !nodeSuits(sim, i, shape, eligible)) continue;
    const pod = topo.nodePod[i];
    if (!pods.includes(pod)) pods.push(pod);
  }
}

export function newReservation(holder: QueueEntry, start: number, plan: Plan): Reservation {
  const reserved = new Map<number, number>();
  for (let k = 0; k < plan.nodes.length; k++) reserved.set(plan.nodes[k], plan.masks[k]);
  return { holder, start, end: start + holder.req.maxRuntimeS, reserved, applied: new Map() };
}

/** Takes the reserved GPUs that are free now out of the cycle's capacity. */
export function holdBack(cap: Capacity, res: Reservation): void {
  for (const [i, mask] of res.reserved) {
    const m = (mask & cap.free[i]) >>> 0;
    if (m === 0) continue;
    cap.allocate(i, m);
    res.applied.set(i, ((res.applied.get(i) ?? 0) | m) >>> 0);
  }
}

/** Gives the held-back GPUs back to the cycle's capacity. */
export function letGo(cap: Capacity, res: Reservation): void {
  for (const [i, m] of res.applied) cap.release(i, m);
  res.applied.clear();
}
