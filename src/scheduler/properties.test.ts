// Invariants of the core on random snapshots (see random-snapshot.ts for the worlds).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { resolveOptions } from './options.js';
import { randomSnapshot, rng } from './random-snapshot.js';
import { schedule } from './schedule.js';
import { shapeOf } from './shape.js';
import { lasLevel, lasPromoted, tiresiasAttained } from './tiresias.js';
import type { Decisions, PoolQuota, RunningWorkload, Snapshot, WorkloadRequest } from './types.js';

const RUNS = 150;
const seeds = fc.integer({ min: 1, max: 2 ** 31 - 1 });

/** Running work after applying the decisions at snapshot time. */
function after(s: Snapshot, d: Decisions): RunningWorkload[] {
  const gone = new Set(d.preempt.map((p) => p.workloadId));
  const byId = new Map(s.pending.map((p) => [p.id, p]));
  return [
    ...s.running.filter((r) => !gone.has(r.id)),
    ...d.place.map((p) => ({
      ...(byId.get(p.workloadId) as WorkloadRequest),
      startedAt: s.now,
      placement: p.placement,
      borrowed: p.borrowed,
    })),
  ];
}

function poolGpus(s: Snapshot, pool: string): number {
  return Math.max(0, ...s.nodes.filter((n) => n.pool === pool).map((n) => n.gpus));
}

function usedBy(s: Snapshot, work: readonly RunningWorkload[]): Map<string, number> {
  const used = new Map<string, number>();
  for (const w of work) {
    const k = `${w.pool}/${w.project}`;
    used.set(k, (used.get(k) ?? 0) + shapeOf(w, poolGpus(s, w.pool)).charge);
  }
  return used;
}

function quotaOf(s: Snapshot, pool: string, project: string): PoolQuota | undefined {
  return s.quotas.find((q) => q.pool === pool && q.project === project);
}

