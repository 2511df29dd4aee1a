// Seeded random scheduler states for property tests and benchmarks: small fleets with odd
// shapes, quotas or none, running work (placed by the core itself, so it is valid), and a
// mixed queue. Same seed, same snapshot.
import { makeNodes } from './fixtures.js';
import { schedule } from './schedule.js';
import {
  POLICIES,
  PRIORITY_CLASSES,
  type PolicyName,
  type PoolQuota,
  type RunningWorkload,
  type SchedNode,
  type Snapshot,
  type WorkloadRequest,
} from './types.js';
import { type Rng, seededRandom as rng } from '../domain/random.js';

/** Seeded generator for test data (see src/domain/random.ts). */
export { type Rng, rng };

export const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

export interface RandomOptions {
  /** Whole-node work only, one pod, all nodes schedulable: the guarantee property's world. */
  readonly wholeNodesOnePod?: boolean;
  readonly quotas?: 'none' | 'some' | 'random';
  readonly policy?: PolicyName;
  readonly preemptible?: boolean;
  readonly pending?: number;
}

export function randomFleet(r: Rng, o: RandomOptions = {}): SchedNode[] {
  if (o.wholeNodesOnePod) return makeNodes({ pods: 1, leavesPerPod: int(r, 1, 3), nodesPerLeaf: int(r, 1, 4) });
  const b200 = makeNodes({ pool: 'b200', pods: int(r, 1, 3), leavesPerPod: int(r, 1, 3), nodesPerLeaf: int(r, 1, 3) });
  const rtx =
    r() < 0.5
      ? makeNodes({ pool: 'rtx', pods: int(r, 1, 2), leavesPerPod: 1, nodesPerLeaf: int(r, 1, 3), gpus: 4 })
      : [];
  return [...b200, ...rtx].map((n, k) => ({
    ...n,
    gpus: n.pool === 'b200' && r() < 0.1 ? 4 : n.gpus,
    labels: { zone: k % 3 === 0 ? 'a' : 'b' },
    schedulable: r() > 0.1,
  }));
}

const PROJECTS = ['p0', 'p1', 'p2', 'p3'];

export function randomRequest(r: Rng, id: string, pools: readonly string[], o: RandomOptions = {}): WorkloadRequest {
  const whole = o.wholeNodesOnePod === true;
  const priorities = o.preemptible === false ? PRIORITY_CLASSES.filter((p) => p !== 'preemptible') : PRIORITY_CLASSES;
  const maxRuntimeS = pick(r, [60, 300, 600, 3600, 7200, 36_000]);
  return {
    id,
    project: pick(r, PROJECTS),
    pool: whole ? 'b200' : r() < 0.05 ? 'h100' : pick(r, pools),
    kind: 'training',
    priority: whole ? 'normal' : pick(r, priorities),
    nodes: whole ? int(r, 1, 3) : r() < 0.7 ? 1 : r() < 0.9 ? int(r, 2, 3) : int(r, 4, 6),
    gpusPerNode: whole ? 8 : r() < 0.03 ? 16 : pick(r, [1, 1, 2, 4, 8, 8]),
    maxRuntimeS,
    submittedAt: int(r, 0, 1000),
    oracleRuntimeS: Math.max(1, Math.floor(maxRuntimeS * r())),
    ...(!whole && r() < 0.1 ? { exclusive: true } : {}),
    ...(!whole && r() < 0.1 ? { nodeSelector: { zone: pick(r, ['a', 'b', 'c']) } } : {}),
  };
}

function randomQuotas(r: Rng, nodes: readonly SchedNode[], o: RandomOptions): PoolQuota[] {
  const mode = o.quotas ?? pick(r, ['none', 'some', 'random'] as const);
  if (mode === 'none') return [];
  const out: PoolQuota[] = [];
  for (const pool of [...new Set(nodes.map((n) => n.pool))]) {
    const cap = nodes.filter((n) => n.pool === pool).reduce((s, n) => s + n.gpus, 0);
    let left = cap;
    for (const project of PROJECTS) {
      if (mode === 'some' && r() < 0.25) continue;
      // Guarantees add up to at most the pool (what an operator may promise).
      const guaranteed = Math.min(left, 8 * int(r, 0, Math.ceil(cap / 8 / 2)));
      left -= guaranteed;
      out.push({
        project,
        pool,
        guaranteed,
        limit: guaranteed + 8 * int(r, 0, Math.ceil(cap / 8)),
        weight: int(r, 1, 3),
      });
    }
  }
  return out;
}

/** A consistent snapshot: running work placed by the core on an empty fleet, some of it gone again. */
export function randomSnapshot(seed: number, o: RandomOptions = {}): Snapshot {
  const r = rng(seed);
  const nodes = randomFleet(r, o);
  const pools = [...new Set(nodes.map((n) => n.pool))];
  const quotas = randomQuotas(r, nodes, o);
  const now = 2000;
  const history = Array.from({ length: int(r, 0, 24) }, (_, k) => randomRequest(r, `r${k}`, pools, o));
  const first = schedule({ now: 0, nodes, quotas, running: [], pending: history, policy: 'fifo-backfill' });
  const byId = new Map(history.map((h) => [h.id, h]));
  const running: RunningWorkload[] = [];
  for (const p of first.place) {
    if (r() < 0.2) continue;
    const req = byId.get(p.workloadId) as WorkloadRequest;
    running.push({ ...req, startedAt: int(r, 0, now), placement: p.placement, borrowed: p.borrowed });
  }
  const pending = Array.from({ length: o.pending ?? int(r, 0, 12) }, (_, k) => randomRequest(r, `w${k}`, pools, o));
  const usage: Record<string, number> = {};
  for (const p of PROJECTS) if (r() < 0.7) usage[p] = int(r, 0, 100_000);
  return { now, nodes, quotas, running, pending, usage, policy: o.policy ?? pick(r, POLICIES) };
}
