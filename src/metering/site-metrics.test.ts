import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decisions, Snapshot } from '../scheduler/types.js';
import type { Kysely } from 'kysely';
import { Registry } from 'prom-client';
import type { Database } from '../store/schema.js';
import { type LiveAttemptRow, borrowedOf, gpusByProjectPool } from '../store/gpus-in-use.js';
import { SiteMetrics, preemptionsOf, siteFigures } from './site-metrics.js';

const live = (project: string, gpus: number, over: Partial<LiveAttemptRow> = {}): LiveAttemptRow => ({
  project,
  pool: 'b200',
  gpus,
  state: 'running',
  createdAt: '2026-12-01T12:00:00.000Z',
  stoppingSince: '',
  stopReason: '',
  ...over,
});

describe('site metrics', () => {
  it('sums GPUs of live attempts per project and pool; borrowing is use above the guarantee', () => {
    assert.deepEqual(
      gpusByProjectPool([live('b.x', 8), live('a.x', 8), live('a.x', 16, { pool: 'rtx' }), live('a.x', 4)]),
      [
        { project: 'a.x', pool: 'b200', used: 12 },
        { project: 'a.x', pool: 'rtx', used: 16 },
        { project: 'b.x', pool: 'b200', used: 8 },
      ],
    );
    assert.equal(borrowedOf(12, 8), 4);
    assert.equal(borrowedOf(4, 8), 0);
    assert.equal(borrowedOf(4), 4, 'no quota guarantees nothing');
  });

  it('reports the oldest unconfirmed launch and stop as the reconcile lag', () => {
    const now = Date.parse('2026-12-01T12:01:00.000Z');
    const f = siteFigures(
      {
        pending: [{ pool: 'b200', reason: '', n: 2 }],
        running: [],
        live: [
          live('a.x', 8, { state: 'launching', createdAt: '2026-12-01T12:00:30.000Z' }),
          live('a.x', 8, { state: 'stopping', stopReason: 'preempted', stoppingSince: '2026-12-01T12:00:00.000Z' }),
          live('b.x', 8),
        ],
        quotas: [{ project: 'a.x', pool: 'b200', guaranteed: 8, limit: 16 }],
        capacity: [{ pool: 'b200', gpus: 32 }],
      },
      now,
    );
    assert.deepEqual(f.lag, { launch: 30, stop: 60 });
    assert.deepEqual(f.pending, [{ pool: 'b200', reason: 'Queued', n: 2 }]);
    assert.deepEqual(f.projectUse, [
      { project: 'a.x', pool: 'b200', used: 16, borrowed: 8 },
      { project: 'b.x', pool: 'b200', used: 8, borrowed: 8 },
    ]);
    assert.deepEqual(f.poolUse, [{ pool: 'b200', used: 24 }]);
  });

  it('tells reclamation of borrowed GPUs from priority preemption', () => {
    const req = (id: string, project: string) => ({ id, project, pool: 'b200', nodes: 1, gpusPerNode: 8 });
    const snap = {
      running: [{ ...req('v1', 'a.x'), borrowed: true }, { ...req('v0', 'a.x') }, { ...req('v2', 'c.x') }],
      pending: [req('p1', 'b.x'), req('p2', 'c.x')],
      quotas: [
        { project: 'a.x', pool: 'b200', guaranteed: 8, limit: 16 },
        { project: 'c.x', pool: 'b200', guaranteed: 8, limit: 8 },
      ],
    } as unknown as Snapshot;
    const d = {
      place: [],
      pending: [],
      preempt: [
        { workloadId: 'v1', forWorkloadId: 'p1', message: '' },
        { workloadId: 'v2', forWorkloadId: 'p2', message: '' },
      ],
    } as Decisions;
    assert.deepEqual(preemptionsOf(d, snap), [
      { pool: 'b200', reason: 'Reclamation' },
      { pool: 'b200', reason: 'Priority' },
    ]);
  });

  it('counts cycles with work queued by result, and leaves idle cycles out', async () => {
    const site = new SiteMetrics({} as Kysely<Database>);
    const registry = new Registry();
    site.register(registry);
    const none = { place: [], pending: [], preempt: [] } as Decisions;
    const snap = { running: [], pending: [], quotas: [] } as unknown as Snapshot;
    site.cycle({ durationMs: 5, placed: 0 }, none, snap);
    site.cycle(
      { durationMs: 20, placed: 0 },
      { ...none, pending: [{ workloadId: 'w', reason: 'QuotaLimit', message: '' }] } as Decisions,
      snap,
    );
    site.reconciled(40);
    const attempts = await registry.getSingleMetric('fabrik_admission_attempts_total')!.get();
    assert.deepEqual(
      attempts.values.map((v) => [v.labels.result, v.value]),
      [['inadmissible', 1]],
    );
    const text = await registry.getSingleMetricAsString('fabrik_reconcile_duration_seconds');
    assert.match(text, /fabrik_reconcile_duration_seconds_sum 0\.04/);
  });
});
