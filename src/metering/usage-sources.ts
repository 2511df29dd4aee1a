// Usage derived from the durable facts, for whole hours [from, to): attempts (placement ×
// started_at..ended_at, `now` while running) with their power samples, the gateways' token usage
// per minute, and the sampled stored bytes per project. The same facts give the same rollup.
import { type Kysely, sql } from 'kysely';
import type { Trx } from '../store/db.js';
import type { Database } from '../store/schema.js';
import type { PriorityClass } from '../scheduler/types.js';
import { PRIORITY_CLASSES } from '../scheduler/types.js';
import { SAMPLE_HOLD_MS, attemptUsage } from './attempt-usage.js';
import type { EnergySite } from './energy.js';
import { HourlyRollup } from './rollup.js';
import { type AttemptNode, HOUR_MS, type PowerSample } from './types.js';

type Db = Kysely<Database> | Trx;

export interface UsageWindow {
  /** Hour-aligned epoch ms. */
  readonly from: number;
  readonly to: number;
  /** Ends running attempts and the stored-bytes integral. */
  readonly now: number;
}

/** GPUs per node when the node is no longer in the inventory (a DGX or RTX PRO server). */
const DEFAULT_NODE_GPUS = 8;

export async function deriveUsage(db: Db, site: EnergySite, w: UsageWindow): Promise<HourlyRollup> {
  if (w.from % HOUR_MS !== 0 || w.to % HOUR_MS !== 0 || w.to < w.from)
    throw new RangeError('deriveUsage: the window must be whole hours');
  const rollup = new HourlyRollup();
  await addAttempts(db, site, w, rollup);
  await addTokens(db, w, rollup);
  await addStoredBytes(db, w, rollup);
  return rollup;
}

/** The model ref of a deployment: its registry repo, else its name (a local file or an external upstream). */
export function deploymentModel(d: { model_repo: string; name: string }): string {
  return d.model_repo || d.name;
}

async function deploymentModels(db: Db): Promise<Map<string, string>> {
  const rows = await db.selectFrom('deployments').select(['id', 'model_repo', 'name']).execute();
  return new Map(rows.map((d) => [d.id, deploymentModel(d)]));
}

/** The facts of the attempts that overlap [from, to), with their workload's priority and deployment. */
export async function attemptRows(db: Db, fromIso: string, toIso: string, workloadId?: string) {
  let q = db
    .selectFrom('workload_attempts as a')
    .innerJoin('workloads as w', 'w.id', 'a.workload_id')
    .leftJoin('deployment_replicas as r', 'r.workload_id', 'a.workload_id')
    .select([
      'a.id',
      'a.org_id',
      'a.project_id',
      'a.number',
      'a.pool',
      'a.gpu_model',
      'a.placement',
      'a.started_at',
      'a.ended_at',
      'w.priority',
      'r.deployment_id',
    ])
    .where('a.started_at', '<>', '')
    .where('a.started_at', '<', toIso)
    .where((eb) => eb.or([eb('a.ended_at', '=', ''), eb('a.ended_at', '>', fromIso)]));
  if (workloadId !== undefined) q = q.where('a.workload_id', '=', workloadId);
  return q.orderBy('a.id').execute();
}

export interface FleetFacts {
  readonly nodeGpus: Map<string, number>;
  readonly poolModel: Map<string, string>;
}

export async function fleetFacts(db: Db): Promise<FleetFacts> {
  const [nodes, pools] = await Promise.all([
    db.selectFrom('nodes').select(['name', 'gpu_count']).execute(),
    db.selectFrom('pools').select(['name', 'gpu_model']).execute(),
  ]);
  return {
    nodeGpus: new Map(nodes.map((n) => [n.name, Number(n.gpu_count)])),
    poolModel: new Map(pools.map((p) => [p.name, p.gpu_model])),
  };
}

/** The nodes of a placement (JSON as the scheduler stored it); unreadable placements count no GPUs. */
export function placementNodes(placement: string, nodeGpus: ReadonlyMap<string, number>): AttemptNode[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(placement);
  } catch {
    return [];
  }
  const nodes = (parsed as { nodes?: unknown })?.nodes;
  if (!Array.isArray(nodes)) return [];
  const out: AttemptNode[] = [];
  for (const n of nodes as unknown[]) {
    const name = (n as { node?: unknown })?.node;
    const idx = (n as { gpuIndexes?: unknown })?.gpuIndexes;
    if (typeof name !== 'string' || !Array.isArray(idx)) continue;
    const total = nodeGpus.get(name) ?? Math.max(DEFAULT_NODE_GPUS, idx.length);
    out.push({ node: name, gpus: idx.length, nodeGpus: Math.max(total, idx.length) });
  }
  return out;
}

/** Power samples of attempts from SAMPLE_HOLD_MS before `from` to `to`, in time order per attempt. */
export async function powerSamples(db: Db, ids: readonly string[], from: number, to: number) {
  const out = new Map<string, PowerSample[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('attempt_power_samples')
      .select(['attempt_id', 'at', 'watts'])
      .where('attempt_id', 'in', ids.slice(i, i + 500))
      .where('at', '>=', new Date(from - SAMPLE_HOLD_MS).toISOString())
      .where('at', '<', new Date(to).toISOString())
      .orderBy('attempt_id')
      .orderBy('at')
      .execute();
    for (const r of rows) {
      const list = out.get(r.attempt_id) ?? [];
      list.push({ at: Date.parse(r.at), watts: Number(r.watts) });
      out.set(r.attempt_id, list);
    }
  }
  return out;
}

