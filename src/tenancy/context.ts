// What every service call carries: the database, who is calling, and for which request.
// Services authorise and validate; the HTTP routes and CLI only adapt.
import type { Kysely } from 'kysely';
import { type Change, type IdempotencyRecord, type MutationSpec, type Trx, mutate, recordDenied } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { type Caller, type OrgRole, canSeeOrg, orgRole, projectRole, roleRank } from '../policy/roles.js';
import type { Database, OrgsTable, ProjectsTable } from '../store/schema.js';

export interface Ctx {
  readonly db: Kysely<Database>;
  readonly caller: Caller;
  readonly requestId: string;
  /** Set on creating requests that carried an Idempotency-Key header. */
  readonly idempotency?: IdempotencyRecord;
  /** Called after a key is revoked so that the authenticator forgets it at once. */
  readonly onKeyRevoked?: (prefix: string) => void;
}

/** Runs a mutation through the audited path. */
export function write<T>(ctx: Ctx, spec: MutationSpec, fn: (trx: Trx) => Promise<Change<T>>): Promise<T> {
  return mutate(
    ctx.db,
    { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId },
    spec,
    fn,
    ctx.idempotency,
  );
}

/** Refuses with 403 and leaves a `denied` audit entry. Only for callers who may see the resource. */
export async function deny(ctx: Ctx, spec: MutationSpec, what: string): Promise<never> {
  await recordDenied(ctx.db, { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId }, spec);
  throw new AppError('FORBIDDEN', `your role does not allow ${what}`, { action: spec.action });
}

/** For reads: only operators may. */
export function requireOperator(ctx: Ctx, what: string): void {
  if (!ctx.caller.operator) throw new AppError('FORBIDDEN', `only platform operators may ${what}`);
}

/** For mutations: only operators may, and a refusal is on the audit record. */
export async function requireOperatorTo(ctx: Ctx, spec: MutationSpec, what: string): Promise<void> {
  if (ctx.caller.operator) return;
  await recordDenied(ctx.db, { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId }, spec);
  throw new AppError('FORBIDDEN', `only platform operators may ${what}`, { action: spec.action });
}

/** An org by name, or 404 when it does not exist or the caller may not know of it. */
export async function findOrg(ctx: Ctx, name: string, db: Kysely<Database> | Trx = ctx.db): Promise<OrgsTable> {
  const org = await db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();
  if (!org || !canSeeOrg(ctx.caller, org.id)) throw notFound('organization', name);
  return org;
}

/**
 * A project by reference: `org.project` (its qualified name; DNS labels have no dots) or its id.
 * 404 when it does not exist or the caller holds no role on it.
 */
export async function findProject(
  ctx: Ctx,
  ref: string,
  db: Kysely<Database> | Trx = ctx.db,
): Promise<{ org: OrgsTable; project: ProjectsTable }> {
  let row: (ProjectsTable & { org_name: string }) | undefined;
  const base = db
    .selectFrom('projects')
    .innerJoin('orgs', 'orgs.id', 'projects.org_id')
    .selectAll('projects')
    .select('orgs.name as org_name');
  const dot = ref.indexOf('.');
  if (dot > 0) {
    row = await base
      .where('orgs.name', '=', ref.slice(0, dot))
      .where('projects.name', '=', ref.slice(dot + 1))
      .executeTakeFirst();
  } else if (ref.startsWith('prj_')) {
    row = await base.where('projects.id', '=', ref).executeTakeFirst();
  }
  if (!row || !(ctx.caller.operator || projectRole(ctx.caller, row.org_id, row.id))) throw notFound('project', ref);
  const org = await db.selectFrom('orgs').selectAll().where('id', '=', row.org_id).executeTakeFirstOrThrow();
  const { org_name: _, ...project } = row;
  return { org, project };
}

/** Whether the caller holds at least `needed` on the org (org-wide) or on one project of it. */
export function hasRole(ctx: Ctx, orgId: string, needed: OrgRole, projectId?: string): boolean {
  if (ctx.caller.operator) return true;
  const held = projectId ? projectRole(ctx.caller, orgId, projectId) : orgRole(ctx.caller, orgId);
  return roleRank(held) >= roleRank(needed);
}

export async function requireRole(
  ctx: Ctx,
  spec: MutationSpec,
  needed: OrgRole,
  what: string,
  projectId?: string,
): Promise<void> {
  if (!hasRole(ctx, spec.orgId, needed, projectId)) await deny(ctx, spec, what);
}
