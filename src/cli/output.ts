// Output for people and for scripts: aligned tables (stdout) or `-o json` (the API object);
// errors on stderr in the same envelope the API uses. Exit codes are documented and stable.

export type OutputFormat = 'table' | 'wide' | 'json';

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  conflict: 5,
  timeout: 6,
  unreachable: 7,
  jobFailed: 8,
  /** `fabrik verify`: a signature, digest, size or file set that does not match what was signed. */
  verifyFailed: 9,
} as const;

/** Exit code for an HTTP status the server answered with. */
export function exitCodeForStatus(status: number): number {
  if (status === 400 || status === 413 || status === 415) return EXIT.usage;
  if (status === 404) return EXIT.notFound;
  if (status === 401 || status === 403) return EXIT.auth;
  // 402 BUDGET_EXCEEDED: the project's budget refuses the submission, a policy like a quota's 409.
  if (status === 402 || status === 409 || status === 422 || status === 429) return EXIT.conflict;
  return EXIT.internal;
}

export interface Column<T> {
  header: string;
  get: (row: T) => unknown;
  /** Only with -o wide. */
  wide?: boolean;
}

/** Aligned columns, two spaces apart, like kubectl and squeue. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], wide = false): string {
  const cols = columns.filter((c) => wide || !c.wide);
  const cells = rows.map((r) => cols.map((c) => fmt(c.get(r))));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.header)), ...cells.map(line)].join('\n');
}

function fmt(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** "3m", "2h", "5d" for table columns; JSON keeps RFC 3339. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A duration for people: `3d`, `12h`, `1h30m`, `45m`, `30s` (the largest unit and the next), never raw seconds. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  const units: [string, number][] = [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  const found = units.findIndex(([, n]) => s >= n);
  const i = found < 0 ? units.length - 1 : found;
  const [u, n] = units[i]!;
  const head = `${Math.floor(s / n)}${u}`;
  const next = units[i + 1];
  const rest = next ? Math.floor((s % n) / next[1]) : 0;
  return rest && next ? `${head}${rest}${next[0]}` : head;
}

/**
 * A usage figure with `d` decimals, or 3 significant digits where that would round a non-zero value
 * to 0 (a 5-second job is 0.0013 GPU-hours, not 0.00).
 */
export function figure(n: number, d: number): string {
  if (n === 0) return '0';
  if (Math.abs(n) >= 10 ** -d) return n.toFixed(d);
  return n.toPrecision(3);
}
