// People and service accounts, and the roles they hold in orgs and projects.
// Users are platform-wide (one person may work for several orgs); service accounts belong to one org.
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError, alreadyExists, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { type OrgRole, orgRole, roleRank } from '../policy/roles.js';
import { type Page, type PageRequest, page } from '../store/paging.js';
import type { Database, OrgsTable, PrincipalsTable } from '../store/schema.js';
import { principalRef } from './authn.js';
import { type Ctx, deny, findOrg, requireOperator, requireOperatorTo, requireRole, write } from '../app/context.js';

export interface Member {
  principal: string;
  kind: 'user' | 'service_account';
  name: string;
  role: string;
  /** Project name for a project-scoped grant; null for an org-wide role. */
  project: string | null;
  createdAt: string;
}

export interface User {
  id: string;
  name: string;
  operator: boolean;
  createdAt: string;
}

export interface ServiceAccount {
  id: string;
  org: string;
  name: string;
  principal: string;
  createdAt: string;
}

export interface PrincipalSelector {
  user?: string;
  serviceAccount?: string;
}

/** Finds the principal named by a selector inside an org's reach; users may be created on demand. */
export async function resolvePrincipal(
  db: Kysely<Database> | Trx,
  org: OrgsTable,
  sel: PrincipalSelector,
  createUser = false,
): Promise<PrincipalsTable> {
  if ((sel.user === undefined) === (sel.serviceAccount === undefined)) {
    throw new AppError('VALIDATION_FAILED', 'name exactly one of "user" or "serviceAccount"');
  }
  if (sel.serviceAccount !== undefined) {
    const sa = await db
      .selectFrom('principals')
      .selectAll()
      .where('kind', '=', 'service_account')
      .where('org_id', '=', org.id)
      .where('name', '=', sel.serviceAccount)
      .executeTakeFirst();
    if (!sa) throw notFound('service account', sel.serviceAccount);
    return sa;
  }
  const name = sel.user!;
  const user = await db
    .selectFrom('principals')
    .selectAll()
    .where('kind', '=', 'user')
    .where('org_id', '=', '')
    .where('name', '=', name)
    .executeTakeFirst();
  if (user) return user;
  if (!createUser) throw notFound('user', name);
  // Inviting a person by name creates their platform identity; whether it existed stays invisible.
  const row: PrincipalsTable = {
    id: newId('usr'),
    kind: 'user',
    name,
    org_id: '',
    platform_role: '',
    created_at: nowIso(),
  };
  await db.insertInto('principals').values(row).execute();
  return row;
}

/** Only an owner may hand out `owner`; nobody hands out more than they hold. */
async function requireMayGrant(
  ctx: Ctx,
  org: OrgsTable,
  spec: { action: string; resource: string; orgId: string },
  role: OrgRole,
) {
  await requireRole(ctx, spec, 'admin', 'managing members');
  if (!ctx.caller.operator && roleRank(role) > roleRank(orgRole(ctx.caller, org.id))) {
    await deny(ctx, spec, `granting the role "${role}"`);
  }
}

async function projectIdByName(db: Kysely<Database> | Trx, org: OrgsTable, project?: string): Promise<string> {
  if (!project) return '';
  const p = await db
    .selectFrom('projects')
    .select('id')
    .where('org_id', '=', org.id)
    .where('name', '=', project)
    .executeTakeFirst();
  if (!p) throw notFound('project', `${org.name}.${project}`);
  return p.id;
}

export async function addMember(
  ctx: Ctx,
  orgName: string,
  input: PrincipalSelector & { role: OrgRole; project?: string },
): Promise<Member> {
  const org = await findOrg(ctx, orgName);
  const who = input.user ? `user:${input.user}` : `serviceaccount:${input.serviceAccount}`;
  const spec = { action: 'member.add', resource: `orgs/${orgName}/members/${who}`, orgId: org.id };
  await requireMayGrant(ctx, org, spec, input.role);
  return write(ctx, spec, async (trx) => {
    const principal = await resolvePrincipal(trx, org, input, true);
    const projectId = await projectIdByName(trx, org, input.project);
    const exists = await trx
      .selectFrom('memberships')
      .select('id')
      .where('principal_id', '=', principal.id)
      .where('org_id', '=', org.id)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (exists) throw alreadyExists('membership', input.project ? `${who} in project ${input.project}` : who);
    const created_at = nowIso();
    await trx
      .insertInto('memberships')
      .values({
        id: newId('mbr'),
        principal_id: principal.id,
        org_id: org.id,
        project_id: projectId,
        role: input.role,
        created_at,
      })
      .execute();
    const member = memberView(principal, org, input.role, input.project ?? null, created_at);
    return { result: member, after: member };
  });
}

