// Slurm-style host lists. `b200-[0001-0003]` → b200-0001, b200-0002, b200-0003; `n[1-3,7]`;
// several brackets multiply (`r[1-2]n[1-2]` → r1n1, r1n2, r2n1, r2n2); commas outside brackets
// join expressions (`a[1-2],b7`). A range keeps the width of its first number: `[098-100]` gives
// 098, 099, 100 and `[8-10]` gives 8, 9, 10.

export class HostRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostRangeError';
  }
}

/** More names than this from one expression is a typo, not a data centre. */
export const MAX_EXPANDED_HOSTS = 100_000;
// Beyond 15 digits numbers stop being exact in a double.
const MAX_DIGITS = 15;

interface NumRange {
  readonly lo: number;
  readonly hi: number;
  readonly width: number;
}
type Part = string | NumRange[];

/** Expands a host list in written order. Duplicates are kept so that callers can report them. */
export function expandHostRange(expr: string, limit = MAX_EXPANDED_HOSTS): string[] {
  const out: string[] = [];
  for (const one of splitTopLevel(expr)) {
    const parts = parseOne(one);
    let count = 1;
    for (const p of parts) if (typeof p !== 'string') count *= p.reduce((n, r) => n + r.hi - r.lo + 1, 0);
    if (out.length + count > limit) {
      throw new HostRangeError(`"${expr}" expands to more than ${limit} names`);
    }
    product(parts, 0, '', out);
  }
  return out;
}

function splitTopLevel(expr: string): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '[') {
      if (depth > 0) throw new HostRangeError(`nested "[" at position ${i + 1} in "${expr}"`);
      depth = 1;
    } else if (c === ']') {
      if (depth === 0) throw new HostRangeError(`"]" without "[" at position ${i + 1} in "${expr}"`);
      depth = 0;
    } else if (c === ',' && depth === 0) {
      pieces.push(expr.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (depth > 0) throw new HostRangeError(`"[" is never closed in "${expr}"`);
  pieces.push(expr.slice(start).trim());
  for (const p of pieces) if (p === '') throw new HostRangeError(`empty name in "${expr}"`);
  return pieces;
}

function parseOne(one: string): Part[] {
  const parts: Part[] = [];
  const re = /\[([^\]]*)\]/g;
  let last = 0;
  for (let m = re.exec(one); m; m = re.exec(one)) {
    if (m.index > last) parts.push(one.slice(last, m.index));
    parts.push(parseBracket(m[1]!, one));
    last = m.index + m[0].length;
  }
  if (last < one.length) parts.push(one.slice(last));
  return parts;
}

function parseBracket(body: string, whole: string): NumRange[] {
  if (body.trim() === '') throw new HostRangeError(`empty brackets in "${whole}"`);
  return body.split(',').map((raw) => {
    const item = raw.trim();
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    if (!m) throw new HostRangeError(`"${item}" in "${whole}" is not a number or a range like 01-32`);
    const a = m[1]!;
    const b = m[2] ?? a;
    if (a.length > MAX_DIGITS || b.length > MAX_DIGITS) throw new HostRangeError(`number too long in "${whole}"`);
    const lo = Number(a);
    const hi = Number(b);
    if (hi < lo) throw new HostRangeError(`range [${item}] in "${whole}" runs backwards; write [${b}-${a}]`);
    return { lo, hi, width: a.length };
  });
}

function product(parts: readonly Part[], i: number, prefix: string, out: string[]): void {
  if (i === parts.length) {
    out.push(prefix);
    return;
  }
  const p = parts[i]!;
  if (typeof p === 'string') {
    product(parts, i + 1, prefix + p, out);
    return;
  }
  for (const r of p) {
    for (let n = r.lo; n <= r.hi; n++) product(parts, i + 1, prefix + pad(n, r.width), out);
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * The short form of a set of host names, for display: `b200-[0001-0032,0040],rtx-[001-010]`.
 * Groups by the text around the last number in each name; groups keep the order in which they
 * first appear, numbers within a group are sorted, duplicates dropped.
 * `expandHostRange(compressHostNames(names))` gives back the same set.
 */
export function compressHostNames(names: Iterable<string>): string {
  interface Group {
    readonly prefix: string;
    readonly suffix: string;
    readonly tokens: string[];
  }
  const groups = new Map<string, Group>();
  const literals = new Set<string>();
  const order: (Group | string)[] = [];
  for (const name of names) {
    const m = /^(.*?)(\d+)(\D*)$/.exec(name);
    if (!m || m[2]!.length > MAX_DIGITS) {
      if (!literals.has(name)) {
        literals.add(name);
        order.push(name);
      }
      continue;
    }
    const key = `${m[1]}\0${m[3]}`;
    let g = groups.get(key);
    if (!g) {
      g = { prefix: m[1]!, suffix: m[3]!, tokens: [] };
      groups.set(key, g);
      order.push(g);
    }
    g.tokens.push(m[2]!);
  }
  const out: string[] = [];
  for (const g of order) {
    if (typeof g === 'string') out.push(g);
    else {
      for (const body of compressTokens(g.tokens)) {
        out.push(body.single ? g.prefix + body.text + g.suffix : `${g.prefix}[${body.text}]${g.suffix}`);
      }
    }
  }
  return out.join(',');
}

/**
 * Number tokens of one prefix into bracket bodies, one per width. A zero-padded token ("007") only
 * prints at its own width; an unpadded one ("100") prints the same at any width up to its length,
 * so it joins the widest padded width that fits, and otherwise width 1.
 */
function compressTokens(tokens: readonly string[]): { text: string; single: boolean }[] {
  const padded = new Set<number>();
  for (const t of tokens) if (t.length > 1 && t.startsWith('0')) padded.add(t.length);
  const byWidth = new Map<number, Set<number>>();
  for (const t of tokens) {
    let w = 1;
    if (t.length > 1 && t.startsWith('0')) w = t.length;
    else for (const p of padded) if (p <= t.length && p > w) w = p;
    const s = byWidth.get(w) ?? new Set<number>();
    s.add(Number(t));
    byWidth.set(w, s);
  }
  const bodies: { text: string; single: boolean }[] = [];
  for (const w of [...byWidth.keys()].sort((a, b) => a - b)) {
    const nums = [...byWidth.get(w)!].sort((a, b) => a - b);
    const items: string[] = [];
    for (let i = 0; i < nums.length; ) {
      let j = i;
      while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++;
      items.push(i === j ? pad(nums[i]!, w) : `${pad(nums[i]!, w)}-${pad(nums[j]!, w)}`);
      i = j + 1;
    }
    bodies.push({ text: items.join(','), single: nums.length === 1 });
  }
  return bodies;
}
