import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineResult, SimJob } from './engine.js';
import {
  boundedSlowdown,
  computeMetrics,
  jainIndex,
  mean,
  percentile,
  queueCdf,
  resampleSteps,
  stepIntegral,
} from './metrics.js';

const job = (id: string, submitS: number, durationS: number, project: string, nodes = 1): SimJob => ({
  id,
  submitS,
  durationS,
  maxRuntimeS: durationS,
  nodes,
  gpusPerNode: 8,
  project,
  pool: 'p',
  priority: 'normal',
});

describe('metric functions', () => {
  it('mean and nearest-rank percentiles', () => {
    const xs = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    assert.equal(mean(xs), 5.5);
    assert.equal(mean([]), 0);
    assert.equal(percentile(xs, 50), 5);
    assert.equal(percentile(xs, 99), 10);
    assert.equal(percentile(xs, 10), 1);
    assert.equal(percentile(xs, 0), 1);
    assert.equal(percentile([], 50), 0);
  });

  it('bounded slowdown floors the run time at 10 s', () => {
    assert.equal(boundedSlowdown(100, 50), 2);
    assert.equal(boundedSlowdown(20, 1), 2);
  });

  it("Jain's index: 1 for equal shares, 1/n when one takes all", () => {
    assert.equal(jainIndex([3, 3, 3, 3]), 1);
    assert.equal(jainIndex([1, 0, 0, 0]), 0.25);
    assert.equal(jainIndex([1, 2]), 9 / 10);
    assert.equal(jainIndex([]), 1);
  });

  it('integrates and resamples step functions', () => {
    const t = [0, 10, 20];
    const v = [4, 8, 0];
    assert.equal(stepIntegral(t, v, 0, 20), 120);
    assert.equal(stepIntegral(t, v, 5, 15), 60);
    assert.equal(stepIntegral(t, v, 0, 100), 120);
    assert.deepEqual(resampleSteps(t, v, 0, 20, 4), { t: [0, 5, 10, 15], v: [4, 4, 8, 8] });
    assert.deepEqual(resampleSteps(t, v, 0, 20, 1), { t: [0], v: [6] });
  });
});

describe('computeMetrics', () => {
  // A hand-made outcome: 8-GPU capacity... two jobs on a 16-GPU pool.
  const jobs = [job('A', 0, 100, 'x'), job('B', 10, 50, 'y'), job('C', 20, 30, 'y', 2)];
  const r: EngineResult = {
    policy: 'fifo',
    outcomes: [
      { firstStartS: 0, endS: 100, preemptions: 0, leaves: [1] },
      { firstStartS: 10, endS: 60, preemptions: 1, leaves: [1, 1] },
      { firstStartS: 100, endS: 130, preemptions: 0, leaves: [2] },
    ],
    allocT: [0, 10, 60, 100, 130],
    allocGpus: [8, 16, 8, 16, 0],
    capacity: 16,
    startS: 0,
    endS: 130,
    cycles: 5,
    wallMs: 1,
  };
  const m = computeMetrics(jobs, r);

  it('computes JCT, queueing, slowdown and starvation from outcomes', () => {
    assert.equal(m.avgJctS, (100 + 50 + 110) / 3);
    assert.equal(m.p99JctS, 110);
    assert.equal(m.p50JctS, 100);
    assert.equal(m.avgQueueS, 80 / 3);
    assert.equal(m.p99QueueS, 80);
    assert.equal(m.maxQueueS, 80);
    assert.equal(m.avgBoundedSlowdown, (1 + 1 + 110 / 30) / 3);
    assert.equal(m.preemptions, 1);
    assert.deepEqual(m.leafSwitches, { 2: 1 });
    assert.equal(m.finished, 3);
    assert.equal(m.neverStarted, 0);
  });

  it('counts waits after a preemption in the wait (JCT − run time), not in the queueing delay', () => {
    // B starts at once, is preempted, and resumes 40 s later: queueing 0, wait 40.
    const preempted: EngineResult = {
      ...r,
      outcomes: [r.outcomes[0], { firstStartS: 10, endS: 100, preemptions: 1, leaves: [1, 1] }, r.outcomes[2]],
    };
    const w = computeMetrics(jobs, preempted);
    assert.equal(w.avgQueueS, 80 / 3);
    assert.equal(w.avgWaitS, (0 + 40 + 80) / 3);
    assert.equal(w.p99WaitS, 80);
    assert.equal(w.maxWaitS, 80);
  });

  it('measures utilization over the arrival window and fairness over projects', () => {
    // Window 0..20: 8 GPUs for 10 s, 16 for 10 s, of 16 × 20.
    assert.equal(m.utilization, (80 + 160) / 320);
    // x: 1/1 for project x, 1/((1 + 110/30)/2) for y.
    const y = 1 / ((1 + 110 / 30) / 2);
    assert.ok(Math.abs(m.jain - (1 + y) ** 2 / (2 * (1 + y * y))) < 1e-12);
    assert.equal(m.projects.y.jobs, 2);
  });

  it('builds a queueing-delay CDF ending at 1', () => {
    assert.deepEqual(queueCdf(jobs, r), [
      [0, 1 / 3],
      [0, 2 / 3],
      [80, 1],
    ]);
  });
});
