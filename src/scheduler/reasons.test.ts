// Scenario tests: one small fleet, one situation per reason code, plus the preemption and
// backfill rules that produce them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeNodes, quota, request, running } from './fixtures.js';
import { schedule } from './schedule.js';
import type { Decisions, PolicyName, PoolQuota, RunningWorkload, SchedNode, WorkloadRequest } from './types.js';

// 2 pods × 2 leaves × 2 nodes × 8 GPUs = 64 GPUs.
const NODES = makeNodes({ pods: 2, leavesPerPod: 2, nodesPerLeaf: 2 });
const names = NODES.map((n) => n.name);

function run(opts: {
  pending: WorkloadRequest[];
  running?: RunningWorkload[];
  quotas?: PoolQuota[];
  policy?: PolicyName;
  nodes?: SchedNode[];
  now?: number;
}): Decisions {
  return schedule({
    now: opts.now ?? 0,
    nodes: opts.nodes ?? NODES,
    quotas: opts.quotas ?? [],
    running: opts.running ?? [],
    pending: opts.pending,
    policy: opts.policy ?? 'fabrik',
  });
}

function pendingOf(d: Decisions, id: string) {
  const p = d.pending.find((x) => x.workloadId === id);
  assert.ok(p, `expected ${id} pending; decisions: ${JSON.stringify(d)}`);
  return p;
}

const placedIds = (d: Decisions) => d.place.map((p) => p.workloadId);

describe('why pending', () => {
  it('QuotaLimit: a project without a quota row in the pool', () => {
    const d = run({ pending: [request('w', { project: 'alpha' })], quotas: [quota('beta', 8, 16)] });
    const p = pendingOf(d, 'w');
    assert.equal(p.reason, 'QuotaLimit');
    assert.match(p.message, /no quota in pool b200/);
  });

  it('QuotaLimit: never above the limit, even with idle GPUs', () => {
    const d = run({
      pending: [request('w', { nodes: 2 })],
      running: [running('r', [names[0]])],
      quotas: [quota('alpha', 8, 16)],
    });
    const p = pendingOf(d, 'w');
    assert.equal(p.reason, 'QuotaLimit');
    assert.match(p.message, /uses 8 of its 16-GPU limit/);
  });

  it('WaitingForCapacity: says what is missing, and when the first blocked workload starts', () => {
    const busy = names.slice(0, 7).map((n, k) => running(`r${k}`, [n], { maxRuntimeS: 100 * (k + 1) }));
    const d = run({ pending: [request('w', { nodes: 2 })], running: busy });
    const p = pendingOf(d, 'w');
    assert.equal(p.reason, 'WaitingForCapacity');
    assert.match(
      p.message,
      /needs 16 GPUs on 2 whole nodes in one pod of pool b200; no pod it can use has 2 whole nodes free/,
    );
    // Nodes 0 and 1 (one leaf) are both back at t=200; node 7's pod would need t=700.
    assert.equal(p.estimatedStart, 200);
  });

  it('TopologyUnsatisfiable: a gang larger than any pod', () => {
    const p = pendingOf(run({ pending: [request('w', { nodes: 5 })] }), 'w');
    assert.equal(p.reason, 'TopologyUnsatisfiable');
    assert.match(p.message, /needs 5 nodes in one pod; the largest pod of pool b200 has 4 usable nodes/);
  });

  it('PlacementConstraint: no schedulable node has the labels', () => {
    const p = pendingOf(run({ pending: [request('w', { nodeSelector: { fabric: 'ethernet' } })] }), 'w');
    assert.equal(p.reason, 'PlacementConstraint');
    assert.match(p.message, /fabric=ethernet/);
  });

  it('NodePoolUnavailable: every node of the pool is cordoned', () => {
    const nodes = NODES.map((n) => ({ ...n, schedulable: false }));
    const p = pendingOf(run({ pending: [request('w')], nodes }), 'w');
    assert.equal(p.reason, 'NodePoolUnavailable');
    const q = pendingOf(run({ pending: [request('v', { pool: 'h100' })] }), 'v');
    assert.equal(q.reason, 'NodePoolUnavailable');
    assert.match(q.message, /pool "h100" has no nodes in the fleet; pools: b200/);
  });

  it('PreemptingVictims: waiting for preempted work to stop', () => {
    const busy = names.map((n, k) => running(`r${k}`, [n], { terminating: k === 0 }));
    const p = pendingOf(run({ pending: [request('w')], running: busy }), 'w');
    assert.equal(p.reason, 'PreemptingVictims');
  });

  it('BackfillReservation: a later workload that would delay the reserved one waits', () => {
    // Free: node 7. Node 6 (same leaf) ends at t=1500. "big" needs 2 nodes: reserved at t=1500 on 6+7.
    // Both policies rank big, long, short (fabrik: 0+120 < 10+1000 < 1100+50).
    const busy = names.slice(0, 7).map((n, k) => running(`r${k}`, [n], { maxRuntimeS: k === 6 ? 1500 : 10_000 }));
    const pending = [
      request('big', { nodes: 2, submittedAt: 0, maxRuntimeS: 60 }),
      request('long', { submittedAt: 10, maxRuntimeS: 1000 }),
      request('short', { submittedAt: 1100, maxRuntimeS: 50 }),
    ];
    for (const policy of ['fifo-backfill', 'fabrik'] as const) {
      const d = run({ pending, running: busy, policy, now: 1200 });
      assert.equal(pendingOf(d, 'big').estimatedStart, 1500, policy);
      assert.equal(pendingOf(d, 'long').reason, 'BackfillReservation', policy);
      assert.deepEqual(placedIds(d), ['short'], policy);
    }
  });

  it('Priority: FIFO without backfill blocks behind the head of the queue', () => {
    const busy = names.slice(0, 7).map((n, k) => running(`r${k}`, [n]));
    const d = run({
      pending: [request('big', { nodes: 2, submittedAt: 0 }), request('small', { gpusPerNode: 1, submittedAt: 1 })],
      running: busy,
      policy: 'fifo',
    });
    assert.equal(pendingOf(d, 'big').reason, 'WaitingForCapacity');
    const p = pendingOf(d, 'small');
    assert.equal(p.reason, 'Priority');
    assert.match(p.message, /queued behind "big"/);
    // The same situation with backfill lets the small one run.
    assert.deepEqual(
      placedIds(
        run({
          pending: [
            request('big', { nodes: 2 }),
            request('small', { gpusPerNode: 1, submittedAt: 1, maxRuntimeS: 60 }),
          ],
          running: busy,
          policy: 'fifo-backfill',
        }),
      ),
      ['small'],
    );
  });

  it('every pending workload gets exactly one decision', () => {
    const pending = Array.from({ length: 30 }, (_, k) =>
      request(`w${k}`, { gpusPerNode: 1 + (k % 8), submittedAt: k }),
    );
    const d = run({ pending });
    const ids = [...d.place.map((p) => p.workloadId), ...d.pending.map((p) => p.workloadId)].sort();
    assert.deepEqual(ids, pending.map((p) => p.id).sort());
  });
});

