// Tiresias' two-dimensional attained service (Gu et al., NSDI '19), the pure part: which queue a
// workload is in and when a starved one is promoted. Apart from tiresias.ts so that queue order
// can read it without importing the scheduler's state.
import type { ResolvedOptions } from './options.js';
import type { RunningWorkload, WorkloadRequest } from './types.js';

export type LasOptions = Pick<ResolvedOptions, 'lasThresholdsGpuS' | 'lasStarveLimitS'>;

/** The queue (0 = highest priority) for an attained service. */
export function lasLevel(attainedGpuS: number, thresholds: readonly number[]): number {
  let k = 0;
  while (k < thresholds.length && attainedGpuS >= thresholds[k]) k++;
  return k;
}

/** A pending workload that has waited STARVELIMIT in a lower queue since its last run goes to Q0. */
export function lasPromoted(req: WorkloadRequest, now: number, opts: LasOptions): boolean {
  return lasLevel(req.attainedGpuS ?? 0, opts.lasThresholdsGpuS) > 0 && now - req.submittedAt >= opts.lasStarveLimitS;
}

/**
 * Attained service that counts for the queue of a running workload at `now`: what it brought plus
 * GPUs × time in this run, from 0 if this run began with a promotion. The engine stores this when
 * it preempts the workload (the next request's `attainedGpuS`).
 */
export function tiresiasAttained(w: RunningWorkload, now: number, opts: LasOptions): number {
  const before = lasPromoted(w, w.startedAt, opts) ? 0 : (w.attainedGpuS ?? 0);
  return before + w.nodes * w.gpusPerNode * Math.max(0, now - w.startedAt);
}
