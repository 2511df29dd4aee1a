// The workload lifecycle, decided in one place. A workload's status and its attempts change only
// through `decide(state, event)`: plain data in, the changes out (the row's new fields, the
// attempt's, the workload event and the audit action). The repository (./repository.ts) applies a
// decision in one audited transaction; the scheduler loop, the reconciler and the API only say
// what happened.
//
//   pending ──place──► running ──ended(succeeded)──► succeeded
//      ▲                  │ ├─ended(failed|oom)──► failed, or pending (BackOff) while retries remain
//      │                  │ ├─ended(lost)────────► pending (requeue: true) or failed
//      └──preempt(requeue)┘ ├─preempt────────────► preempted (requeue: false)
//                           ├─publishing (tasks exited 0; outputs being published; still running)
//                           ├─ended(publish-failed)► failed (OutputPublishFailed; never retried)
//                           ├─max-runtime────────► failed (MaxRuntimeExceeded)
//   pending|running ──cancel──► cancelled
//
// Attempts: launching (intent committed before the engine is touched) → running (the engine took
// it; its handle is on record) → stopping (SIGTERM sent; SIGKILL after the grace period, on a later
// pass) → ended (exit code and end reason). An attempt stays live until the engine says it ended,
// so its GPUs stay taken (the snapshot marks it terminating) and there are never two live attempts
// of one workload.
import type { AttemptState, EndReason, StopReason, WorkloadStatus } from '../domain/workload-states.js';
import type { Placement } from '../scheduler/types.js';

export {
  ACTIVE_STATUSES,
  ATTEMPT_STATES,
  END_REASONS,
  TERMINAL_STATUSES,
  WORKLOAD_STATUSES,
  isWorkloadStatus,
} from '../domain/workload-states.js';
export type { AttemptState, EndReason, StopReason, WorkloadStatus } from '../domain/workload-states.js';

/** What the decisions need of a workload. */
export interface WorkloadState {
  readonly status: WorkloadStatus;
  readonly attempts: number;
  readonly preemptions: number;
  readonly maxRuntimeS: number;
  /** A serving replica (kind inference): it runs until scaled down, never stopped for its max runtime. */
  readonly serving: boolean;
  readonly startedAt: string | null;
  readonly retries: number;
  readonly requeue: boolean;
}

/** What the decisions need of the workload's newest attempt. */
export interface AttemptStateView {
  readonly number: number;
  readonly state: AttemptState;
  readonly stopReason: StopReason | '';
}

export type LifecycleEvent =
  | { readonly type: 'place'; readonly placement: Placement; readonly borrowed: boolean; readonly message: string }
  | { readonly type: 'preempt'; readonly message: string; readonly forWorkloadId?: string }
  | { readonly type: 'cancel'; readonly by: string }
  | { readonly type: 'launched'; readonly handle: string; readonly executor: string }
  | { readonly type: 'launch-failed'; readonly message: string; readonly retryable: boolean }
  | {
      readonly type: 'ended';
      /** publish-failed: every task exited 0 but the spec's outputs could not be published. */
      readonly outcome: EndOutcome;
      readonly exitCode: number | null;
      readonly message: string;
    }
  | { readonly type: 'max-runtime' }
  /** Every task exited 0 and the spec's outputs are being published; the attempt ends after. */
  | { readonly type: 'publishing'; readonly message: string }
  | { readonly type: 'stop-requested' }
  | { readonly type: 'stop-escalated'; readonly graceS: number }
  | { readonly type: 'stopped'; readonly exitCode: number | null; readonly message: string }
  | { readonly type: 'adopted'; readonly handle: string }
  | { readonly type: 'abandoned'; readonly message: string };

export type EndOutcome = 'succeeded' | 'failed' | 'lost' | 'oom-killed' | 'publish-failed';

/** Changes of the workload row; undefined fields stay as they are. */
export interface WorkloadChanges {
  status?: WorkloadStatus;
  reason?: string;
  message?: string;
  placement?: string | null;
  borrowed?: number;
  attempts?: number;
  preemptions?: number;
  started_at?: string | null;
  finished_at?: string | null;
  not_before?: string | null;
  queued_at?: string;
  exit_code?: number | null;
  estimated_start?: string | null;
  executor?: string;
}

