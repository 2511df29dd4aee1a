// The pure entry point: a snapshot in, decisions out. Builds the indexes a cycle needs from the
// snapshot and runs one cycle; nothing outlives the call.
import { runCycle } from './cycle.js';
import { SchedulerState } from './state.js';
import type { Decisions, Snapshot } from './types.js';

/**
 * Decides one scheduling cycle: which pending workloads to place (and where), which running
 * ones to preempt, and why each other pending workload waits. Pure and deterministic: the same
 * snapshot gives deep-equal decisions. Apply `preempt` before `place`: a placement may use
 * GPUs of workloads preempted in the same decisions.
 */
export function schedule(snapshot: Snapshot): Decisions {
  return runCycle(SchedulerState.fromSnapshot(snapshot), snapshot.now);
}
