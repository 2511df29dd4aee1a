import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateMixedTrace } from './generator-mixed.js';
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

describe('mixed site-week generator (--shape mixed)', () => {
  it('is deterministic and has the issue-12 shape: two pools, 1 GPU to whole pods, 40 projects', () => {
    assert.deepEqual(generateMixedTrace({ seed: 3, jobs: 400 }), generateMixedTrace({ seed: 3, jobs: 400 }));
    const jobs = generateMixedTrace({ seed: 1, jobs: 20_000, spanS: 2 * 86_400 });
    assert.equal(jobs.length, 20_000);
    const small = jobs.filter((j) => j.gpus <= 8);
    const rtx = small.filter((j) => j.pool === 'rtxpro6000').length / small.length;
    assert.ok(rtx > 0.1 && rtx < 0.14, `share of small jobs on rtxpro6000: ${rtx}`);
    assert.ok(jobs.every((j) => (j.gpus > 8 ? j.pool === 'b200' && j.gpusPerNode === 8 : j.nodes === 1)));
    for (const nodes of [8, 16, 32])
      assert.ok(
        jobs.some((j) => j.nodes === nodes),
        `${nodes}-node gangs`,
      );
    assert.equal(new Set(jobs.map((j) => j.project)).size, 40);
    const d = jobs.map((j) => j.durationS).sort((a, b) => a - b);
    const median = d[Math.floor(d.length / 2)];
    assert.ok(median > 1500 && median < 2200, `median run time ${median}`);
    assert.ok(d[d.length - 1] <= 14 * 86_400);
    // Diurnal: the busiest hour of the day sees well over the quietest.
    const perHour = new Array(24).fill(0);
    for (const j of jobs) perHour[Math.floor((j.submitS % 86_400) / 3600)]++;
    assert.ok(Math.max(...perHour) > 2 * Math.min(...perHour));
    assert.deepEqual(parseTrace(formatTrace(jobs.slice(0, 50))).jobs, jobs.slice(0, 50));
  });
});
