// The shape of a request: everything placement looks at, nothing about who asks or for how long.
// Workloads of one shape fit or fail together, which lets a cycle decide for many at once.
import type { NodeAllowance, WorkloadRequest } from './types.js';

export interface Shape {
  readonly key: string;
  readonly nodes: number;
  readonly gpusPerNode: number;
  /** Needs fully free nodes: exclusive, or as many GPUs as a node of the pool has. */
  readonly whole: boolean;
  readonly exclusive: boolean;
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** Canonical `k=v,k=v` form of the selector ('' for none). */
  readonly selectorKey: string;
  /** The nodes policies allow (undefined: all). */
  readonly allowed: NodeAllowance | undefined;
  /** GPUs counted against quota: whole nodes for exclusive workloads. */
  readonly charge: number;
}

export function selectorKeyOf(selector: Readonly<Record<string, string>> | undefined): string {
  if (!selector) return '';
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

/** `poolNodeGpus` is the GPU count of the pool's largest node (0 when the pool has no nodes). */
export function shapeOf(req: WorkloadRequest, poolNodeGpus: number): Shape {
  const exclusive = req.exclusive === true;
  const whole = exclusive || (poolNodeGpus > 0 && req.gpusPerNode >= poolNodeGpus);
  const perNode = exclusive ? Math.max(poolNodeGpus, req.gpusPerNode) : req.gpusPerNode;
  const selectorKey = selectorKeyOf(req.nodeSelector);
  const hasSelector = selectorKey !== '';
  return {
    key: `${req.nodes}x${req.gpusPerNode}${whole ? 'w' : ''}${exclusive ? 'x' : ''}|${selectorKey}${
      req.allowedNodes ? `|${req.allowedNodes.key}` : ''
    }`,
    nodes: req.nodes,
    gpusPerNode: req.gpusPerNode,
    whole,
    exclusive,
    selector: hasSelector ? req.nodeSelector : undefined,
    selectorKey,
    allowed: req.allowedNodes,
    charge: req.nodes * perNode,
  };
}

export function describeShape(s: Shape): string {
  if (s.nodes === 1) {
    return s.whole ? `${s.gpusPerNode} GPUs on 1 whole node` : `${s.gpusPerNode} GPUs on one node`;
  }
  return s.whole
    ? `${s.nodes * s.gpusPerNode} GPUs on ${s.nodes} whole nodes in one pod`
    : `${s.nodes} nodes × ${s.gpusPerNode} GPUs in one pod`;
}