export interface AttemptChanges {
  state?: AttemptState;
  handle?: string;
  executor?: string;
  launched_at?: string;
  started_at?: string;
  stopping_since?: string;
  killed_at?: string;
  ended_at?: string;
  exit_code?: number | null;
  end_reason?: EndReason;
  stop_reason?: StopReason;
  message?: string;
}

export interface Decision {
  /** Audit action, e.g. `workload.place`. */
  readonly action: string;
  readonly workload: WorkloadChanges;
  /** Changes of the current attempt; `create` starts attempt n+1 (on placement). */
  readonly attempt?: AttemptChanges;
  readonly createAttempt?: { readonly number: number; readonly placement: Placement };
  readonly event: { readonly type: 'Normal' | 'Warning'; readonly reason: string; readonly message: string };
  /** Capacity was freed or work returned to the queue: the scheduler should run. */
  readonly freesCapacity: boolean;
}

export type Outcome = { readonly ok: true; readonly decision: Decision } | { readonly ok: false; readonly why: string };

const BACKOFF_BASE_S = 5;
const BACKOFF_MAX_S = 300;

/** Wait before retry n (1-based): 5 s, 10 s, 20 s, … capped at 5 minutes. */
export function backoffSeconds(retry: number): number {
  return Math.min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** Math.max(0, retry - 1));
}

const refuse = (why: string): Outcome => ({ ok: false, why });
const ok = (decision: Decision): Outcome => ({ ok: true, decision });

