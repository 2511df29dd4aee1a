// The duel bench (bench/slurm-duel.ts) in its short form on the dev cluster of scripts/slurm-dev:
// the same seeded stream straight to Slurm and through `fabrik server --executor slurm`; both runs
// complete every job and report finite figures, next to the simulator's prediction.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runDuel } from '../../bench/slurm-duel.js';

const conf = process.env.SLURM_CONF;
const skip = !conf && process.env.CI !== 'true' ? 'SLURM_CONF is not set (scripts/slurm-dev up)' : false;
if (skip) console.warn(`\n*** SKIPPING the Slurm duel bench test: ${skip} ***\n`);

const JOBS = 16;

describe('slurm-duel bench, short form', { skip }, () => {
  it('runs the stream on Slurm and through fabrik, every job to its end, and reports', {
    timeout: 600_000,
  }, async () => {
    // Scale 300: the stream's ~40 trace minutes of arrivals replay in about 8 s per side.
    const r = (await runDuel({ jobs: JOBS, scale: 300, seed: 3, slurmConf: conf, uidBase: 265_000 })) as any;
    assert.equal(r.bench, 'slurm-duel');
    assert.equal(r.jobs, JOBS);
    const finite = (side: string, f: any) => {
      for (const k of ['avgQueueS', 'p99QueueS', 'makespanS']) {
        assert.ok(Number.isFinite(f[k]) && f[k] >= 0, `${side}.${k} = ${f[k]}`);
        assert.ok(Number.isFinite(f.real[k]) && f.real[k] >= 0, `${side}.real.${k} = ${f.real[k]}`);
      }
      assert.ok(f.p99QueueS >= f.avgQueueS, `${side}: p99 below the average`);
      assert.ok(f.makespanS > 0, `${side}: makespan`);
    };
    for (const side of ['slurm', 'fabrik']) {
      assert.equal(r[side].completed, JOBS, `${side}: every job ran to its end`);
      finite(side, r[side]);
    }
    assert.equal(r.fabrik.succeeded, JOBS, 'fabrik: every workload succeeded');
    const baselines = Object.keys(r.simulated);
    assert.ok(baselines.includes('fabrik'));
    assert.ok(baselines.includes('slurm-multifactor') || baselines.includes('fifo-backfill'), baselines.join(','));
    for (const [p, f] of Object.entries(r.simulated)) {
      assert.equal((f as any).completed, JOBS, `simulated ${p}`);
      finite(`simulated.${p}`, f);
    }
  });
});
