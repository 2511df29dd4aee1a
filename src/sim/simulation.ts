// One simulation run: a trace, a fleet and quotas, replayed under one or more policies.
// Pure apart from the clock the engine reads for its own speed; the CLI and the bench do the I/O.
import type { PolicyName, PoolQuota, SchedNode } from '../scheduler/types.js';
import type { DriverFactory } from './core-driver.js';
import { simulate, type EngineResult, type SimJob } from './engine.js';
import { SimInputError } from './errors.js';
import { compressToLoad, type LoadMode, offeredLoad, replicateToLoad, workLoad } from './load.js';
import { computeMetrics, type PolicyMetrics, queueCdf, resampleSteps } from './metrics.js';
import { quotasFromTrace } from './tenants.js';
import { estimateMaxRuntime, type TraceJob } from './trace.js';

export interface SimulationInput {
  readonly traceName: string;
  readonly jobs: readonly TraceJob[];
  /** The whole fleet; only pools the trace uses are simulated. */
  readonly nodes: readonly SchedNode[];
  /** From a tenants file; without it the rule in tenants.ts applies. */
  readonly quotas?: readonly PoolQuota[];
  /** Pool for jobs whose trace row names none; default: the first pool in fleet order. */
  readonly defaultPool?: string;
  readonly policies: readonly PolicyName[];
  /** Target offered load; absent keeps the trace's own timing. */
  readonly load?: number;
  readonly loadMode?: LoadMode;
  readonly seed?: number;
  readonly driver: DriverFactory;
  readonly usageHalfLifeS?: number;
  readonly checkpointIntervalS?: number;
  readonly onStart?: (policy: PolicyName, jobs: number) => void;
  readonly onProgress?: (policy: PolicyName, p: { simS: number; finished: number; total: number }) => void;
  /** Points in the allocation-over-time series (default 400). */
  readonly seriesPoints?: number;
}

export interface PolicySeries {
  /** Seconds from the start and mean GPUs allocated in each bucket. */
  readonly allocation: { readonly t: readonly number[]; readonly gpus: readonly number[] };
  /** [queueing delay in s, fraction of jobs at or below]. */
  readonly queueCdf: readonly [number, number][];
}

export interface SimulationResult {
  readonly trace: string;
  readonly jobs: number;
  /** Jobs the fleet could never run (pool missing, gang larger than the pool or the quota limit). */
  readonly rejected: number;
  readonly rejectedExamples: readonly string[];
  readonly pools: readonly string[];
  readonly capacityGpus: number;
  /** Offered load (load.ts: demand inside the arrival window) of the trace as given, and as simulated. */
  readonly traceLoad: number;
  readonly load: number;
  /** Σ(gpus × duration) / (GPUs × span) as simulated: the whole work, wherever it falls. */
  readonly workLoad: number;
  readonly loadMode: LoadMode | 'none';
  readonly quotaRule: 'tenants-file' | 'gpu-hour-share';
  readonly quotas: readonly PoolQuota[];
  readonly policies: Partial<Record<PolicyName, PolicyMetrics>>;
  readonly series: Partial<Record<PolicyName, PolicySeries>>;
}

function firstPool(nodes: readonly SchedNode[]): string | undefined {
  return nodes.length > 0 ? nodes[0].pool : undefined;
}