export async function listMembers(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<Member>> {
  const org = await findOrg(ctx, orgName);
  if (!ctx.caller.operator && !orgRole(ctx.caller, org.id))
    throw new AppError('FORBIDDEN', 'listing members needs an org-wide role');
  const q = ctx.db
    .selectFrom('memberships')
    .innerJoin('principals', 'principals.id', 'memberships.principal_id')
    .leftJoin('projects', 'projects.id', 'memberships.project_id')
    .select([
      'memberships.id as id',
      'memberships.role',
      'memberships.created_at',
      'principals.kind',
      'principals.name',
      'principals.org_id as principal_org',
      'projects.name as project_name',
    ])
    .where('memberships.org_id', '=', org.id);
  return page(q, 'memberships.id', req, (r) => ({
    principal: principalRef(r.kind, r.name, org.name),
    kind: r.kind as Member['kind'],
    name: r.name,
    role: r.role,
    project: r.project_name ?? null,
    createdAt: r.created_at,
  }));
}

export async function removeMember(
  ctx: Ctx,
  orgName: string,
  sel: PrincipalSelector & { project?: string },
): Promise<void> {
  const org = await findOrg(ctx, orgName);
  const who = sel.user ? `user:${sel.user}` : `serviceaccount:${sel.serviceAccount}`;
  const spec = { action: 'member.remove', resource: `orgs/${orgName}/members/${who}`, orgId: org.id };
  await requireRole(ctx, spec, 'admin', 'managing members');
  await write(ctx, spec, async (trx) => {
    // Users are platform-wide: an unknown name and one without a role here read the same, so that
    // nobody learns which names exist in other orgs.
    const principal = await resolvePrincipal(trx, org, sel).catch((err: unknown) => {
      throw err instanceof AppError && err.code === 'NOT_FOUND' ? notFound('membership', who) : err;
    });
    const projectId = await projectIdByName(trx, org, sel.project);
    const m = await trx
      .selectFrom('memberships')
      .selectAll()
      .where('principal_id', '=', principal.id)
      .where('org_id', '=', org.id)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (!m) throw notFound('membership', who);
    if (m.role === 'owner' && !ctx.caller.operator && orgRole(ctx.caller, org.id) !== 'owner') {
      throw new AppError('FORBIDDEN', 'only an owner may remove an owner');
    }
    if (m.role === 'owner' && projectId === '') {
      const owners = await trx
        .selectFrom('memberships')
        .select('id')
        .where('org_id', '=', org.id)
        .where('project_id', '=', '')
        .where('role', '=', 'owner')
        .execute();
      if (owners.length <= 1)
        throw new AppError('CONFLICT', `${who} is the last owner of "${orgName}"; add another owner first`);
    }
    await trx.deleteFrom('memberships').where('id', '=', m.id).execute();
    return {
      result: undefined,
      before: memberView(principal, org, m.role, sel.project ?? null, m.created_at),
      after: null,
    };
  });
}

function memberView(
  p: PrincipalsTable,
  org: OrgsTable,
  role: string,
  project: string | null,
  createdAt: string,
): Member {
  return {
    principal: principalRef(p.kind, p.name, org.name),
    kind: p.kind as Member['kind'],
    name: p.name,
    role,
    project,
    createdAt,
  };
}

export async function createServiceAccount(
  ctx: Ctx,
  orgName: string,
  input: { name: string; role: OrgRole; project?: string },
): Promise<ServiceAccount> {
  const org = await findOrg(ctx, orgName);
  const spec = {
    action: 'serviceaccount.create',
    resource: `orgs/${orgName}/serviceaccounts/${input.name}`,
    orgId: org.id,
  };
  await requireMayGrant(ctx, org, spec, input.role);
  return write(ctx, spec, async (trx) => {
    const exists = await trx
      .selectFrom('principals')
      .select('id')
      .where('kind', '=', 'service_account')
      .where('org_id', '=', org.id)
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (exists) throw alreadyExists('service account', input.name);
    const projectId = await projectIdByName(trx, org, input.project);
    const row: PrincipalsTable = {
      id: newId('sa'),
      kind: 'service_account',
      name: input.name,
      org_id: org.id,
      platform_role: '',
      created_at: nowIso(),
    };
    await trx.insertInto('principals').values(row).execute();
    await trx
      .insertInto('memberships')
      .values({
        id: newId('mbr'),
        principal_id: row.id,
        org_id: org.id,
        project_id: projectId,
        role: input.role,
        created_at: row.created_at,
      })
      .execute();
    const sa = saView(row, org);
    return { result: sa, after: { ...sa, role: input.role, project: input.project ?? null } };
  });
}

export async function listServiceAccounts(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<ServiceAccount>> {
  const org = await findOrg(ctx, orgName);
  if (!ctx.caller.operator && !orgRole(ctx.caller, org.id))
    throw new AppError('FORBIDDEN', 'listing service accounts needs an org-wide role');
  const q = ctx.db
    .selectFrom('principals')
    .selectAll()
    .where('kind', '=', 'service_account')
    .where('org_id', '=', org.id);
  return page(q, 'name', req, (r) => saView(r, org));
}

function saView(r: PrincipalsTable, org: OrgsTable): ServiceAccount {
  return {
    id: r.id,
    org: org.name,
    name: r.name,
    principal: principalRef(r.kind, r.name, org.name),
    createdAt: r.created_at,
  };
}

export async function createUser(ctx: Ctx, input: { name: string; operator?: boolean }): Promise<User> {
  const spec = { action: 'user.create', resource: `users/${input.name}`, orgId: '' };
  await requireOperatorTo(ctx, spec, 'create users');
  return write(ctx, spec, async (trx) => {
    const exists = await trx
      .selectFrom('principals')
      .select('id')
      .where('kind', '=', 'user')
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (exists) throw alreadyExists('user', input.name);
    const row: PrincipalsTable = {
      id: newId('usr'),
      kind: 'user',
      name: input.name,
      org_id: '',
      platform_role: input.operator ? 'operator' : '',
      created_at: nowIso(),
    };
    await trx.insertInto('principals').values(row).execute();
    return { result: userView(row), after: userView(row) };
  });
}

export async function listUsers(ctx: Ctx, req: PageRequest): Promise<Page<User>> {
  requireOperator(ctx, 'list users');
  return page(ctx.db.selectFrom('principals').selectAll().where('kind', '=', 'user'), 'name', req, userView);
}

function userView(r: PrincipalsTable): User {
  return { id: r.id, name: r.name, operator: r.platform_role === 'operator', createdAt: r.created_at };
}
