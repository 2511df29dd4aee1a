// Defaults of the core's knobs and the small tables every module shares.
import type { PriorityClass, ScheduleOptions } from './types.js';

export interface ResolvedOptions {
  readonly maxBlockedPerPool: number;
  readonly agingHorizonS: number;
  readonly fairShareHorizonS: number;
  readonly overdueAfterS: number;
  readonly reservationsPerPool: number;
  readonly preemptionCooldownS: number;
}

/**
 * maxBlockedPerPool bounds a cycle's work (Slurm's main pass looks at 100 jobs, its backfill
 * pass at 500). The horizons bound how far size and usage can push a workload back, and so
 * bound waiting: see queue-order.ts.
 */
export const DEFAULT_OPTIONS: ResolvedOptions = {
  maxBlockedPerPool: 500,
  // 2 h (was 4 h): on the Philly bench the size push-back of whole-node jobs was the rest of the
  // p99 gap to FIFO+backfill after the victim-order fix (p99 35,665 s → 32,674 s; avg wait 2,210 →
  // 2,631 s, still 3.6× below FIFO). It also halves the rank bound (docs/scheduler.md).
  agingHorizonS: 2 * 3600,
  fairShareHorizonS: 3600,
  // Waiting beats the size penalty: once `now ≥ key + overdueAfterS` a workload goes first in its
  // class (by key), so no one is ranked ahead of it for longer than agingHorizonS + overdueAfterS.
  // Off by default: on the Philly bench 1 h gains little once the preemption churn is fixed
  // (p99 35,665 → 34,656 s), and in the scheduler bench, where most of the queue is overdue, the
  // blocked big gangs use up the scan bound (first-cycle placements halve, full cycle p99 217 ms).
  // See docs/scheduler.md.
  overdueAfterS: Number.POSITIVE_INFINITY,
  // EASY reserves for one blocked workload; with several, the next whole-node gangs in line are
  // not starved by small work that keeps every node partly used (conservative backfill for the
  // first K). Default 1 (EASY): 4 and 32 did not move the Philly p99 and cost cycle time.
  reservationsPerPool: 1,
  // A preemptible workload preempted before runs this long before a higher class may take it
  // again (Slurm's PreemptExemptTime): without it, requeued work is placed and preempted again
  // within seconds.
  // Claims within their guarantee ignore it (the guarantee is obtainable within one cycle).
  preemptionCooldownS: 600,
};

export function resolveOptions(o: ScheduleOptions | undefined): ResolvedOptions {
  return {
    maxBlockedPerPool: Math.max(1, Math.floor(o?.maxBlockedPerPool ?? DEFAULT_OPTIONS.maxBlockedPerPool)),
    agingHorizonS: Math.max(0, o?.agingHorizonS ?? DEFAULT_OPTIONS.agingHorizonS),
    fairShareHorizonS: Math.max(0, o?.fairShareHorizonS ?? DEFAULT_OPTIONS.fairShareHorizonS),
    overdueAfterS: Math.max(0, o?.overdueAfterS ?? DEFAULT_OPTIONS.overdueAfterS),
    reservationsPerPool: Math.max(1, Math.floor(o?.reservationsPerPool ?? DEFAULT_OPTIONS.reservationsPerPool)),
    preemptionCooldownS: Math.max(0, o?.preemptionCooldownS ?? DEFAULT_OPTIONS.preemptionCooldownS),
  };
}

/** Lower rank = more important. */
export const PRIORITY_RANK: Readonly<Record<PriorityClass, number>> = {
  critical: 0,
  high: 1,
  normal: 2,
  preemptible: 3,
};
export const PREEMPTIBLE_RANK = PRIORITY_RANK.preemptible;
