// Measured GPU power: on a node with nvidia-smi, the leader samples
// `nvidia-smi --query-gpu=index,power.draw --format=csv,noheader,nounits` and records, for every
// live attempt placed on this node, the sum over its GPU indexes. Driven from the control-plane
// side (server.ts starts it beside the reconciler), so the executors are untouched; an attempt
// whose GPUs report no reading keeps the TDP estimate (attempt-usage.ts).
import { execFile } from 'node:child_process';
import type { Kysely } from 'kysely';
import { SerialLoop } from '../domain/serial-loop.js';
import type { Trx } from '../store/db.js';
import type { Database } from '../store/schema.js';

/** Watts by GPU index. A GPU that reports `[N/A]` (or `[Not Supported]`) is left out. */
export function parsePowerDraw(stdout: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of stdout.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const [idx, w, extra] = line.split(',').map((c) => c.trim());
    if (extra !== undefined || !idx || !/^\d+$/.test(idx) || w === undefined)
      throw new Error(`unexpected nvidia-smi power line: ${JSON.stringify(line)}`);
    const watts = Number(w);
    if (w !== '' && Number.isFinite(watts) && watts >= 0) out.set(Number(idx), watts);
    else if (!/^\[.*\]$/.test(w)) throw new Error(`unexpected nvidia-smi power value: ${JSON.stringify(line)}`);
  }
  return out;
}

/** The attempt's draw: the sum over its GPU indexes, or undefined when one of them has no reading. */
export function attemptWatts(readings: ReadonlyMap<number, number>, gpuIndexes: readonly number[]): number | undefined {
  let sum = 0;
  for (const i of gpuIndexes) {
    const w = readings.get(i);
    if (w === undefined) return undefined;
    sum += w;
  }
  return gpuIndexes.length > 0 ? sum : undefined;
}

/** The GPU indexes an attempt holds on `node` (placement JSON as stored). */
export function indexesOn(placement: string, node: string): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(placement);
  } catch {
    return [];
  }
  const nodes = (parsed as { nodes?: unknown })?.nodes;
  if (!Array.isArray(nodes)) return [];
  const out: number[] = [];
  for (const n of nodes as unknown[]) {
    if ((n as { node?: unknown })?.node !== node) continue;
    const idx = (n as { gpuIndexes?: unknown }).gpuIndexes;
    if (Array.isArray(idx)) for (const i of idx) if (Number.isInteger(i)) out.push(i as number);
  }
  return out;
}

export function queryNvidiaSmi(bin = 'nvidia-smi'): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      bin,
      ['--query-gpu=index,power.draw', '--format=csv,noheader,nounits'],
      { timeout: 5000 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
}

export interface PowerSamplerOptions {
  /** The inventory name of this node (attempts placed on it are sampled). */
  readonly node: string;
  /** Default 10 s. */
  readonly intervalMs?: number;
  readonly query?: () => Promise<string>;
  readonly fence?: (trx: Trx) => Promise<void>;
  readonly clock?: () => number;
  readonly onError?: (err: Error) => void;
}

export class PowerSampler extends SerialLoop {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: PowerSamplerOptions,
  ) {
    super(opts.intervalMs ?? 10_000, opts.onError);
  }

  protected override async work(): Promise<void> {
    await this.sampleOnce();
  }

  /** One sample of every live attempt on this node; returns how many were recorded. */
  async sampleOnce(): Promise<number> {
    const live = await this.db
      .selectFrom('workload_attempts')
      .select(['id', 'placement', 'gpus'])
      .where('state', 'in', ['running', 'stopping'])
      .where('started_at', '<>', '')
      .execute();
    const mine = live
      .map((a) => ({ id: a.id, idx: indexesOn(a.placement, this.opts.node) }))
      // Only attempts wholly on this node: a partial sum would understate a multi-node attempt.
      .filter((a, i) => a.idx.length > 0 && a.idx.length === Number(live[i]!.gpus));
    if (mine.length === 0) return 0;
    const readings = parsePowerDraw(await (this.opts.query ?? queryNvidiaSmi)());
    const at = new Date((this.opts.clock ?? Date.now)()).toISOString();
    const rows = mine.flatMap((a) => {
      const watts = attemptWatts(readings, a.idx);
      return watts === undefined ? [] : [{ attempt_id: a.id, at, watts, gpus: a.idx.length }];
    });
    if (rows.length === 0) return 0;
    await this.db.transaction().execute(async (trx) => {
      await this.opts.fence?.(trx);
      await trx
        .insertInto('attempt_power_samples')
        .values(rows)
        .onConflict((oc) => oc.columns(['attempt_id', 'at']).doNothing())
        .execute();
    });
    return rows.length;
  }
}

/**
 * The sampler for this machine's node, when it is in the inventory with real GPUs (not
 * development ones) and nvidia-smi answers; otherwise undefined and power stays estimated.
 */
export async function localPowerSampler(
  db: Kysely<Database>,
  node: string,
  opts: Omit<PowerSamplerOptions, 'node'> = {},
): Promise<PowerSampler | undefined> {
  const row = await db.selectFrom('nodes').select(['dev_gpus']).where('name', '=', node).executeTakeFirst();
  if (!row || Number(row.dev_gpus) === 1) return undefined;
  const query = opts.query ?? (() => queryNvidiaSmi());
  try {
    parsePowerDraw(await query());
  } catch {
    return undefined;
  }
  return new PowerSampler(db, { ...opts, node, query });
}
