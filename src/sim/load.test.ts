import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateTrace } from './generator.js';
import { compressToLoad, offeredLoad, replicateToLoad, workLoad } from './load.js';

describe('offered load', () => {
  it('counts only the work inside the arrival window', () => {
    const jobs = [
      { submitS: 0, durationS: 50, gpus: 8 },
      { submitS: 50, durationS: 1000, gpus: 8 }, // only 50 s of it fall before the last arrival
      { submitS: 100, durationS: 100, gpus: 8 },
    ];
    assert.equal(offeredLoad(jobs, 16), (8 * 50 + 8 * 50) / (16 * 100));
    assert.equal(workLoad(jobs, 16), (8 * 1150) / (16 * 100));
  });

  it('refuses a target compression cannot reach', () => {
    const jobs = generateTrace({ seed: 7, jobs: 100, spanS: 86400 });
    assert.throws(() => compressToLoad(jobs, 8, 1e6), /out of reach by compression/);
  });

  it('compression reaches the target within 2 %', () => {
    const jobs = generateTrace({ seed: 7, jobs: 3000, spanS: 30 * 86400 });
    for (const target of [0.5, 0.85, 0.9, 1.2]) {
      const out = compressToLoad(jobs, 4096, target);
      assert.ok(Math.abs(offeredLoad(out, 4096) / target - 1) < 0.02, `target ${target}`);
      assert.equal(out.length, jobs.length);
      assert.equal(out[0].submitS, jobs[0].submitS);
    }
  });

  it('replication overlays seeded copies and then reaches the target', () => {
    const jobs = generateTrace({ seed: 3, jobs: 500, spanS: 10 * 86400 });
    const base = offeredLoad(jobs, 1024);
    const out = replicateToLoad(jobs, 1024, base * 3, 42);
    assert.equal(out.length, 1500);
    assert.ok(Math.abs(offeredLoad(out, 1024) / (base * 3) - 1) < 0.02);
    assert.deepEqual(replicateToLoad(jobs, 1024, base * 3, 42), out);
    assert.equal(new Set(out.map((j) => j.id)).size, 1500);
  });
});
