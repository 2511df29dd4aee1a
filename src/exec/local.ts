// The local executor, the embedded default: every task of a workload is a process on this machine,
// watched by a detached supervisor (a small POSIX shell script, SUPERVISOR below) in its own
// process group. The task itself runs isolated (./sandbox.ts: bubblewrap and the project's own
// uid/gid) inside its own cgroups (./cgroups.ts: memory, pids, cpu limits). The handle records each
// supervisor's pid and start time, so after a restart of the control plane the tasks are
// re-adopted when still alive, read from their exit files when finished, and reported lost
// otherwise (a pid reused by another process has a different start time).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type CgroupLayout, createTaskCgroup, killCgroup, removeCgroup, signalCgroup, taskCgroup } from './cgroups.js';
import { type Isolation, isolationArgv } from './sandbox.js';
import {
  type AttemptRef,
  ExecError,
  type ExecHandle,
  type Executor,
  type LaunchRequest,
  type LogRequest,
  type Observation,
  mountEnv,
  taskEnv,
  tasksOf,
} from './types.js';
import { ensureTree } from './host-files.js';
import { ensureDir, workloadPaths } from './workspace.js';

export interface LocalExecutorOptions {
  /** Per-project and per-workload directories (logs, exit files, checkpoints) live under here. */
  readonly workloadsDir: string;
  /** What keeps tasks apart; detected once at startup (./sandbox.ts). */
  readonly isolation: Isolation;
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
  cgroup?: CgroupLayout;
}

interface LocalHandle {
  executor: 'local';
  workloadId: string;
  projectId: string;
  attempt: number;
  /** The uid the tasks run as; undefined when they run as the server's user (isolation `none`). */
  uid?: number;
  /** Whether the tasks run under bubblewrap (then SIGTERM must spare the sandbox's top shell). */
  sandboxed?: boolean;
  tasks: TaskHandle[];
}

const DEFAULT_LOG_CAP = 64 * 1024 * 1024;
const SAFE_ENV = ['PATH', 'LANG', 'TZ'];

/** How a task ended, written by its supervisor. */
export interface ExitRecord {
  readonly code: number;
  readonly endedAt: string;
  /** OOM kills the kernel counted in the task's memory cgroup. */
  readonly oom?: number;
}

/**
 * The supervisor: `sh -c SUPERVISOR fabrik-task <log> <capBytes> <exitFile> <command> <cgroup dirs> <oom file> [isolation argv…]`.
 * - Its task subshell moves itself into the task's cgroups, then runs the isolation argv (bubblewrap,
 *   setpriv) and the command: everything the task starts is counted and limited, the log writer is not.
 * - It copies the task's output into the log line by line (stdbuf), up to the cap; past the cap it
 *   writes a note and keeps draining, so a chatty task never blocks on a full pipe.
 * - SIGTERM to the group reaches the task; the supervisor and the log writer wait (a trap with a
 *   handler is not inherited, so the task keeps the default; the writer ignores TERM outright) and
 *   record the task's exit status and OOM count atomically (write, then rename), for a restarted
 *   control plane. Then whatever is left in the cgroups (a process that left the group with setsid)
 *   is killed and the groups are removed.
 * - The log and exit files are the supervisor's (root's): the task cannot forge its own ending.
 * - A shell, not a Node process, because it costs a millisecond to start, not fifty.
 */
