// Offered load and how to reach a chosen one.
//
// offered load = GPU-seconds the jobs would occupy inside the arrival window (first to last
// submission) if each started on arrival, / (pool GPUs × window length). Work that would run past
// the window's end is not counted. Why not Σ(gpus × duration) / (GPUs × span): with heavy-tailed
// run times (the Philly trace's longest job runs 131 days) most of that work lands long after the
// last arrival, so a trace compressed to "85 %" by that formula keeps the pool half idle while
// jobs arrive and never queues; every policy then looks the same. The whole-work ratio is still
// reported (`workLoad`).
//
// `compress` scales every inter-arrival time by one factor (run times unchanged), found by
// bisection (the load falls monotonically as the factor grows). `replicate` first overlays k
// copies of the trace, each shifted by a seeded random offset wrapping within the span
// (k = round(target / current load), at least 1), then compresses the rest of the way.
import { SimInputError } from './errors.js';
import { seededRandom } from './generator.js';
import type { TraceJob } from './trace.js';

export type LoadMode = 'compress' | 'replicate';
type Timed = Pick<TraceJob, 'submitS' | 'durationS' | 'gpus'>;

function window(jobs: readonly Timed[]): { first: number; span: number } {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const j of jobs) {
    if (j.submitS < first) first = j.submitS;
    if (j.submitS > last) last = j.submitS;
  }
  return { first, span: last - first };
}

/** Offered load over the arrival window, with inter-arrival times scaled by `factor`. */
function loadAt(jobs: readonly Timed[], capacityGpus: number, factor: number): number {
  const { first, span } = window(jobs);
  if (!(span > 0) || capacityGpus <= 0) return Number.POSITIVE_INFINITY;
  let demand = 0;
  for (const j of jobs) demand += j.gpus * Math.min(j.durationS, (span - (j.submitS - first)) * factor);
  return demand / (capacityGpus * span * factor);
}

export function offeredLoad(jobs: readonly Timed[], capacityGpus: number): number {
  if (jobs.length === 0 || capacityGpus <= 0) return 0;
  return loadAt(jobs, capacityGpus, 1);
}

/** Σ(gpus × duration) / (GPUs × span): the whole work, wherever it falls. */
export function workLoad(jobs: readonly Timed[], capacityGpus: number): number {
  if (jobs.length === 0 || capacityGpus <= 0) return 0;
  const { span } = window(jobs);
  let work = 0;
  for (const j of jobs) work += j.gpus * j.durationS;
  return span > 0 ? work / (capacityGpus * span) : Number.POSITIVE_INFINITY;
}

/** Scales inter-arrival times so the offered load equals `target` (to 0.1 %). */
export function compressToLoad<T extends TraceJob>(jobs: readonly T[], capacityGpus: number, target: number): T[] {
  if (!(target > 0)) throw new SimInputError(`load: ${target} must be greater than 0`);
  const { first, span } = window(jobs);
  if (!(span > 0)) {
    throw new SimInputError(
      'load: the trace has no time span (all jobs submitted at once), so its load cannot be scaled',
    );
  }
  // As the factor shrinks to 0 every job outlasts the window: the load tends to this ceiling.
  let ceiling = 0;
  for (const j of jobs) ceiling += (j.gpus * (span - (j.submitS - first))) / (capacityGpus * span);
  if (target >= ceiling * 0.999) {
    throw new SimInputError(
      `load: ${target} is out of reach by compression (at most ${ceiling.toFixed(3)} for this trace and fleet); try --load-mode replicate`,
    );
  }
  // Bisection on log(factor): load(f) is non-increasing in f.
  let lo = Math.log(1e-9);
  let hi = Math.log(1e9);
  let f = 1;
  for (let k = 0; k < 200; k++) {
    const mid = (lo + hi) / 2;
    f = Math.exp(mid);
    const l = loadAt(jobs, capacityGpus, f);
    if (Math.abs(l / target - 1) < 1e-4) break;
    if (l > target) lo = mid;
    else hi = mid;
  }
  return jobs.map((j) => ({ ...j, submitS: first + (j.submitS - first) * f }));
}

export function replicateToLoad(
  jobs: readonly TraceJob[],
  capacityGpus: number,
  target: number,
  seed: number,
): TraceJob[] {
  const current = offeredLoad(jobs, capacityGpus);
  if (!Number.isFinite(current) || current === 0) return compressToLoad(jobs, capacityGpus, target);
  const k = Math.max(1, Math.round(target / current));
  const { first, span } = window(jobs);
  const rand = seededRandom(seed);
  const all: TraceJob[] = [...jobs];
  for (let c = 1; c < k; c++) {
    const offset = rand() * span;
    for (const j of jobs) {
      all.push({ ...j, id: `${j.id}#${c}`, submitS: first + ((j.submitS - first + offset) % span) });
    }
  }
  all.sort((a, b) => a.submitS - b.submitS);
  return compressToLoad(all, capacityGpus, target);
}