/** The one place a transition is decided. `now` is an ISO time; nothing here reads a clock. */
export function decide(w: WorkloadState, a: AttemptStateView | undefined, ev: LifecycleEvent, now: string): Outcome {
  const live = a !== undefined && a.state !== 'ended';
  const current = live && a.number === w.attempts;
  switch (ev.type) {
    case 'place': {
      if (w.status !== 'pending') return refuse(`is ${w.status}, not pending`);
      if (live) return refuse(`attempt ${a.number} is still ${a.state}`);
      const n = w.attempts + 1;
      return ok({
        action: 'workload.place',
        workload: {
          status: 'running',
          reason: 'Placed',
          message: `on ${ev.placement.nodes.map((x) => x.node).join(',')}`,
          placement: JSON.stringify(ev.placement),
          borrowed: ev.borrowed ? 1 : 0,
          attempts: n,
          started_at: null,
          estimated_start: null,
        },
        createAttempt: { number: n, placement: ev.placement },
        event: { type: 'Normal', reason: 'Scheduled', message: ev.message },
        freesCapacity: false,
      });
    }
    case 'preempt': {
      if (w.status !== 'running') return refuse(`is ${w.status}, not running`);
      const status = w.requeue ? 'pending' : 'preempted';
      return ok({
        action: 'workload.preempt',
        workload: {
          status,
          reason: 'Preempted',
          message: ev.message,
          placement: null,
          borrowed: 0,
          preemptions: w.preemptions + 1,
          ...(w.requeue ? { queued_at: now } : { finished_at: now }),
        },
        attempt: current ? { stop_reason: 'preempted' } : undefined,
        event: { type: 'Warning', reason: 'Preempted', message: `${ev.message}${w.requeue ? '; requeued' : ''}` },
        freesCapacity: false,
      });
    }
    case 'cancel': {
      if (w.status !== 'pending' && w.status !== 'running') return refuse(`already ended (${w.status})`);
      return ok({
        action: 'workload.cancel',
        workload: {
          status: 'cancelled',
          reason: 'Cancelled',
          message: `cancelled by ${ev.by}`,
          finished_at: now,
          estimated_start: null,
        },
        attempt: live ? { stop_reason: 'cancelled' } : undefined,
        event: { type: 'Normal', reason: 'Cancelled', message: `cancelled by ${ev.by} while ${w.status}` },
        freesCapacity: !live,
      });
    }
    case 'launched': {
      if (!current || a.state !== 'launching') return refuse('no attempt is launching');
      if (w.status !== 'running' || a.stopReason) return refuse(`is ${w.status}; the attempt is to be stopped`);
      return ok({
        action: 'workload.start',
        workload: {
          reason: 'Running',
          message: `running on ${ev.executor} executor`,
          started_at: now,
          executor: ev.executor,
        },
        attempt: { state: 'running', handle: ev.handle, executor: ev.executor, launched_at: now, started_at: now },
        event: {
          type: 'Normal',
          reason: 'Started',
          message: `started attempt ${a.number} on the ${ev.executor} executor`,
        },
        freesCapacity: false,
      });
    }
    case 'adopted': {
      // Found on the engine after a crash between launch and commit, but no longer wanted: stop it.
      if (!live || a.state !== 'launching') return refuse('no attempt is launching');
      return ok({
        action: 'workload.adopt',
        workload: {},
        attempt: { state: 'running', handle: ev.handle, launched_at: now },
        event: { type: 'Normal', reason: 'Adopted', message: `found attempt ${a.number} on the engine; stopping it` },
        freesCapacity: false,
      });
    }
    case 'abandoned': {
      // A launching attempt that is no longer wanted and that the engine never started.
      if (!live || a.state !== 'launching') return refuse('no attempt is launching');
      return ok({
        action: 'workload.attempt-abandoned',
        workload: {},
        attempt: { state: 'ended', ended_at: now, end_reason: a.stopReason || 'cancelled', message: ev.message },
        event: { type: 'Normal', reason: 'Stopped', message: ev.message },
        freesCapacity: true,
      });
    }
    case 'launch-failed': {
      if (!current || a.state !== 'launching') return refuse('no attempt is launching');
      if (ev.retryable) {
        return ok({
          action: 'workload.launch-failed',
          workload: { message: ev.message },
          event: { type: 'Warning', reason: 'LaunchFailed', message: ev.message },
          freesCapacity: false,
        });
      }
      return endRun(w, a, { outcome: 'failed', exitCode: null, message: ev.message, endReason: 'launch-failed' }, now);
    }
    case 'ended': {
      if (!current || a.state === 'launching') return refuse('no attempt of it runs');
      if (w.status !== 'running' || a.stopReason) return stopped(a, null, ev.message, now);
      const endReason: EndReason = ev.outcome;
      return endRun(w, a, { outcome: ev.outcome, exitCode: ev.exitCode, message: ev.message, endReason }, now);
    }
    case 'max-runtime': {
      if (w.status !== 'running' || !current) return refuse('is not running');
      if (w.serving) return refuse('is a serving replica, which runs until it is scaled down');
      const message = `ran longer than its max runtime of ${w.maxRuntimeS} s and was stopped`;
      return ok({
        action: 'workload.fail',
        workload: { status: 'failed', reason: 'MaxRuntimeExceeded', message, finished_at: now, placement: null },
        attempt: { stop_reason: 'max-runtime' },
        event: { type: 'Warning', reason: 'MaxRuntimeExceeded', message },
        freesCapacity: false,
      });
    }
    case 'publishing': {
      if (!current || a.state !== 'running' || w.status !== 'running' || a.stopReason)
        return refuse('no attempt of it runs');
      return ok({
        action: 'workload.publish',
        workload: { reason: 'Publishing', message: ev.message },
        event: { type: 'Normal', reason: 'Publishing', message: ev.message },
        freesCapacity: false,
      });
    }
    case 'stop-requested': {
      if (!live || a.state === 'stopping' || a.state === 'launching') return refuse('nothing to stop');
      return ok({
        action: 'workload.stop',
        workload: {},
        attempt: { state: 'stopping', stopping_since: now },
        event: {
          type: 'Normal',
          reason: 'Stopping',
          message: `attempt ${a.number}: sent SIGTERM (${a.stopReason || 'stop'})`,
        },
        freesCapacity: false,
      });
    }
    case 'stop-escalated': {
      if (!live || a.state !== 'stopping') return refuse('not stopping');
      return ok({
        action: 'workload.kill',
        workload: {},
        attempt: { killed_at: now },
        event: {
          type: 'Warning',
          reason: 'Killing',
          message: `attempt ${a.number} still ran ${ev.graceS} s after SIGTERM: sent SIGKILL`,
        },
        freesCapacity: false,
      });
    }
    case 'stopped':
      if (!live) return refuse('no live attempt');
      return stopped(a, ev.exitCode, ev.message, now);
  }
}

