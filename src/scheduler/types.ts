// Plain data that flows into and out of the scheduler core.
// The core is a function of a Snapshot to Decisions: no clock, no I/O, no randomness.
// The server builds snapshots from the database; the simulator builds them on a virtual clock.
// All times are seconds on the caller's clock (epoch seconds in the server, trace seconds in the simulator).

export const PRIORITY_CLASSES = ['critical', 'high', 'normal', 'preemptible'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export const WORKLOAD_KINDS = ['training', 'batch', 'simulation', 'interactive', 'inference'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/**
 * Scheduling policies the core knows. `fabrik` is ours; the others are baselines for the simulator:
 * `slurm-multifactor` (Slurm's priority/multifactor + sched/backfill, multifactor.ts) and
 * `tiresias-las` (Tiresias' discretized 2D-LAS, Gu et al., NSDI '19, tiresias.ts).
 */
export const DRAIN_VICTIMS = ['borrowed', 'any'] as const;
export type DrainVictims = (typeof DRAIN_VICTIMS)[number];

export const POLICIES = [
  'fabrik',
  'fifo',
  'fifo-backfill',
  'srtf-oracle',
  'slurm-multifactor',
  'tiresias-las',
] as const;
export type PolicyName = (typeof POLICIES)[number];

/** A node as the scheduler sees it. Only `schedulable` nodes (state ready) take new work. */
export interface SchedNode {
  readonly name: string;
  readonly pool: string;
  readonly gpuModel: string;
  readonly pod: string;
  readonly rack: string;
  /** InfiniBand leaf switch id. */
  readonly leaf: string;
  /** InfiniBand spine id. */
  readonly spine: string;
  readonly gpus: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly schedulable: boolean;
}

/** Quota of one project in one pool, in GPUs. guaranteed <= limit. */
export interface PoolQuota {
  readonly project: string;
  readonly pool: string;
  readonly guaranteed: number;
  readonly limit: number;
  /** Share of idle capacity when borrowing (default 1). */
  readonly weight?: number;
}

/** What a workload asks for. A gang: `nodes` nodes with `gpusPerNode` GPUs each, all or nothing. */
export interface WorkloadRequest {
  readonly id: string;
  readonly project: string;
  readonly pool: string;
  readonly kind: WorkloadKind;
  readonly priority: PriorityClass;
  readonly nodes: number;
  readonly gpusPerNode: number;
  /** Upper bound of run time; used by backfill and estimates. */
  readonly maxRuntimeS: number;
  readonly submittedAt: number;
  /** Node labels that must match exactly. */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Whole nodes only, even for fewer than all GPUs of a node. */
  readonly exclusive?: boolean;
  /** The nodes sovereignty policies allow it on (absent: all). Decided outside the core. */
  readonly allowedNodes?: NodeAllowance;
  /** Only the `srtf-oracle` policy may read this: the true run time, known to nobody real. */
  readonly oracleRuntimeS?: number;
  /**
   * Only `tiresias-las` reads this: attained service (GPUs × seconds run) that counts for its
   * priority queue, from runs before this one (for running work: before `startedAt`). Set by the
   * simulator's engine (with `tiresiasAttained` on preemption); the server never sets it.
   */
  readonly attainedGpuS?: number;
}

/**
 * Which nodes a policy lets a workload use. Workloads with the same `key` are allowed the same
 * nodes (the caller builds one allowance per policy set and kind of workload, shared by reference).
 */
export interface NodeAllowance {
  readonly key: string;
  /** Names of the allowed nodes. */
  readonly nodes: readonly string[];
  /** The policies that forbid the other nodes (ids, and the set's version or hash), for reasons. */
  readonly policy: string;
}

export interface NodeAssignment {
  readonly node: string;
  /** GPU indexes on that node, 0-based. */
  readonly gpuIndexes: readonly number[];
}

export interface Placement {
  readonly pod: string;
  readonly nodes: readonly NodeAssignment[];
  /** Distinct InfiniBand leaf switches the placement spans. */
  readonly leaves: readonly string[];
}

export interface RunningWorkload extends WorkloadRequest {
  readonly startedAt: number;
  readonly placement: Placement;
  /** Whether it runs on borrowed capacity (above its project's guaranteed quota). */
  readonly borrowed: boolean;
  /**
   * Preempted or cancelled and still releasing its GPUs. The core counts its GPUs as taken,
   * never picks it as a victim again, and reports `PreemptingVictims` for work waiting on it.
   */
  readonly terminating?: boolean;
  /**
   * Times it was preempted before this run. With `preemptionCooldownS`, work preempted before is
   * not preempted again by a higher class until it has run that long (no thrashing).
   */
  readonly preemptions?: number;
}

/** Knobs of the core. All optional; defaults in `options.ts` (DEFAULT_OPTIONS). */
export interface ScheduleOptions {
  /** Most blocked workloads examined per pool and cycle; the rest get a cheap `Priority` reason. */
  readonly maxBlockedPerPool?: number;
  /** fabrik: the most a workload's rank is pushed back for its size (seconds of aging). */
  readonly agingHorizonS?: number;
  /** fabrik: the most a borrower's rank is pushed back for its recent usage (seconds of aging). */
  readonly fairShareHorizonS?: number;
  /**
   * fabrik: a workload is overdue once `now ≥ submittedAt + size push-back + overdueAfterS`; overdue
   * work goes first in its class, oldest key first (the wait bound).
   */
  readonly overdueAfterS?: number;
  /**
   * fabrik: a workload is starved once `now ≥ submittedAt + size push-back + drainAfterS`: it goes
   * first in its class and, if it does not fit, preempts work of its own or a lower class on the
   * GPUs it needs (starvation.ts). The wait bound: agingHorizonS + drainAfterS + drainGraceS
   * (5.5 h by default) and the cooldown (docs/scheduler.md). Infinity turns it off.
   */
  readonly drainAfterS?: number;
  /**
   * fabrik: what a drain may preempt. `any` (default): all work of its own or a lower class, whatever
   * the quotas, for a constant bound. `borrowed`: lower classes, and of its own class only work above
   * its project's guarantee, so guarantees hold and the wait also includes what guaranteed work on
   * those GPUs declared.
   */
  readonly drainVictims?: DrainVictims;
  /**
   * fabrik: work that was starved itself when it started keeps its GPUs this long before a drain may
   * take them (default 2 h): long enough that two starved workloads do not take GPUs from each other
   * in turn, short enough that a starved run of days cannot hold off the next starved one.
   */
  readonly drainGraceS?: number;
  /** fabrik: blocked workloads per pool that hold a backfill reservation (fifo-backfill: always 1). */
  readonly reservationsPerPool?: number;
  /**
   * fabrik: seconds a preemptible workload that was preempted before (`preemptions` > 0) runs
   * before a higher class may preempt it again. Claims within their guarantee ignore it.
   */
  readonly preemptionCooldownS?: number;
  /** slurm-multifactor: PriorityWeightAge (default 1,000). */
  readonly priorityWeightAge?: number;
  /** slurm-multifactor: PriorityWeightFairshare (default 10,000). */
  readonly priorityWeightFairshare?: number;
  /** slurm-multifactor: PriorityWeightJobSize (default 1,000). */
  readonly priorityWeightJobSize?: number;
  /** slurm-multifactor: PriorityMaxAge, seconds; the age factor is 1 from then on (default 7 days). */
  readonly priorityMaxAgeS?: number;
  /** slurm-multifactor: bf_window, seconds; no reservation starts later than now + this (default 1 day). */
  readonly bfWindowS?: number;
  /** slurm-multifactor: blocked workloads per pool that hold a backfill reservation (default 16). */
  readonly bfReservations?: number;
  /** tiresias-las: attained-service thresholds between its queues, GPU-seconds, ascending (default [3250]). */
  readonly lasThresholdsGpuS?: readonly number[];
  /** tiresias-las: STARVELIMIT, seconds waited (since its last run) after which work moves to the top queue (default 4 h). */
  readonly lasStarveLimitS?: number;
}

export interface Snapshot {
  readonly now: number;
  readonly nodes: readonly SchedNode[];
  readonly quotas: readonly PoolQuota[];
  readonly running: readonly RunningWorkload[];
  readonly pending: readonly WorkloadRequest[];
  /** Recent usage per project (decayed GPU-seconds), for fair sharing of idle capacity. */
  readonly usage?: Readonly<Record<string, number>>;
  readonly policy?: PolicyName;
  readonly options?: ScheduleOptions;
}

/** Why a workload is still pending. A closed set: the API and CLI show these words. */
export const PENDING_REASONS = [
  'QuotaLimit',
  'WaitingForCapacity',
  'TopologyUnsatisfiable',
  'PlacementConstraint',
  'PolicyConstraint',
  'PreemptingVictims',
  'BackfillReservation',
  'Priority',
  'NodePoolUnavailable',
] as const;
export type PendingReason = (typeof PENDING_REASONS)[number];

export interface PlaceDecision {
  readonly workloadId: string;
  readonly placement: Placement;
  readonly borrowed: boolean;
}

export interface PreemptDecision {
  readonly workloadId: string;
  /** The pending workload whose claim caused the preemption. */
  readonly forWorkloadId: string;
  readonly message: string;
}

export interface PendingDecision {
  readonly workloadId: string;
  readonly reason: PendingReason;
  readonly message: string;
  /** Estimated start on the snapshot's clock, when computable. */
  readonly estimatedStart?: number;
}

export interface Decisions {
  readonly place: readonly PlaceDecision[];
  readonly preempt: readonly PreemptDecision[];
  readonly pending: readonly PendingDecision[];
}
