// Grid carbon intensity (g CO2 per kWh): a constant, or an hourly series read from a CSV file
// (`hour,gCO2perKWh`). An hour the series does not list takes the latest listed hour before it
// (the first listed hour before the series starts), so a series that stops early still answers.
import { readFileSync } from 'node:fs';
import { AppError } from '../domain/errors.js';
import { hourFloor } from './types.js';

/** Germany's grid mix, about 380 g/kWh: the default without FABRIK_GRID_INTENSITY. */
export const DEFAULT_GRID_G_PER_KWH = 380;

export type GridIntensity =
  | { readonly kind: 'constant'; readonly gPerKWh: number }
  | {
      readonly kind: 'series';
      readonly source: string;
      /** Hour starts (epoch ms), ascending, and their intensities. */
      readonly hours: Float64Array;
      readonly values: Float64Array;
    };

export function constantGrid(gPerKWh: number): GridIntensity {
  if (!Number.isFinite(gPerKWh) || gPerKWh < 0)
    throw new AppError('INVALID_ARGUMENT', `grid intensity: ${gPerKWh} is not a non-negative g/kWh`);
  return { kind: 'constant', gPerKWh };
}

/** Parses `hour,gCO2perKWh` lines (a header line and blank lines allowed); errors name the line. */
export function parseGridSeries(text: string, source = 'grid series'): GridIntensity {
  const byHour = new Map<number, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [h, v, extra] = line.split(',').map((c) => c.trim());
    if (i === 0 && h !== undefined && !Number.isFinite(Date.parse(h)) && Number.isNaN(Number(v))) return; // header
    const at = Date.parse(h ?? '');
    const g = Number(v);
    if (extra !== undefined || !Number.isFinite(at) || v === '' || !Number.isFinite(g) || g < 0)
      throw new AppError(
        'INVALID_ARGUMENT',
        `${source}:${i + 1}: expected "<RFC 3339 hour>,<gCO2 per kWh>", got ${JSON.stringify(line)}`,
      );
    byHour.set(hourFloor(at), g);
  });
  if (byHour.size === 0) throw new AppError('INVALID_ARGUMENT', `${source}: no hours in the series`);
  const sorted = [...byHour.entries()].sort((a, b) => a[0] - b[0]);
  return {
    kind: 'series',
    source,
    hours: Float64Array.from(sorted, (e) => e[0]),
    values: Float64Array.from(sorted, (e) => e[1]),
  };
}

/** FABRIK_GRID_INTENSITY: a number (g/kWh) or the path of a series file. */
export function loadGridIntensity(value: string | undefined): GridIntensity {
  const v = value?.trim();
  if (!v) return constantGrid(DEFAULT_GRID_G_PER_KWH);
  if (/^\d+(\.\d+)?$/.test(v)) return constantGrid(Number(v));
  let text: string;
  try {
    text = readFileSync(v, 'utf8');
  } catch (err) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `grid intensity: "${v}" is neither g/kWh nor a readable file (${(err as Error).message})`,
    );
  }
  return parseGridSeries(text, v);
}

/** The intensity of the hour containing `ms`. */
export function intensityAt(grid: GridIntensity, ms: number): number {
  if (grid.kind === 'constant') return grid.gPerKWh;
  const h = hourFloor(ms);
  const { hours, values } = grid;
  // Binary search for the latest listed hour <= h.
  let lo = 0;
  let hi = hours.length - 1;
  if (h < hours[0]!) return values[0]!;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (hours[mid]! <= h) lo = mid;
    else hi = mid - 1;
  }
  return values[lo]!;
}

/** For docs and `describe`: what the grid figure is. */
export function describeGrid(grid: GridIntensity): string {
  return grid.kind === 'constant'
    ? `${grid.gPerKWh} gCO2/kWh`
    : `hourly series ${grid.source} (${grid.hours.length} hours from ${new Date(grid.hours[0]!).toISOString()})`;
}
