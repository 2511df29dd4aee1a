// Quotas: per project and pool, `guaranteed` GPUs (never taken away) and `limit` (with borrowing).
// The guarantees of a pool must fit in its capacity; that rule is pure and lives in quotaFits.
import { sql } from 'kysely';
import { AppError, notFound } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import { grantScope, visibleProjects } from '../policy/roles.js';
import { type Page, type PageRequest, page } from '../store/paging.js';
import type { QuotasTable } from '../store/schema.js';
import { guaranteedInPool, poolCapacity } from '../store/pool-guarantees.js';
import { type Ctx, findOrg, findProject, requireOperatorTo, write } from '../app/context.js';
import { borrowedOf, currentUse } from '../store/gpus-in-use.js';

export interface Quota {
  project: string;
  pool: string;
  guaranteed: number;
  limit: number;
  /** GPUs held now by the project's live attempts in the pool, and of those the borrowed ones. */
  used: number;
  borrowed: number;
  updatedAt: string;
}

/** Pure rule: can a pool of `capacity` GPUs guarantee `others` GPUs plus `guaranteed` more? */
export function quotaFits(
  capacity: number,
  others: number,
  guaranteed: number,
): { ok: true } | { ok: false; over: number } {
  const over = others + guaranteed - capacity;
  return over > 0 ? { ok: false, over } : { ok: true };
}

export async function setQuota(
  ctx: Ctx,
  projectRef: string,
  pool: string,
  input: { guaranteed: number; limit: number },
): Promise<Quota> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const spec = {
    action: 'quota.set',
    resource: `projects/${ref}/quotas/${pool}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireOperatorTo(ctx, spec, 'set quotas');
  if (input.guaranteed > input.limit) {
    throw new AppError('VALIDATION_FAILED', `guaranteed (${input.guaranteed}) must not exceed limit (${input.limit})`, {
      field: 'guaranteed',
    });
  }
  return write(ctx, spec, async (trx) => {
    const capacity = await poolCapacity(trx, pool);
    if (capacity === undefined) throw notFound('pool', pool);
    if (input.limit > capacity) {
      throw new AppError(
        'QUOTA_EXCEEDS_CAPACITY',
        `limit ${input.limit} exceeds the capacity of pool "${pool}" (${capacity} GPUs)`,
        {
          pool,
          capacity,
          limit: input.limit,
        },
      );
    }
    const others = await guaranteedInPool(trx, pool, project.id);
    const fit = quotaFits(capacity, others, input.guaranteed);
    if (!fit.ok) {
      throw new AppError(
        'QUOTA_EXCEEDS_CAPACITY',
        `pool "${pool}" has ${capacity} GPUs and ${others} are already guaranteed to other projects; guaranteeing ${input.guaranteed} more exceeds capacity by ${fit.over}`,
        { pool, capacity, guaranteedElsewhere: others, requested: input.guaranteed, exceedsBy: fit.over },
      );
    }
    const before = await trx
      .selectFrom('quotas')
      .selectAll()
      .where('project_id', '=', project.id)
      .where('pool', '=', pool)
      .executeTakeFirst();
    const now = nowIso();
    const row: QuotasTable = {
      project_id: project.id,
      pool,
      guaranteed: input.guaranteed,
      gpu_limit: input.limit,
      created_at: before?.created_at ?? now,
      updated_at: now,
    };
    if (before)
      await trx.updateTable('quotas').set(row).where('project_id', '=', project.id).where('pool', '=', pool).execute();
    else await trx.insertInto('quotas').values(row).execute();
    const after = quotaView(row, ref);
    return { result: after, before: before ? quotaView(before, ref) : null, after };
  }).then(async (q) => (await withUse(ctx, [project.id], [q]))[0]!);
}

export async function deleteQuota(ctx: Ctx, projectRef: string, pool: string): Promise<void> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const spec = {
    action: 'quota.delete',
    resource: `projects/${ref}/quotas/${pool}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireOperatorTo(ctx, spec, 'delete quotas');
  await write(ctx, spec, async (trx) => {
    const before = await trx
      .selectFrom('quotas')
      .selectAll()
      .where('project_id', '=', project.id)
      .where('pool', '=', pool)
      .executeTakeFirst();
    if (!before) throw notFound('quota', `${ref}/${pool}`);
    await trx.deleteFrom('quotas').where('project_id', '=', project.id).where('pool', '=', pool).execute();
    return { result: undefined, before: quotaView(before, ref), after: null };
  });
}

