// The Slurm executor: a placed workload becomes one batch job pinned to the scheduler's nodes
// (`--nodelist`), one task per node started with srun, per-task logs and exit records in the
// attempt's directory (see slurm-script.ts). Node names are Slurm's own: the fleet is imported
// from Slurm (slurm-fleet.ts).
//
// How an ending is learnt: `squeue --json` while Slurm still lists the job (MinJobAge), then the
// exit records the job wrote next to its logs. So the attempt directories must be on a filesystem
// that fabrik and the compute nodes share, as the logs already require. No accounting database.
//
// Stop: SIGTERM to the job's tasks (`scancel --signal=TERM <job>`, which spares the batch script;
// task.sh passes it on to the command's process group), up to the grace period for the job to end, then SIGKILL to the task step (`<job>.0`), and
// Slurm's own `scancel <job>` only if that did not end it. stop() returns when the job has ended
// or the grace period is over, like the local executor's.
//
// Crash safety: fabrik:<workload>:<attempt> in the job's comment, and the job id in the attempt
// directory, find a job again when the database lost its handle (crash between sbatch and commit).
// launch() does that itself for an attempt it has seen before, so launching twice never runs twice.
//
// Isolation: every job runs as its project's identity (`sbatch --uid/--gid`; the account comes from
// an IdentityDirectory, ./identities.ts), never as the server's user. Its files, under
// workloadPaths(logDir, project, workload, attempt) (./workspace.ts):
//   <dataDir>, <logDir>        root 0711: jobs pass through (no mount namespace here) but cannot
//                              list; what lies in <dataDir> (database, logs, keys) is 0600 anyway
//   <project>, <workload>      root:<project gid> 0710: the project's jobs pass through, other
//                              tenants do not, and no job can swap them for a symbolic link
//   work/                      the project's uid 0700: FABRIK_WORKLOAD_DIR, HOME, default cwd
//   attempt-N/                 the project's uid 0700: the job writes its logs and exit records;
//                              env (0600, may hold secrets) and the scripts belong to the uid too
// Limits (per node): `--mem` and `--cpus-per-task`, enforced by Slurm's task/cgroup plugin where
// the site configures it (scripts/slurm-dev does); processes by RLIMIT_NPROC in task.sh, because
// Slurm 22.05's cgroup plugins have no pids controller. An OOM kill is read from Slurm's
// OUT_OF_MEMORY state or, later, from the task's exit record (the cgroup's oom_kill counter).
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type IdentityDirectory, LocalAccounts } from './identities.js';
import { checkWorkdir, jobIdsIn, MAX_TASKS, prepareAttempt, readJobRecords } from './slurm-attempt.js';
import { clientEnv, type CommandRunner, execFileRunner, slurmCall } from './slurm-cmd.js';
import { isPlainFile, writeFileIn } from './host-files.js';
import {
  fabrikComment,
  isActive,
  type JobRecords,
  observeJob,
  parseComment,
  parseSqueueJson,
  type SlurmJob,
} from './slurm-jobs.js';
import {
  ExecError,
  type AttemptRef,
  type ExecHandle,
  type Executor,
  type LaunchRequest,
  type LogRequest,
  type Observation,
  mountEnv,
} from './types.js';
import { workloadPaths } from './workspace.js';

export interface SlurmExecutorOptions {
  /** Per-workload directories (scripts, logs, exit records); shared with the compute nodes. */
  readonly logDir: string;
  /** The server's data directory above logDir, if any: made traverse-only (0711) like logDir. */
  readonly dataDir?: string;
  /** Where project identities get their passwd/group entries (default: LocalAccounts). */
  readonly identities?: IdentityDirectory;
  /** Partition to submit to: a name, or chosen per request (e.g. the pool of the placed nodes). */
  readonly partition?: string | ((req: LaunchRequest) => string | undefined);
  /** Path of slurm.conf for the clients; default: $SLURM_CONF, else Slurm's compiled-in default. */
  readonly slurmConf?: string;
  readonly commandRunner?: CommandRunner;
  /** Timeout of one Slurm command (ms); sbatch itself retries a busy controller for a while. */
  readonly commandTimeoutMs?: number;
  /** Cap of each task's log file. */
  readonly logCapBytes?: number;
  /** CPUs for each task when the spec asks for none (--cpus-per-task); Slurm's default (1) when unset. */
  readonly cpusPerTask?: number;
}

