// Scheduler benchmark: the Munich fleet (10,000 GPUs), 200 projects, 100,000 pending workloads
// of mixed shapes. Measures
//   - placementsPerSec: the first cycle on an empty fleet, placements over its wall time;
//   - fullCycleMs: a cycle with nothing cached: the first cycle of a scheduler just loaded with
//     the busy fleet and the whole queue (every answer computed afresh);
//   - pureScheduleMs: schedule(snapshot), i.e. the same plus building every index from the snapshot;
//   - steadyCycleMs: a cycle of the incremental scheduler with nothing changed, once settled (cycles
//     with their decisions applied until one decides nothing: `settleCycles`);
//   - incrementalCycleMs: one workload finishes, then a cycle (the finish delta included);
//   - peakHeapMiB: the most heap in use at any sample.
// Quantiles: p50, p99 and max over the runs (with 40 runs the p99 was the max; 200 give a real p99).
// Options: --pending N (default 100000), --seed N, --runs N (steady and incremental cycles, default
// 200), --full-runs N (cycles with nothing cached, default 10), --drain-after H|off (fabrik's
// starvation drain, hours past the aging key; default: the core's default).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseFleetFile, toSchedNodes } from '../src/fleet/fleet-file.js';
import { checkFeasible, IncrementalScheduler, schedule } from '../src/scheduler/index.js';
import { makeNodes } from '../src/scheduler/fixtures.js';
import { int, pick, rng, type Rng } from '../src/scheduler/random-snapshot.js';
import type { PoolQuota, PriorityClass, SchedNode, ScheduleOptions, WorkloadRequest } from '../src/scheduler/types.js';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
}

function munichNodes(): { nodes: SchedNode[]; source: string } {
  const path = fileURLToPath(new URL('../examples/fleets/munich.yaml', import.meta.url));
  try {
    const spec = parseFleetFile(readFileSync(path, 'utf8'), path);
    return { nodes: toSchedNodes(spec.nodes), source: 'examples/fleets/munich.yaml' };
  } catch {
    // Same shape, generated: 1,000 B200 and 256 RTX PRO nodes in pods of 32, leaves of 16.
    const b200 = makeNodes({ pool: 'b200', pods: 32, leavesPerPod: 2, nodesPerLeaf: 16 }).slice(0, 1000);
    const rtx = makeNodes({ pool: 'rtxpro6000', pods: 8, leavesPerPod: 2, nodesPerLeaf: 16 }).slice(0, 250);
    return { nodes: [...b200, ...rtx], source: 'generated' };
  }
}

const PRIORITIES: PriorityClass[] = [
  'critical',
  'high',
  'normal',
  'normal',
  'normal',
  'normal',
  'preemptible',
  'preemptible',
];

/** 1 GPU to 64 nodes, most of them small, as on real clusters. */
function randomShape(r: Rng): { nodes: number; gpusPerNode: number } {
  const x = r();
  if (x < 0.4) return { nodes: 1, gpusPerNode: 1 };
  if (x < 0.55) return { nodes: 1, gpusPerNode: 2 };
  if (x < 0.7) return { nodes: 1, gpusPerNode: 4 };
  if (x < 0.85) return { nodes: 1, gpusPerNode: 8 };
  if (x < 0.95) return { nodes: int(r, 2, 4), gpusPerNode: 8 };
  if (x < 0.99) return { nodes: int(r, 8, 16), gpusPerNode: 8 };
  return { nodes: pick(r, [32, 64]), gpusPerNode: 8 };
}

function quantiles(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(s[s.length - 1]) };
}

const round = (x: number) => Math.round(x * 100) / 100;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
// CPU time of this process: on a shared machine, what the cycle itself cost.
const cpuMs = (c0: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};

function drainOption(args: string[]): ScheduleOptions | undefined {
  const i = args.indexOf('--drain-after');
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === 'off') return { drainAfterS: Number.POSITIVE_INFINITY };
  const h = Number(v);
  if (!Number.isFinite(h) || h <= 0) throw new Error(`--drain-after: "${v}" is not a positive number of hours or off`);
  return { drainAfterS: h * 3600 };
}

function drainLabel(s: number | undefined): string {
  if (s === undefined) return 'default';
  return Number.isFinite(s) ? `${s / 3600} h` : 'off';
}

