// Reading files people write (fleet files, workload specs): YAML or JSON text, or an already
// parsed object (an HTTP body). Checks run on the plain value along a path such as
// `nodeGroups[2].gpus`; when the value came from text, the path is mapped back to a line and
// column with the yaml package's LineCounter, so every error says where and what.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';

export type Path = readonly (string | number)[];

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** A problem in the input at `path` (at the key itself when `atKey`). Each parser turns it into its own error class. */
export class InputProblem extends Error {
  constructor(
    readonly path: Path,
    message: string,
    readonly atKey = false,
    readonly position?: Position,
  ) {
    super(message);
    this.name = 'InputProblem';
  }
}

export function fail(path: Path, message: string, atKey = false): never {
  throw new InputProblem(path, message, atKey);
}

/** `nodeGroups[2].gpus`; keys that are not plain words are quoted: `labels["fabrik.dev/x"]`. */
export function formatPath(path: Path): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) s += s ? `.${p}` : p;
    else s += `[${JSON.stringify(p)}]`;
  }
  return s;
}

/** `fleet.yaml:12:5: nodeGroups[1].gpus: must be ...`; parts that are unknown are left out. */
export function formatProblem(
  source: string | undefined,
  pos: Position | undefined,
  path: Path,
  message: string,
): string {
  const where = source ? (pos ? `${source}:${pos.line}:${pos.column}: ` : `${source}: `) : '';
  const p = formatPath(path);
  return `${where}${p ? `${p}: ` : ''}${message}`;
}

export interface ParsedText {
  readonly value: unknown;
  /** Where the value (or its key) at `path` was written; falls back to the nearest enclosing node. */
  locate(path: Path, atKey?: boolean): Position;
}

/** Parses YAML (JSON is YAML too). Syntax errors become an InputProblem carrying the position. */
/** Deeper than any fleet file or spec needs; deep nesting exhausts the YAML parser's stack and memory. */
const MAX_NESTING = 64;

/**
 * A cheap scan before parsing: flow nesting (`[`/`{` outside quotes) and block nesting (indentation
 * plus `- ` sequence markers) must stay within MAX_NESTING. Returns the 1-based line that goes too deep.
 */
export function tooDeep(text: string, max = MAX_NESTING): number | undefined {
  let flow = 0;
  let quote: string | null = null;
  let line = 1;
  let lineStart = true;
  let indent = 0;
  let dashes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      line++;
      lineStart = true;
      indent = 0;
      dashes = 0;
      if (quote === "'" || quote === '"') continue;
      continue;
    }
    if (quote) {
      if (c === quote && text[i - 1] !== '\\') quote = null;
      continue;
    }
    if (lineStart) {
      if (c === ' ') {
        indent++;
        continue;
      }
      if (c === '-' && (text[i + 1] === ' ' || text[i + 1] === '\n')) {
        dashes++;
        indent++;
        continue;
      }
      lineStart = false;
      if (indent / 2 + dashes > max) return line;
    }
    if (c === '#') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') {
      if (++flow > max) return line;
    } else if (c === ']' || c === '}') flow = Math.max(0, flow - 1);
  }
  return undefined;
}

export function parseYamlText(text: string): ParsedText {
  const deep = tooDeep(text);
  if (deep !== undefined) {
    throw new InputProblem([], `nested more than ${MAX_NESTING} levels deep`, false, { line: deep, column: 1 });
  }
  const lines = new LineCounter();
  // merge: `<<: *defaults` lets a fleet file share settings between node groups.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true, uniqueKeys: true });
  const at = (offset: number): Position => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new InputProblem([], `YAML syntax error: ${e.message}`, false, at(e.pos[0]));
  }
  // maxAliasCount guards against "billion laughs" alias expansion.
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new InputProblem([], `YAML aliases: ${(err as Error).message}`);
  }
  return {
    value,
    locate(path, atKey = false) {
      let node: unknown = doc.contents;
      let found = nodeStart(node) ?? 0;
      for (let i = 0; i < path.length; i++) {
        if (isAlias(node)) node = node.resolve(doc);
        const seg = path[i]!;
        let next: unknown;
        if (isMap(node)) {
          const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
          if (!pair) break;
          if (atKey && i === path.length - 1) {
            found = nodeStart(pair.key) ?? found;
            break;
          }
          next = pair.value;
        } else if (isSeq(node) && typeof seg === 'number') {
          next = node.items[seg];
        } else {
          break;
        }
        const start = nodeStart(next);
        if (start === undefined) break;
        found = start;
        node = next;
      }
      return at(found);
    },
  };
}

