// "Why pending": the verdicts a cycle hands out, each a reason code from the closed set in
// types.ts and a message a person can act on. Static verdicts depend on the fleet only and are
// cached per shape; capacity verdicts say what is missing.
import type { Capacity } from './capacity.js';
import type { QueueEntry, Verdict } from './queue-order.js';
import type { Account } from './quota.js';
import { describeShape, type Shape } from './shape.js';
import type { Topology } from './topology.js';

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** Reasons that hold whatever runs: the pool is gone or down, no node matches, the gang cannot fit in a pod. */
export function staticVerdict(
  topo: Topology,
  poolName: string,
  shape: Shape,
  eligible: Uint8Array | null,
): Verdict | null {
  const pool = topo.poolByName.get(poolName);
  if (!pool) {
    const pools = topo.pools.map((p) => p.name).join(', ') || 'none';
    return { reason: 'NodePoolUnavailable', message: `pool "${poolName}" has no nodes in the fleet; pools: ${pools}` };
  }
  let schedulable = 0;
  let matching = 0;
  let bigEnough = 0;
  let bestPod = 0;
  for (const pod of pool.pods) {
    let inPod = 0;
    for (let i = pod.start; i < pod.end; i++) {
      if (!topo.schedulable[i]) continue;
      schedulable++;
      if (eligible !== null && !eligible[i]) continue;
      matching++;
      if (topo.gpus[i] < shape.gpusPerNode) continue;
      bigEnough++;
      inPod++;
    }
    bestPod = Math.max(bestPod, inPod);
  }
  const nodes = pool.end - pool.start;
  if (schedulable === 0) {
    return {
      reason: 'NodePoolUnavailable',
      message: `all ${plural(nodes, 'node')} of pool ${poolName} are cordoned, draining or down`,
    };
  }
  if (matching === 0) {
    return {
      reason: 'PlacementConstraint',
      message: `no schedulable node of pool ${poolName} has the labels ${shape.selectorKey} (nodeSelector)`,
    };
  }
  if (bigEnough === 0) {
    return {
      reason: 'TopologyUnsatisfiable',
      message: `needs ${shape.gpusPerNode} GPUs per node; schedulable nodes of pool ${poolName} have at most ${pool.nodeGpus}`,
    };
  }
  if (shape.nodes > bestPod) {
    return {
      reason: 'TopologyUnsatisfiable',
      message: `needs ${shape.nodes} nodes in one pod; the largest pod of pool ${poolName} has ${plural(bestPod, 'usable node')}${
        shape.selector ? ' matching the nodeSelector' : ''
      }`,
    };
  }
  return null;
}

/** The fleet could take the shape, the policies do not let it: say which, and how much they leave. */
export function policyVerdict(
  topo: Topology,
  poolName: string,
  shape: Shape,
  eligible: Uint8Array | null,
  /** The allowed nodes are busy while forbidden ones have room. */
  busy = false,
): Verdict {
  const pool = topo.poolByName.get(poolName);
  let allowed = 0;
  let schedulable = 0;
  if (pool) {
    for (let i = pool.start; i < pool.end; i++) {
      if (!topo.schedulable[i]) continue;
      schedulable++;
      if (eligible === null || eligible[i]) allowed++;
    }
  }
  return {
    reason: 'PolicyConstraint',
    message: `policy ${shape.allowed?.policy ?? '(unknown)'} allows ${plural(allowed, 'schedulable node')} of the ${schedulable} in pool ${poolName}; ${
      busy
        ? `none of them has room for ${describeShape(shape)} now; the free capacity is on nodes it forbids`
        : `${describeShape(shape)} does not fit there`
    }`,
  };
}

export function quotaVerdict(a: Account, shape: Shape, enforced: boolean): Verdict {
  if (enforced && !a.hasRow) {
    return {
      reason: 'QuotaLimit',
      message: `project "${a.project}" has no quota in pool ${a.pool} (guaranteed 0, limit 0); ask an operator for one`,
    };
  }
  if (shape.charge > a.limit) {
    return {
      reason: 'QuotaLimit',
      message: `needs ${shape.charge} GPUs but project "${a.project}" may use at most ${a.limit} in pool ${a.pool}; ask an operator to raise the limit`,
    };
  }
  return {
    reason: 'QuotaLimit',
    message: `project "${a.project}" uses ${a.used} of its ${a.limit}-GPU limit in pool ${a.pool} (guaranteed ${a.guaranteed}); needs ${shape.charge} more`,
  };
}

/** What is missing right now, in the shape's own terms. */
export function capacityVerdict(cap: Capacity, poolName: string, shape: Shape): Verdict {
  const topo = cap.topo;
  const pool = topo.poolByName.get(poolName);
  const need = `needs ${describeShape(shape)} of pool ${poolName}`;
  if (!pool) return { reason: 'WaitingForCapacity', message: need };
  // What is missing, not how much is free: free counts move with every start and finish, and at a
  // busy site "at most 1 GPU free on one node" and "at most 0" took turns from cycle to cycle, a
  // new reason for thousands of waiting workloads each cycle (as many row updates in the server,
  // and most of the scheduler's garbage). The counts are in the fleet views and /metrics.
  // "It can use": its selector, policies and the GPUs held back for a reservation count.
  const have = shape.whole
    ? shape.nodes === 1
      ? 'no whole node it can use is free'
      : `no pod it can use has ${shape.nodes} whole nodes free`
    : `no node it can use has ${plural(shape.gpusPerNode, 'GPU')} free`;
  return { reason: 'WaitingForCapacity', message: `${need}; ${have}` };
}

export function reservedVerdict(base: Verdict, start: number): Verdict {
  return {
    reason: base.reason,
    message: `${base.message}; the next GPUs to free up are reserved for it (see estimated start)`,
    estimatedStart: start,
  };
}

export function backfillVerdict(holder: QueueEntry, _start: number, poolName: string): Verdict {
  return {
    reason: 'BackfillReservation',
    message: `would fit now, but its max runtime ends after the time GPUs in pool ${poolName} are reserved for "${holder.req.id}"`,
  };
}

export function preemptingVerdict(poolName: string): Verdict {
  return {
    reason: 'PreemptingVictims',
    message: `fits once preempted or cancelled workloads in pool ${poolName} finish stopping`,
  };
}

export function fifoBlockedVerdict(holder: QueueEntry, poolName: string): Verdict {
  return {
    reason: 'Priority',
    message: `queued behind "${holder.req.id}", first in line in pool ${poolName} (FIFO without backfill)`,
  };
}

export function scanBoundVerdict(poolName: string, limit: number): Verdict {
  return {
    reason: 'Priority',
    message: `higher-ranked workloads are waiting in pool ${poolName}; each cycle examines up to ${limit} blocked workloads per pool`,
  };
}
