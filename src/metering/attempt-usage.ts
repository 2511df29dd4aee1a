// What one attempt used, hour by hour: GPU-seconds (its GPUs × the time between started_at and
// ended_at, or `now` while it runs), energy and CO2. Pure: the same facts give the same figures,
// which is what lets the rollup be recomputed and compared.
import { type EnergySite, co2Grams, estimatedGpuWatts, facilityWh, nodeShareWatts } from './energy.js';
import { intensityAt } from './grid.js';
import { type AttemptFacts, HOUR_MS, type PowerSample, hourFloor } from './types.js';

/** A measured sample stands for the GPUs' power for at most this long; after it, TDP × utilisation again. */
export const SAMPLE_HOLD_MS = 5 * 60_000;

export interface AttemptHour {
  /** RFC 3339 hour start. */
  readonly hour: string;
  readonly gpuSeconds: number;
  readonly energyWh: number;
  readonly co2g: number;
  /** Some of this hour had no power measurement. */
  readonly estimated: boolean;
}

export interface AttemptUsage {
  readonly hours: readonly AttemptHour[];
  readonly gpuSeconds: number;
  readonly energyWh: number;
  readonly co2g: number;
  /** Some of the attempt had no power measurement: there GPU power is TDP × the stated utilisation. */
  readonly estimated: boolean;
}

/**
 * Splits an attempt by hour. `now` (epoch ms) ends a running attempt; an attempt that never
 * started (launch failed) used nothing. GPU power at a time is the latest sample at or before it,
 * if at most SAMPLE_HOLD_MS old, else the estimate: so an hour's figure depends only on samples
 * from SAMPLE_HOLD_MS before it to its end, and rolling up hour by hour equals rolling up at once.
 */
export function attemptUsage(attempt: AttemptFacts, site: EnergySite, now?: number): AttemptUsage {
  const start = attempt.startedAt;
  const end = attempt.endedAt ?? now;
  if (end === undefined) throw new RangeError('attemptUsage: a running attempt needs `now`');
  if (!Number.isFinite(start) || !(end > start))
    return { hours: [], gpuSeconds: 0, energyWh: 0, co2g: 0, estimated: attempt.samples.length === 0 };
  let gpus = 0;
  for (const n of attempt.nodes) gpus += n.gpus;
  const nodeW = nodeShareWatts(site, attempt.nodes);
  const power = new GpuPower(attempt.samples, estimatedGpuWatts(site, attempt.gpuModel, gpus));
  const hours: AttemptHour[] = [];
  let gpuSeconds = 0;
  let energyWh = 0;
  let co2g = 0;
  let estimated = false;
  for (let h = hourFloor(start); h < end; h += HOUR_MS) {
    const s = Math.max(start, h);
    const e = Math.min(end, h + HOUR_MS);
    const secs = (e - s) / 1000;
    const gpu = power.over(s, e);
    const wh = facilityWh(site, gpu.wattSeconds / secs + nodeW, secs);
    const g = co2Grams(wh, intensityAt(site.grid, h));
    const row = {
      hour: new Date(h).toISOString(),
      gpuSeconds: gpus * secs,
      energyWh: wh,
      co2g: g,
      estimated: gpu.estimated,
    };
    hours.push(row);
    gpuSeconds += row.gpuSeconds;
    energyWh += wh;
    co2g += g;
    estimated ||= gpu.estimated;
  }
  return { hours, gpuSeconds, energyWh, co2g, estimated };
}

/** GPU power over consecutive, increasing intervals: samples held up to SAMPLE_HOLD_MS, else the estimate. */
class GpuPower {
  /** Index of the latest sample at or before the interval start, -1 before any. */
  private i = -1;
  constructor(
    private readonly samples: readonly PowerSample[],
    private readonly estimateW: number,
  ) {}

  over(s: number, e: number): { wattSeconds: number; estimated: boolean } {
    const xs = this.samples;
    while (this.i + 1 < xs.length && xs[this.i + 1]!.at <= s) this.i++;
    let j = this.i;
    let t = s;
    let ws = 0;
    let estimated = false;
    while (t < e) {
      const nextAt = j + 1 < xs.length ? xs[j + 1]!.at : Number.POSITIVE_INFINITY;
      const held = j >= 0 ? xs[j]!.at + SAMPLE_HOLD_MS : Number.NEGATIVE_INFINITY;
      let until: number;
      if (t < held) {
        until = Math.min(e, nextAt, held);
        ws += (xs[j]!.watts * (until - t)) / 1000;
      } else {
        until = Math.min(e, nextAt);
        ws += (this.estimateW * (until - t)) / 1000;
        estimated = true;
      }
      t = until;
      if (nextAt <= t) j++;
    }
    return { wattSeconds: ws, estimated };
  }
}
