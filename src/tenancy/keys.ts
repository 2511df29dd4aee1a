// API keys: minted here, shown once, stored as a hash. A key acts for one principal, scoped to one
// org (optionally one project of it); only platform keys of operators are unscoped.
import { AppError, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import {
  type Caller,
  type Grant,
  type OrgRole,
  narrowGrants,
  orgRole,
  projectRole,
  roleRank,
} from '../policy/roles.js';
import { type Page, type PageRequest, page } from '../store/paging.js';
import type { ApiKeysTable, OrgsTable } from '../store/schema.js';
import { mintKey } from './api-key.js';
import { principalRef } from './authn.js';
import { type Ctx, deny, findOrg, hasRole, requireOperator, requireOperatorTo, write } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import { type PrincipalSelector, resolvePrincipal } from './members.js';

export const DEFAULT_KEY_TTL_DAYS = 90;
const MAX_KEY_TTL_DAYS = 3650;

export interface ApiKey {
  id: string;
  prefix: string;
  name: string;
  principal: string;
  org: string | null;
  project: string | null;
  state: 'active' | 'expired' | 'revoked';
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** The secret token. Shown once; fabrik keeps only its hash. */
  token: string;
}

/**
 * What an Idempotency-Key replay of a key creation answers: the key without its token, which was
 * shown once. write() stores its result as the replay, so that result is this, and the token
 * travels to the one first response outside of it: no plaintext token is ever stored.
 */
export interface ReplayedApiKey extends ApiKey {
  token: null;
  tokenShownOnce: true;
}

function replayOf(view: ApiKey): ReplayedApiKey {
  return { ...view, token: null, tokenShownOnce: true };
}

/** The first grant of `target` (within the key's scope) that outranks what the caller holds there. */
function escalation(caller: Caller, orgId: string, target: readonly Grant[], projectId: string): Grant | undefined {
  return narrowGrants(target, orgId, projectId).find((g) => {
    const held = g.projectId ? projectRole(caller, orgId, g.projectId) : orgRole(caller, orgId);
    return roleRank(g.role) > roleRank(held);
  });
}

async function grantsOf(db: Ctx['db'] | Trx, principalId: string, orgId: string): Promise<Grant[]> {
  const rows = await db
    .selectFrom('memberships')
    .select(['project_id', 'role'])
    .where('principal_id', '=', principalId)
    .where('org_id', '=', orgId)
    .execute();
  return rows.map((r) => ({ orgId, projectId: r.project_id, role: r.role as OrgRole }));
}

function keyState(r: ApiKeysTable, now = Date.now()): ApiKey['state'] {
  if (r.revoked_at) return 'revoked';
  if (r.expires_at && Date.parse(r.expires_at) <= now) return 'expired';
  return 'active';
}

function expiry(input: { ttlDays?: number; expiresAt?: string }): string | null {
  if (input.expiresAt !== undefined) {
    const t = Date.parse(input.expiresAt);
    if (Number.isNaN(t))
      throw new AppError('VALIDATION_FAILED', 'expiresAt: not an RFC 3339 time', { field: 'expiresAt' });
    if (t <= Date.now())
      throw new AppError('VALIDATION_FAILED', 'expiresAt: must be in the future', { field: 'expiresAt' });
    if (t > Date.now() + MAX_KEY_TTL_DAYS * 86_400_000)
      throw new AppError('VALIDATION_FAILED', `expiresAt: at most ${MAX_KEY_TTL_DAYS} days ahead`, {
        field: 'expiresAt',
      });
    return new Date(t).toISOString();
  }
  const days = input.ttlDays ?? DEFAULT_KEY_TTL_DAYS;
  return new Date(Date.now() + days * 86_400_000).toISOString();
}

export async function createKey(
  ctx: Ctx,
  orgName: string,
  input: PrincipalSelector & { name: string; project?: string; ttlDays?: number; expiresAt?: string },
): Promise<CreatedApiKey> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'apikey.create', resource: `orgs/${orgName}/keys/${input.name}`, orgId: org.id };
  const expiresAt = expiry(input);
  // Authorise before the transaction: a denial writes its own audit entry.
  const principal =
    input.user === undefined && input.serviceAccount === undefined
      ? await ctx.db
          .selectFrom('principals')
          .selectAll()
          .where('id', '=', ctx.caller.principalId)
          .executeTakeFirstOrThrow()
      : await resolvePrincipal(ctx.db, org, input);
  // Users are platform-wide: one without a role in this org does not exist for it, so nobody
  // learns which names exist in other orgs.
  if (input.user !== undefined) {
    const member = await ctx.db
      .selectFrom('memberships')
      .select('id')
      .where('principal_id', '=', principal.id)
      .where('org_id', '=', org.id)
      .executeTakeFirst();
    if (!member) throw notFound('user', input.user);
  }
  let projectId = '';
  if (input.project) {
    const p = await ctx.db
      .selectFrom('projects')
      .select('id')
      .where('org_id', '=', org.id)
      .where('name', '=', input.project)
      .executeTakeFirst();
    // A project the caller holds no role on does not exist for it (as in findProject).
    if (!p || !(ctx.caller.operator || projectRole(ctx.caller, org.id, p.id)))
      throw notFound('project', `${orgName}.${input.project}`);
    projectId = p.id;
  }
  // Keys for oneself need any role within the caller's own scope; keys for others need admin.
  const forSelf = principal.id === ctx.caller.principalId;
  if (!forSelf && !hasRole(ctx, org.id, 'admin')) await deny(ctx, spec, 'creating keys for other principals');
  if (
    forSelf &&
    !ctx.caller.operator &&
    !(projectId ? projectRole(ctx.caller, org.id, projectId) : orgRole(ctx.caller, org.id))
  ) {
    await deny(ctx, spec, 'creating a key beyond your own scope');
  }
  // A key acts with its principal's roles: nobody but an operator mints one that could do more
  // than the minting key itself (an admin's key for an owner would make the admin an owner).
  const who = principalRef(principal.kind, principal.name, org.name);
  const over = ctx.caller.operator
    ? undefined
    : escalation(ctx.caller, org.id, await grantsOf(ctx.db, principal.id, org.id), projectId);
  if (over) await deny(ctx, spec, outranks(ctx, org, who, over, input.project));
  let token = '';
  const created = await write(ctx, spec, async (trx) => {
    const grants = await grantsOf(trx, principal.id, org.id);
    // Again inside the transaction, in case a role changed since the check above.
    const raced = ctx.caller.operator ? undefined : escalation(ctx.caller, org.id, grants, projectId);
    if (raced)
      throw new AppError('FORBIDDEN', `your role does not allow ${outranks(ctx, org, who, raced, input.project)}`);
    if (!grants.some((g) => g.projectId === '' || g.projectId === projectId)) {
      throw new AppError(
        'UNPROCESSABLE',
        `${who} has no role in ${input.project ? `project ${input.project}` : `organization ${orgName}`}; add it as a member first`,
      );
    }
    const minted = mintKey();
    const row: ApiKeysTable = {
      id: newId('key'),
      prefix: minted.prefix,
      secret_hash: minted.secretHash,
      name: input.name,
      principal_id: principal.id,
      org_id: org.id,
      project_id: projectId,
      created_at: nowIso(),
      created_by: ctx.caller.principal,
      expires_at: expiresAt,
      revoked_at: null,
      last_used_at: null,
    };
    await trx.insertInto('api_keys').values(row).execute();
    const view = keyView(row, who, org.name, input.project ?? null);
    token = minted.token;
    // The audit digest covers the key's metadata, never its secret; the entry names whom it acts for.
    return { result: replayOf(view), after: view, resource: `orgs/${orgName}/keys/${row.prefix}`, subject: who };
  });
  return shownOnce(created, token);
}

