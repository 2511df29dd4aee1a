// Job traces for the simulator: CSV with a header, one job per line.
// Required columns: submit_s, duration_s, gpus, project. Optional: job_id, nodes, gpus_per_node,
// priority, pool. Unknown columns are ignored. Errors name the file, the line and the field.
import { PRIORITY_CLASSES, type PriorityClass } from '../scheduler/types.js';
import { SimInputError } from './errors.js';

export interface TraceJob {
  readonly id: string;
  /** Seconds from the trace start. */
  readonly submitS: number;
  /** Run time when running undisturbed, in seconds. */
  readonly durationS: number;
  /** GPUs in all (nodes × gpusPerNode after the gang shape is derived). */
  readonly gpus: number;
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly project: string;
  readonly priority: PriorityClass;
  /** Pool named by the trace; absent means the simulation's default pool. */
  readonly pool?: string;
}

export interface Trace {
  readonly name: string;
  /** Sorted by submit time (stable: ties keep file order). */
  readonly jobs: readonly TraceJob[];
}

const REQUIRED = ['submit_s', 'duration_s', 'gpus', 'project'] as const;

/** GPUs per node assumed when a trace gives only a GPU count (the B200 and RTX PRO servers have 8). */
export const DEFAULT_NODE_GPUS = 8;

/**
 * Gang shape for a job that gives only its GPU count: up to one node's worth fits on one node;
 * more takes whole nodes, ceil(gpus / nodeGpus) of them (a 12-GPU job becomes 2 × 8), because
 * multi-node training jobs get whole nodes and the rounding up is what they would really hold.
 */
export function deriveGang(gpus: number, nodeGpus = DEFAULT_NODE_GPUS): { nodes: number; gpusPerNode: number } {
  if (gpus <= nodeGpus) return { nodes: 1, gpusPerNode: gpus };
  return { nodes: Math.ceil(gpus / nodeGpus), gpusPerNode: nodeGpus };
}

const HOUR = 3600;
const DAY = 24 * HOUR;
/** Wall-time limits users typically pick: coarse buckets, like Slurm partitions' usual limits. */
const RUNTIME_BUCKETS_S = [HOUR, 4 * HOUR, 12 * HOUR, DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];

/**
 * The max runtime a user would have declared for a job whose true run time is `durationS`.
 * A trace holds only true durations, so we model the estimate: the true duration rounded up to the
 * next bucket of {1h, 4h, 12h, 24h, 72h, 7d, 14d, 30d}, then whole multiples of 30 days. Real users
 * over-estimate (they pick a round limit and fear being killed), never under-estimate here because
 * the simulator does not kill jobs at their limit; so backfill works with realistic slack instead
 * of the perfect knowledge that only srtf-oracle gets.
 */
export function estimateMaxRuntime(durationS: number): number {
  for (const b of RUNTIME_BUCKETS_S) if (durationS <= b) return b;
  return Math.ceil(durationS / (30 * DAY)) * 30 * DAY;
}

/** Splits one CSV line; supports double-quoted fields with "" escapes. */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export interface ParseTraceOptions {
  /** Shown in error messages and as the trace's name. */
  readonly source?: string;
  readonly nodeGpus?: number;
}

