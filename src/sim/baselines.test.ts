// The slurm-multifactor and tiresias-las baselines on small hand-made traces with known answers,
// through the real scheduler core (incremental and snapshot drivers alike).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyName, SchedNode } from '../scheduler/types.js';
import { type SimJob, simulate } from './engine.js';
import { realCore } from './real-core.js';

const HOUR = 3600;
const DAY = 86_400;

function fleet(n: number): SchedNode[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `n${i}`,
    pool: 'b200',
    gpuModel: 'B200',
    pod: 'su0',
    rack: 'r0',
    leaf: 'leaf0',
    spine: 's1',
    gpus: 8,
    labels: {},
    schedulable: true,
  }));
}

function job(
  id: string,
  submitS: number,
  durationS: number,
  gpus: number,
  o: { maxRuntimeS?: number; project?: string } = {},
): SimJob {
  const nodes = gpus > 8 ? gpus / 8 : 1;
  return {
    id,
    submitS,
    durationS,
    maxRuntimeS: o.maxRuntimeS ?? durationS,
    nodes,
    gpusPerNode: gpus / nodes,
    project: o.project ?? 'a',
    pool: 'b200',
    priority: 'normal',
  };
}

function run(jobs: SimJob[], policy: PolicyName, nodes: SchedNode[]) {
  const results = [false, true].map((snapshot) =>
    simulate({ jobs, nodes, quotas: [], policy, driver: realCore({ snapshot }) }),
  );
  assert.deepEqual(results[0].outcomes, results[1].outcomes, 'incremental and snapshot cores agree');
  return new Map(jobs.map((j, i) => [j.id, results[0].outcomes[i]]));
}

describe('slurm-multifactor on hand-made traces', () => {
  it('orders by weighted priority: fair share outweighs age (project a used the node, b did not)', () => {
    // A (project a) holds the node for 1 h; B (a) and then C (b) wait. FIFO would run B first;
    // fair share 2^(−U/S): a has all the recent usage (F = 0.5 × 10,000), b none (F = 1 × 10,000).
    const jobs = [job('A', 0, HOUR, 8), job('B', 10, HOUR, 8), job('C', 20, HOUR, 8, { project: 'b' })];
    const o = run(jobs, 'slurm-multifactor', fleet(1));
    assert.equal(o.get('C')!.firstStartS, HOUR);
    assert.equal(o.get('B')!.firstStartS, 2 * HOUR);
    const fifo = run(jobs, 'fifo-backfill', fleet(1));
    assert.equal(fifo.get('B')!.firstStartS, HOUR, 'submit order without the fair-share factor');
  });

  it('orders by job size when age and fair share are equal (PriorityFavorSmall=NO)', () => {
    // Same project, same instant: the 16-GPU job outranks the 8-GPU one by 1,000 × (16 − 8) / 16.
    const jobs = [job('A', 0, HOUR, 16), job('small', 5, HOUR, 8), job('big', 5, HOUR, 16)];
    const o = run(jobs, 'slurm-multifactor', fleet(2));
    assert.equal(o.get('big')!.firstStartS, HOUR);
    assert.equal(o.get('small')!.firstStartS, 2 * HOUR);
  });

  it('backfills a short job that does not delay the top job, and holds back one that would', () => {
    // A holds one node for 4 h; B needs both nodes (reservation at 4 h); C (30 min, declared 1 h)
    // ends before B's start and runs at once beside A; D (declared 12 h) would delay B and waits.
    const jobs = [
      job('A', 0, 4 * HOUR, 8),
      job('B', 1, HOUR, 16),
      job('C', 2, HOUR / 2, 8, { maxRuntimeS: HOUR }),
      job('D', 3, 5 * HOUR, 8, { maxRuntimeS: 12 * HOUR }),
    ];
    const o = run(jobs, 'slurm-multifactor', fleet(2));
    assert.equal(o.get('C')!.firstStartS, 2);
    assert.equal(o.get('B')!.firstStartS, 4 * HOUR, 'the top job starts when A ends');
    assert.equal(o.get('D')!.firstStartS, 5 * HOUR, 'D runs after B');
  });

  it('plans no reservation beyond bf_window (1 day): a long job may pass the top job there', () => {
    // A holds one node for 2 days, so B's earliest start is 2 days away, beyond bf_window: Slurm
    // reserves nothing for it and D (3 days) backfills beside A, delaying B.
    const jobs = [job('A', 0, 2 * DAY, 8), job('B', 1, HOUR, 16), job('D', 2, 3 * DAY, 8)];
    const o = run(jobs, 'slurm-multifactor', fleet(2));
    assert.equal(o.get('D')!.firstStartS, 2);
    assert.equal(o.get('B')!.firstStartS, 2 + 3 * DAY);
    const fifo = run(jobs, 'fifo-backfill', fleet(2));
    assert.equal(fifo.get('B')!.firstStartS, 2 * DAY, 'EASY without a window reserves');
  });

  it('never preempts', () => {
    const jobs = [job('A', 0, 10 * HOUR, 8), job('B', 100, HOUR, 8, { project: 'b' })];
    const o = run(jobs, 'slurm-multifactor', fleet(1));
    assert.equal(o.get('A')!.preemptions, 0);
    assert.equal(o.get('B')!.firstStartS, 10 * HOUR);
  });
});

