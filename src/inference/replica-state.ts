// A replica's state, decided in one pure function from what the controller observed: its
// workload's status and attempt, and the health check. The controller (./controller.ts) applies
// the result in an audited transaction; nothing else moves a replica.
import type { ReplicaState } from '../domain/inference-states.js';
import type { WorkloadStatus } from '../domain/workload-states.js';

export interface ReplicaObservation {
  readonly state: ReplicaState;
  /** '' when its workload no longer exists. */
  readonly workloadStatus: WorkloadStatus | '';
  /** The workload's attempt now, and the attempt the replica was last ready in. */
  readonly attempt: number;
  readonly readyAttempt: number;
  /** The health check of this pass: undefined when none was made (workload not running). */
  readonly healthy?: boolean;
  /** Health checks failed in a row (this pass included). */
  readonly failures: number;
  /** Seconds since the current attempt began starting. */
  readonly startingForS: number;
  /** The gateway could not reach it (passive check). */
  readonly reportedDown: boolean;
}

export type ReplicaStep =
  | { readonly kind: 'keep' }
  | { readonly kind: 'move'; readonly to: ReplicaState; readonly message: string }
  /** Its workload is gone: the row is removed (the replica's story ends). */
  | { readonly kind: 'remove'; readonly message: string };

/** Failed health checks in a row before a ready replica leaves rotation. */
export const READY_FAILURES = 2;
/** How long a replica may take from launch to its first passed health check. */
export const START_TIMEOUT_S = 180;

const ACTIVE: readonly (WorkloadStatus | '')[] = ['pending', 'running'];

export function replicaStep(o: ReplicaObservation): ReplicaStep {
  const keep = { kind: 'keep' } as const;
  const move = (to: ReplicaState, message: string): ReplicaStep =>
    to === o.state ? keep : { kind: 'move', to, message };
  if (!ACTIVE.includes(o.workloadStatus)) {
    return { kind: 'remove', message: o.workloadStatus ? `its workload ${o.workloadStatus}` : 'its workload is gone' };
  }
  // Stopping and unhealthy replicas only wait for their workload to end (the controller cancels it).
  if (o.state === 'stopping' || o.state === 'unhealthy') return keep;
  if (o.workloadStatus === 'pending') return move('pending', 'waiting for the scheduler');
  if (o.reportedDown) return move('unhealthy', 'the gateway could not reach it');
  if (o.healthy) return move('ready', 'health check passed');
  if (o.state === 'ready' && o.attempt === o.readyAttempt) {
    return o.failures >= READY_FAILURES ? move('unhealthy', `${o.failures} health checks failed in a row`) : keep;
  }
  if (o.startingForS > START_TIMEOUT_S) return move('unhealthy', `not healthy ${START_TIMEOUT_S} s after launch`);
  return move('starting', 'launched; waiting for its health check');
}
