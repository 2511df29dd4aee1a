// Engine plumbing, driven by tiny test-only schedulers defined here (not fabrik's policies):
// event order, exact times, preemption and resume, and the engine's guards against a broken core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decisions, PlaceDecision, PreemptDecision, SchedNode, Snapshot } from '../scheduler/types.js';
import { snapshotDriver } from './core-driver.js';
import { type SimJob, simulate } from './engine.js';

function fleet(n: number, gpus = 8): SchedNode[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `n${i}`,
    pool: 'p',
    gpuModel: 'B200',
    pod: 'pod1',
    rack: `r${i}`,
    leaf: `leaf${Math.floor(i / 2)}`,
    spine: 's1',
    gpus,
    labels: {},
    schedulable: true,
  }));
}

function job(id: string, submitS: number, durationS: number, gpus: number, extra: Partial<SimJob> = {}): SimJob {
  const nodes = gpus > 8 ? gpus / 8 : 1;
  return {
    id,
    submitS,
    durationS,
    maxRuntimeS: durationS,
    nodes,
    gpusPerNode: gpus / nodes,
    project: 'a',
    pool: 'p',
    priority: 'normal',
    ...extra,
  };
}

/** Free GPU indexes per node after the running set. */
function freeGpus(s: Snapshot): Map<string, number[]> {
  const free = new Map(s.nodes.map((n) => [n.name, Array.from({ length: n.gpus }, (_, g) => g)]));
  for (const r of s.running) {
    for (const a of r.placement.nodes)
      free.set(
        a.node,
        free.get(a.node)!.filter((g) => !a.gpuIndexes.includes(g)),
      );
  }
  return free;
}

/**
 * TEST-ONLY scheduler: strict FIFO (high priority first), first fit, no quotas. High-priority work may preempt
 * preemptible work (one victim per cycle, placed on the next cycle). Not a fabrik policy.
 */
function testOnlyFifo(s: Snapshot): Decisions {
  const free = freeGpus(s);
  const place: PlaceDecision[] = [];
  const preempt: PreemptDecision[] = [];
  const high = (w: { priority: string }) => (w.priority === 'high' ? 0 : 1);
  const queue = [...s.pending].sort(
    (a, b) => high(a) - high(b) || a.submittedAt - b.submittedAt || (a.id < b.id ? -1 : 1),
  );
  for (const w of queue) {
    const fits = [...free].filter(([, g]) => g.length >= w.gpusPerNode).slice(0, w.nodes);
    if (fits.length === w.nodes) {
      const nodes = fits.map(([name, g]) => ({ node: name, gpuIndexes: g.slice(0, w.gpusPerNode) }));
      for (const a of nodes) free.set(a.node, free.get(a.node)!.slice(w.gpusPerNode));
      const leaves = [...new Set(nodes.map((a) => s.nodes.find((n) => n.name === a.node)!.leaf))];
      place.push({ workloadId: w.id, borrowed: false, placement: { pod: 'pod1', nodes, leaves } });
      continue;
    }
    if (w.priority === 'high') {
      const victim = s.running.find((r) => r.priority === 'preemptible');
      if (victim) preempt.push({ workloadId: victim.id, forWorkloadId: w.id, message: 'test' });
    }
    break;
  }
  return { place, preempt, pending: [] };
}

const run = (jobs: SimJob[], nodes: SchedNode[], schedule = testOnlyFifo, checkpointIntervalS = 0) =>
  simulate({ jobs, nodes, quotas: [], policy: 'fifo', driver: snapshotDriver(schedule), checkpointIntervalS });

describe('engine with a test-only FIFO scheduler', () => {
  it('replays 3 jobs on 2 nodes with exact times', () => {
    const jobs = [job('A', 0, 100, 8), job('B', 10, 50, 8), job('C', 20, 30, 16)];
    const r = run(jobs, fleet(2));
    assert.deepEqual(
      r.outcomes.map((o) => [o.firstStartS, o.endS]),
      [
        [0, 100],
        [10, 60],
        [100, 130],
      ],
    );
    assert.equal(r.endS, 130);
    assert.deepEqual(r.outcomes[2].leaves, [1]);
    // Allocation steps: 8 from 0, 16 from 10, 8 from 60, 16 from 100 (C), 0 at 130.
    assert.deepEqual(r.allocT, [0, 10, 60, 100, 130]);
    assert.deepEqual(r.allocGpus, [8, 16, 8, 16, 0]);
  });

  it('preempts, requeues and resumes with progress kept', () => {
    const jobs = [job('P', 0, 100, 8, { priority: 'preemptible' }), job('H', 40, 30, 8, { priority: 'high' })];
    const r = run(jobs, fleet(1));
    assert.deepEqual(r.outcomes[1], { firstStartS: 40, endS: 70, preemptions: 0, leaves: [1] });
    assert.deepEqual(r.outcomes[0], { firstStartS: 0, endS: 130, preemptions: 1, leaves: [1, 1] });
  });

  it('loses the work since the last checkpoint when checkpoints are periodic', () => {
    const jobs = [job('P', 0, 100, 8, { priority: 'preemptible' }), job('H', 40, 30, 8, { priority: 'high' })];
    const r = run(jobs, fleet(1), testOnlyFifo, 30);
    assert.equal(r.outcomes[0].endS, 70 + 70); // 30 s kept of 40 run
  });

  it('stops when what is queued can never start', () => {
    const r = run([job('A', 0, 10, 8), job('BIG', 5, 10, 24)], fleet(2));
    assert.equal(r.outcomes[0].endS, 10);
    assert.ok(Number.isNaN(r.outcomes[1].firstStartS));
  });

  it('refuses a core that double-books a GPU', () => {
    const greedy = (s: Snapshot): Decisions => ({
      place: s.pending.map((w) => ({
        workloadId: w.id,
        borrowed: false,
        placement: { pod: 'pod1', nodes: [{ node: 'n0', gpuIndexes: [0] }], leaves: ['leaf0'] },
      })),
      preempt: [],
      pending: [],
    });
    assert.throws(() => run([job('A', 0, 10, 1), job('B', 0, 10, 1)], fleet(1), greedy), /busy GPU n0\/0/);
  });

  it('gives the oracle, and only the oracle, the remaining true run time', () => {
    const seen: (number | undefined)[] = [];
    const spy = (s: Snapshot): Decisions => {
      for (const w of s.pending) seen.push(w.oracleRuntimeS);
      return testOnlyFifo(s);
    };
    const jobs = [job('A', 0, 100, 8)];
    simulate({ jobs, nodes: fleet(1), quotas: [], policy: 'srtf-oracle', driver: snapshotDriver(spy) });
    simulate({ jobs, nodes: fleet(1), quotas: [], policy: 'fifo', driver: snapshotDriver(spy) });
    assert.deepEqual(seen, [100, undefined]);
  });

  it('feeds decayed usage per project to the core', () => {
    const usages: Record<string, number>[] = [];
    const spy = (s: Snapshot): Decisions => {
      usages.push({ ...s.usage });
      return testOnlyFifo(s);
    };
    const jobs = [job('A', 0, 3600, 8), job('B', 3600, 10, 8, { project: 'b' })];
    simulate({ jobs, nodes: fleet(1), quotas: [], policy: 'fifo', driver: snapshotDriver(spy), usageHalfLifeS: 3600 });
    // 8 GPUs for one half-life: 8 × 3600 / ln 2 × (1 − 1/2).
    assert.ok(Math.abs(usages[1].a - (8 * 3600 * 0.5) / Math.LN2) < 1e-6);
    assert.equal(usages[1].b, 0);
  });
});
