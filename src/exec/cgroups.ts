// Resource limits of one task through the kernel's control groups: memory (the OOM killer ends a
// task over its limit, and says so in a counter), pids (a fork bomb stops at the limit, whatever it
// does with sessions and process groups) and cpu (a quota of CPU time). cgroup v2 where the unified
// hierarchy is mounted, else the v1 memory, pids and cpu hierarchies. Every task gets its own group
// `fabrik/<workload>.<attempt>.<rank>` under each hierarchy; the supervisor moves the task into
// them before the sandbox starts, so everything the task starts is counted.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskLimits } from './types.js';

export type CgroupVersion = 'v1' | 'v2';

export interface CgroupLayout {
  readonly version: CgroupVersion;
  /** The directories of one task's groups: one per v1 hierarchy, or one v2 group. */
  readonly dirs: readonly string[];
  /** Where the kernel counts OOM kills (`oom_kill N`). */
  readonly oomFile: string;
}

const ROOT = '/sys/fs/cgroup';
const PARENT = 'fabrik';

/** Which cgroup interface this machine offers for limits, or undefined when none is writable. */
export function detectCgroups(root = ROOT): CgroupVersion | undefined {
  try {
    if (existsSync(join(root, 'cgroup.controllers'))) {
      const dir = join(root, PARENT);
      mkdirSync(dir, { recursive: true });
      // Controllers must be enabled for the children of each level.
      writeFileSync(join(root, 'cgroup.subtree_control'), '+memory +pids +cpu');
      writeFileSync(join(dir, 'cgroup.subtree_control'), '+memory +pids +cpu');
      return 'v2';
    }
    for (const h of ['memory', 'pids', 'cpu']) mkdirSync(join(root, h, PARENT), { recursive: true });
    return 'v1';
  } catch {
    return undefined;
  }
}

export function taskCgroup(version: CgroupVersion, name: string, root = ROOT): CgroupLayout {
  if (version === 'v2') {
    const dir = join(root, PARENT, name);
    return { version, dirs: [dir], oomFile: join(dir, 'memory.events') };
  }
  const dirs = ['memory', 'pids', 'cpu'].map((h) => join(root, h, PARENT, name));
  return { version, dirs, oomFile: join(dirs[0], 'memory.oom_control') };
}

/** Creates the task's groups and writes its limits into them. */
export function createTaskCgroup(layout: CgroupLayout, limits: TaskLimits): void {
  for (const d of layout.dirs) mkdirSync(d, { recursive: true });
  const cpuQuotaUs = limits.cpus === undefined ? undefined : Math.max(1000, Math.round(limits.cpus * 100_000));
  if (layout.version === 'v2') {
    const [d] = layout.dirs;
    writeFileSync(join(d, 'pids.max'), String(limits.pids));
    if (limits.memoryBytes !== undefined) {
      writeFileSync(join(d, 'memory.max'), String(limits.memoryBytes));
      // No escape into swap: over the limit means killed, as on a node without swap.
      if (existsSync(join(d, 'memory.swap.max'))) writeFileSync(join(d, 'memory.swap.max'), '0');
    }
    if (cpuQuotaUs !== undefined) writeFileSync(join(d, 'cpu.max'), `${cpuQuotaUs} 100000`);
    return;
  }
  const [mem, pids, cpu] = layout.dirs;
  writeFileSync(join(pids, 'pids.max'), String(limits.pids));
  if (limits.memoryBytes !== undefined) {
    writeFileSync(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    const memsw = join(mem, 'memory.memsw.limit_in_bytes');
    if (existsSync(memsw)) {
      try {
        writeFileSync(memsw, String(limits.memoryBytes));
      } catch {
        // swap accounting off: nothing to bound
      }
    }
  }
  if (cpuQuotaUs !== undefined) {
    writeFileSync(join(cpu, 'cpu.cfs_period_us'), '100000');
    writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(cpuQuotaUs));
  }
}

/** How many times the kernel's OOM killer struck inside the group (0 when unknown). */
export function oomKills(oomFile: string): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(oomFile, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Sends `signal` to the task's own processes: those in the groups that run as `uid`. The sandbox's
 * top process, the `/bin/sh -c` that runs the command under bubblewrap's init, is spared while it
 * is still that shell: when it dies, bubblewrap's init ends the namespace and every process in it,
 * before a training job that caught SIGTERM could save its checkpoint. The shell ends by itself
 * when its command does.
 */
export function signalCgroup(layout: CgroupLayout, uid: number, signal: NodeJS.Signals): void {
  const procs = cgroupPids(layout)
    .map(procStatus)
    .filter((p) => p !== undefined);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  for (const p of procs) {
    if (p.uid !== uid) continue;
    const topShell = byPid.get(p.ppid)?.uid !== uid && (p.name === 'sh' || p.name === 'dash');
    if (topShell) continue;
    try {
      process.kill(p.pid, signal);
    } catch {
      // gone already
    }
  }
}

function procStatus(pid: number): { pid: number; ppid: number; uid: number; name: string } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(status)?.[1] ?? '';
    return { pid, ppid: Number(field('PPid')), uid: Number(field('Uid')), name: field('Name') };
  } catch {
    return undefined;
  }
}

function cgroupPids(layout: CgroupLayout): number[] {
  const pids = new Set<number>();
  for (const d of layout.dirs) {
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
    } catch {
      // removed already
    }
  }
  return [...pids];
}

/** SIGKILL to every process left in the groups (those that left the task's process group too). */
export function killCgroup(layout: CgroupLayout): void {
  for (const pid of cgroupPids(layout)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Removes the groups once empty; false while processes remain. */
export function removeCgroup(layout: CgroupLayout): boolean {
  let done = true;
  for (const d of layout.dirs) {
    try {
      if (existsSync(d)) rmdirSync(d);
    } catch {
      done = false;
    }
  }
  return done;
}
