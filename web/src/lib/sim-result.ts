// Reading a simulator result.json (what `fabrik sim --out` writes, src/sim/report.ts resultJson)
// for the Simulator page: checked field by field, so a wrong file says what is wrong. The time
// series (allocation over time, queueing-delay CDF) and the wait metrics are newer than some
// files: missing, they are absent here; present but malformed, they are an error.
export interface SimPolicy {
  readonly avgJctS: number;
  readonly p99JctS: number;
  readonly avgQueueS: number;
  readonly p99QueueS: number;
  readonly avgBoundedSlowdown: number;
  readonly utilization: number;
  readonly jain: number;
  readonly preemptions: number;
  /** Wait = JCT − run time (queueing before the first start and after preemptions); newer files only. */
  readonly avgWaitS?: number;
  readonly p99WaitS?: number;
  readonly maxWaitS?: number;
  readonly projects: Readonly<
    Record<string, { jobs: number; gpuHours: number; avgQueueS: number; avgBoundedSlowdown: number }>
  >;
}

export interface SimResult {
  readonly trace: string;
  readonly jobs: number;
  readonly capacityGpus: number;
  readonly policies: Readonly<Record<string, SimPolicy>>;
  readonly ratiosToFifo: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Per policy: GPUs allocated over time and the queueing-delay CDF (absent in older files). */
  readonly series: Readonly<Record<string, SimSeries>>;
}

export interface SimSeries {
  /** Seconds from the first submission, and the mean GPUs allocated in each step. */
  readonly allocation: { readonly t: readonly number[]; readonly gpus: readonly number[] };
  /** [queueing delay s, fraction of jobs waiting at most that long], delay ascending. */
  readonly queueCdf: readonly (readonly [number, number])[];
}

const NUMS = [
  'avgJctS',
  'p99JctS',
  'avgQueueS',
  'p99QueueS',
  'avgBoundedSlowdown',
  'utilization',
  'jain',
  'preemptions',
] as const;

export class SimResultError extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseSimResult(text: string): SimResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new SimResultError(`not JSON: ${(e as Error).message}`);
  }
  if (!isObj(doc)) throw new SimResultError('result.json must be an object');
  if (typeof doc.trace !== 'string') throw new SimResultError('trace: expected a string');
  if (typeof doc.jobs !== 'number') throw new SimResultError('jobs: expected a number');
  if (typeof doc.capacityGpus !== 'number') throw new SimResultError('capacityGpus: expected a number');
  if (!isObj(doc.policies) || Object.keys(doc.policies).length === 0)
    throw new SimResultError('policies: expected an object with at least one policy');
  const policies: Record<string, SimPolicy> = {};
  for (const [name, p] of Object.entries(doc.policies)) {
    if (!isObj(p)) throw new SimResultError(`policies.${name}: expected an object`);
    for (const k of NUMS)
      if (typeof p[k] !== 'number') throw new SimResultError(`policies.${name}.${k}: expected a number`);
    for (const k of WAITS)
      if (p[k] !== undefined && typeof p[k] !== 'number')
        throw new SimResultError(`policies.${name}.${k}: expected a number`);
    const projects = isObj(p.projects) ? p.projects : {};
    policies[name] = { ...(p as unknown as SimPolicy), projects: projects as SimPolicy['projects'] };
  }
  const ratios = isObj(doc.ratiosToFifo) ? (doc.ratiosToFifo as SimResult['ratiosToFifo']) : {};
  const series: Record<string, SimSeries> = {};
  if (doc.series !== undefined) {
    if (!isObj(doc.series)) throw new SimResultError('series: expected an object');
    for (const [name, v] of Object.entries(doc.series)) series[name] = parseSeries(v, `series.${name}`);
  }
  return { trace: doc.trace, jobs: doc.jobs, capacityGpus: doc.capacityGpus, policies, ratiosToFifo: ratios, series };
}

const WAITS = ['avgWaitS', 'p99WaitS', 'maxWaitS'] as const;

const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

function parseSeries(v: unknown, path: string): SimSeries {
  if (!isObj(v)) throw new SimResultError(`${path}: expected an object`);
  const a = v.allocation;
  if (!isObj(a) || !numbers(a.t) || !numbers(a.gpus))
    throw new SimResultError(`${path}.allocation: expected {t: number[], gpus: number[]}`);
  if (a.t.length !== a.gpus.length)
    throw new SimResultError(`${path}.allocation: t has ${a.t.length} points, gpus ${a.gpus.length}`);
  const cdf = v.queueCdf;
  if (!Array.isArray(cdf) || !cdf.every((p) => numbers(p) && p.length === 2))
    throw new SimResultError(`${path}.queueCdf: expected [delaySeconds, fraction] pairs`);
  return { allocation: { t: a.t, gpus: a.gpus }, queueCdf: cdf as [number, number][] };
}

/** The allocation chart's lines: per policy, [hours from the first submission, GPUs] points. */
export function allocationLines(r: SimResult): { name: string; data: [number, number][] }[] {
  return Object.entries(r.series).map(([name, s]) => ({
    name,
    data: s.allocation.t.map((t, i) => [+(t / 3600).toFixed(3), Math.round(s.allocation.gpus[i]! * 10) / 10]),
  }));
}

/**
 * The CDF chart's step lines: per policy, [delay s, fraction] on a log axis, where a zero delay
 * is drawn at 1 s (a log axis has no 0), as report.html draws it.
 */
export function queueCdfLines(r: SimResult): { name: string; data: [number, number][] }[] {
  return Object.entries(r.series).map(([name, s]) => ({
    name,
    data: s.queueCdf.map(([q, f]) => [Math.max(1, q), +f.toFixed(4)]),
  }));
}

/** Seconds in the unit that reads best for the largest value (s, min, h). */
export function timeUnit(maxS: number): { name: string; div: number } {
  if (maxS >= 2 * 3600) return { name: 'h', div: 3600 };
  if (maxS >= 120) return { name: 'min', div: 60 };
  return { name: 's', div: 1 };
}
