// The literature baselines' building blocks: Slurm's multifactor priority and Tiresias' LAS queues.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeNodes, request } from './fixtures.js';
import { multifactorPriority } from './multifactor.js';
import { DEFAULT_OPTIONS } from './options.js';
import { schedule } from './schedule.js';
import { lasLevel, lasPromoted, tiresiasAttained } from './tiresias.js';
import type { RunningWorkload } from './types.js';

describe('slurm-multifactor priority', () => {
  it('is the weighted sum of the normalised factors', () => {
    // Half of PriorityMaxAge (3.5 of 7 days), fair share 0.5, 8 of 64 GPUs.
    assert.equal(multifactorPriority(3.5 * 86_400, 0.5, 8, 64, DEFAULT_OPTIONS), 500 + 5000 + 125);
    // Age saturates at PriorityMaxAge; size at the whole pool.
    assert.equal(multifactorPriority(30 * 86_400, 1, 128, 64, DEFAULT_OPTIONS), 1000 + 10_000 + 1000);
  });

  it('ranks the project with less recent usage first in a cycle', () => {
    const nodes = makeNodes({ pods: 1, leavesPerPod: 1, nodesPerLeaf: 1 });
    const pending = [
      request('heavy-old', { project: 'heavy', submittedAt: 0 }),
      request('light-new', { project: 'light', submittedAt: 3600 }),
    ];
    const d = schedule({
      now: 7200,
      nodes,
      quotas: [],
      running: [],
      pending,
      usage: { heavy: 1e6, light: 10 },
      policy: 'slurm-multifactor',
    });
    assert.deepEqual(
      d.place.map((p) => p.workloadId),
      ['light-new'],
    );
  });
});

describe('tiresias-las queues', () => {
  const opts = DEFAULT_OPTIONS;
  it('demotes at 3,250 GPU-seconds, counting GPUs and time', () => {
    assert.equal(lasLevel(3249, opts.lasThresholdsGpuS), 0);
    assert.equal(lasLevel(3250, opts.lasThresholdsGpuS), 1);
    const w = {
      ...request('w', { gpusPerNode: 8, submittedAt: 0 }),
      startedAt: 100,
      placement: { pod: 'p', nodes: [], leaves: [] },
      borrowed: false,
    } as RunningWorkload;
    assert.equal(tiresiasAttained(w, 500, opts), 3200);
    assert.equal(tiresiasAttained({ ...w, attainedGpuS: 100 }, 500, opts), 3300);
  });

  it('promotes after STARVELIMIT in a lower queue, and restarts the count for that run', () => {
    const req = request('p', { submittedAt: 0, attainedGpuS: 5000 });
    assert.equal(lasPromoted(req, 4 * 3600 - 1, opts), false);
    assert.equal(lasPromoted(req, 4 * 3600, opts), true);
    assert.equal(lasPromoted({ ...req, attainedGpuS: 0 }, 10 * 3600, opts), false, 'Q0 needs no promotion');
    const w = {
      ...req,
      startedAt: 4 * 3600,
      placement: { pod: 'p', nodes: [], leaves: [] },
      borrowed: false,
    } as RunningWorkload;
    assert.equal(tiresiasAttained(w, 4 * 3600 + 10, opts), 10 * req.nodes * req.gpusPerNode);
  });
});
