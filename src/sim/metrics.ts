// What a simulation run says about a policy. Pure functions over the engine's result.
//
// Definitions (the report and docs/simulator.md repeat them):
// - JCT = end − submit; queueing delay = first start − submit (a preempted job's later waits count
//   in its JCT, not here); wait = JCT − run time: every second a finished job was not running,
//   before its first start and after each preemption (with checkpoint-resume, the simulator's
//   default, no work is lost, so this is exact). Preemptive policies (Tiresias starts new work at
//   once and preempts it later) are compared on the wait; bounded slowdown = JCT / max(run time, 10 s).
// - Percentiles are nearest-rank: the smallest value with at least p% of the values at or below it.
// - Utilization = allocated GPU-seconds / (pool GPUs × time), over the arrival window (first to last
//   submission), where the offered load is defined; the drain after it is excluded.
// - Jain's index is taken over projects on x = 1 / (project's average bounded slowdown): each
//   project's rate of progress relative to running alone. 1 means every project is slowed alike.
// - The starvation bound is the largest queueing delay of any job.
import type { EngineResult, SimJob } from './engine.js';

export const SLOWDOWN_FLOOR_S = 10;

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Nearest-rank percentile of an ascending array; p in [0, 100]. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

export function percentile(xs: readonly number[], p: number): number {
  return percentileSorted(
    [...xs].sort((a, b) => a - b),
    p,
  );
}

export function boundedSlowdown(jctS: number, runtimeS: number, floorS = SLOWDOWN_FLOOR_S): number {
  return jctS / Math.max(runtimeS, floorS);
}

/** Jain's fairness index: (Σx)² / (n·Σx²); 1 when all equal, 1/n when one takes everything. */
export function jainIndex(xs: readonly number[]): number {
  if (xs.length === 0) return 1;
  let s = 0;
  let s2 = 0;
  for (const x of xs) {
    s += x;
    s2 += x * x;
  }
  return s2 === 0 ? 1 : (s * s) / (xs.length * s2);
}

/** Integral of a step function (value v[k] from t[k] on) over [from, to]. */
export function stepIntegral(t: readonly number[], v: readonly number[], from: number, to: number): number {
  let sum = 0;
  for (let k = 0; k < t.length; k++) {
    const a = Math.max(t[k], from);
    const b = Math.min(k + 1 < t.length ? t[k + 1] : Number.POSITIVE_INFINITY, to);
    if (b > a) sum += v[k] * (b - a);
  }
  return sum;
}

/** Time-weighted average of a step function in `points` equal buckets over [from, to]. */
export function resampleSteps(
  t: readonly number[],
  v: readonly number[],
  from: number,
  to: number,
  points: number,
): { t: number[]; v: number[] } {
  const outT: number[] = [];
  const outV: number[] = [];
  if (to <= from || points < 1) return { t: outT, v: outV };
  const w = (to - from) / points;
  let k = 0;
  for (let b = 0; b < points; b++) {
    const a0 = from + b * w;
    const a1 = a0 + w;
    while (k + 1 < t.length && t[k + 1] <= a0) k++;
    let sum = 0;
    for (let m = k; m < t.length && t[m] < a1; m++) {
      const s = Math.max(t[m], a0);
      const e = Math.min(m + 1 < t.length ? t[m + 1] : Number.POSITIVE_INFINITY, a1);
      if (e > s) sum += v[m] * (e - s);
    }
    outT.push(a0);
    outV.push(sum / w);
  }
  return { t: outT, v: outV };
}

export interface ProjectMetrics {
  readonly jobs: number;
  readonly gpuHours: number;
  readonly avgQueueS: number;
  readonly avgBoundedSlowdown: number;
}

export interface PolicyMetrics {
  readonly avgJctS: number;
  readonly p99JctS: number;
  readonly avgQueueS: number;
  readonly p99QueueS: number;
  readonly avgBoundedSlowdown: number;
  readonly utilization: number;
  readonly jain: number;
  readonly preemptions: number;
  readonly p50JctS: number;
  readonly p50QueueS: number;
  /** Starvation bound: the longest any job waited for its first start. */
  readonly maxQueueS: number;
  /** Wait = JCT − run time (queueing plus every wait after a preemption), of finished jobs. */
  readonly avgWaitS: number;
  readonly p99WaitS: number;
  readonly maxWaitS: number;
  readonly jobs: number;
  readonly finished: number;
  /** Jobs that never started (they could never fit their quota or the pool). */
  readonly neverStarted: number;
  /** Placements of multi-node jobs by leaf switches spanned. */
  readonly leafSwitches: Readonly<Record<string, number>>;
  /** Jobs of more than one node in the trace (0: `leafSwitches` is empty by nature). */
  readonly multiNodeJobs: number;
  readonly makespanS: number;
  readonly simHours: number;
  readonly wallS: number;
  readonly simHoursPerSec: number;
  /** Jobs simulated per wall-clock second of this policy's run (comparable across traces). */
  readonly jobsPerSec: number;
  readonly cycles: number;
  readonly projects: Readonly<Record<string, ProjectMetrics>>;
}

