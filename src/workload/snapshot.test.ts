import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkloadAttemptsTable, WorkloadsTable } from '../store/schema.js';
import { launchingAttempt } from './repository.js';
import { buildWorkSnapshot } from './snapshot.js';

const NOW_S = Date.parse('2026-12-01T10:00:00Z') / 1000;
const spec = {
  kind: 'batch',
  name: 'x',
  gpusPerNode: 2,
  nodes: 1,
  priority: 'normal',
  maxDurationS: 3600,
  pool: 'dev',
  env: {},
  nodeSelector: {},
  exclusive: false,
};
const placement = { pod: 'p', leaves: ['l'], nodes: [{ node: 'n1', gpuIndexes: [0, 1] }] };

function row(id: string, over: Partial<WorkloadsTable> = {}): WorkloadsTable {
  return {
    id,
    org_id: 'org',
    project_id: 'prj',
    name: id,
    kind: 'batch',
    pool: 'dev',
    priority: 'normal',
    nodes: 1,
    gpus_per_node: 2,
    max_runtime_s: 3600,
    spec: JSON.stringify({ ...spec, name: id }),
    status: 'pending',
    reason: '',
    message: '',
    estimated_start: null,
    placement: null,
    borrowed: 0,
    attempts: 0,
    preemptions: 0,
    submitted_at: '2026-12-01T09:00:00Z',
    started_at: null,
    finished_at: null,
    created_by: 'u',
    updated_at: '2026-12-01T09:00:00Z',
    executor: null,
    not_before: null,
    exit_code: null,
    queued_at: '2026-12-01T09:00:00Z',
    ...over,
  } as WorkloadsTable;
}

function attempt(workloadId: string, number: number, over: Partial<WorkloadAttemptsTable> = {}): WorkloadAttemptsTable {
  const t = '2026-12-01T09:30:00Z';
  const a = launchingAttempt(row(workloadId), number, placement, t);
  return { ...a, state: 'running', executor: 'local', handle: '{}', launched_at: t, started_at: t, ...over };
}

const rows = (active: WorkloadsTable[], liveAttempts: WorkloadAttemptsTable[], endedOwners: WorkloadsTable[] = []) => ({
  active,
  liveAttempts,
  endedOwners,
  quotas: [{ project_id: 'prj', pool: 'dev', guaranteed: 2, gpu_limit: 4 }],
  projectRefs: new Map([['prj', 'acme.train']]),
  projectOrgs: new Map([['prj', { name: 'acme', residency: 'de' }]]),
});

describe('buildWorkSnapshot', () => {
  it('counts running work with its preemptions (for the cooldown) and borrowed flag', () => {
    const s = buildWorkSnapshot(
      rows([row('a', { status: 'running', attempts: 1, preemptions: 2, borrowed: 1 })], [attempt('a', 1)]),
      NOW_S,
    );
    assert.equal(s.running.length, 1);
    assert.equal(s.running[0].preemptions, 2);
    assert.equal(s.running[0].borrowed, true);
    assert.equal(s.running[0].terminating, undefined);
    assert.equal(s.running[0].project, 'acme.train');
  });

  it('keeps a stopping victim allocated as terminating, and its requeued workload out of the queue', () => {
    const s = buildWorkSnapshot(
      rows(
        [row('v', { status: 'pending', attempts: 1, preemptions: 1 })],
        [attempt('v', 1, { state: 'stopping', stop_reason: 'preempted' })],
      ),
      NOW_S,
    );
    assert.equal(s.running.length, 1);
    assert.equal(s.running[0].terminating, true);
    assert.deepEqual(s.running[0].placement, placement);
    assert.equal(s.pending.length, 0, 'not queued again before its old attempt ended');
  });

  it('keeps a cancelled or timed-out workload GPUs taken until the attempt ends', () => {
    const s = buildWorkSnapshot(
      rows(
        [],
        [attempt('c', 1, { state: 'stopping', stop_reason: 'cancelled' })],
        [row('c', { status: 'cancelled', attempts: 1 })],
      ),
      NOW_S,
    );
    assert.equal(s.running.length, 1);
    assert.equal(s.running[0].terminating, true);
  });

  it('queues pending work unless it backs off', () => {
    const s = buildWorkSnapshot(
      rows(
        [
          row('p1'),
          row('p2', { not_before: new Date((NOW_S + 60) * 1000).toISOString() }),
          row('p3', { not_before: new Date((NOW_S - 60) * 1000).toISOString() }),
        ],
        [],
      ),
      NOW_S,
    );
    assert.deepEqual(
      s.pending.map((p) => p.id),
      ['p1', 'p3'],
    );
    assert.deepEqual(s.quotas, [{ project: 'acme.train', pool: 'dev', guaranteed: 2, limit: 4 }]);
  });
});