function stopped(a: AttemptStateView, exitCode: number | null, message: string, now: string): Outcome {
  return ok({
    action: 'workload.stopped',
    workload: {},
    attempt: { state: 'ended', ended_at: now, exit_code: exitCode, end_reason: a.stopReason || 'cancelled', message },
    event: {
      type: 'Normal',
      reason: 'Stopped',
      message: `attempt ${a.number} stopped (${a.stopReason || 'stop'}): ${message}`,
    },
    freesCapacity: true,
  });
}

/** The current attempt ended by itself: success, a retry with backoff, a requeue, or the end. */
function endRun(
  w: WorkloadState,
  a: AttemptStateView,
  r: {
    outcome: EndOutcome;
    exitCode: number | null;
    message: string;
    endReason: EndReason;
  },
  now: string,
): Outcome {
  const attempt: AttemptChanges = {
    state: 'ended',
    ended_at: now,
    exit_code: r.exitCode,
    end_reason: r.endReason,
    message: r.message,
  };
  const back = { placement: null, borrowed: 0, exit_code: r.exitCode } as const;
  if (r.outcome === 'succeeded') {
    return ok({
      action: 'workload.succeed',
      workload: {
        status: 'succeeded',
        reason: 'Completed',
        message: r.message,
        finished_at: now,
        exit_code: 0,
        placement: null,
      },
      attempt,
      event: { type: 'Normal', reason: 'Completed', message: r.message },
      freesCapacity: true,
    });
  }
  if (r.outcome === 'lost') {
    if (w.requeue) {
      return ok({
        action: 'workload.requeue',
        workload: { ...back, status: 'pending', reason: 'Lost', message: `${r.message}; requeued`, queued_at: now },
        attempt,
        event: { type: 'Warning', reason: 'Lost', message: `${r.message}; requeued (requeue: true)` },
        freesCapacity: true,
      });
    }
    const message = `${r.message}; not requeued (requeue: false)`;
    return ok({
      action: 'workload.fail',
      workload: { ...back, status: 'failed', reason: 'Lost', message, finished_at: now },
      attempt,
      event: { type: 'Warning', reason: 'Lost', message },
      freesCapacity: true,
    });
  }
  if (r.outcome === 'publish-failed') {
    // The run itself succeeded: running it again would not make the outputs publishable (a full
    // quota, a link among the files), so no retry; the work directory keeps what it wrote.
    const message = `the tasks succeeded but the outputs were not published: ${r.message}`;
    return ok({
      action: 'workload.fail',
      workload: { ...back, status: 'failed', reason: 'OutputPublishFailed', message, finished_at: now },
      attempt,
      event: { type: 'Warning', reason: 'OutputPublishFailed', message },
      freesCapacity: true,
    });
  }
  const reason = r.outcome === 'oom-killed' ? 'OOMKilled' : 'Failed';
  const retriesUsed = a.number - 1 - w.preemptions;
  if (retriesUsed < w.retries) {
    const wait = backoffSeconds(retriesUsed + 1);
    return ok({
      action: 'workload.retry',
      workload: {
        ...back,
        status: 'pending',
        reason: 'BackOff',
        message: `${r.message}; retry ${retriesUsed + 1} of ${w.retries} in ${wait} s`,
        not_before: new Date(Date.parse(now) + wait * 1000).toISOString(),
        queued_at: now,
      },
      attempt,
      event: { type: 'Warning', reason: 'BackOff', message: `${r.message}; retrying in ${wait} s` },
      freesCapacity: true,
    });
  }
  return ok({
    action: 'workload.fail',
    workload: { ...back, status: 'failed', reason, message: r.message, finished_at: now },
    attempt,
    event: { type: 'Warning', reason, message: r.message },
    freesCapacity: true,
  });
}
