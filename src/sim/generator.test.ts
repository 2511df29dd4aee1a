import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateTrace } from './generator.js';
import { formatTrace, parseTrace } from './trace.js';

describe('synthetic trace generator', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    assert.deepEqual(generateTrace({ seed: 5, jobs: 300 }), generateTrace({ seed: 5, jobs: 300 }));
    assert.notDeepEqual(generateTrace({ seed: 5, jobs: 300 }), generateTrace({ seed: 6, jobs: 300 }));
  });

  it('makes the asked number of jobs with valid gangs, heavy tails and uneven projects', () => {
    const jobs = generateTrace({ seed: 1, jobs: 5000, projects: 6 });
    assert.equal(jobs.length, 5000);
    for (const j of jobs) {
      assert.equal(j.gpus, j.nodes * j.gpusPerNode);
      assert.ok(j.gpusPerNode <= 8 && j.durationS > 0);
    }
    const d = jobs.map((j) => j.durationS).sort((a, b) => a - b);
    assert.ok(d[Math.floor(0.9 * d.length)] > 5 * d[Math.floor(0.5 * d.length)], 'p90 far above p50');
    assert.ok(
      jobs.some((j) => j.nodes > 1),
      'some multi-node jobs',
    );
    const counts = new Map<string, number>();
    for (const j of jobs) counts.set(j.project, (counts.get(j.project) ?? 0) + 1);
    assert.equal(counts.size, 6);
    assert.ok(counts.get('proj-1')! > 2 * counts.get('proj-6')!);
  });

  it('writes CSV that the trace parser reads back', () => {
    const jobs = generateTrace({ seed: 2, jobs: 50 });
    assert.deepEqual(parseTrace(formatTrace(jobs)).jobs, jobs);
  });
});
