// Submit-time checks: a request that can never run is refused with a message a person can act
// on, instead of waiting forever. Checks the fleet as built (all nodes, whatever their state):
// a cordoned pool is a reason to wait, not to refuse.
import { selectorKeyOf } from './shape.js';
import { MAX_GPUS_PER_NODE } from './topology.js';
import { PRIORITY_CLASSES, type SchedNode, WORKLOAD_KINDS, type WorkloadRequest } from './types.js';

export type Feasibility = { ok: true } | { ok: false; code: string; field: string; message: string };

/** A year: anything longer is a typo, not a plan. */
export const MAX_RUNTIME_S = 366 * 24 * 3600;

const fail = (code: string, field: string, message: string): Feasibility => ({ ok: false, code, field, message });
const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

/** Per pool: its nodes, their largest GPU count. Cached per node list (the fleet changes rarely). */
interface FleetIndex {
  readonly pools: readonly string[];
  readonly byPool: ReadonlyMap<string, { nodes: readonly SchedNode[]; biggest: number }>;
  /** `pool|gpusPerNode|selector` → [nodes matching the selector, most usable nodes in one pod]. */
  readonly fits: Map<string, [number, number]>;
}
const indexes = new WeakMap<readonly SchedNode[], FleetIndex>();

function fleetIndex(nodes: readonly SchedNode[]): FleetIndex {
  let ix = indexes.get(nodes);
  if (!ix) {
    const byPool = new Map<string, { nodes: SchedNode[]; biggest: number }>();
    for (const n of nodes) {
      const p = byPool.get(n.pool) ?? { nodes: [], biggest: 0 };
      p.nodes.push(n);
      p.biggest = Math.max(p.biggest, n.gpus);
      byPool.set(n.pool, p);
    }
    ix = { pools: [...byPool.keys()].sort(), byPool, fits: new Map() };
    indexes.set(nodes, ix);
  }
  return ix;
}

export function checkFeasible(req: WorkloadRequest, nodes: readonly SchedNode[]): Feasibility {
  if (typeof req.id !== 'string' || req.id === '') return fail('INVALID_VALUE', 'id', 'id must be a non-empty string');
  if (typeof req.project !== 'string' || req.project === '')
    return fail('INVALID_VALUE', 'project', 'project must be a non-empty string');
  if (!(PRIORITY_CLASSES as readonly string[]).includes(req.priority)) {
    return fail(
      'INVALID_VALUE',
      'priority',
      `unknown priority class "${req.priority}"; use one of ${PRIORITY_CLASSES.join(', ')}`,
    );
  }
  if (!(WORKLOAD_KINDS as readonly string[]).includes(req.kind)) {
    return fail(
      'INVALID_VALUE',
      'kind',
      `unknown workload kind "${req.kind}"; use one of ${WORKLOAD_KINDS.join(', ')}`,
    );
  }
  if (!Number.isInteger(req.nodes) || req.nodes < 1)
    return fail('INVALID_VALUE', 'nodes', `nodes must be a whole number of at least 1 (got ${req.nodes})`);
  if (!Number.isInteger(req.gpusPerNode) || req.gpusPerNode < 1) {
    return fail(
      'INVALID_VALUE',
      'gpusPerNode',
      `gpusPerNode must be a whole number of at least 1 (got ${req.gpusPerNode})`,
    );
  }
  if (!Number.isFinite(req.maxRuntimeS) || req.maxRuntimeS <= 0 || req.maxRuntimeS > MAX_RUNTIME_S) {
    return fail(
      'INVALID_VALUE',
      'maxRuntimeS',
      `maxRuntimeS must be more than 0 and at most ${MAX_RUNTIME_S} s (366 days); got ${req.maxRuntimeS}`,
    );
  }
  if (!Number.isFinite(req.submittedAt))
    return fail('INVALID_VALUE', 'submittedAt', 'submittedAt must be a finite number of seconds');

  const ix = fleetIndex(nodes);
  const pool = ix.byPool.get(req.pool);
  if (!pool) {
    return fail('POOL_NOT_FOUND', 'pool', `pool "${req.pool}" does not exist; pools: ${ix.pools.join(', ') || 'none'}`);
  }
  const inPool = pool.nodes;
  const biggest = pool.biggest;
  if (req.gpusPerNode > Math.min(biggest, MAX_GPUS_PER_NODE)) {
    return fail(
      'TOO_MANY_GPUS_PER_NODE',
      'gpusPerNode',
      `gpusPerNode ${req.gpusPerNode} is more than the ${biggest} GPUs of the largest node in pool "${req.pool}"; ask for ${req.nodes * req.gpusPerNode} GPUs as more nodes with at most ${biggest} each`,
    );
  }
  if (req.nodes > inPool.length) {
    return fail(
      'TOO_MANY_NODES',
      'nodes',
      `nodes ${req.nodes} is more than the ${plural(inPool.length, 'node')} of pool "${req.pool}"`,
    );
  }
  const selector = req.nodeSelector ?? {};
  const keys = Object.keys(selector);
  const fitKey = `${req.pool}|${req.gpusPerNode}|${selectorKeyOf(selector)}`;
  let fit = ix.fits.get(fitKey);
  if (!fit) {
    const matching = inPool.filter((n) => keys.every((k) => n.labels[k] === selector[k]));
    const perPod = new Map<string, number>();
    for (const n of matching) if (n.gpus >= req.gpusPerNode) perPod.set(n.pod, (perPod.get(n.pod) ?? 0) + 1);
    fit = [matching.length, Math.max(0, ...perPod.values())];
    ix.fits.set(fitKey, fit);
  }
  const [matching, bestPod] = fit;
  if (matching === 0) {
    return fail(
      'NO_MATCHING_NODES',
      'nodeSelector',
      `no node of pool "${req.pool}" has the labels ${selectorKeyOf(selector)}`,
    );
  }
  if (req.nodes > bestPod) {
    return fail(
      'TOPOLOGY_UNSATISFIABLE',
      'nodes',
      `a gang of ${req.nodes} nodes must fit in one pod, and the largest pod of pool "${req.pool}" has ${plural(bestPod, 'usable node')}${
        keys.length > 0 ? ' matching the nodeSelector' : ''
      }; ask for at most ${bestPod} nodes`,
    );
  }
  return policyFeasible(req, inPool);
}

/** The same rules as placement: some node the policies allow must take the gang (whatever its state). */
function policyFeasible(req: WorkloadRequest, inPool: readonly SchedNode[]): Feasibility {
  const allowance = req.allowedNodes;
  if (!allowance) return { ok: true };
  const allowed = new Set(allowance.nodes);
  const selector = req.nodeSelector ?? {};
  const perPod = new Map<string, number>();
  let usable = 0;
  for (const n of inPool) {
    if (!allowed.has(n.name) || n.gpus < req.gpusPerNode) continue;
    if (!Object.keys(selector).every((k) => n.labels[k] === selector[k])) continue;
    usable++;
    perPod.set(n.pod, (perPod.get(n.pod) ?? 0) + 1);
  }
  const bestPod = Math.max(0, ...perPod.values());
  if (usable === 0) {
    return fail(
      'POLICY_CONSTRAINT',
      'classification',
      `policy ${allowance.policy} allows none of the ${plural(inPool.length, 'node')} of pool "${req.pool}" for this workload`,
    );
  }
  if (req.nodes > bestPod) {
    return fail(
      'POLICY_CONSTRAINT',
      'nodes',
      `policy ${allowance.policy} allows at most ${plural(bestPod, 'node')} in one pod of pool "${req.pool}" for this workload; it asks for ${req.nodes}`,
    );
  }
  return { ok: true };
}
