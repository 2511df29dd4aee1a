// How a local task is kept apart from the control plane and from other tenants. Three levels, the
// best the machine allows unless the operator names one (`fabrik server --isolation`):
//   sandbox  bubblewrap: a new PID and IPC namespace, a read-only system (/usr, /etc, …), a private
//            /tmp, the workload's own directory read-write, the spec's workdir read-only, the placed
//            GPUs' device nodes and nothing else (no data directory, no other workload, no server
//            source, no /root or /home); inside, setpriv drops to the project's uid/gid with no
//            supplementary groups and no capabilities. Limits through cgroups.
//   uid      no bubblewrap (or no user namespaces for it): setpriv to the project's identity and
//            cgroup limits; the task sees the host's filesystem, protected by file modes only.
//   none     not root (a developer laptop): tasks run as the server's user. Single-user mode only;
//            the server says so at startup, in /readyz and in `fabrik fleet nodes`.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { type CgroupVersion, detectCgroups } from './cgroups.js';
import type { ProjectIdentity } from '../domain/identity.js';

export const ISOLATION_LEVELS = ['sandbox', 'uid', 'none'] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

export interface Isolation {
  readonly level: IsolationLevel;
  /** cgroup interface enforcing cpu, memory and pids limits; undefined: limits are not enforced. */
  readonly cgroups?: CgroupVersion;
  /** One line for logs and /readyz. */
  readonly summary: string;
}

export interface DetectOptions {
  /** `auto` picks the best available; a named level is required, refusing to start without it. */
  readonly want?: IsolationLevel | 'auto';
  readonly bwrap?: string;
}

export function detectIsolation(opts: DetectOptions = {}): Isolation {
  const want = opts.want ?? 'auto';
  const root = process.getuid?.() === 0;
  const cgroups = root ? detectCgroups() : undefined;
  const bwrapWorks = root && bwrapUsable(opts.bwrap ?? 'bwrap');
  const best: IsolationLevel = bwrapWorks && cgroups ? 'sandbox' : root ? 'uid' : 'none';
  const rank = (l: IsolationLevel) => ISOLATION_LEVELS.length - ISOLATION_LEVELS.indexOf(l);
  if (want !== 'auto' && rank(want) > rank(best)) {
    const missing = !root
      ? 'the server is not running as root'
      : !bwrapWorks
        ? 'bubblewrap (bwrap) is not usable'
        : 'no writable cgroup hierarchy';
    throw new Error(`isolation "${want}" is not available here: ${missing} (best available: "${best}")`);
  }
  const level = want === 'auto' ? best : want;
  const limits = level !== 'none' && cgroups ? `cgroup ${cgroups} limits` : 'no resource limits';
  const summary =
    level === 'sandbox'
      ? `sandbox: bubblewrap namespaces, per-project uid/gid, ${limits}`
      : level === 'uid'
        ? `uid: per-project uid/gid, ${limits}, no filesystem sandbox (install bubblewrap for the full level)`
        : 'none: tasks run as the server user (single-user mode; run as root with bubblewrap for tenant isolation)';
  return { level, cgroups: level === 'none' ? undefined : cgroups, summary };
}

function bwrapUsable(bwrap: string): boolean {
  const r = spawnSync(bwrap, ['--ro-bind', '/', '/', '--unshare-pid', '--dev', '/dev', '--proc', '/proc', 'true'], {
    stdio: 'ignore',
    timeout: 5000,
  });
  return r.status === 0;
}

export interface SandboxPlan {
  readonly identity: ProjectIdentity;
  /** The workload's own directory: read-write, the working directory unless `workdir` is given. */
  readonly workDir: string;
  /** The spec's workdir (a real path inside the allowed root): read-only. */
  readonly workdir?: string;
  /** Registry inputs: each materialized `source` shown read-only at `target`. */
  readonly mounts?: readonly { readonly source: string; readonly target: string }[];
  /** Placed GPU indexes: only their /dev/nvidiaN nodes are passed in. */
  readonly gpuIndexes: readonly number[];
  /** Where device nodes are looked up (tests point it elsewhere). */
  readonly devRoot?: string;
  readonly bwrap?: string;
}

