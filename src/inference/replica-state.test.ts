import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { REPLICA_STATES } from '../domain/inference-states.js';
import { WORKLOAD_STATUSES } from '../domain/workload-states.js';
import { READY_FAILURES, type ReplicaObservation, START_TIMEOUT_S, replicaStep } from './replica-state.js';

const o = (over: Partial<ReplicaObservation> = {}): ReplicaObservation => ({
  state: 'starting',
  workloadStatus: 'running',
  attempt: 1,
  readyAttempt: 0,
  healthy: false,
  failures: 1,
  startingForS: 5,
  reportedDown: false,
  ...over,
});

describe('replica states', () => {
  it('pending while its workload waits, starting once launched, ready when the health check passes', () => {
    assert.deepEqual(replicaStep(o({ state: 'pending', workloadStatus: 'pending', healthy: undefined })), {
      kind: 'keep',
    });
    assert.equal((replicaStep(o({ state: 'pending' })) as { to: string }).to, 'starting');
    assert.equal((replicaStep(o({ healthy: true })) as { to: string }).to, 'ready');
  });

  it('a ready replica survives one failed check and leaves rotation after READY_FAILURES in a row', () => {
    const ready = { state: 'ready' as const, readyAttempt: 1 };
    assert.deepEqual(replicaStep(o({ ...ready, failures: READY_FAILURES - 1 })), { kind: 'keep' });
    assert.equal((replicaStep(o({ ...ready, failures: READY_FAILURES })) as { to: string }).to, 'unhealthy');
    assert.equal((replicaStep(o({ ...ready, healthy: true, reportedDown: true })) as { to: string }).to, 'unhealthy');
  });

  it('a new attempt (requeued after a node failure) starts again; a replica that never comes up is replaced', () => {
    assert.equal((replicaStep(o({ state: 'ready', attempt: 2, readyAttempt: 1 })) as { to: string }).to, 'starting');
    assert.equal((replicaStep(o({ startingForS: START_TIMEOUT_S + 1 })) as { to: string }).to, 'unhealthy');
  });

  it('its workload ended: the replica is removed, from any state', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...REPLICA_STATES),
        fc.constantFrom('', ...WORKLOAD_STATUSES.filter((s) => s !== 'pending' && s !== 'running')),
        (state, workloadStatus) => {
          assert.equal(replicaStep(o({ state, workloadStatus: workloadStatus as never })).kind, 'remove');
        },
      ),
    );
  });

  it('stopping and unhealthy replicas never come back into rotation', () => {
    for (const state of ['stopping', 'unhealthy'] as const) {
      assert.deepEqual(replicaStep(o({ state, healthy: true })), { kind: 'keep' });
    }
  });
});