const SUPERVISOR = `
log=$1; cap=$2; exitf=$3; cmd=$4; cgs=$5; oomf=$6; shift 6
# The engine-side mark of this attempt: a restarted control plane adopts it instead of launching again.
printf '%s\n' "$$" > "$exitf.pid.tmp" && mv -f "$exitf.pid.tmp" "\${exitf%.exit.json}.pid"
trap 'stopping=1' TERM INT
{ trap 'stopping=1' TERM INT
  # This subshell joins the task's cgroups itself (its pid from /proc/self, read by a builtin: no
  # fork), so everything it starts is counted; it stays there, one small process, to record the code.
  read -r self _ < /proc/self/stat
  for d in $cgs; do echo "$self" > "$d/cgroup.procs" || exit 125; done
  "$@" /bin/sh -c "$cmd" 2>&1 </dev/null
  echo $? > "$exitf.code"; } |
  ( trap '' TERM INT
    stdbuf -o0 head -c "$cap"
    if [ "$(head -c 1 | wc -c)" -gt 0 ]; then
      printf '\n[fabrik: log truncated at %s bytes; output after this point was discarded]\n' "$cap"
      cat > /dev/null
    fi ) > "$log"
code=$(cat "$exitf.code" 2>/dev/null || echo 255)
oom=0
[ -n "$oomf" ] && oom=$(sed -n 's/^oom_kill //p' "$oomf" 2>/dev/null | head -n 1)
printf '{"code":%s,"endedAt":"%s","oom":%s}' "$code" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "\${oom:-0}" > "$exitf.tmp"
mv "$exitf.tmp" "$exitf"
for _ in 1 2 3; do
  for d in $cgs; do
    while read -r p; do kill -9 "$p" 2>/dev/null; done < "$d/cgroup.procs"
  done
  rmdir $cgs 2>/dev/null && break
  sleep 0.1
done
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

export function attemptDir(workloadsDir: string, projectId: string, workloadId: string, attempt: number): string {
  return workloadPaths(workloadsDir, projectId, workloadId, attempt).attempt;
}

export class LocalExecutor implements Executor {
  readonly name = 'local' as const;

  constructor(private readonly opts: LocalExecutorOptions) {
    // Only root may enter; tasks reach their own directory through a bind mount (or, at level
    // `uid`, by traversing: then the two levels above are traverse-only, never listable).
    const traverse = opts.isolation.level === 'uid' ? 0o711 : 0o700;
    ensureDir(opts.workloadsDir, traverse);
  }

  async launch(req: LaunchRequest): Promise<ExecHandle> {
    const { level, cgroups } = this.opts.isolation;
    const paths = workloadPaths(this.opts.workloadsDir, req.projectId, req.workloadId, req.attempt);
    const owner = level === 'none' ? undefined : req.identity;
    // Level by level, never through a link: the project and workload levels are root's (the
    // project's group may pass), so a task cannot swap in a link that root would later follow;
    // work/ (checkpoints, kept across attempts) is the task's; attempt-N/ (logs, exit records) root's.
    const group = owner && { uid: 0, gid: owner.gid };
    const levels = [
      { name: req.projectId, mode: owner ? 0o710 : 0o700, owner: group },
      { name: req.workloadId, mode: owner ? 0o710 : 0o700, owner: group },
    ];
    ensureTree(this.opts.workloadsDir, [...levels, { name: 'work', mode: 0o700, owner }]);
    ensureTree(this.opts.workloadsDir, [...levels, { name: `attempt-${req.attempt}`, mode: 0o700 }]);
    const base =
      this.opts.baseEnv ?? Object.fromEntries(SAFE_ENV.filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
    const tasks: TaskHandle[] = [];
    const ids = {
      workloadId: req.workloadId,
      projectId: req.projectId,
      attempt: req.attempt,
      uid: owner?.uid,
      sandboxed: level === 'sandbox',
    };
    const masterPort = 29500 + (hash(req.workloadId) % 20000);
    // Launching twice is launching once: tasks this attempt already started (before a crash of the
    // control plane, say) are adopted, only missing ones are started.
    const found = this.find(req);
    for (const task of tasksOf(req.placement)) {
      const adopted = found?.tasks.find((t) => t.rank === task.rank);
      if (adopted) {
        tasks.push(adopted);
        continue;
      }
      const logFile = join(paths.attempt, `task-${task.rank}.log`);
      const exitFile = join(paths.attempt, `task-${task.rank}.exit.json`);
      const env = {
        ...base,
        HOME: paths.work,
        USER: req.identity.user,
        LOGNAME: req.identity.user,
        TMPDIR: level === 'sandbox' ? '/tmp' : paths.work,
        ...req.env,
        ...taskEnv(req, task, '127.0.0.1', masterPort),
        // Only the sandbox has a mount namespace: elsewhere a task reads its inputs where they lie.
        ...mountEnv(req.mounts, level === 'sandbox'),
        FABRIK_WORKLOAD_DIR: paths.work,
      };
      const cgroup = cgroups ? taskCgroup(cgroups, `${req.workloadId}.${req.attempt}.${task.rank}`) : undefined;
      if (cgroup) createTaskCgroup(cgroup, req.limits);
      let isolation: string[];
      try {
        isolation = isolationArgv(level, {
          identity: req.identity,
          workDir: paths.work,
          workdir: req.workdir,
          mounts: req.mounts,
          gpuIndexes: task.gpuIndexes,
        });
      } catch (err) {
        if (cgroup) removeCgroup(cgroup);
        await this.signal(this.encode({ ...ids, tasks }), 'KILL');
        throw new ExecError((err as Error).message, false);
      }
      const command = req.setup ? `${req.setup}\n${req.run}` : req.run;
      const cap = String(this.opts.logCapBytes ?? DEFAULT_LOG_CAP);
      const cgs = cgroup?.dirs.join(' ') ?? '';
      const child = spawn(
        '/bin/sh',
        ['-c', SUPERVISOR, 'fabrik-task', logFile, cap, exitFile, command, cgs, cgroup?.oomFile ?? '', ...isolation],
        // Without isolation the task starts where it would in the sandbox; bubblewrap changes directory itself.
        { cwd: level === 'sandbox' ? '/' : (req.workdir ?? paths.work), env, detached: true, stdio: 'ignore' },
      );
      child.unref();
      const pid = child.pid;
      if (pid === undefined) {
        // Take down what was already started: a gang runs whole or not at all.
        await this.signal(this.encode({ ...ids, tasks }), 'KILL');
        if (cgroup) removeCgroup(cgroup);
        throw new Error(`could not start task ${task.rank} of ${req.name}`);
      }
      tasks.push({ rank: task.rank, pid, startTicks: processStartTicks(pid) ?? -1, exitFile, cgroup });
    }
    return this.encode({ ...ids, tasks });
  }

  /** What this attempt already started, from the supervisors' pid marks; undefined if nothing. */
  find(ref: AttemptRef): LocalHandle | undefined {
    const { level, cgroups } = this.opts.isolation;
    const dir = workloadPaths(this.opts.workloadsDir, ref.projectId, ref.workloadId, ref.attempt).attempt;
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /^task-\d+\.pid$/.test(n));
    } catch {
      return undefined;
    }
    const tasks: TaskHandle[] = [];
    for (const n of names) {
      const rank = Number(n.slice(5, -4));
      const pid = Number(readFileSync(join(dir, n), 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1) continue;
      const cgroup = cgroups ? taskCgroup(cgroups, `${ref.workloadId}.${ref.attempt}.${rank}`) : undefined;
      tasks.push({
        rank,
        pid,
        startTicks: processStartTicks(pid) ?? -1,
        exitFile: join(dir, `task-${rank}.exit.json`),
        cgroup,
      });
    }
    if (tasks.length === 0) return undefined;
    tasks.sort((x, y) => x.rank - y.rank);
    return {
      executor: 'local',
      workloadId: ref.workloadId,
      projectId: ref.projectId,
      attempt: ref.attempt,
      uid: level === 'none' ? undefined : ref.identity.uid,
      sandboxed: level === 'sandbox',
      tasks,
    };
  }

  async adopt(ref: AttemptRef): Promise<ExecHandle | undefined> {
    const h = this.find(ref);
    return h && (h as unknown as ExecHandle);
  }

  /**
   * SIGTERM: to the task's own processes — in the sandbox, those in its cgroups that run as the
   * project's uid, because bubblewrap (root, also in the group) would die of it and take the
   * sandbox down before the task could save a checkpoint. SIGKILL: to the process group and to
   * everything in the cgroups (processes that left the group with setsid too). Returns at once.
   */
  async signal(h: ExecHandle, signal: 'TERM' | 'KILL'): Promise<void> {
    const handle = decodeHandle(h);
    for (const t of handle.tasks.filter(alive)) {
      if (signal === 'KILL') {
        signalGroup(t.pid, 'SIGKILL');
        if (t.cgroup) killCgroup(t.cgroup);
      } else if (t.cgroup && handle.uid !== undefined && handle.sandboxed)
        signalCgroup(t.cgroup, handle.uid, 'SIGTERM');
      else signalGroup(t.pid, 'SIGTERM');
    }
  }

  /** SIGTERM, then SIGKILL after the grace period, waiting in between (for callers outside the reconciler). */
  async stop(h: ExecHandle, graceS: number): Promise<void> {
    const live = decodeHandle(h).tasks.filter(alive);
    await this.signal(h, 'TERM');
    const deadline = Date.now() + graceS * 1000;
    while (Date.now() < deadline && live.some(alive)) await new Promise((r) => setTimeout(r, 100));
    await this.signal(h, 'KILL');
  }

  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    const out = new Map<string, Observation>();
    for (const [id, h] of handles) {
      const handle = decodeHandle(h);
      const states = handle.tasks.map((t) => {
        const exit = readExit(t.exitFile);
        return exit ? { t, exit } : { t, exit: undefined, alive: alive(t) };
      });
      const failed = states.find((s) => s.exit && s.exit.code !== 0);
      if (failed?.exit) {
        const code = failed.exit.code;
        if ((failed.exit.oom ?? 0) > 0) {
          out.set(id, {
            state: 'failed',
            exitCode: code,
            reason: 'OOMKilled',
            message: `task ${failed.t.rank} was killed by the kernel's OOM killer: it used more memory than its limit`,
          });
          continue;
        }
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
    const p = join(
      attemptDir(this.opts.workloadsDir, req.projectId, req.workloadId, req.attempt),
      `task-${req.task}.log`,
    );
    return existsSync(p) ? p : undefined;
  }

  private encode(handle: Omit<LocalHandle, 'executor'>): ExecHandle {
    return { executor: 'local', ...handle } satisfies LocalHandle as unknown as ExecHandle;
  }
}

/** The stored handle, checked: a row written by another version or by hand is refused, not trusted. */
export function decodeHandle(h: ExecHandle): LocalHandle {
  const v = h as Partial<LocalHandle>;
  const ok =
    v.executor === 'local' &&
    typeof v.workloadId === 'string' &&
    typeof v.projectId === 'string' &&
    Number.isInteger(v.attempt) &&
    Array.isArray(v.tasks) &&
    v.tasks.every(
      (t) =>
        Number.isInteger(t.rank) &&
        Number.isInteger(t.pid) &&
        t.pid > 1 &&
        Number.isInteger(t.startTicks) &&
        typeof t.exitFile === 'string' &&
        (t.cgroup === undefined || (Array.isArray(t.cgroup.dirs) && typeof t.cgroup.oomFile === 'string')),
    ) &&
    (v.uid === undefined || Number.isInteger(v.uid));
  if (!ok) throw new Error('not a local executor handle');
  return v as LocalHandle;
}

function readExit(file: string): ExitRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as ExitRecord;
    return Number.isInteger(r.code) ? r : undefined;
  } catch {
    return undefined;
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
