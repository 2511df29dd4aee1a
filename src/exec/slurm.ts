// The Slurm executor: a placed workload becomes one batch job pinned to the scheduler's nodes
// (`--nodelist`), one task per node started with srun, per-task logs and exit records in the
// attempt's directory (see slurm-script.ts). Node names are Slurm's own: the fleet is imported
// from Slurm (slurm-fleet.ts).
//
// How an ending is learnt: `squeue --json` while Slurm still lists the job (MinJobAge), then the
// exit records the job wrote next to its logs. So the attempt directories must be on a filesystem
// that fabrik and the compute nodes share, as the logs already require. No accounting database.
//
// Stop: SIGTERM to the job's tasks (`scancel --signal=TERM <job>`, which spares the batch script),
// up to the grace period for the job to end, then SIGKILL to the task step (`<job>.0`), and
// Slurm's own `scancel <job>` only if that did not end it. stop() returns when the job has ended
// or the grace period is over, like the local executor's.
//
// Crash safety: fabrik:<workload>:<attempt> in the job's comment, and the job id in the attempt
// directory, find a job again when the database lost its handle (crash between sbatch and commit).
// launch() does that itself for an attempt it has seen before, so launching twice never runs twice.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientEnv, type CommandRunner, execFileRunner, slurmCall } from './slurm-cmd.js';
import {
  type ExitRecord,
  fabrikComment,
  isActive,
  type JobRecords,
  observeJob,
  parseComment,
  parseSqueueJson,
  type SlurmJob,
} from './slurm-jobs.js';
import { BATCH_SCRIPT, TASK_SCRIPT } from './slurm-script.js';
import {
  ExecError,
  type ExecHandle,
  type Executor,
  type LaunchRequest,
  type LogRequest,
  type Observation,
  taskEnv,
  tasksOf,
} from './types.js';

export interface SlurmExecutorOptions {
  /** Per-workload directories (scripts, logs, exit records); shared with the compute nodes. */
  readonly logDir: string;
  /** Partition to submit to: a name, or chosen per request (e.g. the pool of the placed nodes). */
  readonly partition?: string | ((req: LaunchRequest) => string | undefined);
  /** Path of slurm.conf for the clients; default: $SLURM_CONF, else Slurm's compiled-in default. */
  readonly slurmConf?: string;
  readonly commandRunner?: CommandRunner;
  /** Timeout of one Slurm command (ms); sbatch itself retries a busy controller for a while. */
  readonly commandTimeoutMs?: number;
  /** Cap of each task's log file. */
  readonly logCapBytes?: number;
  /** CPUs for each task (srun/sbatch --cpus-per-task); Slurm's default (1) when unset. */
  readonly cpusPerTask?: number;
}

export interface SlurmHandle {
  readonly executor: 'slurm';
  readonly jobId: string;
  readonly workloadId: string;
  readonly attempt: number;
}

export interface FoundJob {
  readonly handle: SlurmHandle;
  /** Slurm's state when squeue still lists the job, else `FINISHED` (exit record) or `GONE`. */
  readonly state: string;
}

const DEFAULT_LOG_CAP = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STOP_POLL_MS = 250;
const KILL_WAIT_MS = 3000;

