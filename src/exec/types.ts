// The executor interface: what really runs a placed workload. The control plane keeps the desired
// state in the database; executors report the engine's actual state, and the reconciler
// (./reconciler.ts) makes the two agree, the engine's truth winning.
import type { Placement } from '../scheduler/types.js';
import type { ProjectIdentity } from '../domain/identity.js';

export type ExecutorName = 'local' | 'slurm';

/** One task of a gang: one per node (torch.distributed's "node" level; ranks are per node here). */
export interface TaskPlan {
  readonly rank: number;
  readonly node: string;
  readonly gpuIndexes: readonly number[];
}

export interface LaunchRequest {
  readonly workloadId: string;
  /** 1 for the first run; retries and requeues count up. Logs and state are kept per attempt. */
  readonly attempt: number;
  readonly name: string;
  /** `org.project` */
  readonly project: string;
  readonly projectId: string;
  /** The project's own Unix identity: every task runs as it, never as the server's user. */
  readonly identity: ProjectIdentity;
  /** Per task (node): enforced by cgroups on the local executor, by the engine on Slurm. */
  readonly limits: TaskLimits;
  readonly run: string;
  readonly setup?: string;
  /** The spec's environment (reserved names were refused at submit time). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * The spec's working directory, resolved (realpath) inside the allowed root and shown read-only;
   * undefined: the workload's own directory (read-write), the default.
   */
  readonly workdir?: string;
  readonly placement: Placement;
  readonly maxRuntimeS: number;
  /**
   * Registry inputs, materialized on this machine (root's, readable by the project's gid only):
   * shown at `target` where the executor has a mount namespace (the local sandbox), else reached
   * at `source` itself. Either way `FABRIK_INPUT_<n>` names where the task finds input n.
   */
  readonly mounts?: readonly Mount[];
}

export interface Mount {
  /** The materialized copy on the host (or the shared filesystem). */
  readonly source: string;
  /** Where the spec asked for it inside the task's filesystem. */
  readonly target: string;
  readonly readOnly: true;
}

/**
 * `FABRIK_INPUT_<n>` for each mount: its target where the executor remaps paths (`remapped`),
 * else the materialized source, which is where such a task reads it.
 */
export function mountEnv(mounts: readonly Mount[] | undefined, remapped: boolean): Record<string, string> {
  return Object.fromEntries((mounts ?? []).map((m, i) => [`FABRIK_INPUT_${i}`, remapped ? m.target : m.source]));
}

/** An opaque record of how to find a launched workload again after a restart, stored in the database. */
export type ExecHandle = Record<string, unknown>;

export interface TaskLimits {
  /** CPUs (a quota of CPU time, not pinning); undefined: no limit. */
  readonly cpus?: number;
  readonly memoryBytes?: number;
  /** Processes and threads; always set, so a fork bomb is contained. */
  readonly pids: number;
}

export const DEFAULT_PIDS_LIMIT = 4096;

export type ObservedState = 'running' | 'succeeded' | 'failed' | 'lost';

export interface Observation {
  readonly state: ObservedState;
  /** Exit code of the first failing task, or 0. */
  readonly exitCode?: number;
  /** A person-readable line from the engine (e.g. Slurm's reason, or "task 1 exited with 3"). */
  readonly message: string;
  /** Why it failed when the engine knows more than the exit code (the kernel's OOM killer). */
  readonly reason?: 'OOMKilled';
}

export interface LogRequest {
  readonly projectId: string;
  readonly workloadId: string;
  readonly attempt: number;
  readonly task: number;
  /** Only the last N lines. */
  readonly tail?: number;
}

/** Which attempt, as the engine knows it (the local supervisors' pid marks, the Slurm job's comment). */
export interface AttemptRef {
  readonly workloadId: string;
  readonly projectId: string;
  readonly attempt: number;
  readonly identity: ProjectIdentity;
}

export interface Executor {
  readonly name: ExecutorName;
  /**
   * Starts every task of the gang. Idempotent per attempt: what an earlier call for the same attempt
   * started (before a crash) is adopted, never started twice. Throws ExecError when the engine refuses.
   */
  launch(req: LaunchRequest): Promise<ExecHandle>;
  /** What the engine holds of an attempt, without starting anything; undefined if nothing. */
  adopt(ref: AttemptRef): Promise<ExecHandle | undefined>;
  /** SIGTERM or SIGKILL (or the engine's equivalent); returns without waiting for the work to end. */
  signal(handle: ExecHandle, signal: 'TERM' | 'KILL'): Promise<void>;
  /** The engine's truth about launched attempts, keyed as the caller keyed the handles. */
  observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>>;
  /** Path of a task's log file for an attempt, or undefined if there is none (yet). */
  logPath(req: LogRequest): string | undefined;
  close?(): Promise<void>;
}

export class ExecError extends Error {
  constructor(
    message: string,
    /** Whether trying again later may work (engine unreachable) or not (engine rejected the job). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ExecError';
  }
}

/** Environment names fabrik sets for every task; specs may not set them. */
export function taskEnv(
  req: LaunchRequest,
  task: TaskPlan,
  masterAddr: string,
  masterPort: number,
): Record<string, string> {
  const gpus = task.gpuIndexes.join(',');
  return {
    FABRIK_WORKLOAD_ID: req.workloadId,
    FABRIK_WORKLOAD_NAME: req.name,
    FABRIK_PROJECT: req.project,
    FABRIK_ATTEMPT: String(req.attempt),
    FABRIK_NUM_NODES: String(req.placement.nodes.length),
    FABRIK_NODE_RANK: String(task.rank),
    CUDA_VISIBLE_DEVICES: gpus,
    NVIDIA_VISIBLE_DEVICES: gpus,
    MASTER_ADDR: masterAddr,
    MASTER_PORT: String(masterPort),
    WORLD_SIZE: String(req.placement.nodes.length),
    RANK: String(task.rank),
    NODE_RANK: String(task.rank),
    LOCAL_RANK: '0',
  };
}

export function tasksOf(placement: Placement): TaskPlan[] {
  return placement.nodes.map((n, rank) => ({ rank, node: n.node, gpuIndexes: n.gpuIndexes }));
}
