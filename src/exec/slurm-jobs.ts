// Slurm's view of jobs, as fabrik needs it: `squeue --json` parsed (Slurm 22.05, OpenAPI v0.0.38
// shapes; later versions' arrays are read too), and one job's state plus fabrik's exit records
// turned into an Observation. Pure.
import type { Observation } from './types.js';

export interface SlurmJob {
  readonly jobId: string;
  /** RUNNING, PENDING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, ... */
  readonly state: string;
  /** The batch script's exit code, or undefined when it was killed by a signal. */
  readonly exitCode?: number;
  readonly signal?: number;
  readonly reason: string;
  readonly comment: string;
  readonly name: string;
  readonly nodes: string;
}

/** What the batch script and each task wrote when they ended (see slurm-script.ts). */
export interface ExitRecord {
  readonly jobId: string;
  readonly code: number;
  readonly signal: string | null;
  /** The task's memory cgroup counted an OOM kill (task.sh reads the kernel's oom_kill counter). */
  readonly oom?: boolean;
}

/** fabrik's records for one job of an attempt. */
export interface JobRecords {
  readonly started: boolean;
  readonly exit?: ExitRecord;
  /** By rank; undefined where a task wrote none (not ended, or not of this job). */
  readonly tasks: readonly (ExitRecord | undefined)[];
}

const COMMENT = /^fabrik:([^:]+):(\d+)$/;

export function fabrikComment(workloadId: string, attempt: number): string {
  return `fabrik:${workloadId}:${attempt}`;
}

export function parseComment(comment: string): { workloadId: string; attempt: number } | undefined {
  const m = COMMENT.exec(comment);
  return m ? { workloadId: m[1]!, attempt: Number(m[2]) } : undefined;
}

export function parseSqueueJson(text: string): SlurmJob[] {
  const doc = JSON.parse(text) as { jobs?: unknown[]; errors?: unknown[] };
  if (!Array.isArray(doc.jobs)) throw new Error('squeue --json: no "jobs" array in the output');
  return doc.jobs.map((raw) => {
    const j = raw as Record<string, unknown>;
    const state = Array.isArray(j.job_state) ? String(j.job_state[0] ?? 'UNKNOWN') : String(j.job_state ?? 'UNKNOWN');
    const exit = decodeExit(j.exit_code);
    return {
      jobId: String(j.job_id),
      state,
      ...exit,
      reason: String(j.state_reason ?? ''),
      comment: String(j.comment ?? ''),
      name: String(j.name ?? ''),
      nodes: String(j.nodes ?? ''),
    };
  });
}

/**
 * 22.05 reports the batch script's raw wait status (exit code << 8 | signal); later versions an
 * object `{status, return_code, signal: {id}}`.
 */
export function decodeExit(raw: unknown): { exitCode?: number; signal?: number } {
  if (typeof raw === 'number') {
    const sig = raw & 0x7f;
    return sig ? { signal: sig } : { exitCode: (raw >> 8) & 0xff };
  }
  if (raw && typeof raw === 'object') {
    const o = raw as { return_code?: unknown; signal?: { id?: unknown } };
    const rc = numberOf(o.return_code);
    const sig = numberOf(o.signal?.id);
    if (sig) return { signal: sig };
    if (rc !== undefined) return { exitCode: rc };
  }
  return {};
}

function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'number' in v && typeof (v as { number: unknown }).number === 'number') {
    return (v as { number: number }).number;
  }
  return undefined;
}

// Slurm still holds the allocation (or will): fabrik counts the workload as running.
const ACTIVE = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESIZING',
  'SIGNALING',
  'STAGE_OUT',
  'STOPPED',
  'RESV_DEL_HOLD',
]);
// Gone because of the machine, not the program: requeue-worthy (the reconciler's "lost").
const LOST = new Set(['NODE_FAIL', 'BOOT_FAIL', 'PREEMPTED', 'REVOKED']);

export function isActive(state: string): boolean {
  return ACTIVE.has(state);
}