export function asPriority(p: string): PriorityClass | '' {
  return (PRIORITY_CLASSES as readonly string[]).includes(p) ? (p as PriorityClass) : '';
}

async function addAttempts(db: Db, site: EnergySite, w: UsageWindow, rollup: HourlyRollup): Promise<void> {
  const fromIso = new Date(w.from).toISOString();
  const toIso = new Date(w.to).toISOString();
  const [rows, fleet, models] = await Promise.all([
    attemptRows(db, fromIso, toIso),
    fleetFacts(db),
    deploymentModels(db),
  ]);
  const samples = await powerSamples(
    db,
    rows.map((r) => r.id),
    w.from,
    w.to,
  );
  for (const a of rows) {
    const gpuModel = a.gpu_model || fleet.poolModel.get(a.pool) || '';
    const deploymentId = a.deployment_id ?? '';
    const dims = rollup.dimsId(
      a.org_id,
      a.project_id,
      a.pool,
      gpuModel,
      asPriority(a.priority),
      deploymentId,
      deploymentId ? (models.get(deploymentId) ?? '') : '',
    );
    // Clipped to the window: hours are aligned, so each hour's figure is the unclipped one.
    const startedAt = Math.max(Date.parse(a.started_at), w.from);
    const endedAt = Math.min(a.ended_at ? Date.parse(a.ended_at) : w.now, w.to);
    const u = attemptUsage(
      {
        startedAt,
        endedAt,
        gpuModel,
        nodes: placementNodes(a.placement, fleet.nodeGpus),
        samples: samples.get(a.id) ?? [],
      },
      site,
    );
    for (const h of u.hours) {
      const at = Date.parse(h.hour);
      rollup.addAt(at, 'gpu_seconds', dims, h.gpuSeconds);
      rollup.addAt(at, 'energy_wh', dims, h.energyWh, h.estimated);
      rollup.addAt(at, 'co2_g', dims, h.co2g, h.estimated);
    }
  }
}

async function addTokens(db: Db, w: UsageWindow, rollup: HourlyRollup): Promise<void> {
  const hour = sql<string>`substr(minute, 1, 13)`;
  const [rows, models] = await Promise.all([
    db
      .selectFrom('token_usage')
      .select([
        hour.as('h'),
        'org_id',
        'project_id',
        'deployment_id',
        (eb) => eb.fn.sum<number>('tokens_in').as('tin'),
        (eb) => eb.fn.sum<number>('tokens_out').as('tout'),
      ])
      .where('minute', '>=', new Date(w.from).toISOString())
      .where('minute', '<', new Date(w.to).toISOString())
      .groupBy([hour, 'org_id', 'project_id', 'deployment_id'])
      .execute(),
    deploymentModels(db),
  ]);
  for (const r of rows) {
    const at = Date.parse(`${r.h}:00:00.000Z`);
    const dims = rollup.dimsId(r.org_id, r.project_id, '', '', '', r.deployment_id, models.get(r.deployment_id) ?? '');
    rollup.addAt(at, 'tokens_in', dims, Number(r.tin));
    rollup.addAt(at, 'tokens_out', dims, Number(r.tout));
  }
}

async function addStoredBytes(db: Db, w: UsageWindow, rollup: HourlyRollup): Promise<void> {
  const end = Math.min(w.to, w.now);
  if (end <= w.from) return;
  const fromIso = new Date(w.from).toISOString();
  const latestBefore = db
    .selectFrom('stored_bytes_samples')
    .select(['project_id', (eb) => eb.fn.max('at').as('at')])
    .where('at', '<', fromIso)
    .groupBy('project_id')
    .as('m');
  const [before, inside] = await Promise.all([
    db
      .selectFrom('stored_bytes_samples as s')
      .innerJoin(latestBefore, (j) => j.onRef('m.project_id', '=', 's.project_id').onRef('m.at', '=', 's.at'))
      .select(['s.project_id', 's.org_id', 's.at', 's.bytes'])
      .execute(),
    db
      .selectFrom('stored_bytes_samples')
      .select(['project_id', 'org_id', 'at', 'bytes'])
      .where('at', '>=', fromIso)
      .where('at', '<', new Date(end).toISOString())
      .orderBy('project_id')
      .orderBy('at')
      .execute(),
  ]);
  const byProject = new Map<string, { org: string; points: { at: number; bytes: number }[] }>();
  for (const r of [...before, ...inside]) {
    const p = byProject.get(r.project_id) ?? { org: r.org_id, points: [] };
    p.points.push({ at: Math.max(Date.parse(r.at), w.from), bytes: Number(r.bytes) });
    byProject.set(r.project_id, p);
  }
  for (const [projectId, p] of byProject) {
    const dims = rollup.dimsId(p.org, projectId);
    // A step function: each sample holds until the next one (or `now`).
    p.points.forEach((pt, i) => {
      const until = i + 1 < p.points.length ? p.points[i + 1]!.at : end;
      for (let t = pt.at; t < until; ) {
        const hourEnd = Math.min(until, Math.floor(t / HOUR_MS) * HOUR_MS + HOUR_MS);
        rollup.addAt(t, 'stored_byte_seconds', dims, (pt.bytes * (hourEnd - t)) / 1000);
        t = hourEnd;
      }
    });
  }
}