describe('tiresias-las on hand-made traces', () => {
  it('keeps FIFO below the threshold, demotes past it and preempts for work of the top queue', () => {
    // Threshold 3,250 GPU-s: on 8 GPUs, A is demoted after 406.25 s. At 200 s (1,600 GPU-s) A is
    // still in Q0 and C waits behind it; at B's arrival (1,000 s, 8,000 GPU-s) A is in Q1, so C (Q0,
    // first by arrival) preempts A; B follows C; A resumes last with what it had left.
    const jobs = [job('A', 0, 2 * HOUR, 8), job('C', 200, 100, 8), job('B', 1000, 100, 8)];
    const o = run(jobs, 'tiresias-las', fleet(1));
    assert.equal(o.get('C')!.firstStartS, 1000);
    assert.equal(o.get('C')!.endS, 1100);
    assert.equal(o.get('B')!.firstStartS, 1100);
    assert.equal(o.get('A')!.preemptions, 1);
    assert.equal(o.get('A')!.endS, 1200 + 2 * HOUR - 1000);
  });

  it('counts both dimensions: a 1-GPU job stays in Q0 eight times longer than an 8-GPU one', () => {
    // At 1,000 s the 1-GPU job has 1,000 GPU-s (Q0): the newcomer cannot preempt it and waits.
    const jobs = [job('A', 0, 2 * HOUR, 1), ...Array.from({ length: 7 }, (_, k) => job(`f${k}`, 0, 2 * HOUR, 1))];
    jobs.push(job('N', 1000, 100, 8));
    const o = run(jobs, 'tiresias-las', fleet(1));
    assert.equal(o.get('A')!.preemptions, 0);
    assert.equal(o.get('N')!.firstStartS, 2 * HOUR);
  });

  it('promotes a job that waited STARVELIMIT (4 h) in a lower queue back to Q0', () => {
    // B preempts A at 1,000 s (A in Q1). Both then sit in Q1, so without promotion A would wait for
    // B's 10 h. At C's arrival (16,000 s) A has waited 15,000 s ≥ 4 h since its preemption: it goes
    // to Q0, ahead of C by arrival, and preempts B (Q1); its attained service restarts at 0.
    const jobs = [job('A', 0, 10 * HOUR, 8), job('B', 1000, 10 * HOUR, 8), job('C', 16_000, HOUR, 8)];
    const o = run(jobs, 'tiresias-las', fleet(1));
    assert.equal(o.get('B')!.firstStartS, 1000);
    assert.equal(o.get('B')!.preemptions, 1);
    assert.equal(o.get('A')!.preemptions, 1);
    assert.equal(o.get('A')!.endS, 16_000 + 10 * HOUR - 1000, 'A ran again from 16,000 s');
  });
});