export interface SlurmHandle {
  readonly executor: 'slurm';
  readonly jobId: string;
  /** Absent in handles stored before per-project directories: their attempts are <logDir>/<workload>/. */
  readonly projectId?: string;
  readonly workloadId: string;
  readonly attempt: number;
  /** Tasks (nodes) of the job, so the server never takes the count from a file the job can write. */
  readonly tasks?: number;
}

export interface FoundJob {
  readonly handle: SlurmHandle;
  /** Slurm's state when squeue still lists the job, else `FINISHED` (exit record) or `GONE`. */
  readonly state: string;
}

const DEFAULT_LOG_CAP = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const STOP_POLL_MS = 250;
const KILL_WAIT_MS = 3000;
const MiB = 1024 * 1024;

export function attemptDir(logDir: string, projectId: string, workloadId: string, attempt: number): string {
  return workloadPaths(logDir, projectId, workloadId, attempt).attempt;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm' as const;
  readonly identities: IdentityDirectory;
  private readonly run: CommandRunner;
  private readonly env: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly logDir: string;

  /** Jobs whose step got SIGKILL: a second KILL cancels the whole job. */
  private readonly killed = new Set<string>();

  constructor(private readonly opts: SlurmExecutorOptions) {
    this.run = opts.commandRunner ?? execFileRunner;
    this.env = clientEnv(opts.slurmConf ?? process.env.SLURM_CONF);
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.identities = opts.identities ?? new LocalAccounts();
    this.logDir = resolve(opts.logDir);
    mkdirSync(this.logDir, { recursive: true });
    // Jobs run as project uids without a mount namespace, so they must pass through these two to
    // reach their own directories: traverse (x) without listing (r). Their contents are private
    // (the database, logs and keys are 0600; project directories are 0710 for the project's gid).
    for (const d of [opts.dataDir, this.logDir]) if (d) chmodSync(d, 0o711);
    for (let d = dirname(this.logDir); d !== dirname(d); d = dirname(d)) {
      if ((statSync(d).mode & 0o001) === 0) {
        throw new Error(
          `Slurm jobs run as project uids and cannot reach ${this.logDir}: ${d} is not searchable by others (chmod o+x ${d}, or choose another data directory)`,
        );
      }
    }
  }

  async launch(req: LaunchRequest): Promise<ExecHandle> {
    for (const [what, id] of [
      ['workload', req.workloadId],
      ['project', req.projectId],
    ]) {
      if (!SAFE_ID.test(id!))
        throw new ExecError(`${what} id ${JSON.stringify(id)} is not usable as a directory name`, false);
    }
    if (!Number.isInteger(req.attempt) || req.attempt < 1)
      throw new ExecError(`attempt must be a positive integer, got ${req.attempt}`, false);
    const nodes = req.placement.nodes.map((n) => n.node);
    if (nodes.length === 0) throw new ExecError('the placement has no nodes', false);
    checkWorkdir(req.workdir);
    const paths = workloadPaths(this.logDir, req.projectId, req.workloadId, req.attempt);
    if (existsSync(paths.attempt)) {
      // Launched before (fabrik crashed after sbatch, or sbatch's answer was lost): adopt that job.
      const found = await this.findByComment(req.projectId, req.workloadId);
      const mine = found.filter((f) => f.handle.attempt === req.attempt);
      if (mine.length) return mine[mine.length - 1]!.handle as unknown as ExecHandle;
    }
    // Slurm resolves --uid/--gid in passwd/group: the account must exist before sbatch.
    await this.identities.ensure(req.identity);
    // No mount namespace under Slurm: an input is read where fabrik materialized it (under the
    // shared workload directory, root's and readable by the project's gid only), named by
    // FABRIK_INPUT_<n>; the spec's `path` is not remapped.
    prepareAttempt(this.logDir, paths, { ...req, env: { ...req.env, ...mountEnv(req.mounts, false) } });

    const gpus = Math.max(...req.placement.nodes.map((n) => n.gpuIndexes.length));
    const minutes = Math.max(1, Math.ceil(req.maxRuntimeS / 60));
    const partition = typeof this.opts.partition === 'function' ? this.opts.partition(req) : this.opts.partition;
    const cpus = req.limits.cpus === undefined ? this.opts.cpusPerTask : Math.ceil(req.limits.cpus);
    const args = [
      '--parsable',
      `--uid=${req.identity.uid}`,
      `--gid=${req.identity.gid}`,
      `--job-name=${req.name}`,
      `--comment=${fabrikComment(req.workloadId, req.attempt)}`,
      `--nodelist=${nodes.join(',')}`,
      `--nodes=${nodes.length}`,
      '--ntasks-per-node=1',
      `--time=${minutes}`,
      // The batch script starts in its attempt directory; task.sh changes to the task's workdir.
      `--chdir=${paths.attempt}`,
      `--output=${join(paths.attempt, 'batch.log')}`,
      '--open-mode=append',
      // fabrik decides about retries and requeues; Slurm running a job a second time would double it.
      '--no-requeue',
      // The job gets the clean client environment (PATH and the like), never the server's.
      '--export=ALL',
    ];
    if (gpus > 0) args.push(`--gres=gpu:${gpus}`);
    if (partition) args.push(`--partition=${partition}`);
    if (cpus) args.push(`--cpus-per-task=${cpus}`);
    // Per node; a memory cgroup (task/cgroup, ConstrainRAMSpace) kills what goes beyond it.
    if (req.limits.memoryBytes !== undefined)
      args.push(`--mem=${Math.max(1, Math.ceil(req.limits.memoryBytes / MiB))}M`);
    const cap = String(this.opts.logCapBytes ?? DEFAULT_LOG_CAP);
    args.push(join(paths.attempt, 'batch.sh'), paths.attempt, cap, String(req.limits.pids));

    const out = await this.slurm('sbatch', args);
    const jobId = out.trim().split(';')[0] ?? '';
    if (!/^\d+$/.test(jobId)) throw new ExecError(`sbatch answered ${JSON.stringify(out.trim())}, not a job id`, true);
    writeFileIn(paths.attempt, 'job.id', `${jobId}\n`, 0o644);
    const handle: SlurmHandle = {
      executor: 'slurm',
      jobId,
      projectId: req.projectId,
      workloadId: req.workloadId,
      attempt: req.attempt,
      tasks: nodes.length,
    };
    return handle as unknown as ExecHandle;
  }

  /** SIGTERM, then SIGKILL after the grace period, waiting in between (for callers outside the reconciler). */
  async stop(h: ExecHandle, graceS: number): Promise<void> {
    const { jobId } = asHandle(h);
    if (graceS > 0) {
      await this.signal(h, 'TERM');
      if (await this.ended(jobId, graceS * 1000)) return;
    }
    await this.signal(h, 'KILL');
    if (await this.ended(jobId, KILL_WAIT_MS)) return;
    await this.signal(h, 'KILL');
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

  /** The job this attempt already submitted (found by its comment or its attempt directory), if any. */
  async adopt(ref: AttemptRef): Promise<ExecHandle | undefined> {
    const jobs = (await this.findByComment(ref.projectId, ref.workloadId)).filter(
      (j) => j.handle.attempt === ref.attempt,
    );
    return jobs.at(-1)?.handle as unknown as ExecHandle | undefined;
  }

  /**
   * TERM to the job's steps (the tasks; the batch script stays to write the exit record); KILL to
   * the step and then to the whole job. Returns at once: the reconciler escalates on a later pass.
   */
  async signal(h: ExecHandle, signal: 'TERM' | 'KILL'): Promise<void> {
    const handle = asHandle(h);
    const state = await this.jobState(handle.jobId);
    if (!state || !isActive(state) || state === 'COMPLETING') return;
    if (state === 'PENDING') {
      await this.slurm('scancel', [handle.jobId]).catch(ignoreFinished);
      return;
    }
    if (signal === 'TERM') {
      // Only the steps (the tasks) get it; the batch script stays to write the exit record.
      await this.slurm('scancel', ['--signal=TERM', handle.jobId]).catch(ignoreFinished);
      return;
    }
    if (!this.killed.has(handle.jobId)) {
      // KILL to the job itself would also kill srun and leave the step waiting on it for
      // MessageTimeout; KILL to the step ends it at once and the job with it.
      this.killed.add(handle.jobId);
      await this.slurm('scancel', ['--signal=KILL', `${handle.jobId}.0`]).catch(ignoreFinished);
      return;
    }
    // Asked again: no step yet, or the batch script itself hangs: Slurm's own cancel.
    this.killed.delete(handle.jobId);
    await this.slurm('scancel', [handle.jobId]).catch(ignoreFinished);
  }

  logPath(req: LogRequest): string | undefined {
    if (!SAFE_ID.test(req.projectId) || !SAFE_ID.test(req.workloadId)) return undefined;
    if (!Number.isInteger(req.task) || req.task < 0 || !Number.isInteger(req.attempt)) return undefined;
    const p = join(attemptDir(this.logDir, req.projectId, req.workloadId, req.attempt), `task-${req.task}.log`);
    // The job owns its attempt directory: a link it put there must not make the server read for it.
    return isPlainFile(p) ? p : undefined;
  }

  /**
   * Every Slurm job of a workload, found by its comment in squeue and by the job ids in its
   * attempt directories (for jobs Slurm no longer lists); oldest first.
   */
  async findByComment(projectId: string, workloadId: string): Promise<FoundJob[]> {
    const found = new Map<string, FoundJob>();
    for (const j of (await this.squeue()).values()) {
      const c = parseComment(j.comment);
      if (c?.workloadId !== workloadId) continue;
      found.set(j.jobId, {
        handle: { executor: 'slurm', jobId: j.jobId, projectId, workloadId, attempt: c.attempt },
        state: j.state,
      });
    }
    if (SAFE_ID.test(workloadId) && SAFE_ID.test(projectId)) {
      const root = workloadPaths(this.logDir, projectId, workloadId, 1).workload;
      for (const name of existsSync(root) ? readdirSync(root) : []) {
        const m = /^attempt-(\d+)$/.exec(name);
        if (!m) continue;
        const attempt = Number(m[1]);
        for (const jobId of jobIdsIn(join(root, name))) {
          if (found.has(jobId)) continue;
          const handle: SlurmHandle = { executor: 'slurm', jobId, projectId, workloadId, attempt };
          found.set(jobId, { handle, state: this.records(handle).exit ? 'FINISHED' : 'GONE' });
        }
      }
    }
    return [...found.values()].sort((a, b) => Number(a.handle.jobId) - Number(b.handle.jobId));
  }

  private attemptDirOf(handle: SlurmHandle): string {
    return handle.projectId === undefined
      ? join(this.logDir, handle.workloadId, `attempt-${handle.attempt}`)
      : attemptDir(this.logDir, handle.projectId, handle.workloadId, handle.attempt);
  }

  private records(handle: SlurmHandle): JobRecords {
    return readJobRecords(this.attemptDirOf(handle), handle.jobId, handle.tasks);
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
    typeof x.attempt !== 'number' ||
    (x.projectId !== undefined && typeof x.projectId !== 'string') ||
    (x.tasks !== undefined && (!Number.isInteger(x.tasks) || x.tasks < 1 || x.tasks > MAX_TASKS))
  ) {
    throw new ExecError(`not a Slurm handle: ${JSON.stringify(h)}`, false);
  }
  return x as SlurmHandle;
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