export function runSimulation(input: SimulationInput): SimulationResult {
  const defaultPool = input.defaultPool ?? firstPool(input.nodes);
  if (defaultPool === undefined) throw new SimInputError('fleet: no nodes');
  const fleetPools = new Set(input.nodes.map((n) => n.pool));
  if (!fleetPools.has(defaultPool)) {
    throw new SimInputError(`pool: "${defaultPool}" is not in the fleet (${[...fleetPools].join(', ')})`);
  }

  // Resolve each job's pool; reject what could never run, as the API would at submit time.
  const withPool = input.jobs.map((j) => ({ ...j, pool: j.pool ?? defaultPool }));
  const pools = [...new Set(withPool.map((j) => j.pool))].filter((p) => fleetPools.has(p)).sort();
  const nodes = input.nodes.filter((n) => pools.includes(n.pool));
  const capacityByPool = new Map<string, number>();
  for (const n of nodes) if (n.schedulable) capacityByPool.set(n.pool, (capacityByPool.get(n.pool) ?? 0) + n.gpus);
  const capacityGpus = [...capacityByPool.values()].reduce((s, x) => s + x, 0);

  const quotaRule = input.quotas ? 'tenants-file' : 'gpu-hour-share';
  const quotas = input.quotas
    ? input.quotas.filter((q) => pools.includes(q.pool))
    : quotasFromTrace(
        withPool.filter((j) => fleetPools.has(j.pool)),
        capacityByPool,
      );
  const limitOf = new Map(quotas.map((q) => [`${q.project}\u0000${q.pool}`, q.limit]));
  if (input.quotas) {
    const missing = [
      ...new Set(
        withPool.filter((j) => !limitOf.has(`${j.project}\u0000${j.pool}`)).map((j) => `${j.project} (${j.pool})`),
      ),
    ];
    if (missing.length > 0) {
      throw new SimInputError(
        `tenants: ${missing.length} project(s) of the trace have no quota in the pool they use: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      );
    }
  }

  const rejectedExamples: string[] = [];
  let rejected = 0;
  const reject = (j: TraceJob, why: string): false => {
    rejected++;
    if (rejectedExamples.length < 5) rejectedExamples.push(`${j.id}: ${why}`);
    return false;
  };
  const kept = withPool.filter((j) => {
    if (!fleetPools.has(j.pool)) return reject(j, `pool "${j.pool}" is not in the fleet`);
    const fits = nodes.filter((n) => n.pool === j.pool && n.schedulable && n.gpus >= j.gpusPerNode).length;
    if (fits < j.nodes) return reject(j, `${j.nodes} × ${j.gpusPerNode} GPUs; pool ${j.pool} has ${fits} such nodes`);
    const limit = limitOf.get(`${j.project}\u0000${j.pool}`) ?? 0;
    if (limit < j.gpus) return reject(j, `${j.gpus} GPUs above project ${j.project}'s limit ${limit} in ${j.pool}`);
    return true;
  });
  if (kept.length === 0) throw new SimInputError('trace: no job fits the fleet');

  const traceLoad = offeredLoad(kept, capacityGpus);
  let timed: TraceJob[] = kept;
  let loadMode: LoadMode | 'none' = 'none';
  if (input.load !== undefined) {
    loadMode = input.loadMode ?? 'compress';
    timed =
      loadMode === 'replicate'
        ? replicateToLoad(kept, capacityGpus, input.load, input.seed ?? 1)
        : compressToLoad(kept, capacityGpus, input.load);
  }
  const jobs: SimJob[] = timed.map((j) => ({
    id: j.id,
    submitS: j.submitS,
    durationS: j.durationS,
    maxRuntimeS: estimateMaxRuntime(j.durationS),
    nodes: j.nodes,
    gpusPerNode: j.gpusPerNode,
    project: j.project,
    pool: j.pool ?? defaultPool,
    priority: j.priority,
  }));

  const policies: Partial<Record<PolicyName, PolicyMetrics>> = {};
  const series: Partial<Record<PolicyName, PolicySeries>> = {};
  const runs: EngineResult[] = [];
  for (const policy of input.policies) {
    input.onStart?.(policy, jobs.length);
    const r = simulate({
      jobs,
      nodes,
      quotas,
      policy,
      driver: input.driver,
      usageHalfLifeS: input.usageHalfLifeS,
      checkpointIntervalS: input.checkpointIntervalS,
      onProgress: input.onProgress ? (p) => input.onProgress!(policy, p) : undefined,
    });
    runs.push(r);
    policies[policy] = computeMetrics(jobs, r);
  }
  // One time axis for every policy's allocation series, so the chart compares like with like. It
  // covers the arrivals and as long again of drain: heavy tails would otherwise make the chart
  // mostly the last few jobs running alone.
  const from = jobs[0].submitS;
  const arrivals = jobs[jobs.length - 1].submitS - from;
  const drained = Math.max(...runs.map((r) => r.endS), from + 1);
  const to = arrivals > 0 ? Math.min(drained, from + 2 * arrivals) : drained;
  for (const r of runs) {
    const s = resampleSteps(r.allocT, r.allocGpus, from, to, input.seriesPoints ?? 400);
    series[r.policy] = { allocation: { t: s.t.map((x) => x - from), gpus: s.v }, queueCdf: queueCdf(jobs, r) };
  }

  return {
    trace: input.traceName,
    jobs: jobs.length,
    rejected,
    rejectedExamples,
    pools,
    capacityGpus,
    traceLoad,
    load: offeredLoad(timed, capacityGpus),
    workLoad: workLoad(timed, capacityGpus),
    loadMode,
    quotaRule,
    quotas,
    policies,
    series,
  };
}
