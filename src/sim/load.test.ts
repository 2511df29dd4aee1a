import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateTrace } from './generator.js';
import { compressToLoad, offeredLoad, replicateToLoad } from './load.js';

describe('offered load', () => {
  it('is work over capacity × span', () => {
    const jobs = [
      { submitS: 0, durationS: 100, gpus: 8 },
      { submitS: 100, durationS: 100, gpus: 8 },
    ];
    assert.equal(offeredLoad(jobs, 16), 1);
    assert.equal(offeredLoad(jobs, 32), 0.5);
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
