// Defaults of the core's knobs and the small tables every module shares.
import type { DrainVictims, PriorityClass, ScheduleOptions } from './types.js';

export interface ResolvedOptions {
  readonly maxBlockedPerPool: number;
  readonly agingHorizonS: number;
  readonly fairShareHorizonS: number;
  readonly overdueAfterS: number;
  readonly drainAfterS: number;
  readonly drainVictims: DrainVictims;
  readonly drainGraceS: number;
  readonly reservationsPerPool: number;
  readonly preemptionCooldownS: number;
  readonly priorityWeightAge: number;
  readonly priorityWeightFairshare: number;
  readonly priorityWeightJobSize: number;
  readonly priorityMaxAgeS: number;
  readonly bfWindowS: number;
  readonly bfReservations: number;
  readonly lasThresholdsGpuS: readonly number[];
  readonly lasStarveLimitS: number;
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
  // The wait bound, on by default: starved 1.5 h past its key (so at most 3.5 h after submission),
  // a workload drains the GPUs it needs (starvation.ts), taking work of its own or a lower class
  // whatever the quotas (`any`): the one exception to "guaranteed GPUs are never taken away", and
  // the victims requeue. `borrowed` keeps guarantees but bounds nothing for a borrowing whole-pod
  // gang (mixed site week at 90 %: longest first wait 39.4 h, FIFO+backfill 40.5 h; `any`: 4.1 h).
  // 1.5 h: 2 h missed the p99 goal (3.81 h against 3.78 h), 1 h shields more work from drains
  // (work that started starved is never drained) and the longest wait grew to 21.6 h.
  // docs/scheduler.md, "Starvation bound", has the runs. `drainAfterS: Infinity` turns it off.
  drainAfterS: 1.5 * 3600,
  drainVictims: 'any',
  // Work that started starved is spared by drains this long (it used to be spared for its whole
  // run: on a second mixed week (seed 21, 90 %) starved runs of days held pods off the next starved
  // gang, longest first wait 28.3 h; spared 2 h: 5.3 h, 4 h: 5.9 h).
  drainGraceS: 2 * 3600,
  // EASY reserves for one blocked workload; with several, the next whole-node gangs in line are
  // not starved by small work that keeps every node partly used (conservative backfill for the
  // first K). Default 1 (EASY): 4 and 32 did not move the Philly p99 and cost cycle time.
  reservationsPerPool: 1,
  // A preemptible workload preempted before runs this long before a higher class may take it
  // again (Slurm's PreemptExemptTime): without it, requeued work is placed and preempted again
  // within seconds.
  // Claims within their guarantee ignore it (the guarantee is obtainable within one cycle).
  preemptionCooldownS: 600,
  // slurm-multifactor (multifactor.ts has the sources): the weights of the Slurm documentation's
  // configuration example (priority_multifactor.html), fair share dominant as at large GPU sites;
  // PriorityMaxAge 7-0 (Slurm's default); bf_window 1 day (1440 min, Slurm's default).
  priorityWeightAge: 1000,
  priorityWeightFairshare: 10_000,
  priorityWeightJobSize: 1000,
  priorityMaxAgeS: 7 * 86_400,
  bfWindowS: 86_400,
  // Slurm's backfill plans every job it tests (up to bf_max_job_test) within bf_window; the core
  // plans the first 16 blocked ones (each a timeline replay), the rest may be passed.
  bfReservations: 16,
  // tiresias-las (tiresias.ts): two queues split at 3,250 GPU-seconds (the authors' simulator,
  // SymbioticLab/Tiresias simulator/jobs.py); STARVELIMIT 4 h, our choice.
  lasThresholdsGpuS: [3250],
  lasStarveLimitS: 4 * 3600,
};

export function resolveOptions(o: ScheduleOptions | undefined): ResolvedOptions {
  return {
    maxBlockedPerPool: Math.max(1, Math.floor(o?.maxBlockedPerPool ?? DEFAULT_OPTIONS.maxBlockedPerPool)),
    agingHorizonS: Math.max(0, o?.agingHorizonS ?? DEFAULT_OPTIONS.agingHorizonS),
    fairShareHorizonS: Math.max(0, o?.fairShareHorizonS ?? DEFAULT_OPTIONS.fairShareHorizonS),
    overdueAfterS: Math.max(0, o?.overdueAfterS ?? DEFAULT_OPTIONS.overdueAfterS),
    drainAfterS: Math.max(0, o?.drainAfterS ?? DEFAULT_OPTIONS.drainAfterS),
    drainVictims: o?.drainVictims === 'borrowed' ? 'borrowed' : DEFAULT_OPTIONS.drainVictims,
    drainGraceS: Math.max(0, o?.drainGraceS ?? DEFAULT_OPTIONS.drainGraceS),
    reservationsPerPool: Math.max(1, Math.floor(o?.reservationsPerPool ?? DEFAULT_OPTIONS.reservationsPerPool)),
    preemptionCooldownS: Math.max(0, o?.preemptionCooldownS ?? DEFAULT_OPTIONS.preemptionCooldownS),
    priorityWeightAge: Math.max(0, o?.priorityWeightAge ?? DEFAULT_OPTIONS.priorityWeightAge),
    priorityWeightFairshare: Math.max(0, o?.priorityWeightFairshare ?? DEFAULT_OPTIONS.priorityWeightFairshare),
    priorityWeightJobSize: Math.max(0, o?.priorityWeightJobSize ?? DEFAULT_OPTIONS.priorityWeightJobSize),
    priorityMaxAgeS: Math.max(1, o?.priorityMaxAgeS ?? DEFAULT_OPTIONS.priorityMaxAgeS),
    bfWindowS: Math.max(0, o?.bfWindowS ?? DEFAULT_OPTIONS.bfWindowS),
    bfReservations: Math.max(1, Math.floor(o?.bfReservations ?? DEFAULT_OPTIONS.bfReservations)),
    lasThresholdsGpuS: [...(o?.lasThresholdsGpuS ?? DEFAULT_OPTIONS.lasThresholdsGpuS)]
      .filter((x) => Number.isFinite(x) && x > 0)
      .sort((a, b) => a - b),
    lasStarveLimitS: Math.max(0, o?.lasStarveLimitS ?? DEFAULT_OPTIONS.lasStarveLimitS),
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
