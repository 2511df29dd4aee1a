// Durations as people write them in specs and requests: `24h`, `90m`, `1h30m`, `2d`, `45s`.

const UNIT_S: Readonly<Record<string, number>> = { d: 86_400, h: 3600, m: 60, s: 1 };

/** Seconds of a duration text (each unit at most once), undefined when it is not one. */
export function durationSeconds(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+[dhms])+$/.test(t) || /([dhms]).*\1/.test(t)) return undefined;
  let seconds = 0;
  for (const [, n, u] of t.matchAll(/(\d+)([dhms])/g)) seconds += Number(n) * UNIT_S[u!]!;
  return seconds;
}