/** System directories shown read-only; symbolic links among them (merged /usr) are recreated as links. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];
/** Shared by all GPUs of a node: the control device and unified memory. */
const NVIDIA_SHARED = ['nvidiactl', 'nvidia-uvm', 'nvidia-uvm-tools', 'nvidia-modeset'];

/** Every proper ancestor of the paths below the system directories, parents first, once each. */
function ancestors(paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) out.add(`/${parts.slice(0, i).join('/')}`);
  }
  return [...out].filter((d) => d !== '/tmp' && !SYSTEM_DIRS.some((s) => d === s || d.startsWith(`${s}/`))).sort();
}

/**
 * Mount targets must stay clear of the directories the sandbox binds itself: an input over the work
 * directory would hide it, one inside it would shadow the task's own files. (The spec refused
 * system directories, /proc, /dev, /sys and the roots of /tmp and /run already.)
 */
function checkMounts(plan: SandboxPlan, mounts: readonly { source: string; target: string }[]): void {
  const own = [plan.workDir, ...(plan.workdir ? [plan.workdir] : [])];
  for (const m of mounts) {
    if (!m.target.startsWith('/') || m.target.split('/').some((p) => p === '..' || p === '.')) {
      throw new Error(`input mount target ${JSON.stringify(m.target)} is not a normalized absolute path`);
    }
    const clash = own.find((d) => m.target === d || m.target.startsWith(`${d}/`) || d.startsWith(`${m.target}/`));
    if (clash) throw new Error(`input mount target ${m.target} overlaps the task's directory ${clash}`);
  }
}

/** The argv that runs a command at `level`: prefix it to `/bin/sh -c <command>`. */
export function isolationArgv(level: IsolationLevel, plan: SandboxPlan): string[] {
  if (level === 'none') return [];
  const drop = [
    'setpriv',
    `--reuid=${plan.identity.uid}`,
    `--regid=${plan.identity.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
  ];
  if (level === 'uid') return drop;
  const args = [plan.bwrap ?? 'bwrap'];
  for (const dir of SYSTEM_DIRS) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (st.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  // /tmp is the task's own and writable by it (sticky, as on any host); /run stays root's.
  args.push('--dev', '/dev', '--proc', '/proc', '--perms', '1777', '--tmpfs', '/tmp', '--tmpfs', '/run');
  const devRoot = plan.devRoot ?? '/dev';
  const gpus = plan.gpuIndexes.map((i) => `nvidia${i}`);
  for (const name of plan.gpuIndexes.length ? [...gpus, ...NVIDIA_SHARED] : []) {
    if (existsSync(`${devRoot}/${name}`)) args.push('--dev-bind', `${devRoot}/${name}`, `/dev/${name}`);
  }
  const mounts = plan.mounts ?? [];
  checkMounts(plan, mounts);
  // Parents of the bound directories are made traversable (bubblewrap would create them 0700).
  const bound = [plan.workDir, ...(plan.workdir ? [plan.workdir] : []), ...mounts.map((m) => m.target)];
  for (const dir of ancestors(bound)) {
    args.push('--perms', '0755', '--dir', dir);
  }
  if (plan.workdir) args.push('--ro-bind', plan.workdir, plan.workdir);
  // After the workdir: when the workload directory lies inside it, it is writable all the same.
  args.push('--bind', plan.workDir, plan.workDir);
  // Inputs last, read-only: a bind mount's flags are its own, so nothing below them is writable.
  for (const m of mounts) args.push('--ro-bind', m.source, m.target);
  args.push(
    '--chdir',
    plan.workdir ?? plan.workDir,
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    'fabrik-task',
    // The task is pid 2 under bubblewrap's init; when the supervisor goes, so does the sandbox.
    '--die-with-parent',
    '--',
  );
  return [...args, ...drop];
}
