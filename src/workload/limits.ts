// What a task may use: the spec's cpu and memory per node become hard limits, and every task gets a
// pids limit (the operator's FABRIK_TASK_PIDS_MAX, default 4096), so a fork bomb stays contained.
import { DEFAULT_PIDS_LIMIT, type TaskLimits } from '../exec/types.js';
import type { WorkloadSpec } from './spec.js';

export function limitsOf(spec: WorkloadSpec, env: NodeJS.ProcessEnv = process.env): TaskLimits {
  return {
    cpus: spec.cpu,
    memoryBytes: spec.memoryGiB === undefined ? undefined : spec.memoryGiB * 1024 ** 3,
    pids: pidsLimit(env),
  };
}

function pidsLimit(env: NodeJS.ProcessEnv): number {
  const n = Number(env.FABRIK_TASK_PIDS_MAX ?? DEFAULT_PIDS_LIMIT);
  return Number.isInteger(n) && n >= 16 ? n : DEFAULT_PIDS_LIMIT;
}