/** The first response: the stored replay form with the token in place. */
function shownOnce(replay: ReplayedApiKey, token: string): CreatedApiKey {
  const { tokenShownOnce: _, ...view } = replay;
  return { ...view, token };
}

function outranks(ctx: Ctx, org: OrgsTable, who: string, g: Grant, project?: string): string {
  // A project-scoped key's grants all name its project; an org key's may name others (by id).
  const where = g.projectId ? `on project ${project ?? g.projectId}` : `in ${org.name}`;
  const mine = g.projectId ? projectRole(ctx.caller, org.id, g.projectId) : orgRole(ctx.caller, org.id);
  return `creating a key for ${who}, who holds "${g.role}" ${where} (more than your "${mine ?? 'none'}")`;
}

/** Platform keys (unscoped) for operator users. */
export async function createPlatformKey(
  ctx: Ctx,
  input: { name: string; user: string; ttlDays?: number; expiresAt?: string },
): Promise<CreatedApiKey> {
  const spec = { action: 'apikey.create', resource: `keys/${input.name}`, orgId: '' };
  await requireOperatorTo(ctx, spec, 'create platform keys');
  const expiresAt = expiry(input);
  let token = '';
  const created = await write(ctx, spec, async (trx) => {
    const user = await trx
      .selectFrom('principals')
      .selectAll()
      .where('kind', '=', 'user')
      .where('name', '=', input.user)
      .executeTakeFirst();
    if (!user) throw notFound('user', input.user);
    if (user.platform_role !== 'operator') {
      throw new AppError(
        'UNPROCESSABLE',
        `user "${input.user}" is not an operator; platform keys are for operators only`,
      );
    }
    const minted = mintKey();
    const row: ApiKeysTable = {
      id: newId('key'),
      prefix: minted.prefix,
      secret_hash: minted.secretHash,
      name: input.name,
      principal_id: user.id,
      org_id: '',
      project_id: '',
      created_at: nowIso(),
      created_by: ctx.caller.principal,
      expires_at: expiresAt,
      revoked_at: null,
      last_used_at: null,
    };
    await trx.insertInto('api_keys').values(row).execute();
    const view = keyView(row, `user:${user.name}`, null, null);
    token = minted.token;
    return { result: replayOf(view), after: view, resource: `keys/${row.prefix}`, subject: view.principal };
  });
  return shownOnce(created, token);
}