export function attemptDir(logDir: string, workloadId: string, attempt: number): string {
  return join(logDir, workloadId, `attempt-${attempt}`);
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm' as const;
  private readonly run: CommandRunner;
  private readonly env: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(private readonly opts: SlurmExecutorOptions) {
    this.run = opts.commandRunner ?? execFileRunner;
    this.env = clientEnv(opts.slurmConf ?? process.env.SLURM_CONF);
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async launch(req: LaunchRequest): Promise<ExecHandle> {
    if (!SAFE_ID.test(req.workloadId))
      throw new ExecError(`workload id ${JSON.stringify(req.workloadId)} is not usable as a directory name`, false);
    if (!Number.isInteger(req.attempt) || req.attempt < 1)
      throw new ExecError(`attempt must be a positive integer, got ${req.attempt}`, false);
    const nodes = req.placement.nodes.map((n) => n.node);
    if (nodes.length === 0) throw new ExecError('the placement has no nodes', false);
    const dir = attemptDir(this.opts.logDir, req.workloadId, req.attempt);
    if (existsSync(dir)) {
      // Launched before (fabrik crashed after sbatch, or sbatch's answer was lost): adopt that job.
      const mine = (await this.findByComment(req.workloadId)).filter((f) => f.handle.attempt === req.attempt);
      if (mine.length) return mine[mine.length - 1]!.handle as unknown as ExecHandle;
    }
    mkdirSync(dir, { recursive: true });
    this.writeAttemptFiles(dir, req);

    const gpus = Math.max(...req.placement.nodes.map((n) => n.gpuIndexes.length));
    const minutes = Math.max(1, Math.ceil(req.maxRuntimeS / 60));
    const partition = typeof this.opts.partition === 'function' ? this.opts.partition(req) : this.opts.partition;
    const args = [
      '--parsable',
      `--job-name=${req.name}`,
      `--comment=${fabrikComment(req.workloadId, req.attempt)}`,
      `--nodelist=${nodes.join(',')}`,
      `--nodes=${nodes.length}`,
      '--ntasks-per-node=1',
      `--time=${minutes}`,
      `--chdir=${req.workdir}`,
      `--output=${join(dir, 'batch.log')}`,
      '--open-mode=append',
      // fabrik decides about retries and requeues; Slurm running a job a second time would double it.
      '--no-requeue',
      // The job gets the clean client environment (PATH and the like), never the server's.
      '--export=ALL',
    ];
    if (gpus > 0) args.push(`--gres=gpu:${gpus}`);
    if (partition) args.push(`--partition=${partition}`);
    if (this.opts.cpusPerTask) args.push(`--cpus-per-task=${this.opts.cpusPerTask}`);
    args.push(join(dir, 'batch.sh'), dir, String(this.opts.logCapBytes ?? DEFAULT_LOG_CAP));

    const out = await this.slurm('sbatch', args);
    const jobId = out.trim().split(';')[0] ?? '';
    if (!/^\d+$/.test(jobId)) throw new ExecError(`sbatch answered ${JSON.stringify(out.trim())}, not a job id`, true);
    writeAtomic(join(dir, 'job.id'), `${jobId}\n`);
    const handle: SlurmHandle = { executor: 'slurm', jobId, workloadId: req.workloadId, attempt: req.attempt };
    return handle as unknown as ExecHandle;
  }

  async stop(h: ExecHandle, graceS: number): Promise<void> {
    const handle = asHandle(h);
    const state = await this.jobState(handle.jobId);
    if (!state || !isActive(state) || state === 'COMPLETING') return;
    if (state === 'PENDING') {
      await this.slurm('scancel', [handle.jobId]).catch(ignoreFinished);
      return;
    }
    // Only the steps (the tasks) get the signals; the batch script stays to write the exit record.
    if (graceS > 0) {
      await this.slurm('scancel', ['--signal=TERM', handle.jobId]).catch(ignoreFinished);
      if (await this.ended(handle.jobId, graceS * 1000)) return;
    }
    // KILL to the job itself would also kill srun and leave the step waiting on it for
    // MessageTimeout; KILL to the step ends it at once and the job with it.
    await this.slurm('scancel', ['--signal=KILL', `${handle.jobId}.0`]).catch(ignoreFinished);
    if (await this.ended(handle.jobId, KILL_WAIT_MS)) return;
    // No step yet, or the batch script itself hangs: Slurm's own cancel (TERM, KillWait, KILL).
    await this.slurm('scancel', [handle.jobId]).catch(ignoreFinished);
  }

  /** Waits up to ms for the job to stop running; true if it did. */
  private async ended(jobId: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      await sleep(STOP_POLL_MS);
      const s = await this.jobState(jobId);
      if (!s || !isActive(s) || s === 'COMPLETING') return true;
    }
    return false;
  }

  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    const out = new Map<string, Observation>();
    if (handles.size === 0) return out;
    // One squeue for all; if Slurm cannot answer this throws: no job is called lost for an outage.
    const jobs = await this.squeue();
    for (const [id, h] of handles) {
      const handle = asHandle(h);
      const rec = this.records(handle);
      out.set(id, observeJob(handle.jobId, jobs.get(handle.jobId), rec));
    }
    return out;
  }

  logPath(req: LogRequest): string | undefined {
    if (!SAFE_ID.test(req.workloadId) || !Number.isInteger(req.task) || req.task < 0) return undefined;
    const p = join(attemptDir(this.opts.logDir, req.workloadId, req.attempt), `task-${req.task}.log`);
    return existsSync(p) ? p : undefined;
  }

  /**
   * Every Slurm job of a workload, found by its comment in squeue and by the job ids in its
   * attempt directories (for jobs Slurm no longer lists); oldest first.
   */
  async findByComment(workloadId: string): Promise<FoundJob[]> {
    const found = new Map<string, FoundJob>();
    for (const j of (await this.squeue()).values()) {
      const c = parseComment(j.comment);
      if (c?.workloadId !== workloadId) continue;
      found.set(j.jobId, {
        handle: { executor: 'slurm', jobId: j.jobId, workloadId, attempt: c.attempt },
        state: j.state,
      });
    }
    if (SAFE_ID.test(workloadId)) {
      const root = join(this.opts.logDir, workloadId);
      for (const name of existsSync(root) ? readdirSync(root) : []) {
        const m = /^attempt-(\d+)$/.exec(name);
        if (!m) continue;
        const attempt = Number(m[1]);
        for (const jobId of jobIdsIn(join(root, name))) {
          if (found.has(jobId)) continue;
          const handle: SlurmHandle = { executor: 'slurm', jobId, workloadId, attempt };
          found.set(jobId, { handle, state: this.records(handle).exit ? 'FINISHED' : 'GONE' });
        }
      }
    }
    return [...found.values()].sort((a, b) => Number(a.handle.jobId) - Number(b.handle.jobId));
  }

  private writeAttemptFiles(dir: string, req: LaunchRequest): void {
    const [first] = tasksOf(req.placement);
    // The static part of fabrik's task env; task.sh sets the per-rank names from Slurm's.
    const env: Record<string, string> = {
      ...req.env,
      ...taskEnv(req, first!, '', 0),
      FABRIK_WORKLOAD_DIR: join(this.opts.logDir, req.workloadId),
    };
    for (const [k, v] of Object.entries(env)) {
      if (!ENV_NAME.test(k))
        throw new ExecError(`environment name ${JSON.stringify(k)} is not a shell variable name`, false);
      if (v.includes('\0')) throw new ExecError(`environment value of ${k} contains a NUL byte`, false);
    }
    if (req.workdir.includes('\0')) throw new ExecError('the working directory contains a NUL byte', false);
    writeFileSync(join(dir, 'batch.sh'), BATCH_SCRIPT, { mode: 0o755 });
    writeFileSync(join(dir, 'task.sh'), TASK_SCRIPT, { mode: 0o755 });
    writeFileSync(join(dir, 'command.sh'), req.setup ? `${req.setup}\n${req.run}\n` : `${req.run}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}\0`)
        .join(''),
      { mode: 0o600 },
    );
    writeFileSync(join(dir, 'workdir'), `${req.workdir}\0`, { mode: 0o600 });
    writeFileSync(join(dir, 'tasks'), `${req.placement.nodes.length}\n`);
  }

  private records(handle: SlurmHandle): JobRecords {
    const dir = attemptDir(this.opts.logDir, handle.workloadId, handle.attempt);
    const tasks: (ExitRecord | undefined)[] = [];
    for (let rank = 0; rank < taskCount(dir); rank++) {
      const r = readRecord(join(dir, `task-${rank}.exit.json`));
      tasks.push(r?.jobId === handle.jobId ? r : undefined);
    }
    return {
      started: existsSync(join(dir, `job-${handle.jobId}.start`)),
      exit: readRecord(join(dir, `job-${handle.jobId}.exit.json`)),
      tasks,
    };
  }

  private async squeue(): Promise<Map<string, SlurmJob>> {
    // In 22.05 --json ignores squeue's filters: this lists every job the controller still holds.
    const text = await this.slurm('squeue', ['--json']);
    let jobs: SlurmJob[];
    try {
      jobs = parseSqueueJson(text);
    } catch (e) {
      throw new ExecError(`could not read squeue's answer: ${(e as Error).message}`, true);
    }
    return new Map(jobs.map((j) => [j.jobId, j]));
  }

  /** One job's state, or undefined when Slurm no longer knows it. Cheap: no JSON of every job. */
  private async jobState(jobId: string): Promise<string | undefined> {
    try {
      const out = await this.slurm('squeue', ['--noheader', `--jobs=${jobId}`, '--format=%T']);
      return out.trim().split('\n')[0] || undefined;
    } catch (e) {
      if (e instanceof ExecError && /invalid job id/i.test(e.message)) return undefined;
      throw e;
    }
  }

  private slurm(cmd: string, args: readonly string[]): Promise<string> {
    return slurmCall(this.run, cmd, args, { env: this.env, timeoutMs: this.timeoutMs });
  }
}

