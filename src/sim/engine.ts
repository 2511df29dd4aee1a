// Discrete-event simulation on a virtual clock, driving the real scheduler core.
//
// Events are submissions (from the trace) and finishes (from placements). All events at the same
// instant are applied first, then one scheduling cycle runs; if that cycle preempted anything,
// another runs at the same instant so the freed GPUs are handed out before time moves on.
//
// Preemption is checkpoint-resume, the norm for training jobs: a preempted job goes back to the
// queue (eligible again from its preemption) and, when placed again, runs only what was left. With
// `checkpointIntervalS` > 0 it resumes from its last checkpoint instead and loses the work since.
// A job's declared max runtime shrinks by the work it has kept, as a user resubmitting would.
// Under tiresias-las the engine also keeps each job's attained service (what the core's LAS queues
// read, `attainedGpuS`), taken from the core's own rule (`tiresiasAttained`) when it preempts.
import { resolveOptions } from '../scheduler/options.js';
import { tiresiasAttained } from '../scheduler/tiresias.js';
import type {
  Decisions,
  PolicyName,
  PoolQuota,
  PriorityClass,
  RunningWorkload,
  SchedNode,
  WorkloadRequest,
} from '../scheduler/types.js';
import type { CoreDriver, DriverFactory } from './core-driver.js';
import { EventHeap } from './heap.js';

/** A trace job resolved for one simulation: pool chosen, max runtime declared. */
export interface SimJob {
  readonly id: string;
  readonly submitS: number;
  readonly durationS: number;
  readonly maxRuntimeS: number;
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly project: string;
  readonly pool: string;
  readonly priority: PriorityClass;
}

export interface EngineOptions {
  /** Sorted by submit time. */
  readonly jobs: readonly SimJob[];
  readonly nodes: readonly SchedNode[];
  readonly quotas: readonly PoolQuota[];
  readonly policy: PolicyName;
  readonly driver: DriverFactory;
  /** Half-life of the decayed usage the core's fair share reads (Slurm's PriorityDecayHalfLife). */
  readonly usageHalfLifeS?: number;
  /** 0 (default): a preempted job keeps all its progress. */
  readonly checkpointIntervalS?: number;
  /** Called about every `progressEvery` cycles and once at the end. */
  readonly onProgress?: (p: { readonly simS: number; readonly finished: number; readonly total: number }) => void;
  readonly progressEvery?: number;
}

export interface JobOutcome {
  /** NaN when the job never started. */
  firstStartS: number;
  /** NaN when the job never finished. */
  endS: number;
  preemptions: number;
  /** Leaf switches spanned, one entry per placement of the job. */
  leaves: number[];
}

export interface EngineResult {
  readonly policy: PolicyName;
  readonly outcomes: readonly JobOutcome[];
  /** GPUs allocated from each change point on: a step function. */
  readonly allocT: readonly number[];
  readonly allocGpus: readonly number[];
  /** GPUs of the nodes in the simulation. */
  readonly capacity: number;
  readonly startS: number;
  readonly endS: number;
  readonly cycles: number;
  readonly wallMs: number;
}

export const DEFAULT_USAGE_HALF_LIFE_S = 86_400;
/** A safety net against a core that keeps preempting at one instant; never reached in practice. */
const MAX_CYCLES_PER_INSTANT = 8;

interface RunState {
  startS: number;
  gpus: number;
  /** Work done before this run (seconds). */
  doneS: number;
  /** What the core was told is running. */
  w: RunningWorkload;
}