/** One job's Observation from what squeue says (if it still lists the job) and fabrik's records. */
export function observeJob(jobId: string, job: SlurmJob | undefined, rec: JobRecords): Observation {
  if (job && ACTIVE.has(job.state)) {
    if (job.state === 'PENDING') return { state: 'running', message: `pending in Slurm (job ${jobId}): ${job.reason}` };
    return { state: 'running', message: `${job.state.toLowerCase()} in Slurm (job ${jobId}) on ${job.nodes}` };
  }
  if (job && LOST.has(job.state)) {
    return { state: 'lost', message: `Slurm job ${jobId} ended ${job.state}${reasonOf(job)}` };
  }
  // Over its --mem: the memory cgroup's OOM killer ended a process of the job (Slurm says so while
  // it lists the job; the task's exit record says so after).
  const oomTask = rec.tasks.findIndex((t) => t?.oom && t.code !== 0);
  if (job?.state === 'OUT_OF_MEMORY' || (job?.state !== 'COMPLETED' && oomTask >= 0)) {
    const t = oomTask >= 0 ? rec.tasks[oomTask]! : rec.tasks.find((x) => x !== undefined && x.code !== 0);
    const code = t?.code ?? job?.exitCode ?? 137;
    const who = oomTask >= 0 ? `task ${oomTask}` : 'a task';
    return {
      state: 'failed',
      exitCode: code,
      reason: 'OOMKilled',
      message: `${who} ran out of memory (killed by the out-of-memory killer at its memory limit); Slurm job ${jobId}`,
    };
  }
  // The root cause of a gang's failure: a task that exited non-zero by itself, before one that
  // srun killed (--kill-on-bad-exit) because another had failed.
  const exitedBadly = rec.tasks.findIndex((t) => t !== undefined && t.code !== 0 && !t.signal);
  const failedTask = exitedBadly >= 0 ? exitedBadly : rec.tasks.findIndex((t) => t !== undefined && t.code !== 0);
  const taskLine =
    failedTask >= 0
      ? `task ${failedTask} ${rec.tasks[failedTask]!.signal ? `was killed by ${rec.tasks[failedTask]!.signal}` : `exited with ${rec.tasks[failedTask]!.code}`}`
      : undefined;
  if (job) {
    // Slurm still lists the finished job: its state is the truth, the records add detail.
    if (job.state === 'COMPLETED') {
      return {
        state: 'succeeded',
        exitCode: 0,
        message: `all ${rec.tasks.length} task(s) exited with 0 (Slurm job ${jobId})`,
      };
    }
    const code = failedTask >= 0 ? rec.tasks[failedTask]!.code : (job.exitCode ?? 128 + (job.signal ?? 0));
    const what = taskLine ?? (job.signal ? `killed by signal ${job.signal}` : exitedWith(job.exitCode ?? 0));
    return { state: 'failed', exitCode: code, message: `${what}; Slurm job ${jobId} ${job.state}${reasonOf(job)}` };
  }
  if (rec.exit) {
    if (rec.exit.code === 0 && failedTask < 0) {
      return {
        state: 'succeeded',
        exitCode: 0,
        message: `all ${rec.tasks.length} task(s) exited with 0 (Slurm job ${jobId})`,
      };
    }
    const code = failedTask >= 0 ? rec.tasks[failedTask]!.code : rec.exit.code;
    const term = rec.exit.signal ? ` after ${rec.exit.signal} (cancelled or time limit)` : '';
    return { state: 'failed', exitCode: code, message: `${taskLine ?? exitedWith(code)}${term} (Slurm job ${jobId})` };
  }
  if (rec.started) {
    return {
      state: 'lost',
      message: `Slurm job ${jobId} started but ended without an exit record (killed, or its node failed)`,
    };
  }
  return { state: 'lost', message: `Slurm job ${jobId} is unknown to Slurm and never started` };
}

/** Shells and srun report a task killed by signal N as 128 + N. */
function exitedWith(code: number): string {
  return code > 128 && code < 160 ? `exited with ${code} (signal ${code - 128})` : `exited with ${code}`;
}

function reasonOf(job: SlurmJob): string {
  return job.reason && job.reason !== 'None' ? ` (${job.reason})` : '';
}
