// Seeded synthetic traces of a whole site's week (issue 12, "the Munich week"): two pools, gangs
// from 1 GPU to whole pods, many projects with Zipf-like shares, diurnal arrivals, log-normal run
// times. Same seed and options → same jobs, byte for byte. generator.ts keeps the original shape.
import type { PriorityClass } from '../scheduler/types.js';
import { seededRandom } from '../domain/random.js';
import { SimInputError } from './errors.js';
import type { GeneratorOptions } from './generator.js';
import type { TraceJob } from './trace.js';

/** The base generator's knobs for count, span and run times, plus the site's pools and shapes. */
export interface MixedGeneratorOptions
  extends Pick<
    GeneratorOptions,
    'seed' | 'jobs' | 'projects' | 'spanS' | 'medianDurationS' | 'durationSigma' | 'maxDurationS'
  > {
  /** Pool of the big jobs (and of most small ones). */
  readonly pool?: string;
  /** Pool that takes `smallPoolShare` of the jobs of at most one node's GPUs. */
  readonly smallPool?: string;
  readonly smallPoolShare?: number;
  /** Peak-to-mean amplitude of the daily arrival cycle, in [0, 1). */
  readonly diurnalAmplitude?: number;
  /** Gang sizes in nodes × GPUs per node, with relative frequencies. */
  readonly sizes?: readonly { readonly nodes: number; readonly gpusPerNode: number; readonly weight: number }[];
  /** Priority classes and their frequencies (default: all `normal`). */
  readonly priorities?: readonly { readonly p: PriorityClass; readonly weight: number }[];
}

/** 1 GPU to whole pods: 8-node (the Munich fleet's last, short pod), 16-node and 32-node gangs. */
export const MIXED_SIZES = [
  { nodes: 1, gpusPerNode: 1, weight: 45 },
  { nodes: 1, gpusPerNode: 2, weight: 8 },
  { nodes: 1, gpusPerNode: 4, weight: 10 },
  { nodes: 1, gpusPerNode: 8, weight: 17 },
  { nodes: 2, gpusPerNode: 8, weight: 6 },
  { nodes: 4, gpusPerNode: 8, weight: 5 },
  { nodes: 8, gpusPerNode: 8, weight: 2 },
  { nodes: 16, gpusPerNode: 8, weight: 1 },
  { nodes: 32, gpusPerNode: 8, weight: 0.5 },
];

function check(cond: boolean, msg: string): void {
  if (!cond) throw new SimInputError(`generator: ${msg}`);
}

function pick<T extends { weight: number }>(items: readonly T[], u: number): T {
  const total = items.reduce((s, x) => s + x.weight, 0);
  let acc = 0;
  for (const it of items) {
    acc += it.weight / total;
    if (u < acc) return it;
  }
  return items[items.length - 1];
}

export function generateMixedTrace(opts: MixedGeneratorOptions = {}): TraceJob[] {
  const n = opts.jobs ?? 8000;
  const nProjects = opts.projects ?? 40;
  const spanS = opts.spanS ?? 7 * 86_400;
  const median = opts.medianDurationS ?? 1800;
  const sigma = opts.durationSigma ?? 2;
  const maxDur = opts.maxDurationS ?? 14 * 86_400;
  const pool = opts.pool ?? 'b200';
  const smallPool = opts.smallPool ?? 'rtxpro6000';
  const smallShare = opts.smallPoolShare ?? 0.12;
  const amp = opts.diurnalAmplitude ?? 0.5;
  const sizes = opts.sizes ?? MIXED_SIZES;
  const priorities = opts.priorities ?? [{ p: 'normal' as PriorityClass, weight: 1 }];
  check(Number.isInteger(n) && n >= 1, `jobs must be a positive integer, got ${n}`);
  check(Number.isInteger(nProjects) && nProjects >= 1, `projects must be a positive integer, got ${nProjects}`);
  check(spanS > 0 && median > 0 && sigma >= 0 && maxDur >= 1, 'span, median and max duration must be positive');
  check(smallShare >= 0 && smallShare <= 1 && amp >= 0 && amp < 1, 'small-pool share in [0,1], amplitude in [0,1)');
  check(
    sizes.length > 0 && sizes.every((s) => Number.isInteger(s.nodes) && s.nodes >= 1 && s.gpusPerNode >= 1),
    'bad sizes',
  );

  const rand = seededRandom(opts.seed ?? 1);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  // Zipf-like shares: project i submits ∝ 1/(i+1).
  const projects = Array.from({ length: nProjects }, (_, i) => ({ name: `proj-${i + 1}`, weight: 1 / (i + 1) }));
  // Diurnal Poisson arrivals by thinning: rate(t) ∝ 1 + amp·sin(2πt/day), peak in the afternoon.
  const meanGap = spanS / n;
  const peakGap = meanGap / (1 + amp);
  const jobs: TraceJob[] = [];
  let t = 0;
  while (jobs.length < n) {
    t += -Math.log(1 - rand()) * peakGap;
    const rate = 1 + amp * Math.sin((2 * Math.PI * (t - 6 * 3600)) / 86_400);
    if (rand() * (1 + amp) > rate) continue;
    const s = pick(sizes, rand());
    const dur = Math.min(maxDur, Math.max(30, Math.round(median * Math.exp(sigma * normal()))));
    const small = s.nodes === 1 && s.gpusPerNode <= 8 && rand() < smallShare;
    jobs.push({
      id: `m${String(jobs.length).padStart(6, '0')}`,
      submitS: Math.round(t),
      durationS: dur,
      gpus: s.nodes * s.gpusPerNode,
      nodes: s.nodes,
      gpusPerNode: s.gpusPerNode,
      project: pick(projects, rand()).name,
      priority: pick(priorities, rand()).p,
      pool: small ? smallPool : pool,
    });
  }
  jobs.sort((a, b) => a.submitS - b.submitS);
  return jobs;
}
