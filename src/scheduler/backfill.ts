// EASY backfill. The first workload of a pool that cannot start gets a reservation: the
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
  /** Node → GPUs the holder will get at `start`. */
  readonly reserved: ReadonlyMap<number, number>;
  /** Node → reserved GPUs currently held back from other work. */
  readonly applied: Map<number, number>;
}

/**
 * Earliest time the shape fits as `releases` (sorted by end) come back, and where. Releases are
 * replayed in order; a placement is only looked for when a node that came back now suits the
 * shape on its own, since a placement that is new at that moment must use such a node.
 */
export function findReservation(
  cap: Capacity,
  pool: PoolTopo,
  shape: Shape,
  eligible: Uint8Array | null,
  releases: readonly Release[],
  now: number,
): { start: number; plan: Plan } | null {
  const sim = cap.clone();
  const topo = cap.topo;
  let k = 0;
  while (k < releases.length) {
    const t = Math.max(now, releases[k].end);
    let touched = false;
    while (k < releases.length && Math.max(now, releases[k].end) === t) {
      const r = releases[k++];
      for (let j = 0; j < r.nodes.length; j++) {
        const i = r.nodes[j];
        sim.release(i, r.masks[j]);
        if (!touched && topo.nodePool[i] === pool.index && nodeSuits(sim, i, shape, eligible)) touched = true;
      }
    }
    if (!touched) continue;
    const plan = findPlacement(sim, pool, shape, eligible);
    if (plan) return { start: t, plan };
  }
  return null;
}

export function newReservation(holder: QueueEntry, start: number, plan: Plan): Reservation {
  const reserved = new Map<number, number>();
  for (let k = 0; k < plan.nodes.length; k++) reserved.set(plan.nodes[k], plan.masks[k]);
  return { holder, start, reserved, applied: new Map() };
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
