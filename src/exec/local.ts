// The local executor, the embedded default: every task of a workload is a process on this machine,
// watched by a detached supervisor (a small POSIX shell script, SUPERVISOR below) in its own
// process group. The handle records each supervisor's pid and start time, so after a restart of
// the control plane the tasks are re-adopted when still alive, read from their exit files when
// finished, and reported lost otherwise (a pid reused by another process has a different start time).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ExecHandle,
  type Executor,
  type LaunchRequest,
  type LogRequest,
  type Observation,
  taskEnv,
  tasksOf,
} from './types.js';

export interface LocalExecutorOptions {
  /** Per-workload directories (logs, exit files, checkpoints) live under here. */
  readonly workloadsDir: string;
  /** Cap of each task's log file. */
  readonly logCapBytes?: number;
  /** Environment every task starts from (PATH and the like), before the spec's and fabrik's. */
  readonly baseEnv?: Record<string, string>;
}

interface TaskHandle {
  rank: number;
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22). */
  startTicks: number;
  exitFile: string;
}

interface LocalHandle {
  executor: 'local';
  workloadId: string;
  attempt: number;
  tasks: TaskHandle[];
}

const DEFAULT_LOG_CAP = 64 * 1024 * 1024;
const SAFE_ENV = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'USER', 'SHELL'];

/** How a task ended, written by its supervisor. */
export interface ExitRecord {
  readonly code: number;
  readonly endedAt: string;
}

/**
 * The supervisor: `sh -c SUPERVISOR fabrik-task <log> <capBytes> <exitFile> <command>`.
 * - It runs the command, copying its output into the log up to the cap; past the cap it writes a
 *   note and keeps draining, so a chatty task never blocks on a full pipe.
 * - SIGTERM to the group reaches the task; the supervisor and the log writer wait (a trap with a
 *   handler is not inherited, so the task keeps the default; the writer ignores TERM outright) and
 *   record the task's exit status atomically (write, then rename), for a restarted control plane.
 * - A shell, not a Node process, because it costs a millisecond to start, not fifty.
 */
const SUPERVISOR = `
log=$1; cap=$2; exitf=$3; cmd=$4
trap 'stopping=1' TERM INT
{ trap 'stopping=1' TERM INT; /bin/sh -c "$cmd" 2>&1 </dev/null; echo $? > "$exitf.code"; } |
  ( trap '' TERM INT
    head -c "$cap"
    if [ "$(head -c 1 | wc -c)" -gt 0 ]; then
      printf '\n[fabrik: log truncated at %s bytes; output after this point was discarded]\n' "$cap"
      cat > /dev/null
    fi ) > "$log"
code=$(cat "$exitf.code" 2>/dev/null || echo 255)
printf '{"code":%s,"endedAt":"%s"}' "$code" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$exitf.tmp"
mv "$exitf.tmp" "$exitf"
`;

export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

function alive(t: TaskHandle): boolean {
  return processStartTicks(t.pid) === t.startTicks;
}

export function attemptDir(workloadsDir: string, workloadId: string, attempt: number): string {
  return join(workloadsDir, workloadId, `attempt-${attempt}`);
}

export class LocalExecutor implements Executor {
  readonly name = 'local' as const;

  constructor(private readonly opts: LocalExecutorOptions) {}

  async launch(req: LaunchRequest): Promise<ExecHandle> {
    const dir = attemptDir(this.opts.workloadsDir, req.workloadId, req.attempt);
    mkdirSync(dir, { recursive: true });
    // Survives attempts: where a training job keeps its checkpoints.
    const workloadDir = join(this.opts.workloadsDir, req.workloadId);
    const base =
      this.opts.baseEnv ?? Object.fromEntries(SAFE_ENV.filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
    const tasks: TaskHandle[] = [];
    const masterPort = 29500 + (hash(req.workloadId) % 20000);
    for (const task of tasksOf(req.placement)) {
      const logFile = join(dir, `task-${task.rank}.log`);
      const exitFile = join(dir, `task-${task.rank}.exit.json`);
      const env = {
        ...base,
        ...req.env,
        ...taskEnv(req, task, '127.0.0.1', masterPort),
        FABRIK_WORKLOAD_DIR: workloadDir,
      };
      const command = req.setup ? `${req.setup}\n${req.run}` : req.run;
      const cap = String(this.opts.logCapBytes ?? DEFAULT_LOG_CAP);
      const child = spawn('/bin/sh', ['-c', SUPERVISOR, 'fabrik-task', logFile, cap, exitFile, command], {
        cwd: req.workdir,
        env,
        detached: true,
        stdio: 'ignore',
      });
      child.unref();
      const pid = child.pid;
      if (pid === undefined) {
        // Take down what was already started: a gang runs whole or not at all.
        await this.stop(
          { executor: 'local', workloadId: req.workloadId, attempt: req.attempt, tasks } as unknown as ExecHandle,
          0,
        );
        throw new Error(`could not start task ${task.rank} of ${req.name}`);
      }
      tasks.push({ rank: task.rank, pid, startTicks: processStartTicks(pid) ?? -1, exitFile });
    }
    const handle: LocalHandle = { executor: 'local', workloadId: req.workloadId, attempt: req.attempt, tasks };
    return handle as unknown as ExecHandle;
  }

  async stop(h: ExecHandle, graceS: number): Promise<void> {
    const handle = h as unknown as LocalHandle;
    const live = handle.tasks.filter(alive);
    for (const t of live) signalGroup(t.pid, 'SIGTERM');
    const deadline = Date.now() + graceS * 1000;
    while (Date.now() < deadline && live.some(alive)) await new Promise((r) => setTimeout(r, 100));
    for (const t of live) if (alive(t)) signalGroup(t.pid, 'SIGKILL');
  }

  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    const out = new Map<string, Observation>();
    for (const [id, h] of handles) {
      const handle = h as unknown as LocalHandle;
      const states = handle.tasks.map((t) => {
        if (existsSync(t.exitFile)) return { t, exit: JSON.parse(readFileSync(t.exitFile, 'utf8')) as ExitRecord };
        return { t, exit: undefined, alive: alive(t) };
      });
      const failed = states.find((s) => s.exit && s.exit.code !== 0);
      if (failed?.exit) {
        const code = failed.exit.code;
        const why = code > 128 ? `exited with ${code} (signal ${code - 128})` : `exited with ${code}`;
        out.set(id, { state: 'failed', exitCode: code, message: `task ${failed.t.rank} ${why}` });
      } else if (states.every((s) => s.exit)) {
        out.set(id, { state: 'succeeded', exitCode: 0, message: `all ${states.length} task(s) exited with 0` });
      } else if (states.some((s) => !s.exit && !s.alive)) {
        const lost = states.find((s) => !s.exit && !s.alive)!;
        out.set(id, {
          state: 'lost',
          message: `task ${lost.t.rank} (pid ${lost.t.pid}) is gone without an exit record`,
        });
      } else {
        out.set(id, { state: 'running', message: `${states.filter((s) => !s.exit).length} task(s) running` });
      }
    }
    return out;
  }

  logPath(req: LogRequest): string | undefined {
    const p = join(attemptDir(this.opts.workloadsDir, req.workloadId, req.attempt), `task-${req.task}.log`);
    return existsSync(p) ? p : undefined;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h;
}