describe('scheduler invariants', () => {
  it('never more GPUs on a node than it has; indexes unique; exclusive nodes unshared', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const s = randomSnapshot(seed);
        const d = schedule(s);
        const nodes = new Map(s.nodes.map((n) => [n.name, n]));
        const taken = new Map<string, Set<number>>();
        const exclusive = new Set<string>();
        const holders = new Map<string, number>();
        for (const w of after(s, d)) {
          for (const a of w.placement.nodes) {
            const node = nodes.get(a.node);
            assert.ok(node, `unknown node ${a.node}`);
            const set = taken.get(a.node) ?? new Set<number>();
            for (const g of a.gpuIndexes) {
              assert.ok(g >= 0 && g < node.gpus, `GPU ${g} out of range on ${a.node}`);
              assert.ok(!set.has(g), `GPU ${g} of ${a.node} given twice (seed ${seed})`);
              set.add(g);
            }
            taken.set(a.node, set);
            holders.set(a.node, (holders.get(a.node) ?? 0) + 1);
            if (w.exclusive) exclusive.add(a.node);
          }
        }
        for (const n of exclusive) assert.equal(holders.get(n), 1, `exclusive node ${n} shared (seed ${seed})`);
      }),
      { numRuns: RUNS },
    );
  });

  it('gangs are all or nothing, on schedulable matching nodes of their pool, in one pod', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const s = randomSnapshot(seed);
        const d = schedule(s);
        const nodes = new Map(s.nodes.map((n) => [n.name, n]));
        const byId = new Map(s.pending.map((p) => [p.id, p]));
        for (const p of d.place) {
          const req = byId.get(p.workloadId) as WorkloadRequest;
          assert.equal(p.placement.nodes.length, req.nodes);
          assert.equal(new Set(p.placement.nodes.map((a) => a.node)).size, req.nodes);
          const pods = new Set<string>();
          for (const a of p.placement.nodes) {
            const node = nodes.get(a.node);
            assert.ok(node);
            assert.ok(node.schedulable, `placed on unschedulable ${a.node}`);
            assert.equal(node.pool, req.pool);
            assert.equal(a.gpuIndexes.length, req.gpusPerNode);
            for (const [k, v] of Object.entries(req.nodeSelector ?? {})) assert.equal(node.labels[k], v);
            if (req.gpusPerNode >= poolGpus(s, req.pool)) assert.equal(a.gpuIndexes.length, node.gpus);
            pods.add(node.pod);
          }
          assert.equal(pods.size, 1);
          assert.equal(p.placement.pod, [...pods][0]);
          const leaves = new Set(p.placement.nodes.map((a) => nodes.get(a.node)?.leaf));
          assert.deepEqual(new Set(p.placement.leaves), leaves);
        }
        // Every pending workload is answered exactly once.
        const answered = [...d.place.map((p) => p.workloadId), ...d.pending.map((p) => p.workloadId)].sort();
        assert.deepEqual(answered, s.pending.map((p) => p.id).sort());
      }),
      { numRuns: RUNS },
    );
  });

  it('no project goes above its limit; victims were borrowed or preemptible (tiresias-las: of a lower LAS queue)', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const s = randomSnapshot(seed, { quotas: 'random' });
        const d = schedule(s);
        const before = usedBy(s, s.running);
        const now = usedBy(s, after(s, d));
        for (const p of d.place) {
          const req = s.pending.find((w) => w.id === p.workloadId) as WorkloadRequest;
          const q = quotaOf(s, req.pool, req.project);
          assert.ok(q, 'placed without a quota row');
          assert.ok((now.get(`${req.pool}/${req.project}`) ?? 0) <= q.limit, `above limit (seed ${seed})`);
        }
        const las = resolveOptions(s.options);
        for (const v of d.preempt) {
          const w = s.running.find((r) => r.id === v.workloadId) as RunningWorkload;
          if (s.policy === 'tiresias-las') {
            const claim = s.pending.find((p) => p.id === v.forWorkloadId) as WorkloadRequest;
            const claimQueue = lasPromoted(claim, s.now, las)
              ? 0
              : lasLevel(claim.attainedGpuS ?? 0, las.lasThresholdsGpuS);
            const victimQueue = lasLevel(tiresiasAttained(w, s.now, las), las.lasThresholdsGpuS);
            assert.ok(victimQueue > claimQueue, `victim of LAS queue ${victimQueue} for ${claimQueue} (seed ${seed})`);
            continue;
          }
          assert.ok(s.policy === 'fabrik', `${s.policy} preempted (seed ${seed})`);
          const q = quotaOf(s, w.pool, w.project);
          const was = before.get(`${w.pool}/${w.project}`) ?? 0;
          assert.ok(w.priority === 'preemptible' || was > (q?.guaranteed ?? 0), `took from a guarantee (seed ${seed})`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('a project below its guarantee gets a workload that fits in it within one cycle', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const s0 = randomSnapshot(seed, { wholeNodesOnePod: true, quotas: 'random', policy: 'fabrik', pending: 0 });
        const r = rng(seed ^ 0x5bd1e995);
        const used = usedBy(s0, s0.running);
        // Claims within the guarantee, at most one per project, all at once.
        const claims: WorkloadRequest[] = [];
        for (const q of s0.quotas) {
          const room = q.guaranteed - (used.get(`${q.pool}/${q.project}`) ?? 0);
          const nodes = Math.min(3, Math.floor(room / 8));
          if (nodes < 1) continue;
          claims.push({
            id: `claim-${q.project}`,
            project: q.project,
            pool: q.pool,
            kind: 'training',
            priority: 'normal',
            nodes: 1 + Math.floor(r() * nodes),
            gpusPerNode: 8,
            maxRuntimeS: 3600,
            submittedAt: Math.floor(r() * 1000),
          });
        }
        fc.pre(claims.length > 0);
        const s = { ...s0, pending: claims };
        const d = schedule(s);
        assert.deepEqual(
          d.place.map((p) => p.workloadId).sort(),
          claims.map((c) => c.id).sort(),
          `seed ${seed}: ${JSON.stringify(d.pending)}`,
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('backfill never delays the reserved workload', () => {
    fc.assert(
      fc.property(
        seeds,
        fc.constantFrom('fifo-backfill' as const, 'fabrik' as const, 'slurm-multifactor' as const),
        (seed, policy) => {
          // No quotas and no preemptible work: nothing but backfill competes with the reservation.
          const s = randomSnapshot(seed, { quotas: 'none', policy, preemptible: false, pending: 10 });
          const d = schedule(s);
          const work = after(s, d);
          for (const p of d.pending) {
            if (p.estimatedStart === undefined) continue;
            const holder = s.pending.find((w) => w.id === p.workloadId) as WorkloadRequest;
            const t = p.estimatedStart;
            const still = work.filter((w) => Math.max(w.startedAt + w.maxRuntimeS, s.now) > t);
            const then = schedule({ ...s, now: t, running: still, pending: [holder], policy: 'fifo' });
            assert.deepEqual(
              then.place.map((x) => x.workloadId),
              [holder.id],
              `seed ${seed} ${policy}: ${JSON.stringify(then.pending)}`,
            );
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('same snapshot, same decisions; input order of nodes, quotas and running does not matter', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const s = randomSnapshot(seed);
        const d = schedule(s);
        assert.deepEqual(schedule(s), d);
        const shuffled = {
          ...s,
          nodes: [...s.nodes].reverse(),
          quotas: [...s.quotas].reverse(),
          running: [...s.running].reverse(),
        };
        assert.deepEqual(schedule(shuffled), d);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('scheduler invariants under policy allowances', () => {
  /** Each pending workload gets one of three allowances: all nodes, a random half, or none. */
  function withAllowances(s: Snapshot, seed: number): Snapshot {
    const r = rng(seed ^ 0x5eed);
    const half = s.nodes.filter(() => r() < 0.5).map((n) => n.name);
    const kinds = [
      undefined,
      { key: 'half', nodes: half, policy: 'half @ test' },
      { key: 'none', nodes: [], policy: 'none @ test' },
    ];
    return {
      ...s,
      pending: s.pending.map((p) => {
        const allowedNodes = kinds[Math.floor(r() * kinds.length)];
        return allowedNodes ? { ...p, allowedNodes } : p;
      }),
    };
  }

  it('places work only on nodes its allowance names; what has none waits on PolicyConstraint or earlier reasons', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const s = withAllowances(randomSnapshot(seed), seed);
        const d = schedule(s);
        const byId = new Map(s.pending.map((p) => [p.id, p]));
        for (const p of d.place) {
          const allowed = byId.get(p.workloadId)?.allowedNodes;
          if (!allowed) continue;
          for (const a of p.placement.nodes) assert.ok(allowed.nodes.includes(a.node), `${p.workloadId} on ${a.node}`);
        }
        for (const p of d.pending) {
          if (byId.get(p.workloadId)?.allowedNodes?.key !== 'none') continue;
          assert.notEqual(p.reason, 'WaitingForCapacity', `${p.workloadId}: ${p.message}`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
