// Offered load and how to reach a chosen one.
//
// offered load = Σ(gpus × duration) / (pool GPUs × span), span = last submit − first submit.
// `compress` scales every inter-arrival time by one factor (run times unchanged), which sets the
// offered load exactly. `replicate` first overlays k copies of the trace (each shifted in time by a
// seeded random offset, wrapping within the span; k = round(target / current load), at least 1), then
// compresses the rest of the way: more jobs at the same arrival pattern, less distortion of bursts.
import { SimInputError } from './errors.js';
import { seededRandom } from './generator.js';
import type { TraceJob } from './trace.js';

export type LoadMode = 'compress' | 'replicate';

export function offeredLoad(jobs: readonly Pick<TraceJob, 'submitS' | 'durationS' | 'gpus'>[], capacityGpus: number): number {
  if (jobs.length === 0 || capacityGpus <= 0) return 0;
  let work = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const j of jobs) {
    work += j.gpus * j.durationS;
    if (j.submitS < first) first = j.submitS;
    if (j.submitS > last) last = j.submitS;
  }
  const span = last - first;
  return span > 0 ? work / (capacityGpus * span) : Number.POSITIVE_INFINITY;
}

/** Scales inter-arrival times so the offered load equals `target`. Submit times stay ≥ the first. */
export function compressToLoad<T extends TraceJob>(jobs: readonly T[], capacityGpus: number, target: number): T[] {
  if (!(target > 0)) throw new SimInputError(`load: ${target} must be greater than 0`);
  const current = offeredLoad(jobs, capacityGpus);
  if (!Number.isFinite(current) || current === 0) {
    throw new SimInputError('load: the trace has no time span (all jobs submitted at once), so its load cannot be scaled');
  }
  const f = current / target;
  const t0 = jobs[0].submitS;
  return jobs.map((j) => ({ ...j, submitS: t0 + (j.submitS - t0) * f }));
}

export function replicateToLoad(jobs: readonly TraceJob[], capacityGpus: number, target: number, seed: number): TraceJob[] {
  const current = offeredLoad(jobs, capacityGpus);
  if (!Number.isFinite(current) || current === 0) return compressToLoad(jobs, capacityGpus, target);
  const k = Math.max(1, Math.round(target / current));
  const t0 = jobs[0].submitS;
  const span = jobs[jobs.length - 1].submitS - t0;
  const rand = seededRandom(seed);
  const all: TraceJob[] = [...jobs];
  for (let c = 1; c < k; c++) {
    const offset = rand() * span;
    for (const j of jobs) {
      all.push({ ...j, id: `${j.id}#${c}`, submitS: t0 + ((j.submitS - t0 + offset) % span) });
    }
  }
  all.sort((a, b) => a.submitS - b.submitS);
  return compressToLoad(all, capacityGpus, target);
}
