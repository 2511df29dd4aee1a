// A Slurm attempt's directory as the server sees it: prepared before sbatch (directories with their
// owners and modes, the scripts, the command, the environment, the working directory; see
// slurm-script.ts for the layout) and read back after (exit records, job ids). The job owns the
// directory and may have changed anything in it: writes replace whole files without following
// links, reads go through readSmallFile (no links, no FIFOs, bounded), counts are bounded.
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ExitRecord, JobRecords } from './slurm-jobs.js';
import { ensureTree, readSmallFile, writeFileIn } from './host-files.js';
import { BATCH_SCRIPT, TASK_SCRIPT } from './slurm-script.js';
import { ExecError, type LaunchRequest, taskEnv, tasksOf } from './types.js';
import type { WorkloadPaths } from './workspace.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** More ranks than any gang has: a bound on what is read back from an old attempt's `tasks` file. */
export const MAX_TASKS = 65_536;

/** Creates the attempt's directories and writes its files, as the job's identity will need them. */
export function prepareAttempt(logDir: string, paths: WorkloadPaths, req: LaunchRequest): void {
  const [first] = tasksOf(req.placement);
  const id = req.identity;
  // The static part of fabrik's task env; task.sh sets the per-rank names from Slurm's.
  const env: Record<string, string> = {
    HOME: paths.work,
    USER: id.user,
    LOGNAME: id.user,
    TMPDIR: paths.work,
    ...req.env,
    ...taskEnv(req, first!, '', 0),
    FABRIK_WORKLOAD_DIR: paths.work,
  };
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k))
      throw new ExecError(`environment name ${JSON.stringify(k)} is not a shell variable name`, false);
    if (v.includes('\0')) throw new ExecError(`environment value of ${k} contains a NUL byte`, false);
  }
  // Root's, passable by the project's gid only: a job cannot rename them or put a link in their place.
  const group = { uid: 0, gid: id.gid };
  const above = [
    { name: req.projectId, mode: 0o710, owner: group },
    { name: req.workloadId, mode: 0o710, owner: group },
  ];
  ensureTree(logDir, [...above, { name: basename(paths.work), mode: 0o700, owner: id }]);
  // The job writes its logs and exit records here.
  ensureTree(logDir, [...above, { name: basename(paths.attempt), mode: 0o700, owner: id }]);
  const dir = paths.attempt;
  // sbatch (root) reads batch.sh at submit; the job reads the rest as its uid.
  writeFileIn(dir, 'batch.sh', BATCH_SCRIPT, 0o700);
  writeFileIn(dir, 'task.sh', TASK_SCRIPT, 0o500, id);
  writeFileIn(dir, 'command.sh', req.setup ? `${req.setup}\n${req.run}\n` : `${req.run}\n`, 0o400, id);
  const envText = Object.entries(env)
    .map(([k, v]) => `${k}=${v}\0`)
    .join('');
  writeFileIn(dir, 'env', envText, 0o600, id);
  writeFileIn(dir, 'workdir', `${req.workdir ?? paths.work}\0`, 0o400, id);
  writeFileIn(dir, 'tasks', `${req.placement.nodes.length}\n`, 0o644);
}

/** fabrik's records of one job of an attempt; `tasks` from the handle, else the (bounded) file. */
export function readJobRecords(dir: string, jobId: string, tasks?: number): JobRecords {
  const records: (ExitRecord | undefined)[] = [];
  for (let rank = 0; rank < (tasks ?? taskCount(dir)); rank++) {
    const r = readRecord(join(dir, `task-${rank}.exit.json`));
    records.push(r?.jobId === jobId ? r : undefined);
  }
  return {
    started: existsSync(join(dir, `job-${jobId}.start`)),
    exit: readRecord(join(dir, `job-${jobId}.exit.json`)),
    tasks: records,
  };
}

/** Job ids an attempt directory knows: from fabrik's job.id and the jobs' own start records. */
export function jobIdsIn(dir: string): string[] {
  const ids = new Set<string>();
  const id = readSmallFile(join(dir, 'job.id'))?.trim();
  if (id && /^\d+$/.test(id)) ids.add(id);
  for (const name of readdirSync(dir)) {
    const m = /^job-(\d+)\.start$/.exec(name);
    if (m) ids.add(m[1]!);
  }
  return [...ids];
}

/** For handles without a task count: the `tasks` file fabrik wrote, bounded (the job could rewrite it). */
function taskCount(dir: string): number {
  const n = Number.parseInt(readSmallFile(join(dir, 'tasks')) ?? '', 10);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_TASKS) : 0;
}

function readRecord(path: string): ExitRecord | undefined {
  try {
    const r = JSON.parse(readSmallFile(path) ?? '') as ExitRecord;
    if (typeof r.code !== 'number') return undefined;
    const signal = typeof r.signal === 'string' ? r.signal : null;
    return { jobId: String(r.jobId), code: r.code, signal, ...(r.oom === true ? { oom: true } : {}) };
  } catch {
    return undefined;
  }
}

/** The workdir arrives resolved (realpath inside the allowed root); anything else is refused here too. */
export function checkWorkdir(workdir: string | undefined): void {
  if (workdir === undefined) return;
  if (workdir.includes('\0')) throw new ExecError('the working directory contains a NUL byte', false);
  let real: string | undefined;
  try {
    real = realpathSync(workdir);
  } catch {
    real = undefined;
  }
  if (real !== workdir) {
    throw new ExecError(
      `the working directory ${JSON.stringify(workdir)} is not a resolved path (${real === undefined ? 'it does not exist' : `it leads to ${real}`}): refusing to start`,
      false,
    );
  }
}
