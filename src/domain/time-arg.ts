// A point in time as a request gives it: an RFC 3339 time, or a duration before now (`30m`, `24h`,
// `7d`, `2w`), as `--since`/`--until` and `from`/`to` take them.
import { AppError } from './errors.js';

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `24h` before `base`, or an RFC 3339 time; unix ms. */
export function parseTimeArg(text: string, base: number, path: string): number {
  const rel = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  if (rel) return base - Number(rel[1]) * UNIT_MS[rel[2]!]!;
  const t = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(text.trim()) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(t))
    throw new AppError(
      'INVALID_ARGUMENT',
      `${path}: must be an RFC 3339 time or a duration such as 30m, 24h, 7d; got "${text.slice(0, 40)}"`,
      { path },
    );
  return t;
}

/** [start, end) of a month "YYYY-MM" (UTC), or undefined when it is not one. */
export function monthRange(month: string): { from: number; to: number } | undefined {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]) - 1;
  return { from: Date.UTC(y, mo, 1), to: Date.UTC(y, mo + 1, 1) };
}

export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}
