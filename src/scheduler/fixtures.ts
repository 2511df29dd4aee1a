// Small builders for fleets and workloads: used by the tests and the benchmark, handy in a REPL.
import type { PoolQuota, RunningWorkload, SchedNode, WorkloadRequest } from './types.js';

export interface FleetShape {
  readonly pool?: string;
  readonly pods: number;
  readonly leavesPerPod: number;
  readonly nodesPerLeaf: number;
  readonly gpus?: number;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Nodes named `<pool>-<pod>-<leaf>-<n>`, all schedulable. */
export function makeNodes(f: FleetShape): SchedNode[] {
  const pool = f.pool ?? 'b200';
  const out: SchedNode[] = [];
  for (let p = 0; p < f.pods; p++) {
    for (let l = 0; l < f.leavesPerPod; l++) {
      for (let n = 0; n < f.nodesPerLeaf; n++) {
        const pad = (x: number, w: number) => String(x).padStart(w, '0');
        out.push({
          name: `${pool}-${pad(p, 2)}-${pad(l, 2)}-${pad(n, 3)}`,
          pool,
          gpuModel: pool.toUpperCase(),
          pod: `${pool}-pod${pad(p, 2)}`,
          rack: `${pool}-rack${pad(p, 2)}-${pad(l, 2)}`,
          leaf: `${pool}-leaf${pad(p, 2)}-${pad(l, 2)}`,
          spine: `${pool}-spine${pad(Math.floor(p / 4), 2)}`,
          gpus: f.gpus ?? 8,
          labels: f.labels ?? {},
          schedulable: true,
        });
      }
    }
  }
  return out;
}

export function request(id: string, over: Partial<WorkloadRequest> = {}): WorkloadRequest {
  return {
    id,
    project: 'alpha',
    pool: 'b200',
    kind: 'training',
    priority: 'normal',
    nodes: 1,
    gpusPerNode: 8,
    maxRuntimeS: 3600,
    submittedAt: 0,
    ...over,
  };
}

/** A running workload on the given nodes; all GPUs of each node unless `gpuIndexes` says otherwise. */
export function running(
  id: string,
  nodes: readonly string[],
  over: Partial<RunningWorkload> & { gpuIndexes?: readonly number[] } = {},
): RunningWorkload {
  const { gpuIndexes, ...rest } = over;
  const req = request(id, { nodes: nodes.length, ...rest });
  const idx = gpuIndexes ?? Array.from({ length: req.gpusPerNode }, (_, k) => k);
  return {
    ...req,
    startedAt: over.startedAt ?? 0,
    placement: {
      pod: over.placement?.pod ?? '',
      nodes: nodes.map((node) => ({ node, gpuIndexes: [...idx] })),
      leaves: [],
    },
    borrowed: over.borrowed ?? false,
    ...(over.terminating ? { terminating: true } : {}),
  };
}

export function quota(project: string, guaranteed: number, limit: number, pool = 'b200', weight?: number): PoolQuota {
  return { project, pool, guaranteed, limit, ...(weight !== undefined ? { weight } : {}) };
}