export function simulate(opts: EngineOptions): EngineResult {
  const wall0 = performance.now();
  const { jobs, nodes, quotas, policy } = opts;
  const halfLife = opts.usageHalfLifeS ?? DEFAULT_USAGE_HALF_LIFE_S;
  const ckpt = opts.checkpointIntervalS ?? 0;
  const progressEvery = opts.progressEvery ?? 2000;
  const n = jobs.length;

  const index = new Map<string, number>();
  jobs.forEach((j, i) => {
    if (index.has(j.id)) throw new Error(`duplicate job id ${j.id}`);
    if (i > 0 && j.submitS < jobs[i - 1].submitS) throw new Error('jobs must be sorted by submit time');
    index.set(j.id, i);
  });

  // GPU occupancy per node as a bitmask: cheap proof that the core never double-books a GPU.
  const nodeIdx = new Map<string, number>();
  for (const [i, nd] of nodes.entries()) nodeIdx.set(nd.name, i);
  const busy = new Float64Array(nodes.length);
  const capacity = nodes.reduce((s, nd) => s + nd.gpus, 0);

  const outcomes: JobOutcome[] = jobs.map(() => ({
    firstStartS: Number.NaN,
    endS: Number.NaN,
    preemptions: 0,
    leaves: [],
  }));
  const done = new Float64Array(n); // work kept across preemptions
  const gen = new Uint32Array(n);
  const requeuedAt = new Float64Array(n);
  // tiresias-las: attained service counted for the LAS queue (GPU-seconds), kept across preemptions.
  const attained = new Float64Array(n);
  const las = policy === 'tiresias-las' ? resolveOptions(undefined) : null;
  const runs = new Map<number, RunState & { placement: RunningWorkload['placement'] }>();
  const heap = new EventHeap();
  const driver: CoreDriver = opts.driver({ nodes, quotas, policy });

  // Decayed GPU-seconds per project, advanced lazily to each cycle's instant.
  const projects = [...new Set(jobs.map((j) => j.project))].sort();
  const usage = new Map<string, number>(projects.map((p) => [p, 0]));
  const runningGpus = new Map<string, number>(projects.map((p) => [p, 0]));
  let usageAt = jobs.length > 0 ? jobs[0].submitS : 0;
  const advanceUsage = (t: number): void => {
    const dt = t - usageAt;
    if (dt <= 0) return;
    const decay = 2 ** (-dt / halfLife);
    const gain = (halfLife / Math.LN2) * (1 - decay);
    for (const p of projects) usage.set(p, usage.get(p)! * decay + runningGpus.get(p)! * gain);
    usageAt = t;
  };

  const request = (i: number): WorkloadRequest => {
    const j = jobs[i];
    const kept = done[i];
    return {
      id: j.id,
      project: j.project,
      pool: j.pool,
      kind: 'training',
      priority: j.priority,
      nodes: j.nodes,
      gpusPerNode: j.gpusPerNode,
      maxRuntimeS: Math.max(1, j.maxRuntimeS - kept),
      // A requeued job becomes eligible again when it was preempted (Slurm resets a requeued
      // job's eligible time, and so its age factor). Why: with the original submit time, the
      // reclaimed borrower's resumed work went ahead of its project's never-started jobs and took
      // the whole nodes they were waiting for (the Philly bench's p99). Metrics still count from
      // the trace's submit time.
      submittedAt: outcomes[i].preemptions > 0 ? requeuedAt[i] : j.submitS,
      // Only the oracle baseline may know the truth.
      ...(policy === 'srtf-oracle' ? { oracleRuntimeS: j.durationS - kept } : {}),
      ...(las && attained[i] > 0 ? { attainedGpuS: attained[i] } : {}),
    };
  };

  const allocT: number[] = [];
  const allocGpus: number[] = [];
  let allocated = 0;
  const recordAlloc = (t: number): void => {
    const last = allocGpus.length - 1;
    if (last >= 0 && allocGpus[last] === allocated) return;
    if (last >= 0 && allocT[last] === t) allocGpus[last] = allocated;
    else {
      allocT.push(t);
      allocGpus.push(allocated);
    }
  };

  const setBusy = (i: number, placement: RunningWorkload['placement'], on: boolean): void => {
    for (const a of placement.nodes) {
      const k = nodeIdx.get(a.node);
      if (k === undefined) throw new Error(`core placed ${jobs[i].id} on unknown node ${a.node}`);
      for (const g of a.gpuIndexes) {
        const bit = 2 ** g;
        const isBusy = Math.floor(busy[k] / bit) % 2 === 1;
        if (on && isBusy) throw new Error(`core placed ${jobs[i].id} on busy GPU ${a.node}/${g}`);
        if (!on && !isBusy) throw new Error(`GPU ${a.node}/${g} was not held by ${jobs[i].id}`);
        busy[k] += on ? bit : -bit;
      }
    }
  };

  const stop = (i: number): RunState => {
    const r = runs.get(i)!;
    runs.delete(i);
    setBusy(i, r.placement, false);
    allocated -= r.gpus;
    runningGpus.set(jobs[i].project, runningGpus.get(jobs[i].project)! - r.gpus);
    driver.left(jobs[i].id);
    gen[i]++;
    return r;
  };

  const apply = (d: Decisions, t: number): number => {
    for (const p of d.preempt) {
      const i = index.get(p.workloadId);
      if (i === undefined || !runs.has(i)) throw new Error(`core preempted ${p.workloadId}, which is not running`);
      const r = stop(i);
      if (las) attained[i] = tiresiasAttained(r.w, t, las);
      let ran = t - r.startS;
      if (ckpt > 0) ran = Math.floor(ran / ckpt) * ckpt;
      done[i] = Math.min(jobs[i].durationS, r.doneS + ran);
      outcomes[i].preemptions++;
      requeuedAt[i] = t;
      driver.submit(request(i));
    }
    for (const p of d.place) {
      const i = index.get(p.workloadId);
      if (i === undefined || runs.has(i) || !Number.isNaN(outcomes[i].endS)) {
        throw new Error(`core placed ${p.workloadId}, which is not pending`);
      }
      const j = jobs[i];
      const gpus = p.placement.nodes.reduce((s, a) => s + a.gpuIndexes.length, 0);
      if (gpus !== j.nodes * j.gpusPerNode)
        throw new Error(`core gave ${j.id} ${gpus} GPUs, it asked ${j.nodes * j.gpusPerNode}`);
      setBusy(i, p.placement, true);
      const o = outcomes[i];
      if (Number.isNaN(o.firstStartS)) o.firstStartS = t;
      o.leaves.push(p.placement.leaves.length);
      allocated += gpus;
      runningGpus.set(j.project, runningGpus.get(j.project)! + gpus);
      const req = request(i);
      // The core's preemption cooldown applies to work that was preempted before.
      const again = o.preemptions > 0 ? { preemptions: o.preemptions } : {};
      const w: RunningWorkload = { ...req, startedAt: t, placement: p.placement, borrowed: p.borrowed, ...again };
      runs.set(i, { startS: t, gpus, doneS: done[i], placement: p.placement, w });
      driver.started(w);
      heap.push({ t: t + (j.durationS - done[i]), job: i, gen: gen[i] });
    }
    return d.preempt.length;
  };

  let next = 0; // next arrival
  let queued = 0;
  let finished = 0;
  let cycles = 0;
  let steps = 0;
  let t = n > 0 ? jobs[0].submitS : 0;
  const startS = t;
  recordAlloc(t);

  for (;;) {
    // Drop finish events made stale by preemption.
    while (heap.size > 0 && heap.peek()!.gen !== gen[heap.peek()!.job]) heap.pop();
    const nextArrival = next < n ? jobs[next].submitS : Number.POSITIVE_INFINITY;
    const nextFinish = heap.size > 0 ? heap.peek()!.t : Number.POSITIVE_INFINITY;
    t = Math.min(nextArrival, nextFinish);
    if (t === Number.POSITIVE_INFINITY) break; // nothing runs, nothing arrives: what is queued never fits
    advanceUsage(t);

    while (heap.size > 0 && heap.peek()!.t === t) {
      const e = heap.pop()!;
      if (e.gen !== gen[e.job]) continue;
      stop(e.job);
      outcomes[e.job].endS = t;
      finished++;
    }
    while (next < n && jobs[next].submitS === t) {
      driver.submit(request(next));
      next++;
    }
    queued = next - finished - runs.size;

    for (let k = 0; k < MAX_CYCLES_PER_INSTANT && queued > 0; k++) {
      const preempted = apply(driver.cycle(t, Object.fromEntries(usage)), t);
      cycles++;
      queued = next - finished - runs.size;
      if (preempted === 0) break;
    }
    recordAlloc(t);
    if (opts.onProgress && ++steps % progressEvery === 0) opts.onProgress({ simS: t - startS, finished, total: n });
  }

  // Not Math.max: jobs that never finished carry NaN, which must not win.
  let endS = startS;
  for (const o of outcomes) if (o.endS > endS) endS = o.endS;
  opts.onProgress?.({ simS: endS - startS, finished, total: n });
  return {
    policy,
    outcomes,
    allocT,
    allocGpus,
    capacity,
    startS,
    endS,
    cycles,
    wallMs: performance.now() - wall0,
  };
}