describe('preemption (fabrik)', () => {
  // beta: guaranteed 32, limit 64, running on all 8 nodes; alpha: guaranteed 32.
  const quotas = [quota('alpha', 32, 64), quota('beta', 32, 64)];
  const betaAll = names.map((n, k) => running(`b${k}`, [n], { project: 'beta', startedAt: k, borrowed: k >= 4 }));

  it('an owner below its guarantee takes borrowed GPUs back in the same cycle, youngest borrower first', () => {
    const d = run({ pending: [request('a1', { project: 'alpha' })], running: betaAll, quotas });
    assert.deepEqual(
      d.preempt.map((p) => p.workloadId),
      ['b7'],
    );
    assert.equal(d.preempt[0].forWorkloadId, 'a1');
    assert.deepEqual(placedIds(d), ['a1']);
    assert.equal(d.place[0].placement.nodes[0].node, names[7]);
    assert.equal(d.place[0].borrowed, false);
  });

  it('reclaims up to the guarantee and no further', () => {
    const pending = Array.from({ length: 6 }, (_, k) => request(`a${k}`, { project: 'alpha', submittedAt: k }));
    const d = run({ pending, running: betaAll, quotas });
    assert.equal(d.preempt.length, 4);
    assert.equal(d.place.length, 4);
    assert.equal(pendingOf(d, 'a4').reason, 'WaitingForCapacity');
  });

  it('preemptible work goes first, then the borrower furthest over its share', () => {
    const q3 = [quota('alpha', 16, 64), quota('beta', 16, 64), quota('gamma', 32, 64)];
    const r = [
      ...names.slice(0, 5).map((n, k) => running(`b${k}`, [n], { project: 'beta', startedAt: 100 + k })),
      running('g0', [names[5]], { project: 'gamma', startedAt: 0 }),
      running('g1', [names[6]], { project: 'gamma', startedAt: 1 }),
      running('p0', [names[7]], { project: 'gamma', startedAt: 0, priority: 'preemptible' }),
    ];
    // gamma holds 24 (under its 32); beta holds 40 (24 over). alpha claims 16 within its guarantee.
    const d = run({ pending: [request('a', { project: 'alpha', nodes: 2 })], running: r, quotas: q3 });
    const victims = d.preempt.map((p) => p.workloadId).sort();
    assert.ok(victims.includes('p0'), JSON.stringify(d.preempt));
    assert.ok(!victims.includes('g0') && !victims.includes('g1'), 'gamma is under its guarantee');
    assert.deepEqual(placedIds(d), ['a']);
  });

  it('never takes from another guarantee to give more than a guarantee', () => {
    const atGuarantee = names.slice(0, 4).map((n, k) => running(`b${k}`, [n], { project: 'beta' }));
    const alphaAt = names.slice(4).map((n, k) => running(`a${k}`, [n], { project: 'alpha' }));
    const d = run({ pending: [request('more', { project: 'alpha' })], running: [...atGuarantee, ...alphaAt], quotas });
    assert.equal(d.preempt.length, 0);
    assert.equal(pendingOf(d, 'more').reason, 'WaitingForCapacity');
  });

  it('preemptible workloads yield to a higher class from anyone', () => {
    const r = names.map((n, k) => running(`p${k}`, [n], { project: 'beta', priority: 'preemptible', startedAt: k }));
    const d = run({ pending: [request('hi', { project: 'gamma', priority: 'high' })], running: r });
    assert.deepEqual(
      d.preempt.map((p) => p.workloadId),
      ['p7'],
    );
    assert.match(d.preempt[0].message, /preemptible/);
    assert.deepEqual(placedIds(d), ['hi']);
  });

  it('baselines never preempt', () => {
    for (const policy of ['fifo', 'fifo-backfill', 'srtf-oracle'] as const) {
      const d = run({ pending: [request('a1', { project: 'alpha' })], running: betaAll, quotas, policy });
      assert.equal(d.preempt.length, 0, policy);
    }
  });
});

