// The states of workloads and their attempts, as plain literal unions shared by the database types,
// the API schemas and the CLI. What moves a workload between them is decided in
// src/workload/lifecycle.ts alone.
export const WORKLOAD_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'preempted'] as const;
export type WorkloadStatus = (typeof WORKLOAD_STATUSES)[number];
export const ACTIVE_STATUSES = ['pending', 'running'] as const satisfies readonly WorkloadStatus[];
export const TERMINAL_STATUSES = [
  'succeeded',
  'failed',
  'cancelled',
  'preempted',
] as const satisfies readonly WorkloadStatus[];

export const ATTEMPT_STATES = ['launching', 'running', 'stopping', 'ended'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];

export const END_REASONS = [
  'succeeded',
  'failed',
  'preempted',
  'lost',
  'cancelled',
  'max-runtime',
  'oom-killed',
  'launch-failed',
  /** The tasks succeeded but the outputs could not be published (quota, unreadable files, …). */
  'publish-failed',
] as const;
export type EndReason = (typeof END_REASONS)[number];

/** Why an attempt is being stopped, set when the decision to stop it is made. */
export type StopReason = 'preempted' | 'cancelled' | 'max-runtime';

export function isWorkloadStatus(s: string): s is WorkloadStatus {
  return (WORKLOAD_STATUSES as readonly string[]).includes(s);
}