function asHandle(h: ExecHandle): SlurmHandle {
  const x = h as Partial<SlurmHandle>;
  if (
    x.executor !== 'slurm' ||
    typeof x.jobId !== 'string' ||
    !/^\d+$/.test(x.jobId) ||
    typeof x.workloadId !== 'string' ||
    typeof x.attempt !== 'number'
  ) {
    throw new ExecError(`not a Slurm handle: ${JSON.stringify(h)}`, false);
  }
  return x as SlurmHandle;
}

/** Job ids an attempt directory knows: from fabrik's job.id and the jobs' own start records. */
function jobIdsIn(dir: string): string[] {
  const ids = new Set<string>();
  const idFile = join(dir, 'job.id');
  if (existsSync(idFile)) {
    const id = readFileSync(idFile, 'utf8').trim();
    if (/^\d+$/.test(id)) ids.add(id);
  }
  for (const name of readdirSync(dir)) {
    const m = /^job-(\d+)\.start$/.exec(name);
    if (m) ids.add(m[1]!);
  }
  return [...ids];
}

function taskCount(dir: string): number {
  try {
    return Number.parseInt(readFileSync(join(dir, 'tasks'), 'utf8'), 10) || 0;
  } catch {
    return 0;
  }
}

function readRecord(path: string): ExitRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as ExitRecord;
    return typeof r.code === 'number' ? { jobId: String(r.jobId), code: r.code, signal: r.signal ?? null } : undefined;
  } catch {
    return undefined;
  }
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** scancel of a job that ended meanwhile is not an error for stop(). */
function ignoreFinished(e: unknown): void {
  if (
    e instanceof ExecError &&
    /already (completing|completed|finished)|invalid job id|job has already finished/i.test(e.message)
  )
    return;
  throw e;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
