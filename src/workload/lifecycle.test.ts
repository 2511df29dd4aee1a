import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AttemptStateView,
  type LifecycleEvent,
  type WorkloadState,
  WORKLOAD_STATUSES,
  backoffSeconds,
  decide,
} from './lifecycle.js';

const NOW = '2026-12-01T10:00:00.000Z';
const placement = { pod: 'p1', leaves: ['l1'], nodes: [{ node: 'n1', gpuIndexes: [0, 1] }] };
const w = (over: Partial<WorkloadState> = {}): WorkloadState => ({
  status: 'running',
  attempts: 1,
  preemptions: 0,
  maxRuntimeS: 3600,
  serving: false,
  startedAt: NOW,
  retries: 0,
  requeue: false,
  ...over,
});
const running: AttemptStateView = { number: 1, state: 'running', stopReason: '' };
const must = (o: ReturnType<typeof decide>) => {
  assert.ok(o.ok, o.ok ? '' : o.why);
  return o.decision;
};

describe('lifecycle', () => {
  it('places a pending workload as a new launching attempt, never beside a live one', () => {
    const d = must(
      decide(
        w({ status: 'pending', attempts: 2 }),
        undefined,
        { type: 'place', placement, borrowed: true, message: 'm' },
        NOW,
      ),
    );
    assert.equal(d.workload.status, 'running');
    assert.equal(d.workload.attempts, 3);
    assert.deepEqual(d.createAttempt, { number: 3, placement });
    const live: AttemptStateView = { number: 2, state: 'stopping', stopReason: 'preempted' };
    const o = decide(
      w({ status: 'pending', attempts: 2 }),
      live,
      { type: 'place', placement, borrowed: false, message: 'm' },
      NOW,
    );
    assert.equal(o.ok, false);
  });

  it('retries a failed run with backoff while retries remain, then fails; preemptions do not use retries', () => {
    const ended: LifecycleEvent = { type: 'ended', outcome: 'failed', exitCode: 3, message: 'task 0 exited with 3' };
    const first = must(decide(w({ retries: 2 }), running, ended, NOW));
    assert.equal(first.workload.status, 'pending');
    assert.equal(first.workload.reason, 'BackOff');
    assert.equal(first.workload.not_before, new Date(Date.parse(NOW) + 5000).toISOString());
    const third = must(decide(w({ retries: 2, attempts: 3 }), { ...running, number: 3 }, ended, NOW));
    assert.equal(third.workload.status, 'failed');
    const afterPreemption = must(
      decide(w({ retries: 1, attempts: 2, preemptions: 1 }), { ...running, number: 2 }, ended, NOW),
    );
    assert.equal(afterPreemption.workload.status, 'pending', 'the preempted attempt did not count as a retry');
  });

  it('calls an OOM kill OOMKilled, and a lost run requeued or failed by requeue', () => {
    const oom = must(
      decide(w(), running, { type: 'ended', outcome: 'oom-killed', exitCode: 137, message: 'oom' }, NOW),
    );
    assert.equal(oom.workload.reason, 'OOMKilled');
    assert.equal(oom.attempt?.end_reason, 'oom-killed');
    const lost: LifecycleEvent = { type: 'ended', outcome: 'lost', exitCode: null, message: 'gone' };
    assert.equal(must(decide(w({ requeue: true }), running, lost, NOW)).workload.status, 'pending');
    assert.equal(must(decide(w({ requeue: false }), running, lost, NOW)).workload.status, 'failed');
  });

  it('keeps a preempted or cancelled attempt live until the engine says it stopped', () => {
    const p = must(decide(w({ requeue: true }), running, { type: 'preempt', message: 'for x' }, NOW));
    assert.equal(p.workload.status, 'pending');
    assert.equal(p.attempt?.stop_reason, 'preempted');
    assert.equal(p.attempt?.state, undefined, 'still running on the engine');
    assert.equal(p.freesCapacity, false);
    const stopping: AttemptStateView = { number: 1, state: 'stopping', stopReason: 'preempted' };
    const s = must(decide(w({ status: 'pending' }), stopping, { type: 'stopped', exitCode: 143, message: 'm' }, NOW));
    assert.equal(s.attempt?.state, 'ended');
    assert.equal(s.attempt?.end_reason, 'preempted');
    assert.equal(s.freesCapacity, true);
  });

  it('stops in two phases: SIGTERM once, SIGKILL once', () => {
    const stop: AttemptStateView = { number: 1, state: 'running', stopReason: 'cancelled' };
    const t = must(decide(w({ status: 'cancelled' }), stop, { type: 'stop-requested' }, NOW));
    assert.equal(t.attempt?.state, 'stopping');
    assert.equal(t.attempt?.stopping_since, NOW);
    const stopping: AttemptStateView = { ...stop, state: 'stopping' };
    assert.equal(decide(w({ status: 'cancelled' }), stopping, { type: 'stop-requested' }, NOW).ok, false);
    assert.equal(
      must(decide(w({ status: 'cancelled' }), stopping, { type: 'stop-escalated', graceS: 30 }, NOW)).attempt
        ?.killed_at,
      NOW,
    );
  });

  it('never stops a serving replica for its max runtime; other running work fails with MaxRuntimeExceeded', () => {
    const refused = decide(w({ serving: true }), running, { type: 'max-runtime' }, NOW);
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? '' : refused.why, /serving replica/);
    const d = must(decide(w(), running, { type: 'max-runtime' }, NOW));
    assert.equal(d.workload?.reason, 'MaxRuntimeExceeded');
  });

  it('refuses what does not fit the state: ended work is never changed again', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('succeeded', 'failed', 'cancelled', 'preempted' as const),
        fc.constantFrom<LifecycleEvent>(
          { type: 'place', placement, borrowed: false, message: 'm' },
          { type: 'preempt', message: 'm' },
          { type: 'cancel', by: 'u' },
          { type: 'launched', handle: '{}', executor: 'local' },
          { type: 'max-runtime' },
        ),
        (status, ev) => {
          const o = decide(w({ status }), { number: 1, state: 'ended', stopReason: '' }, ev, NOW);
          assert.equal(o.ok, false);
        },
      ),
    );
  });

  it('only ever moves a workload to a known status, and a new attempt only from pending', () => {
    const events: LifecycleEvent[] = [
      { type: 'place', placement, borrowed: false, message: 'm' },
      { type: 'preempt', message: 'm' },
      { type: 'cancel', by: 'u' },
      { type: 'launched', handle: '{}', executor: 'local' },
      { type: 'launch-failed', message: 'm', retryable: false },
      { type: 'ended', outcome: 'succeeded', exitCode: 0, message: 'm' },
      { type: 'max-runtime' },
      { type: 'stop-requested' },
      { type: 'stopped', exitCode: 0, message: 'm' },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...WORKLOAD_STATUSES),
        fc.constantFrom('launching', 'running', 'stopping', 'ended' as const),
        fc.constantFrom('', 'cancelled', 'preempted' as const),
        fc.constantFrom(...events),
        fc.boolean(),
        (status, state, stopReason, ev, requeue) => {
          const o = decide(w({ status, requeue }), { number: 1, state, stopReason }, ev, NOW);
          if (!o.ok) return;
          const next = o.decision.workload.status ?? status;
          assert.ok((WORKLOAD_STATUSES as readonly string[]).includes(next));
          if (o.decision.createAttempt) assert.equal(status, 'pending');
        },
      ),
    );
  });

  it('backs off 5 s, 10 s, 20 s … up to 5 minutes', () => {
    assert.deepEqual([1, 2, 3, 10].map(backoffSeconds), [5, 10, 20, 300]);
  });
});
