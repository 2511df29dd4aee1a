// Organizations (tenants): who they are, where their data must stay, whether they are active.
import { AppError, alreadyExists, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { canSeeOrg } from '../policy/roles.js';
import { type Page, type PageRequest, page } from '../store/paging.js';
import type { OrgsTable } from '../store/schema.js';
import { type Ctx, deny, findOrg, requireOperatorTo, requireRole, write } from '../app/context.js';

export const RESIDENCIES = ['de', 'eu'] as const;
export type Residency = (typeof RESIDENCIES)[number];
export const ORG_STATUSES = ['active', 'suspended'] as const;

export interface Org {
  id: string;
  name: string;
  displayName: string;
  residency: string;
  status: string;
  createdAt: string;
  updatedAt: string;
}

export function orgView(r: OrgsTable): Org {
  return {
    id: r.id,
    name: r.name,
    displayName: r.display_name,
    residency: r.residency,
    status: r.status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function createOrg(
  ctx: Ctx,
  input: { name: string; displayName?: string; residency: Residency },
): Promise<Org> {
  const spec = { action: 'org.create', resource: `orgs/${input.name}`, orgId: '' };
  await requireOperatorTo(ctx, spec, 'create organizations');
  return write(ctx, spec, async (trx) => {
    const exists = await trx.selectFrom('orgs').select('id').where('name', '=', input.name).executeTakeFirst();
    if (exists) throw alreadyExists('organization', input.name);
    const now = nowIso();
    const row: OrgsTable = {
      id: newId('org'),
      name: input.name,
      display_name: input.displayName ?? input.name,
      residency: input.residency,
      status: 'active',
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto('orgs').values(row).execute();
    const org = orgView(row);
    return { result: org, after: org };
  });
}

export async function listOrgs(ctx: Ctx, req: PageRequest): Promise<Page<Org>> {
  let q = ctx.db.selectFrom('orgs').selectAll();
  if (!ctx.caller.operator) {
    const ids = [...new Set(ctx.caller.grants.map((g) => g.orgId))];
    if (ids.length === 0) return { items: [], nextCursor: null };
    q = q.where('id', 'in', ids);
  }
  return page(q, 'name', req, orgView);
}

export async function getOrg(ctx: Ctx, name: string): Promise<Org> {
  return orgView(await findOrg(ctx, name));
}

export async function updateOrg(
  ctx: Ctx,
  name: string,
  patch: { displayName?: string; residency?: Residency; status?: 'active' | 'suspended' },
): Promise<Org> {
  const org = await findOrg(ctx, name);
  const spec = { action: 'org.update', resource: `orgs/${name}`, orgId: org.id };
  // Residency and status are contractual: only the operator changes them.
  if ((patch.residency !== undefined || patch.status !== undefined) && !ctx.caller.operator) {
    await deny(ctx, spec, 'changing residency or status (platform operators only)');
  }
  await requireRole(ctx, spec, 'owner', 'updating this organization');
  return write(ctx, spec, async (trx) => {
    const before = await trx.selectFrom('orgs').selectAll().where('id', '=', org.id).executeTakeFirstOrThrow();
    const next: OrgsTable = {
      ...before,
      display_name: patch.displayName ?? before.display_name,
      residency: patch.residency ?? before.residency,
      status: patch.status ?? before.status,
      updated_at: nowIso(),
    };
    await trx.updateTable('orgs').set(next).where('id', '=', org.id).execute();
    return { result: orgView(next), before: orgView(before), after: orgView(next) };
  });
}

/** Deletes an org that holds nothing any more (no projects, no service accounts, no keys). */
export async function deleteOrg(ctx: Ctx, name: string): Promise<void> {
  const org = await findOrg(ctx, name);
  const spec = { action: 'org.delete', resource: `orgs/${name}`, orgId: org.id };
  await requireOperatorTo(ctx, spec, 'delete organizations');
  await write(ctx, spec, async (trx) => {
    const project = await trx.selectFrom('projects').select('name').where('org_id', '=', org.id).executeTakeFirst();
    if (project)
      throw new AppError(
        'CONFLICT',
        `organization "${name}" still has projects (e.g. "${project.name}"); delete them first`,
      );
    const key = await trx
      .selectFrom('api_keys')
      .select('id')
      .where('org_id', '=', org.id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (key) throw new AppError('CONFLICT', `organization "${name}" still has active API keys; revoke them first`);
    await trx.deleteFrom('memberships').where('org_id', '=', org.id).execute();
    await trx.deleteFrom('api_keys').where('org_id', '=', org.id).execute();
    await trx.deleteFrom('secrets').where('org_id', '=', org.id).execute();
    // Its webhook subscriptions (and their secrets and deliveries) go with it.
    const hooks = trx.selectFrom('webhooks').select('id').where('org_id', '=', org.id);
    await trx.deleteFrom('webhook_deliveries').where('webhook_id', 'in', hooks).execute();
    await trx.deleteFrom('webhooks').where('org_id', '=', org.id).execute();
    await trx.deleteFrom('principals').where('org_id', '=', org.id).execute();
    const res = await trx.deleteFrom('orgs').where('id', '=', org.id).executeTakeFirst();
    if (Number(res.numDeletedRows) !== 1 || !canSeeOrg(ctx.caller, org.id)) throw notFound('organization', name);
    return { result: undefined, before: orgView(org), after: null };
  });
}
