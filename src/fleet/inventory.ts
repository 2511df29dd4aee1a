// The fleet as stored: pools and nodes, applied from a fleet file, and node states changed by
// operators (cordon, drain, uncordon, down). Reads for tenants show pools and capacity only.
import type { Trx } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import { grantScope } from '../policy/roles.js';
import { type Page, type PageRequest, page } from '../store/paging.js';
import type { NodesTable } from '../store/schema.js';
import { guaranteedInPool, poolCapacity } from '../store/pool-guarantees.js';
import { type Ctx, requireOperator, requireOperatorTo, write } from '../app/context.js';
import type { FleetSpec, NodeSpec, NodeState } from './fleet-file.js';

export interface FleetNode extends NodeSpec {
  state: NodeState;
  /** True for the development GPUs of a machine without real ones: not real capacity. */
  devGpus: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface Pool {
  name: string;
  gpuModel: string;
  gpuMemoryGiB: number;
  nodes: number;
  gpus: number;
  /** GPUs on nodes that take new work (state ready). */
  schedulableGpus: number;
  guaranteed: number;
  devGpus: boolean;
}

export interface ApplyResult {
  pools: number;
  nodes: number;
  created: number;
  updated: number;
  unchanged: number;
  pruned: number;
  gpus: number;
}

export function nodeView(r: NodesTable): FleetNode {
  return {
    name: r.name,
    pool: r.pool,
    gpuModel: r.gpu_model,
    gpuCount: r.gpu_count,
    gpuMemoryGiB: r.gpu_memory_gib,
    region: r.region,
    pod: r.pod,
    rack: r.rack,
    ibLeaf: r.ib_leaf,
    ibSpine: r.ib_spine,
    cpu: r.cpu,
    ramGiB: r.ram_gib,
    labels: JSON.parse(r.labels),
    state: r.state as NodeState,
    devGpus: r.dev_gpus === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The spec part of a node, as compared and digested: state and timestamps excluded. */
function specOf(n: NodeSpec): NodeSpec {
  return {
    name: n.name,
    pool: n.pool,
    gpuModel: n.gpuModel,
    gpuCount: n.gpuCount,
    gpuMemoryGiB: n.gpuMemoryGiB,
    region: n.region,
    pod: n.pod,
    rack: n.rack,
    ibLeaf: n.ibLeaf,
    ibSpine: n.ibSpine,
    cpu: n.cpu,
    ramGiB: n.ramGiB,
    labels: n.labels,
  };
}

function nodeRow(n: NodeSpec, state: NodeState, devGpus: boolean, createdAt: string, now: string): NodesTable {
  return {
    name: n.name,
    pool: n.pool,
    region: n.region,
    pod: n.pod,
    rack: n.rack,
    ib_leaf: n.ibLeaf,
    ib_spine: n.ibSpine,
    gpu_model: n.gpuModel,
    gpu_count: n.gpuCount,
    gpu_memory_gib: n.gpuMemoryGiB,
    cpu: n.cpu,
    ram_gib: n.ramGiB,
    labels: JSON.stringify(n.labels),
    state,
    dev_gpus: devGpus ? 1 : 0,
    created_at: createdAt,
    updated_at: now,
  };
}

/**
 * Applies a parsed fleet file: creates or updates its pools and nodes (keeping each node's state),
 * and with `prune` removes nodes the file no longer lists. Refuses, writing nothing, when the
 * change would leave a pool smaller than the GPUs guaranteed in it.
 */
export async function applyFleet(ctx: Ctx, spec: FleetSpec, opts: { prune?: boolean } = {}): Promise<ApplyResult> {
  const mutation = { action: 'fleet.apply', resource: 'fleet', orgId: '' };
  await requireOperatorTo(ctx, mutation, 'change the fleet');
  return write(ctx, mutation, (trx) => applyInTrx(trx, spec, opts));
}

/** The same, for the system's own registration of the local node at start-up. */
export async function applyInTrx(trx: Trx, spec: FleetSpec, opts: { prune?: boolean; devGpus?: boolean } = {}) {
  const now = nowIso();
  const existing = new Map((await trx.selectFrom('nodes').selectAll().execute()).map((r) => [r.name, r]));
  const before = [...existing.values()].map((r) => specOf(nodeView(r))).sort(byName);

  for (const p of spec.pools) {
    await trx
      .insertInto('pools')
      .values({ name: p.name, gpu_model: p.gpuModel, gpu_memory_gib: p.gpuMemoryGiB, created_at: now, updated_at: now })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet({ gpu_model: p.gpuModel, gpu_memory_gib: p.gpuMemoryGiB, updated_at: now }),
      )
      .execute();
  }

  let created = 0;
  let updated = 0;
  let unchanged = 0;
  const changedRows: NodesTable[] = [];
  for (const n of spec.nodes) {
    const old = existing.get(n.name);
    if (!old) {
      created++;
      changedRows.push(nodeRow(n, 'ready', opts.devGpus ?? false, now, now));
    } else if (JSON.stringify(specOf(nodeView(old))) !== JSON.stringify(specOf(n))) {
      updated++;
      changedRows.push(nodeRow(n, old.state as NodeState, old.dev_gpus === 1, old.created_at, now));
    } else {
      unchanged++;
    }
  }
  // Multi-row upserts in chunks: one statement per node would make a 1,250-node file slow on PostgreSQL.
  for (let i = 0; i < changedRows.length; i += 100) {
    const chunk = changedRows.slice(i, i + 100);
    await trx
      .insertInto('nodes')
      .values(chunk)
      .onConflict((oc) =>
        oc.column('name').doUpdateSet((eb) => ({
          pool: eb.ref('excluded.pool'),
          region: eb.ref('excluded.region'),
          pod: eb.ref('excluded.pod'),
          rack: eb.ref('excluded.rack'),
          ib_leaf: eb.ref('excluded.ib_leaf'),
          ib_spine: eb.ref('excluded.ib_spine'),
          gpu_model: eb.ref('excluded.gpu_model'),
          gpu_count: eb.ref('excluded.gpu_count'),
          gpu_memory_gib: eb.ref('excluded.gpu_memory_gib'),
          cpu: eb.ref('excluded.cpu'),
          ram_gib: eb.ref('excluded.ram_gib'),
          labels: eb.ref('excluded.labels'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }

  let pruned = 0;
  if (opts.prune) {
    const keep = new Set(spec.nodes.map((n) => n.name));
    const gone = [...existing.keys()].filter((name) => !keep.has(name));
    for (let i = 0; i < gone.length; i += 500) {
      await trx
        .deleteFrom('nodes')
        .where('name', 'in', gone.slice(i, i + 500))
        .execute();
    }
    pruned = gone.length;
  }

  await checkGuaranteesFit(trx);
  const after = (await trx.selectFrom('nodes').selectAll().execute()).map((r) => specOf(nodeView(r))).sort(byName);
  const gpus = spec.nodes.reduce((s, n) => s + n.gpuCount, 0);
  const result: ApplyResult = {
    pools: spec.pools.length,
    nodes: spec.nodes.length,
    created,
    updated,
    unchanged,
    pruned,
    gpus,
  };
  return { result, before, after };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** After a fleet change every pool must still hold the GPUs guaranteed in it. */
async function checkGuaranteesFit(trx: Trx): Promise<void> {
  const pools = await trx.selectFrom('pools').select('name').execute();
  for (const { name } of pools) {
    const guaranteed = await guaranteedInPool(trx, name);
    if (guaranteed === 0) continue;
    const capacity = (await poolCapacity(trx, name)) ?? 0;
    if (capacity < guaranteed) {
      throw new AppError(
        'QUOTA_EXCEEDS_CAPACITY',
        `pool "${name}" would have ${capacity} GPUs but ${guaranteed} are guaranteed to projects: short by ${guaranteed - capacity}; lower quotas first`,
        { pool: name, capacity, guaranteed, exceedsBy: guaranteed - capacity },
      );
    }
  }
}

export async function listNodes(
  ctx: Ctx,
  filter: { pool?: string; state?: string; pod?: string },
  req: PageRequest,
): Promise<Page<FleetNode>> {
  requireOperator(ctx, 'list nodes');
  let q = ctx.db.selectFrom('nodes').selectAll();
  if (filter.pool) q = q.where('pool', '=', filter.pool);
  if (filter.state) q = q.where('state', '=', filter.state);
  if (filter.pod) q = q.where('pod', '=', filter.pod);
  return page(q, 'name', req, nodeView);
}

export async function getNode(ctx: Ctx, name: string): Promise<FleetNode> {
  requireOperator(ctx, 'read nodes');
  const row = await ctx.db.selectFrom('nodes').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw notFound('node', name);
  return nodeView(row);
}

/** Moves a node between states. Cordoned and draining nodes take nothing new; down is set by health or hand. */
export async function setNodeState(ctx: Ctx, name: string, state: NodeState): Promise<FleetNode> {
  const spec = { action: `node.${stateVerb(state)}`, resource: `fleet/nodes/${name}`, orgId: '' };
  await requireOperatorTo(ctx, spec, 'change node states');
  return write(ctx, spec, async (trx) => {
    const row = await trx.selectFrom('nodes').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound('node', name);
    const next = { ...row, state, updated_at: nowIso() };
    await trx.updateTable('nodes').set({ state, updated_at: next.updated_at }).where('name', '=', name).execute();
    return { result: nodeView(next), before: { name, state: row.state }, after: { name, state } };
  });
}

function stateVerb(state: NodeState): string {
  return { ready: 'uncordon', cordoned: 'cordon', draining: 'drain', down: 'down' }[state];
}

/**
 * Pools with capacity; visible to every authenticated caller (it answers "what can I ask for?").
 * `guaranteed` is the pool-wide total for operators only: a tenant sees the sum over the projects
 * it can see, since the total minus its own would tell it the other tenants' guarantees.
 */
export async function listPools(ctx: Ctx): Promise<Pool[]> {
  const pools = await ctx.db.selectFrom('pools').selectAll().orderBy('name').execute();
  const counts = await ctx.db
    .selectFrom('nodes')
    .select(['pool', 'state', 'dev_gpus'])
    .select((eb) => [eb.fn.countAll<number>().as('nodes'), eb.fn.sum<number>('gpu_count').as('gpus')])
    .groupBy(['pool', 'state', 'dev_gpus'])
    .execute();
  const guarantees = await visibleGuarantees(ctx);
  return pools.map((p) => {
    const rows = counts.filter((c) => c.pool === p.name);
    return {
      name: p.name,
      gpuModel: p.gpu_model,
      gpuMemoryGiB: p.gpu_memory_gib,
      nodes: rows.reduce((s, r) => s + Number(r.nodes), 0),
      gpus: rows.reduce((s, r) => s + Number(r.gpus), 0),
      schedulableGpus: rows.filter((r) => r.state === 'ready').reduce((s, r) => s + Number(r.gpus), 0),
      guaranteed: Number(guarantees.find((g) => g.pool === p.name)?.g ?? 0),
      devGpus: rows.some((r) => Number(r.dev_gpus) === 1),
    };
  });
}

async function visibleGuarantees(ctx: Ctx): Promise<{ pool: string; g: number }[]> {
  const q = ctx.db
    .selectFrom('quotas')
    .innerJoin('projects', 'projects.id', 'quotas.project_id')
    .select('quotas.pool as pool')
    .select((eb) => eb.fn.sum<number>('quotas.guaranteed').as('g'))
    .groupBy('quotas.pool');
  if (ctx.caller.operator) return q.execute();
  const { wideOrgs, projects } = grantScope(ctx.caller);
  if (wideOrgs.length === 0 && projects.length === 0) return [];
  return q
    .where((eb) =>
      eb.or([
        ...(wideOrgs.length ? [eb('projects.org_id', 'in', wideOrgs)] : []),
        ...(projects.length ? [eb('projects.id', 'in', projects)] : []),
      ]),
    )
    .execute();
}
