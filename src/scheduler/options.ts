// Defaults of the core's knobs and the small tables every module shares.
import type { PriorityClass, ScheduleOptions } from './types.js';

export interface ResolvedOptions {
  readonly maxBlockedPerPool: number;
  readonly agingHorizonS: number;
  readonly fairShareHorizonS: number;
}

/**
 * maxBlockedPerPool bounds a cycle's work (Slurm's main pass looks at 100 jobs, its backfill
 * pass at 500). The horizons bound how far size and usage can push a workload back, and so
 * bound waiting: see queue-order.ts.
 */
export const DEFAULT_OPTIONS: ResolvedOptions = {
  maxBlockedPerPool: 500,
  agingHorizonS: 4 * 3600,
  fairShareHorizonS: 3600,
};

export function resolveOptions(o: ScheduleOptions | undefined): ResolvedOptions {
  return {
    maxBlockedPerPool: Math.max(1, Math.floor(o?.maxBlockedPerPool ?? DEFAULT_OPTIONS.maxBlockedPerPool)),
    agingHorizonS: Math.max(0, o?.agingHorizonS ?? DEFAULT_OPTIONS.agingHorizonS),
    fairShareHorizonS: Math.max(0, o?.fairShareHorizonS ?? DEFAULT_OPTIONS.fairShareHorizonS),
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