describe('ordering', () => {
  it('priority classes: critical > high > normal > preemptible', () => {
    const one = NODES.slice(0, 1);
    const pending = (['preemptible', 'normal', 'critical', 'high'] as const).map((priority, k) =>
      request(priority, { priority, submittedAt: k }),
    );
    const d = run({ pending, nodes: one });
    assert.deepEqual(placedIds(d), ['critical']);
  });

  it('fabrik prefers small and short work; fifo keeps submit order; srtf-oracle uses the true run time', () => {
    const one = NODES.slice(0, 1);
    const pending = [
      request('long', { submittedAt: 0, maxRuntimeS: 20_000, oracleRuntimeS: 100 }),
      request('short', { submittedAt: 5, maxRuntimeS: 600, oracleRuntimeS: 500 }),
    ];
    assert.deepEqual(placedIds(run({ pending, nodes: one, policy: 'fabrik' })), ['short']);
    assert.deepEqual(placedIds(run({ pending, nodes: one, policy: 'fifo' })), ['long']);
    assert.deepEqual(placedIds(run({ pending, nodes: one, policy: 'srtf-oracle' })), ['long']);
  });

  it('aging: work submitted more than the aging horizon later does not pass', () => {
    const one = NODES.slice(0, 1);
    const pending = [
      request('old', { submittedAt: 0, maxRuntimeS: 100_000 }),
      request('new', { submittedAt: 4 * 3600 + 1, maxRuntimeS: 60 }),
    ];
    assert.deepEqual(placedIds(run({ pending, nodes: one, now: 5 * 3600 })), ['old']);
  });

  it('fair share: the borrower with less recent usage goes first', () => {
    const one = NODES.slice(0, 1);
    const quotas = [quota('heavy', 0, 64), quota('light', 0, 64)];
    const pending = [
      request('h', { project: 'heavy', submittedAt: 0 }),
      request('l', { project: 'light', submittedAt: 60 }),
    ];
    const d = schedule({
      now: 100,
      nodes: one,
      quotas,
      running: [],
      pending,
      usage: { heavy: 1e6, light: 10 },
      policy: 'fabrik',
    });
    assert.deepEqual(placedIds(d), ['l']);
  });
});