export async function listKeys(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<ApiKey>> {
  const org = await findOrg(ctx, orgName);
  let q = keyQuery(ctx).where('api_keys.org_id', '=', org.id);
  // Admins see every key of the org; everyone else only their own.
  if (!hasRole(ctx, org.id, 'admin')) q = q.where('api_keys.principal_id', '=', ctx.caller.principalId);
  return page(q, 'api_keys.id', req, (r) =>
    keyView(r, principalRef(r.p_kind, r.p_name, org.name), org.name, r.project_name ?? null),
  );
}

export async function listPlatformKeys(ctx: Ctx, req: PageRequest): Promise<Page<ApiKey>> {
  requireOperator(ctx, 'list platform keys');
  const q = keyQuery(ctx).where('api_keys.org_id', '=', '');
  return page(q, 'api_keys.id', req, (r) => keyView(r, principalRef(r.p_kind, r.p_name, ''), null, null));
}

function keyQuery(ctx: Ctx) {
  return ctx.db
    .selectFrom('api_keys')
    .innerJoin('principals', 'principals.id', 'api_keys.principal_id')
    .leftJoin('projects', 'projects.id', 'api_keys.project_id')
    .selectAll('api_keys')
    .select(['principals.kind as p_kind', 'principals.name as p_name', 'projects.name as project_name']);
}

/** Revokes a key by id or prefix. Admins revoke any key of the org; others only their own. */
export async function revokeKey(ctx: Ctx, orgName: string, ref: string): Promise<ApiKey> {
  const org = await findOrg(ctx, orgName);
  return revoke(ctx, org, ref);
}

export async function revokePlatformKey(ctx: Ctx, ref: string): Promise<ApiKey> {
  await requireOperatorTo(ctx, { action: 'apikey.revoke', resource: `keys/${ref}`, orgId: '' }, 'revoke platform keys');
  return revoke(ctx, null, ref);
}

async function revoke(ctx: Ctx, org: OrgsTable | null, ref: string): Promise<ApiKey> {
  const orgId = org?.id ?? '';
  const row = await keyQuery(ctx)
    .where('api_keys.org_id', '=', orgId)
    .where((eb) => eb.or([eb('api_keys.id', '=', ref), eb('api_keys.prefix', '=', ref)]))
    .executeTakeFirst();
  const spec = { action: 'apikey.revoke', resource: `${org ? `orgs/${org.name}/` : ''}keys/${ref}`, orgId };
  if (!row) throw notFound('API key', ref);
  if (org && row.principal_id !== ctx.caller.principalId && !hasRole(ctx, org.id, 'admin')) {
    // Others' keys are invisible to non-admins in listings, so they are not found here either.
    throw notFound('API key', ref);
  }
  if (row.revoked_at) throw new AppError('CONFLICT', `API key ${row.prefix} is already revoked`);
  const result = await write(ctx, spec, async (trx) => {
    const revokedAt = nowIso();
    await trx.updateTable('api_keys').set({ revoked_at: revokedAt }).where('id', '=', row.id).execute();
    const who = principalRef(row.p_kind, row.p_name, org?.name ?? '');
    const before = keyView(row, who, org?.name ?? null, row.project_name ?? null);
    const after = keyView({ ...row, revoked_at: revokedAt }, who, org?.name ?? null, row.project_name ?? null);
    return { result: after, before, after, subject: who };
  });
  ctx.onKeyRevoked?.(row.prefix);
  return result;
}

function keyView(r: ApiKeysTable, principal: string, org: string | null, project: string | null): ApiKey {
  return {
    id: r.id,
    prefix: r.prefix,
    name: r.name,
    principal,
    org,
    project,
    state: keyState(r),
    createdAt: r.created_at,
    createdBy: r.created_by,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  };
}
