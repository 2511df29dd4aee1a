// HourlyRollup: a streaming sum of usage into (hour, metric, dimensions) cells. Fast on the hot
// path: dimension tuples are interned once into integer ids, each cell is a number key into typed
// columns, so adding a record allocates nothing once its dimensions were seen.
import type { PriorityClass } from '../scheduler/types.js';
import { HOUR_MS, USAGE_METRICS, type UsageKey, type UsageMetric, type UsageRecord } from './types.js';

/** What add() takes: one usage figure. '' (or absent) where a dimension does not apply. */
export interface RollupInput {
  /** Epoch ms anywhere in the hour. */
  readonly at: number;
  readonly orgId: string;
  readonly projectId: string;
  readonly metric: UsageMetric;
  readonly pool?: string;
  readonly gpuModel?: string;
  readonly priority?: PriorityClass | '';
  readonly deploymentId?: string;
  readonly model?: string;
  readonly quantity: number;
  readonly estimated?: boolean;
}

type Dims = Omit<UsageKey, 'hour' | 'metric'>;

const METRIC_INDEX = new Map<string, number>(USAGE_METRICS.map((m, i) => [m, i]));
// (dims id × 8 + metric) stays a small integer, and so does the hour index (hours since 1970):
// V8 keeps both unboxed, so finding a cell allocates nothing.
const MAX_DIMS = 2 ** 27;

export class HourlyRollup {
  private readonly dims: Dims[] = [];
  // Nested interning: org → project → pool → gpuModel → priority → deployment → model → id.
  private readonly tree = new Map<string, any>();
  /** Per (dims id × 8 + metric): hour index → cell. */
  private readonly byCombo: (Map<number, number> | undefined)[] = [];
  private qty = new Float64Array(1024);
  private est = new Uint8Array(1024);
  private cellHour = new Int32Array(1024);
  private cellCombo = new Int32Array(1024);
  private n = 0;

  /** The integer id of a dimension tuple (interned: the same strings give the same id). */
  dimsId(
    orgId: string,
    projectId: string,
    pool = '',
    gpuModel = '',
    priority: PriorityClass | '' = '',
    deploymentId = '',
    model = '',
  ): number {
    // Unrolled (no array per call): add() runs this for every record.
    const m = step(step(step(step(step(step(this.tree, orgId), projectId), pool), gpuModel), priority), deploymentId);
    let id = m.get(model) as number | undefined;
    if (id === undefined) {
      id = this.dims.length;
      if (id >= MAX_DIMS) throw new RangeError('HourlyRollup: too many dimension tuples');
      this.dims.push({ orgId, projectId, pool, gpuModel, priority, deploymentId, model });
      m.set(model, id);
    }
    return id;
  }

  /** The hot path: a quantity for an already interned tuple. */
  addAt(at: number, metric: UsageMetric, dimsId: number, quantity: number, estimated = false): void {
    const mi = METRIC_INDEX.get(metric);
    if (mi === undefined) throw new RangeError(`HourlyRollup: unknown metric ${metric}`);
    this.addCell(Math.floor(at / HOUR_MS), dimsId * 8 + mi, quantity, estimated);
  }

  add(r: RollupInput): void {
    const id = this.dimsId(r.orgId, r.projectId, r.pool, r.gpuModel, r.priority, r.deploymentId, r.model);
    this.addAt(r.at, r.metric, id, r.quantity, r.estimated);
  }

  /** Adds every cell of another rollup (e.g. one built per worker). */
  merge(other: HourlyRollup): void {
    const ids = other.dims.map((d) =>
      this.dimsId(d.orgId, d.projectId, d.pool, d.gpuModel, d.priority, d.deploymentId, d.model),
    );
    for (let c = 0; c < other.n; c++) {
      const combo = other.cellCombo[c]!;
      const mi = combo % 8;
      this.addCell(other.cellHour[c]!, ids[(combo - mi) / 8]! * 8 + mi, other.qty[c]!, other.est[c] === 1);
    }
  }

  private addCell(hour: number, combo: number, quantity: number, estimated: boolean): void {
    let hours = this.byCombo[combo];
    if (hours === undefined) {
      hours = new Map();
      this.byCombo[combo] = hours;
    }
    let c = hours.get(hour);
    if (c === undefined) {
      c = this.n++;
      if (c >= this.qty.length) this.grow();
      hours.set(hour, c);
      this.cellHour[c] = hour;
      this.cellCombo[c] = combo;
    }
    this.qty[c] += quantity;
    if (estimated) this.est[c] = 1;
  }

  get size(): number {
    return this.n;
  }

  /** The cells as usage rows, in a stable order (hour, project, metric, dimensions). Zero cells are left out. */
  rows(updatedAt = ''): UsageRecord[] {
    const out: UsageRecord[] = [];
    for (let c = 0; c < this.n; c++) {
      if (this.qty[c] === 0) continue;
      const combo = this.cellCombo[c]!;
      const mi = combo % 8;
      out.push({
        hour: new Date(this.cellHour[c]! * HOUR_MS).toISOString(),
        metric: USAGE_METRICS[mi]!,
        ...this.dims[(combo - mi) / 8]!,
        quantity: this.qty[c]!,
        estimated: this.est[c] === 1,
        updatedAt,
      });
    }
    return out.sort(compareUsage);
  }

  private grow(): void {
    const size = this.qty.length * 2;
    const q = new Float64Array(size);
    q.set(this.qty);
    this.qty = q;
    const e = new Uint8Array(size);
    e.set(this.est);
    this.est = e;
    const h = new Int32Array(size);
    h.set(this.cellHour);
    this.cellHour = h;
    const k = new Int32Array(size);
    k.set(this.cellCombo);
    this.cellCombo = k;
  }
}

function step(m: Map<string, any>, part: string): Map<string, any> {
  let next = m.get(part);
  if (next === undefined) {
    next = new Map();
    m.set(part, next);
  }
  return next;
}

/** The primary-key order of usage_hourly. */
export function compareUsage(a: UsageKey, b: UsageKey): number {
  return (
    cmp(a.hour, b.hour) ||
    cmp(a.projectId, b.projectId) ||
    cmp(a.metric, b.metric) ||
    cmp(a.pool, b.pool) ||
    cmp(a.gpuModel, b.gpuModel) ||
    cmp(a.priority, b.priority) ||
    cmp(a.deploymentId, b.deploymentId) ||
    cmp(a.model, b.model)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