function nodeStart(n: unknown): number | undefined {
  const range = (n as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** For messages: `a string ("8")`, `a number (64)`, `a list`, `a mapping`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  if (typeof v === 'number') return `a number (${v})`;
  if (typeof v === 'boolean') return `a boolean (${v})`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A mapping with only `fields`; each of `required` present. Unknown fields are reported at their key.
 * Returns a copy without null values: `labels:` left empty in YAML means "not given".
 */
export function record(
  v: unknown,
  path: Path,
  fields: readonly string[],
  required: readonly string[] = [],
): Record<string, unknown> {
  if (!isRecord(v)) fail(path, `must be a mapping, got ${describeValue(v)}`);
  for (const k of Object.keys(v)) {
    if (!fields.includes(k)) {
      const near = closest(k, fields);
      fail(
        [...path, k],
        near ? `unknown field "${k}"; did you mean "${near}"?` : `unknown field "${k}"; known: ${fields.join(', ')}`,
        true,
      );
    }
  }
  for (const k of required) {
    if (v[k] === undefined || v[k] === null) fail(path, `missing required field "${k}"`);
  }
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined));
}

export function integer(v: unknown, path: Path, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const got = typeof v === 'number' ? String(v) : describeValue(v);
    fail(path, `must be an integer between ${min} and ${max}, got ${got}`);
  }
  return v;
}

export function bool(v: unknown, path: Path): boolean {
  if (typeof v !== 'boolean') fail(path, `must be true or false, got ${describeValue(v)}`);
  return v;
}

export function string(v: unknown, path: Path, maxLength: number): string {
  if (typeof v !== 'string') fail(path, `must be a string, got ${describeValue(v)}`);
  if (v.length === 0) fail(path, 'must not be empty');
  if (v.length > maxLength) fail(path, `must be at most ${maxLength} characters, got ${v.length}`);
  if (v.includes('\0')) fail(path, 'must not contain NUL characters');
  return v;
}

export function oneOf<T extends string>(v: unknown, path: Path, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    fail(path, `must be one of ${values.join(', ')}, got ${describeValue(v)}`);
  }
  return v as T;
}

export function list(v: unknown, path: Path, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be a list, got ${describeValue(v)}`);
  if (v.length < min || v.length > max) fail(path, `must have between ${min} and ${max} entries, got ${v.length}`);
  return v;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isDnsLabel(s: string): boolean {
  return DNS_LABEL.test(s);
}

export const DNS_LABEL_RULE =
  "a DNS label: lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit";

/** Names of nodes, pools, pods, workloads, projects: RFC 1123 labels, so they fit hostnames, URLs and Slurm. */
export function dnsLabel(v: unknown, path: Path, what = 'name'): string {
  if (typeof v !== 'string') fail(path, `must be a string, got ${describeValue(v)}`);
  if (!isDnsLabel(v)) fail(path, `${what} ${JSON.stringify(v)} is not ${DNS_LABEL_RULE}`);
  return v;
}

// Kubernetes-style label syntax: optional DNS-subdomain prefix and '/', then a name.
const LABEL_KEY =
  /^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/**
 * Labels and selectors: string to string. Numbers and booleans are taken as their text, because
 * YAML reads `nvlink: 5` as a number although a label is always text.
 */
export function labelMap(v: unknown, path: Path): Record<string, string> {
  if (!isRecord(v)) fail(path, `must be a mapping of label names to values, got ${describeValue(v)}`);
  const entries: [string, string][] = [];
  for (const [k, raw] of Object.entries(v)) {
    if (k.length > 253 || !LABEL_KEY.test(k)) {
      fail([...path, k], `label name ${JSON.stringify(k)} must be [prefix/]name: letters, digits, '-', '_', '.'`, true);
    }
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      fail([...path, k], `must be a string, got ${describeValue(raw)}`);
    }
    const s = String(raw);
    if (!LABEL_VALUE.test(s)) {
      fail([...path, k], `label value ${JSON.stringify(s)} must be at most 63 letters, digits, '-', '_', '.'`);
    }
    entries.push([k, s]);
  }
  if (entries.length > 64) fail(path, `at most 64 labels, got ${entries.length}`);
  // fromEntries defines own properties, so a key like "__proto__" cannot touch the prototype.
  return Object.fromEntries(entries);
}

/** The known word within edit distance 2 of `word`, for "did you mean". */
function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = distance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
