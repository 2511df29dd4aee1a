// How the engine talks to the scheduler core. The engine reports what happened (submit, start,
// leave) and asks for a cycle; a driver turns that into calls on the real core. Two drivers:
// one builds a full Snapshot per cycle for `schedule()`, one feeds deltas to an incremental core.
import type {
  Decisions,
  PolicyName,
  PoolQuota,
  RunningWorkload,
  SchedNode,
  Snapshot,
  WorkloadRequest,
} from '../scheduler/types.js';

export interface CoreDriver {
  /** A workload enters the queue (new, or requeued after preemption). */
  submit(w: WorkloadRequest): void;
  /** A queued workload was placed by the last cycle's decisions. */
  started(r: RunningWorkload): void;
  /** A running workload left its GPUs (finished or preempted). */
  left(id: string): void;
  cycle(now: number, usage: Readonly<Record<string, number>>): Decisions;
}

export interface DriverInit {
  readonly nodes: readonly SchedNode[];
  readonly quotas: readonly PoolQuota[];
  readonly policy: PolicyName;
}

export type DriverFactory = (init: DriverInit) => CoreDriver;
export type ScheduleFn = (snapshot: Snapshot) => Decisions;

/**
 * Drives a pure `schedule(snapshot)`: keeps the queue and the running set and hands the core a
 * fresh snapshot each cycle. Maps keep insertion order, so the queue reaches the core in
 * (re)submission order; the core orders it by its own keys anyway.
 */
export function snapshotDriver(schedule: ScheduleFn): DriverFactory {
  return ({ nodes, quotas, policy }) => {
    const pending = new Map<string, WorkloadRequest>();
    const running = new Map<string, RunningWorkload>();
    return {
      submit(w) {
        pending.set(w.id, w);
      },
      started(r) {
        pending.delete(r.id);
        running.set(r.id, r);
      },
      left(id) {
        running.delete(id);
      },
      cycle(now, usage) {
        return schedule({
          now,
          nodes,
          quotas,
          running: [...running.values()],
          pending: [...pending.values()],
          usage,
          policy,
        });
      },
    };
  };
}