export async function listProjectQuotas(ctx: Ctx, projectRef: string): Promise<Quota[]> {
  const { org, project } = await findProject(ctx, projectRef);
  const rows = await ctx.db
    .selectFrom('quotas')
    .selectAll()
    .where('project_id', '=', project.id)
    .orderBy('pool')
    .execute();
  return withUse(
    ctx,
    [project.id],
    rows.map((r) => quotaView(r, `${org.name}.${project.name}`)),
  );
}

/** All quotas the caller may see: every one for operators, else those of the org's visible projects. */
export async function listQuotas(
  ctx: Ctx,
  filter: { org?: string; pool?: string },
  req: PageRequest,
): Promise<Page<Quota>> {
  let q = ctx.db
    .selectFrom('quotas')
    .innerJoin('projects', 'projects.id', 'quotas.project_id')
    .innerJoin('orgs', 'orgs.id', 'projects.org_id')
    .selectAll('quotas')
    .select(sql<string>`orgs.name || '.' || projects.name || '/' || quotas.pool`.as('qkey'))
    .select(['orgs.name as org_name', 'projects.name as project_name']);
  if (filter.org) {
    const org = await findOrg(ctx, filter.org);
    q = q.where('orgs.id', '=', org.id);
    const visible = visibleProjects(ctx.caller, org.id);
    if (visible !== 'all') q = q.where('projects.id', 'in', visible.size ? [...visible] : ['']);
  } else if (!ctx.caller.operator) {
    const { wideOrgs, projects: projectIds } = grantScope(ctx.caller);
    if (!wideOrgs.length && !projectIds.length) return { items: [], nextCursor: null };
    q = q.where((eb) =>
      eb.or([
        eb('orgs.id', 'in', wideOrgs.length ? wideOrgs : ['']),
        eb('projects.id', 'in', projectIds.length ? projectIds : ['']),
      ]),
    );
  }
  if (filter.pool) q = q.where('quotas.pool', '=', filter.pool);
  // Paged by org.project/pool, a unique key computed in a subquery so both dialects can filter on it.
  const ids = new Map<string, string>();
  const p = await page(ctx.db.selectFrom(q.as('q')).selectAll(), 'qkey', req, (r) => {
    ids.set(`${r.org_name}.${r.project_name}`, r.project_id);
    return quotaView(r, `${r.org_name}.${r.project_name}`);
  });
  return { ...p, items: await withUse(ctx, [...new Set(ids.values())], p.items) };
}

/** Adds current use (live attempts' GPUs) to quotas; kept out of the audited views, it is not state. */
async function withUse(
  ctx: Ctx,
  projectIds: readonly string[],
  quotas: readonly Omit<Quota, 'used' | 'borrowed'>[],
): Promise<Quota[]> {
  const use = await currentUse(ctx.db, projectIds);
  return quotas.map((q) => {
    const u = use.get(`${q.project}/${q.pool}`);
    const used = u?.used ?? 0;
    return { ...q, used, borrowed: borrowedOf(used, q.guaranteed) };
  });
}

function quotaView(r: QuotasTable, projectRef: string): Omit<Quota, 'used' | 'borrowed'> {
  return { project: projectRef, pool: r.pool, guaranteed: r.guaranteed, limit: r.gpu_limit, updatedAt: r.updated_at };
}
