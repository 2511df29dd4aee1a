// The incremental scheduler decides what the pure core decides on the equivalent snapshot,
// through any sequence of deltas. The model below keeps plain arrays, as a caller would.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IncrementalScheduler } from './incremental.js';
import { int, pick, randomRequest, randomSnapshot, rng } from './random-snapshot.js';
import { schedule } from './schedule.js';
import type { Decisions, RunningWorkload, Snapshot, WorkloadRequest } from './types.js';

interface Model {
  nodes: Snapshot['nodes'];
  quotas: Snapshot['quotas'];
  running: RunningWorkload[];
  pending: WorkloadRequest[];
  usage: Record<string, number>;
}

function applyToModel(m: Model, d: Decisions, now: number): void {
  const gone = new Set(d.preempt.map((p) => p.workloadId));
  m.running = m.running.filter((r) => !gone.has(r.id));
  for (const p of d.place) {
    const req = m.pending.find((w) => w.id === p.workloadId) as WorkloadRequest;
    m.pending = m.pending.filter((w) => w.id !== p.workloadId);
    m.running.push({ ...req, startedAt: now, placement: p.placement, borrowed: p.borrowed });
  }
}

describe('IncrementalScheduler', () => {
  it('equals schedule() on the equivalent snapshot through random deltas', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const s = randomSnapshot(seed);
        const policy = s.policy ?? 'fabrik';
        const r = rng(seed ^ 0x2545f491);
        const pools = [...new Set(s.nodes.map((n) => n.pool))];
        const m: Model = {
          nodes: [...s.nodes],
          quotas: [...s.quotas],
          running: [...s.running],
          pending: [...s.pending],
          usage: { ...s.usage },
        };
        const inc = IncrementalScheduler.fromSnapshot(s);
        let now = s.now;
        let next = 0;
        for (let step = 0; step < 12; step++) {
          const op = int(r, 0, 9);
          if (op <= 2) {
            for (let k = int(r, 1, 4); k > 0; k--) {
              const w = randomRequest(r, `n${next++}`, pools);
              m.pending.push(w);
              inc.submit(w);
            }
          } else if (op === 3 && m.running.length > 0) {
            const w = pick(r, m.running);
            m.running = m.running.filter((x) => x.id !== w.id);
            assert.equal(inc.remove(w.id), true);
          } else if (op === 4 && m.pending.length > 0) {
            const w = pick(r, m.pending);
            m.pending = m.pending.filter((x) => x.id !== w.id);
            assert.equal(inc.remove(w.id), true);
          } else if (op === 5) {
            const i = int(r, 0, m.nodes.length - 1);
            const node = { ...m.nodes[i], schedulable: !m.nodes[i].schedulable };
            m.nodes = m.nodes.map((n, k) => (k === i ? node : n));
            inc.updateNode(node);
          } else if (op === 6 && m.quotas.length > 0) {
            const i = int(r, 0, m.quotas.length - 1);
            const g = 8 * int(r, 0, 4);
            m.quotas = m.quotas.map((q, k) => (k === i ? { ...q, guaranteed: g, limit: g + 8 * int(r, 0, 4) } : q));
            inc.setQuotas(m.quotas);
          } else if (op === 7) {
            m.usage = { ...m.usage, [pick(r, ['p0', 'p1', 'p2', 'p3'])]: int(r, 0, 100_000) };
            inc.setUsage(m.usage);
          } else {
            now += int(r, 0, 600);
            const snap: Snapshot = {
              now,
              nodes: m.nodes,
              quotas: m.quotas,
              running: m.running,
              pending: m.pending,
              usage: m.usage,
              policy,
            };
            const d = inc.cycle(now);
            assert.deepEqual(d, schedule(snap), `seed ${seed}, step ${step}`);
            applyToModel(m, d, now);
            inc.apply(d, now);
          }
        }
        assert.equal(inc.pendingCount, m.pending.length);
        assert.equal(inc.runningCount, m.running.length);
      }),
      { numRuns: 150 },
    );
  });

  it('a cycle changes nothing until the caller reports what happened', () => {
    const s = randomSnapshot(42, { policy: 'fabrik', pending: 12 });
    const inc = IncrementalScheduler.fromSnapshot(s);
    const d1 = inc.cycle(s.now);
    assert.deepEqual(inc.cycle(s.now), d1);
    assert.deepEqual(inc.snapshot(s.now).pending, s.pending);
  });
});
