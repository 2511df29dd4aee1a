// The words of metering shared by usage, billing and reporting: what is measured (metrics), one
// hourly rollup row (UsageRecord), and the attempt facts usage is derived from.
import type { PriorityClass } from '../scheduler/types.js';
import type { UsageHourlyTable } from '../store/schema.js';

export const USAGE_METRICS = [
  'gpu_seconds',
  'tokens_in',
  'tokens_out',
  'stored_byte_seconds',
  'energy_wh',
  'co2_g',
] as const;
export type UsageMetric = (typeof USAGE_METRICS)[number];

export function isUsageMetric(s: string): s is UsageMetric {
  return (USAGE_METRICS as readonly string[]).includes(s);
}

/** One row of `usage_hourly`, camelCase. '' where a dimension does not apply. */
export interface UsageRecord {
  /** RFC 3339 hour start: 2026-12-01T13:00:00.000Z */
  readonly hour: string;
  readonly orgId: string;
  readonly projectId: string;
  readonly metric: UsageMetric;
  readonly pool: string;
  readonly gpuModel: string;
  /** The workload's priority class (GPU metrics), else ''. */
  readonly priority: PriorityClass | '';
  /** Token metrics, and the GPU metrics of an inference replica: the deployment it serves. */
  readonly deploymentId: string;
  /** The deployment's model ref (its registry repo, or the deployment's name without one). */
  readonly model: string;
  readonly quantity: number;
  /** True where the figure is an estimate (energy and CO2 without a power measurement). */
  readonly estimated: boolean;
  readonly updatedAt: string;
}

/** The dimensions of a usage row: everything but the quantity. */
export type UsageKey = Omit<UsageRecord, 'quantity' | 'estimated' | 'updatedAt'>;

export function toUsageRecord(r: UsageHourlyTable): UsageRecord {
  return {
    hour: r.hour,
    orgId: r.org_id,
    projectId: r.project_id,
    metric: r.metric as UsageMetric,
    pool: r.pool,
    gpuModel: r.gpu_model,
    priority: r.priority as PriorityClass | '',
    deploymentId: r.deployment_id,
    model: r.model,
    quantity: Number(r.quantity),
    estimated: Number(r.estimated) === 1,
    updatedAt: r.updated_at,
  };
}

export const HOUR_MS = 3_600_000;

/** The hour containing `ms` (epoch milliseconds), as epoch milliseconds. */
export function hourFloor(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

export function hourKey(ms: number): string {
  return new Date(hourFloor(ms)).toISOString();
}

/** One GPU node of a placement, for the per-node share of energy. */
export interface AttemptNode {
  readonly node: string;
  /** GPUs of the attempt on this node. */
  readonly gpus: number;
  /** GPUs the node has (its share of CPU, memory and network power is split by this). */
  readonly nodeGpus: number;
}

/** A power sample of an attempt: the sum over its GPUs at `at` (epoch ms). */
export interface PowerSample {
  readonly at: number;
  readonly watts: number;
}

/** What attemptUsage() needs to know of one attempt. Times are epoch ms; ended undefined while it runs. */
export interface AttemptFacts {
  readonly startedAt: number;
  readonly endedAt?: number;
  readonly gpuModel: string;
  readonly nodes: readonly AttemptNode[];
  /** Measured GPU power during the attempt, in time order; empty: estimated from TDP. */
  readonly samples: readonly PowerSample[];
}

/** A GB-month: 10^9 bytes held for 730 hours (an average month), in byte-seconds. */
export const GB_MONTH_BYTE_SECONDS = 1e9 * 730 * 3600;

/** How usage reports group: by time bucket, pool, model, deployment, or (an org's) project. */
export const USAGE_BY = ['day', 'hour', 'pool', 'model', 'deployment', 'project'] as const;
export type UsageBy = (typeof USAGE_BY)[number];
