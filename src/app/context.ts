// What every service call carries: the database, who is calling, and for which request.
// Services authorise and validate; the HTTP routes and CLI only adapt.
import type { Kysely } from 'kysely';
import {
  type Change,
  type IdempotencyRecord,
  type MutationSpec,
  type Trx,
  mutate,
  recordDenied,
} from '../audit/journal.js';
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
  /** For the control loops' own service calls: the lease check of src/audit/journal.ts ActorContext. */
  readonly fence?: (trx: Trx) => Promise<void>;
}

/** Runs a mutation through the audited path. */
export function write<T>(ctx: Ctx, spec: MutationSpec, fn: (trx: Trx) => Promise<Change<T>>): Promise<T> {
  return mutate(
    ctx.db,
    { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId, fence: ctx.fence },
    spec,
    fn,
    ctx.idempotency,
  );
}

/** Refuses with 403 and leaves a `denied` audit entry. Only for callers who may see the resource. */
export async function deny(ctx: Ctx, spec: MutationSpec, what: string): Promise<never> {
  await recordDenied(
    ctx.db,
    { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId },
    spec,
  );
  throw new AppError('FORBIDDEN', `your role does not allow ${what}`, { action: spec.action });
}

/** For reads: only operators may. */
export function requireOperator(ctx: Ctx, what: string): void {
  if (!ctx.caller.operator) throw new AppError('FORBIDDEN', `only platform operators may ${what}`);
}

/** For mutations: only operators may, and a refusal is on the audit record. */
export function requireOperatorTo(ctx: Ctx, spec: MutationSpec, what: string): Promise<void> {
  return authorize(ctx, spec, { role: 'operator', what });
}

/** Who may do an action: platform operators only, or at least `role` on the org (or on one project). */
export type Permission =
  | { readonly role: 'operator'; readonly what: string }
  | { readonly role: OrgRole; readonly what: string; readonly projectId?: string };

/**
 * The one authorization check for mutations: allowed, or 403 with a `denied` audit entry (bounded
 * per key, see recordDenied). Only for callers who may see the resource (others get 404 earlier).
 */
export async function authorize(ctx: Ctx, spec: MutationSpec, p: Permission): Promise<void> {
  if (ctx.caller.operator) return;
  if (p.role === 'operator') {
    await recordDenied(
      ctx.db,
      { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId },
      spec,
    );
    throw new AppError('FORBIDDEN', `only platform operators may ${p.what}`, { action: spec.action });
  }
  if (!hasRole(ctx, spec.orgId, p.role, p.projectId)) await deny(ctx, spec, p.what);
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
  // One query for both rows: this lookup sits on the path of most tenant requests.
  const base = db
    .selectFrom('projects')
    .innerJoin('orgs', 'orgs.id', 'projects.org_id')
    .selectAll('projects')
    .select([
      'orgs.name as o_name',
      'orgs.display_name as o_display_name',
      'orgs.residency as o_residency',
      'orgs.status as o_status',
      'orgs.created_at as o_created_at',
      'orgs.updated_at as o_updated_at',
    ]);
  const dot = ref.indexOf('.');
  const row =
    dot > 0
      ? await base
          .where('orgs.name', '=', ref.slice(0, dot))
          .where('projects.name', '=', ref.slice(dot + 1))
          .executeTakeFirst()
      : ref.startsWith('prj_')
        ? await base.where('projects.id', '=', ref).executeTakeFirst()
        : undefined;
  if (!row || !(ctx.caller.operator || projectRole(ctx.caller, row.org_id, row.id))) throw notFound('project', ref);
  const { o_name, o_display_name, o_residency, o_status, o_created_at, o_updated_at, ...project } = row;
  const org: OrgsTable = {
    id: row.org_id,
    name: o_name,
    display_name: o_display_name,
    residency: o_residency,
    status: o_status,
    created_at: o_created_at,
    updated_at: o_updated_at,
  };
  return { org, project };
}

/** Whether the caller holds at least `needed` on the org (org-wide) or on one project of it. */
export function hasRole(ctx: Ctx, orgId: string, needed: OrgRole, projectId?: string): boolean {
  if (ctx.caller.operator) return true;
  const held = projectId ? projectRole(ctx.caller, orgId, projectId) : orgRole(ctx.caller, orgId);
  return roleRank(held) >= roleRank(needed);
}

export function requireRole(
  ctx: Ctx,
  spec: MutationSpec,
  needed: OrgRole,
  what: string,
  projectId?: string,
): Promise<void> {
  return authorize(ctx, spec, { role: needed, what, projectId });
}
