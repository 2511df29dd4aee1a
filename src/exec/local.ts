// The local executor, the embedded default: every task of a workload is a process on this machine,
// watched by a detached supervisor process (./supervisor.ts) in its own process group. The handle
// records each supervisor's pid and start time, so after a restart of the control plane the tasks
// are re-adopted when still alive, read from their exit files when finished, and reported lost
// otherwise (a pid reused by another process has a different start time).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExitRecord, SupervisorConfig } from './supervisor.js';
import { type ExecHandle, type Executor, type LaunchRequest, type LogRequest, type Observation, taskEnv, tasksOf } from './types.js';

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

/** The supervisor module, as .ts under tsx (tests, dev) or .js when compiled. */
const SUPERVISOR = fileURLToPath(new URL(`./supervisor${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

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
    const base = this.opts.baseEnv ?? Object.fromEntries(SAFE_ENV.filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
    const tasks: TaskHandle[] = [];
    const masterPort = 29500 + (hash(req.workloadId) % 20000);
    for (const task of tasksOf(req.placement)) {
      const cfg: SupervisorConfig = {
        command: req.setup ? `${req.setup}\n${req.run}` : req.run,
        cwd: req.workdir,
        env: { ...base, ...req.env, ...taskEnv(req, task, '127.0.0.1', masterPort), FABRIK_WORKLOAD_DIR: workloadDir },
        logFile: join(dir, `task-${task.rank}.log`),
        logCapBytes: this.opts.logCapBytes ?? DEFAULT_LOG_CAP,
        exitFile: join(dir, `task-${task.rank}.exit.json`),
      };
      const cfgFile = join(dir, `task-${task.rank}.json`);
      writeFileSync(cfgFile, JSON.stringify(cfg), { mode: 0o600 });
      const child = spawn(process.execPath, [...loaderArgs(), SUPERVISOR, cfgFile], { detached: true, stdio: 'ignore' });
      child.unref();
      const pid = child.pid;
      if (pid === undefined) {
        // Take down what was already started: a gang runs whole or not at all.
        await this.stop({ executor: 'local', workloadId: req.workloadId, attempt: req.attempt, tasks } as unknown as ExecHandle, 0);
        throw new Error(`could not start task ${task.rank} of ${req.name}`);
      }
      tasks.push({ rank: task.rank, pid, startTicks: processStartTicks(pid) ?? -1, exitFile: cfg.exitFile });
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
        const why = failed.exit.signal ? `was killed by ${failed.exit.signal}` : `exited with ${failed.exit.code}`;
        out.set(id, { state: 'failed', exitCode: failed.exit.code ?? 128, message: `task ${failed.t.rank} ${why}` });
      } else if (states.every((s) => s.exit)) {
        out.set(id, { state: 'succeeded', exitCode: 0, message: `all ${states.length} task(s) exited with 0` });
      } else if (states.some((s) => !s.exit && !s.alive)) {
        const lost = states.find((s) => !s.exit && !s.alive)!;
        out.set(id, { state: 'lost', message: `task ${lost.t.rank} (pid ${lost.t.pid}) is gone without an exit record` });
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

/** The module loaders this process runs with (tsx in development), without test-runner flags. */
function loaderArgs(): string[] {
  const out: string[] = [];
  const a = process.execArgv;
  for (let i = 0; i < a.length; i++) {
    if ((a[i] === '--import' || a[i] === '--require' || a[i] === '--loader') && i + 1 < a.length) out.push(a[i], a[++i]);
    else if (/^--(import|require|loader)=/.test(a[i])) out.push(a[i]);
  }
  return out;
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
