// Seeded synthetic traces: same seed and options → same jobs, byte for byte.
// Shapes follow what published GPU-cluster studies report (Philly, Helios, PAI): most jobs take
// one GPU, a few take many nodes; run times are heavy-tailed (log-normal body); arrivals are
// Poisson with bursts (a user submitting a sweep); a few projects submit most of the work.
import type { PriorityClass } from '../scheduler/types.js';
import { SimInputError } from './errors.js';
import { DEFAULT_NODE_GPUS, deriveGang, type TraceJob } from './trace.js';
import { seededRandom } from '../domain/random.js';

export interface GeneratorOptions {
  readonly seed?: number;
  readonly jobs?: number;
  readonly projects?: number;
  /** Seconds over which submissions are spread. */
  readonly spanS?: number;
  /** Median run time in seconds (log-normal body). */
  readonly medianDurationS?: number;
  /** Log-normal sigma: 1.5–2.5 gives the p90/p50 ratios seen in real traces. */
  readonly durationSigma?: number;
  readonly maxDurationS?: number;
  /** Probability that an arrival is a burst (a sweep of similar jobs) rather than one job. */
  readonly burstProbability?: number;
  readonly meanBurstSize?: number;
  /** GPU counts and their relative frequencies. */
  readonly sizes?: readonly { readonly gpus: number; readonly weight: number }[];
  readonly nodeGpus?: number;
}

const DEFAULT_SIZES = [
  { gpus: 1, weight: 55 },
  { gpus: 2, weight: 7 },
  { gpus: 4, weight: 12 },
  { gpus: 8, weight: 15 },
  { gpus: 16, weight: 5 },
  { gpus: 32, weight: 3 },
  { gpus: 64, weight: 2 },
  { gpus: 128, weight: 1 },
];

export { seededRandom };

function pickWeighted<T extends { weight: number }>(items: readonly T[], u: number): T {
  const total = items.reduce((s, x) => s + x.weight, 0);
  let acc = 0;
  for (const it of items) {
    acc += it.weight / total;
    if (u < acc) return it;
  }
  return items[items.length - 1];
}

function normal(rand: () => number): number {
  // Box–Muller; 1 - u keeps log away from 0.
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new SimInputError(`generator: ${msg}`);
}

export function generateTrace(opts: GeneratorOptions = {}): TraceJob[] {
  const seed = opts.seed ?? 1;
  const n = opts.jobs ?? 2000;
  const nProjects = opts.projects ?? 8;
  const spanS = opts.spanS ?? 7 * 86400;
  const median = opts.medianDurationS ?? 3600;
  const sigma = opts.durationSigma ?? 2;
  const maxDur = opts.maxDurationS ?? 14 * 86400;
  const pBurst = opts.burstProbability ?? 0.15;
  const meanBurst = opts.meanBurstSize ?? 8;
  const sizes = opts.sizes ?? DEFAULT_SIZES;
  const nodeGpus = opts.nodeGpus ?? DEFAULT_NODE_GPUS;
  check(Number.isInteger(n) && n >= 1, `jobs must be a positive integer, got ${n}`);
  check(Number.isInteger(nProjects) && nProjects >= 1, `projects must be a positive integer, got ${nProjects}`);
  check(spanS > 0 && median > 0 && sigma >= 0 && maxDur >= 1, 'span, median and max duration must be positive');
  check(pBurst >= 0 && pBurst <= 1 && meanBurst >= 1, 'burst probability in [0,1], mean burst size ≥ 1');
  check(sizes.length > 0 && sizes.every((s) => Number.isInteger(s.gpus) && s.gpus >= 1 && s.weight >= 0), 'bad sizes');

  const rand = seededRandom(seed);
  // Zipf-like activity: project i submits ∝ 1/(i+1); a few dominate, as in real clusters.
  const projects = Array.from({ length: nProjects }, (_, i) => ({ name: `proj-${i + 1}`, weight: 1 / (i + 1) }));
  const priorities: { p: PriorityClass; weight: number }[] = [
    { p: 'normal', weight: 85 },
    { p: 'preemptible', weight: 10 },
    { p: 'high', weight: 5 },
  ];
  // Episodes (a single job or a burst) arrive as a Poisson process; pick its rate so n jobs span spanS.
  const jobsPerEpisode = 1 - pBurst + pBurst * meanBurst;
  const episodeGap = spanS / (n / jobsPerEpisode);

  const jobs: TraceJob[] = [];
  let t = 0;
  while (jobs.length < n) {
    t += -Math.log(1 - rand()) * episodeGap;
    const project = pickWeighted(projects, rand()).name;
    const burst = rand() < pBurst ? 1 + Math.floor(-Math.log(1 - rand()) * (meanBurst - 1)) : 1;
    // A sweep shares shape and priority; its members differ in run time and arrive seconds apart.
    const gpus = pickWeighted(sizes, rand()).gpus;
    const priority = pickWeighted(priorities, rand()).p;
    let at = t;
    for (let k = 0; k < burst && jobs.length < n; k++) {
      const dur = Math.min(maxDur, Math.max(30, Math.round(median * Math.exp(sigma * normal(rand)))));
      const { nodes, gpusPerNode } = deriveGang(gpus, nodeGpus);
      jobs.push({
        id: `g${String(jobs.length).padStart(6, '0')}`,
        submitS: Math.round(at),
        durationS: dur,
        gpus: nodes * gpusPerNode,
        nodes,
        gpusPerNode,
        project,
        priority,
      });
      at += -Math.log(1 - rand()) * 20;
    }
  }
  jobs.sort((a, b) => a.submitS - b.submitS);
  return jobs;
}