/** Window where utilization is measured: first to last submission. */
export function arrivalWindow(jobs: readonly SimJob[]): { from: number; to: number } {
  if (jobs.length === 0) return { from: 0, to: 0 };
  return { from: jobs[0].submitS, to: jobs[jobs.length - 1].submitS };
}

export function computeMetrics(jobs: readonly SimJob[], r: EngineResult): PolicyMetrics {
  const jct: number[] = [];
  const queue: number[] = [];
  const wait: number[] = [];
  const slow: number[] = [];
  const perProject = new Map<string, { jobs: number; gpuS: number; queue: number[]; slow: number[] }>();
  const leafSwitches: Record<string, number> = {};
  let preemptions = 0;
  let neverStarted = 0;
  let multiNodeJobs = 0;
  jobs.forEach((j, i) => {
    const o = r.outcomes[i];
    preemptions += o.preemptions;
    if (j.nodes > 1) {
      multiNodeJobs++;
      for (const l of o.leaves) leafSwitches[l] = (leafSwitches[l] ?? 0) + 1;
    }
    let p = perProject.get(j.project);
    if (!p) {
      p = { jobs: 0, gpuS: 0, queue: [], slow: [] };
      perProject.set(j.project, p);
    }
    p.jobs++;
    p.gpuS += j.nodes * j.gpusPerNode * j.durationS;
    if (Number.isNaN(o.firstStartS)) {
      neverStarted++;
      return;
    }
    const q = o.firstStartS - j.submitS;
    queue.push(q);
    p.queue.push(q);
    if (!Number.isNaN(o.endS)) {
      const c = o.endS - j.submitS;
      jct.push(c);
      wait.push(Math.max(0, c - j.durationS));
      const s = boundedSlowdown(c, j.durationS);
      slow.push(s);
      p.slow.push(s);
    }
  });
  jct.sort((a, b) => a - b);
  queue.sort((a, b) => a - b);
  wait.sort((a, b) => a - b);

  const projects: Record<string, ProjectMetrics> = {};
  const speeds: number[] = [];
  for (const [name, p] of [...perProject].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const avgSlow = mean(p.slow);
    projects[name] = { jobs: p.jobs, gpuHours: p.gpuS / 3600, avgQueueS: mean(p.queue), avgBoundedSlowdown: avgSlow };
    if (p.slow.length > 0) speeds.push(1 / avgSlow);
  }

  const win = arrivalWindow(jobs);
  const to = win.to > win.from ? win.to : r.endS;
  const span = to - win.from;
  const utilization =
    span > 0 && r.capacity > 0 ? stepIntegral(r.allocT, r.allocGpus, win.from, to) / (r.capacity * span) : 0;
  const simHours = (r.endS - r.startS) / 3600;
  const wallS = r.wallMs / 1000;
  return {
    avgJctS: mean(jct),
    p99JctS: percentileSorted(jct, 99),
    avgQueueS: mean(queue),
    p99QueueS: percentileSorted(queue, 99),
    avgBoundedSlowdown: mean(slow),
    utilization,
    jain: jainIndex(speeds),
    preemptions,
    p50JctS: percentileSorted(jct, 50),
    p50QueueS: percentileSorted(queue, 50),
    maxQueueS: queue.length > 0 ? queue[queue.length - 1] : 0,
    avgWaitS: mean(wait),
    p99WaitS: percentileSorted(wait, 99),
    maxWaitS: wait.length > 0 ? wait[wait.length - 1] : 0,
    jobs: jobs.length,
    finished: jct.length,
    neverStarted,
    leafSwitches,
    multiNodeJobs,
    makespanS: r.endS - r.startS,
    simHours,
    wallS,
    simHoursPerSec: wallS > 0 ? simHours / wallS : 0,
    jobsPerSec: wallS > 0 ? jobs.length / wallS : 0,
    cycles: r.cycles,
    projects,
  };
}

/** Ascending queueing delays, thinned to at most `points` for a CDF chart: [delay, fraction ≤]. */
export function queueCdf(jobs: readonly SimJob[], r: EngineResult, points = 200): [number, number][] {
  const q: number[] = [];
  jobs.forEach((j, i) => {
    const s = r.outcomes[i].firstStartS;
    if (!Number.isNaN(s)) q.push(s - j.submitS);
  });
  q.sort((a, b) => a - b);
  const out: [number, number][] = [];
  if (q.length === 0) return out;
  const step = Math.max(1, Math.floor(q.length / points));
  for (let k = step - 1; k < q.length; k += step) out.push([q[k], (k + 1) / q.length]);
  if (out[out.length - 1][1] !== 1) out.push([q[q.length - 1], 1]);
  return out;
}