export function parseTrace(text: string, opts: ParseTraceOptions = {}): Trace {
  const source = opts.source ?? 'trace.csv';
  const nodeGpus = opts.nodeGpus ?? DEFAULT_NODE_GPUS;
  const lines = text.split(/\r?\n/);
  const headerIdx = lines.findIndex((l) => l.trim() !== '');
  if (headerIdx < 0) throw new SimInputError(`${source}: empty file, expected a CSV header`);
  const header = splitCsvLine(lines[headerIdx]).map((h) => h.trim().toLowerCase());
  const col = (name: string): number => header.indexOf(name);
  for (const r of REQUIRED) {
    if (col(r) < 0) {
      throw new SimInputError(`${source}:${headerIdx + 1}: header lacks the required column "${r}"`);
    }
  }
  const idx = {
    submit: col('submit_s'),
    duration: col('duration_s'),
    gpus: col('gpus'),
    project: col('project'),
    jobId: col('job_id'),
    nodes: col('nodes'),
    gpn: col('gpus_per_node'),
    priority: col('priority'),
    pool: col('pool'),
  };

  const jobs: TraceJob[] = [];
  const seen = new Set<string>();
  for (let i = headerIdx + 1; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.trim() === '') continue;
    const lineNo = i + 1;
    const at = `${source}:${lineNo}`;
    const f = splitCsvLine(raw);
    const cell = (k: number): string => (k >= 0 && k < f.length ? f[k].trim() : '');
    const num = (name: string, k: number): number => {
      const s = cell(k);
      const v = s === '' ? Number.NaN : Number(s);
      if (!Number.isFinite(v)) throw new SimInputError(`${at}: ${name}: "${s}" is not a number`);
      return v;
    };
    const posInt = (name: string, k: number): number => {
      const v = num(name, k);
      if (!Number.isInteger(v) || v < 1) throw new SimInputError(`${at}: ${name}: ${v} is not a positive integer`);
      return v;
    };

    const submitS = num('submit_s', idx.submit);
    if (submitS < 0) throw new SimInputError(`${at}: submit_s: ${submitS} is negative`);
    const durationS = num('duration_s', idx.duration);
    if (durationS <= 0) throw new SimInputError(`${at}: duration_s: ${durationS} must be greater than 0`);
    let gpus = posInt('gpus', idx.gpus);
    const project = cell(idx.project);
    if (project === '') throw new SimInputError(`${at}: project: empty`);

    const hasNodes = cell(idx.nodes) !== '';
    const hasGpn = cell(idx.gpn) !== '';
    let nodes: number;
    let gpusPerNode: number;
    if (hasNodes || hasGpn) {
      nodes = hasNodes ? posInt('nodes', idx.nodes) : Math.ceil(gpus / posInt('gpus_per_node', idx.gpn));
      gpusPerNode = hasGpn ? posInt('gpus_per_node', idx.gpn) : Math.ceil(gpus / nodes);
      if (nodes * gpusPerNode !== gpus) {
        throw new SimInputError(`${at}: gpus: ${gpus} is not nodes × gpus_per_node (${nodes} × ${gpusPerNode})`);
      }
    } else {
      ({ nodes, gpusPerNode } = deriveGang(gpus, nodeGpus));
      gpus = nodes * gpusPerNode;
    }

    let priority: PriorityClass = 'normal';
    const p = cell(idx.priority);
    if (p !== '') {
      if (!(PRIORITY_CLASSES as readonly string[]).includes(p)) {
        throw new SimInputError(`${at}: priority: "${p}" is not one of ${PRIORITY_CLASSES.join(', ')}`);
      }
      priority = p as PriorityClass;
    }
    const pool = cell(idx.pool) || undefined;
    const id = cell(idx.jobId) || `job-${lineNo}`;
    if (seen.has(id)) throw new SimInputError(`${at}: job_id: "${id}" appears twice`);
    seen.add(id);
    jobs.push({ id, submitS, durationS, gpus, nodes, gpusPerNode, project, priority, ...(pool ? { pool } : {}) });
  }
  if (jobs.length === 0) throw new SimInputError(`${source}: no jobs after the header`);
  // Array.prototype.sort is stable, so same-time jobs keep file order.
  jobs.sort((a, b) => a.submitS - b.submitS);
  return { name: source, jobs };
}

/** Writes a trace back to CSV (the generator's output format). */
export function formatTrace(jobs: readonly TraceJob[]): string {
  const rows = ['job_id,submit_s,duration_s,gpus,nodes,gpus_per_node,project,priority,pool'];
  for (const j of jobs) {
    const fields = [j.id, j.submitS, j.durationS, j.gpus, j.nodes, j.gpusPerNode, j.project, j.priority, j.pool ?? ''];
    rows.push(fields.join(','));
  }
  return `${rows.join('\n')}\n`;
}