export default async function (args: string[]): Promise<object> {
  const options = drainOption(args);
  const target = flag(args, 'pending', 100_000);
  const runs = flag(args, 'runs', 200);
  const fullRuns = flag(args, 'full-runs', 10);
  const r = rng(flag(args, 'seed', 7));
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  };

  const { nodes, source } = munichNodes();
  const gpus = nodes.reduce((s, n) => s + n.gpus, 0);
  const projects = Array.from({ length: 200 }, (_, k) => `proj-${String(k).padStart(3, '0')}`);
  const quotas: PoolQuota[] = [];
  for (const pool of ['b200', 'rtxpro6000']) {
    const cap = nodes.filter((n) => n.pool === pool).reduce((s, n) => s + n.gpus, 0);
    const g = Math.floor(cap / projects.length);
    for (const project of projects)
      quotas.push({ project, pool, guaranteed: g, limit: Math.max(g, Math.floor(cap / 4)), weight: int(r, 1, 3) });
  }

  // The queue: only what submit-time checks accept (64-node gangs do not fit a 32-node pod).
  const pending: WorkloadRequest[] = [];
  let rejected = 0;
  const now = 86_400;
  while (pending.length < target) {
    const shape = randomShape(r);
    const w: WorkloadRequest = {
      id: `w${pending.length + rejected}`,
      project: pick(r, projects),
      pool: r() < 0.8 ? 'b200' : 'rtxpro6000',
      kind: 'training',
      priority: pick(r, PRIORITIES),
      ...shape,
      maxRuntimeS: pick(r, [600, 1800, 3600, 4 * 3600, 12 * 3600, 48 * 3600]),
      submittedAt: int(r, 0, now),
    };
    if (checkFeasible(w, nodes).ok) pending.push(w);
    else rejected++;
  }
  sample();

  // 1. Placements per second: the first cycle on an empty fleet.
  const inc = new IncrementalScheduler({ nodes, quotas, policy: 'fabrik', ...(options ? { options } : {}) });
  inc.submitMany(pending);
  sample();
  let t0 = process.hrtime.bigint();
  const first = inc.cycle(now);
  const firstMs = ms(t0);
  sample();
  const placementsPerSec = Math.round(first.place.length / (firstMs / 1000));
  inc.apply(first, now);

  // 2. Full cycles: nothing cached, on the now busy fleet.
  const snap = inc.snapshot(now + 1);
  const full: number[] = [];
  const fullCpu: number[] = [];
  const pure: number[] = [];
  for (let k = 0; k < fullRuns; k++) {
    const cold = IncrementalScheduler.fromSnapshot(snap);
    t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    cold.cycle(now + 1);
    full.push(ms(t0));
    fullCpu.push(cpuMs(c0));
    t0 = process.hrtime.bigint();
    schedule(snap);
    pure.push(ms(t0));
    sample();
  }

  // 2b. Settle: cycles at now+1, decisions applied, until one decides nothing (or 50 cycles). With
  // the starvation drain on, the loaded fleet is not at rest: drains preempt and the freed GPUs
  // are backfilled for several cycles, and those catch-up cycles (hundreds of placements each)
  // are not what "one workload finished" costs.
  let settleCycles = 0;
  for (; settleCycles < 50; settleCycles++) {
    const d = inc.cycle(now + 1);
    if (d.place.length + d.preempt.length === 0) break;
    inc.apply(d, now + 1);
  }
  sample();

  // 3. Steady cycles of the incremental scheduler (nothing changed).
  const steady: number[] = [];
  for (let k = 0; k < runs; k++) {
    t0 = process.hrtime.bigint();
    inc.cycle(now + 1);
    steady.push(ms(t0));
    sample();
  }

  // 4. One workload finishes, then a cycle; its decisions are applied before the next one.
  const running = inc.snapshot(now + 1).running.map((w) => w.id);
  const incremental: number[] = [];
  const incrementalCpu: number[] = [];
  let placedAfterFinish = 0;
  let t = now + 2;
  for (let k = 0; k < runs && running.length > 0; k++) {
    const id = running.splice(int(r, 0, running.length - 1), 1)[0];
    t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    inc.remove(id);
    const d = inc.cycle(t);
    incremental.push(ms(t0));
    incrementalCpu.push(cpuMs(c0));
    placedAfterFinish += d.place.length;
    inc.apply(d, t);
    for (const p of d.place) running.push(p.workloadId);
    t += 10;
    sample();
  }

  return {
    bench: 'scheduler',
    fleet: source,
    gpus,
    nodes: nodes.length,
    projects: projects.length,
    pending: pending.length,
    rejectedAtSubmit: rejected,
    fullCycleMs: quantiles(full),
    pureScheduleMs: quantiles(pure),
    steadyCycleMs: quantiles(steady),
    incrementalCycleMs: quantiles(incremental),
    cpuMs: { fullCycle: quantiles(fullCpu), incrementalCycle: quantiles(incrementalCpu) },
    loadAverage: round(loadavg()[0]),
    placementsPerSec,
    firstCycle: { ms: round(firstMs), placed: first.place.length },
    placedAfterFinish,
    settleCycles,
    drain: drainLabel(options?.drainAfterS),
    peakHeapMiB: Math.round(peak / 2 ** 20),
  };
}
