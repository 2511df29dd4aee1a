// Small hand-made traces with known answers, through the real scheduler core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyName, SchedNode } from '../scheduler/types.js';
import { type SimJob, simulate } from './engine.js';
import { generateTrace } from './generator.js';
import { realCore } from './real-core.js';
import { runSimulation } from './simulation.js';

const HOUR = 3600;

function fleet(n: number): SchedNode[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `n${i}`,
    pool: 'b200',
    gpuModel: 'B200',
    pod: `su${Math.floor(i / 8)}`,
    rack: `r${Math.floor(i / 4)}`,
    leaf: `leaf${Math.floor(i / 4)}`,
    spine: 's1',
    gpus: 8,
    labels: {},
    schedulable: true,
  }));
}

function job(id: string, submitS: number, durationS: number, gpus: number, maxRuntimeS = durationS): SimJob {
  const nodes = gpus > 8 ? gpus / 8 : 1;
  return {
    id,
    submitS,
    durationS,
    maxRuntimeS,
    nodes,
    gpusPerNode: gpus / nodes,
    project: 'a',
    pool: 'b200',
    priority: 'normal',
  };
}

const run = (jobs: SimJob[], policy: PolicyName, nodes = fleet(2), snapshot = false) =>
  simulate({ jobs, nodes, quotas: [], policy, driver: realCore({ snapshot }) });
const times = (r: ReturnType<typeof run>, jobs: SimJob[]) =>
  r.outcomes.map((o, i) => ({ jct: o.endS - jobs[i].submitS, queue: o.firstStartS - jobs[i].submitS }));

describe('simulator scenarios on the real core', () => {
  it('fifo: 3 jobs on a 2-node fleet, exact JCTs and queueing delays', () => {
    const jobs = [job('A', 0, 100, 8), job('B', 10, 50, 8), job('C', 20, 30, 16)];
    assert.deepEqual(times(run(jobs, 'fifo'), jobs), [
      { jct: 100, queue: 0 },
      { jct: 50, queue: 0 },
      { jct: 110, queue: 80 },
    ]);
  });

  it('fifo-backfill lets a short job jump the blocked gang; fifo does not', () => {
    // A holds one node for 4 h; B needs both nodes; C (30 min, declared 1 h) fits beside A and ends before A.
    const jobs = [job('A', 0, 4 * HOUR, 8), job('B', 1, HOUR, 16), job('C', 2, HOUR / 2, 8, HOUR)];
    const fifo = times(run(jobs, 'fifo'), jobs);
    const bf = times(run(jobs, 'fifo-backfill'), jobs);
    assert.deepEqual(fifo[1], { jct: 5 * HOUR - 1, queue: 4 * HOUR - 1 });
    assert.equal(fifo[2].queue, 5 * HOUR - 2);
    assert.deepEqual(bf[2], { jct: HOUR / 2, queue: 0 });
    assert.deepEqual(bf[1], fifo[1], 'the reserved job is not delayed');
  });

  it('backfill does not let a job through that would delay the reservation', () => {
    const jobs = [job('A', 0, 4 * HOUR, 8), job('B', 1, HOUR, 16), job('C', 2, 5 * HOUR, 8, 12 * HOUR)];
    const bf = times(run(jobs, 'fifo-backfill'), jobs);
    assert.equal(bf[1].queue, 4 * HOUR - 1);
    assert.equal(bf[2].queue, 5 * HOUR - 2);
  });

  it('srtf-oracle runs the truly shortest first', () => {
    const jobs = [job('A', 0, 100, 8), job('long', 1, 1000, 8, 3600), job('short', 2, 10, 8, 3600)];
    const r = run(jobs, 'srtf-oracle', fleet(1));
    assert.equal(r.outcomes[2].firstStartS, 100);
    assert.equal(r.outcomes[1].firstStartS, 110);
  });

  it('the incremental core decides what schedule(snapshot) decides, cycle after cycle', () => {
    const trace = generateTrace({ seed: 11, jobs: 250, projects: 4, spanS: 2 * 86400 });
    const nodes = fleet(16);
    for (const policy of ['fabrik', 'fifo-backfill', 'slurm-multifactor', 'tiresias-las'] as const) {
      const a = runSimulation({
        traceName: 't',
        jobs: trace,
        nodes,
        policies: [policy],
        load: 0.95,
        driver: realCore(),
      });
      const b = runSimulation({
        traceName: 't',
        jobs: trace,
        nodes,
        policies: [policy],
        load: 0.95,
        driver: realCore({ snapshot: true }),
      });
      const strip = (m: NonNullable<(typeof a.policies)[typeof policy]>) => ({
        ...m,
        wallS: 0,
        simHoursPerSec: 0,
        jobsPerSec: 0,
      });
      assert.deepEqual(strip(a.policies[policy]!), strip(b.policies[policy]!));
      assert.ok(a.policies[policy]!.avgQueueS > 0, 'the load makes jobs queue');
    }
  });

  it('reports leaf switches for multi-node jobs', () => {
    const jobs = [job('G', 0, 100, 32)];
    const r = run(jobs, 'fabrik', fleet(8));
    assert.deepEqual(r.outcomes[0].leaves, [1]);
  });
});
