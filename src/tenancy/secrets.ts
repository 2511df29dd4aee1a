// Tenant secrets: values a workload needs (API keys, tokens) kept sealed per org or per project.
// A project's secret shadows an org secret of the same name. Values go in (create/replace) and
// out only into a task's environment at launch (resolveTaskEnv); listings, audit entries and
// workload rows carry names, never values.
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError, forbidden, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { ExecError } from '../exec/types.js';
import { projectRole, roleRank } from '../policy/roles.js';
import type { Database, SecretsTable } from '../store/schema.js';
import { type WorkloadEnv, isSecretRef } from '../domain/env.js';
import { type Ctx, findOrg, findProject, hasRole, requireRole, write } from '../app/context.js';
import { type SecretBox, SecretOpenError, secretBoxFor } from '../app/secret-box.js';
import { requireTenantDataAccess } from '../app/tenant-data.js';

/** Values larger than this are not configuration; put them in storage. */
export const MAX_SECRET_BYTES = 64 * 1024;
/** Per org or project: listings return them all, without paging. */
export const MAX_SECRETS_PER_SCOPE = 500;

export type SecretScope = { readonly org: string } | { readonly project: string };

export interface SecretInfo {
  name: string;
  scope: 'org' | 'project';
  org: string;
  /** `org.project` for a project secret, null for an org secret. */
  project: string | null;
  /** In a project's listing: an org secret hidden by the project's own of that name. */
  shadowed: boolean;
  createdAt: string;
  updatedAt: string;
  createdBy: string;
  updatedBy: string;
}

// The HTTP app has no slot for the box yet, so the server attaches it to its database handle and
// the routes look it up there. A server without one refuses to store secrets.
interface ResolvedScope {
  readonly orgId: string;
  readonly orgName: string;
  readonly orgStatus: string;
  readonly orgResidency: string;
  /** '' for the org scope. */
  readonly projectId: string;
  readonly projectRef: string | null;
  readonly resource: string;
}

async function resolveScope(ctx: Ctx, scope: SecretScope): Promise<ResolvedScope> {
  if ('org' in scope) {
    const org = await findOrg(ctx, scope.org);
    return {
      orgId: org.id,
      orgName: org.name,
      orgStatus: org.status,
      orgResidency: org.residency,
      projectId: '',
      projectRef: null,
      resource: `orgs/${org.name}/secrets`,
    };
  }
  const { org, project } = await findProject(ctx, scope.project);
  const ref = `${org.name}.${project.name}`;
  return {
    orgId: org.id,
    orgName: org.name,
    orgStatus: org.status,
    orgResidency: org.residency,
    projectId: project.id,
    projectRef: ref,
    resource: `projects/${ref}/secrets`,
  };
}

function infoOf(r: SecretsTable, s: ResolvedScope, shadowed = false): SecretInfo {
  const isOrg = r.project_id === '';
  return {
    name: r.name,
    scope: isOrg ? 'org' : 'project',
    org: s.orgName,
    project: isOrg ? null : s.projectRef,
    shadowed,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    createdBy: r.created_by,
    updatedBy: r.updated_by,
  };
}

/** Org secrets: org-wide admins write. Project secrets: the project's admins (or org admins). */
function requireWriter(ctx: Ctx, s: ResolvedScope, action: string, resource: string): Promise<void> {
  const spec = { action, resource, orgId: s.orgId };
  const what = s.projectId ? 'managing project secrets' : 'managing org secrets';
  return requireRole(ctx, spec, 'admin', what, s.projectId || undefined);
}

/** Creates or replaces a secret; `created` tells which. The value is sealed before it is stored. */
export async function putSecret(
  ctx: Ctx,
  scope: SecretScope,
  name: string,
  value: string,
): Promise<{ secret: SecretInfo; created: boolean }> {
  const s = await resolveScope(ctx, scope);
  const resource = `${s.resource}/${name}`;
  await requireWriter(ctx, s, 'secret.put', resource);
  if (s.orgStatus !== 'active') throw new AppError('CONFLICT', `organization "${s.orgName}" is ${s.orgStatus}`);
  checkValue(value);
  // Looked up only now: a caller who may not see the scope learns nothing about the server.
  const box = secretBoxFor(ctx.db);
  return write(ctx, { action: 'secret.put', resource, orgId: s.orgId, projectId: s.projectId }, async (trx) => {
    const before = await findRow(trx, s.orgId, s.projectId, name);
    if (!before) await checkRoom(trx, s);
    const now = nowIso();
    const sealed = box.seal(value, { orgId: s.orgId, projectId: s.projectId, name });
    const row: SecretsTable = {
      id: before?.id ?? newId('sec'),
      org_id: s.orgId,
      project_id: s.projectId,
      name,
      key_id: sealed.keyId,
      nonce: sealed.nonce,
      ciphertext: sealed.ciphertext,
      created_at: before?.created_at ?? now,
      updated_at: now,
      created_by: before?.created_by ?? ctx.caller.principal,
      updated_by: ctx.caller.principal,
    };
    if (before) await trx.updateTable('secrets').set(row).where('id', '=', before.id).execute();
    else await trx.insertInto('secrets').values(row).execute();
    const secret = infoOf(row, s);
    // The audit digests these views: names and times only, so no digest can be matched to a value.
    return { result: { secret, created: !before }, before: before ? infoOf(before, s) : undefined, after: secret };
  });
}

export async function deleteSecret(ctx: Ctx, scope: SecretScope, name: string): Promise<void> {
  const s = await resolveScope(ctx, scope);
  const resource = `${s.resource}/${name}`;
  await requireWriter(ctx, s, 'secret.delete', resource);
  await write(ctx, { action: 'secret.delete', resource, orgId: s.orgId, projectId: s.projectId }, async (trx) => {
    const before = await findRow(trx, s.orgId, s.projectId, name);
    if (!before) throw notFound('secret', s.projectRef ? `${s.projectRef}/${name}` : `${s.orgName}/${name}`);
    await trx.deleteFrom('secrets').where('id', '=', before.id).execute();
    return { result: undefined, before: infoOf(before, s), after: null };
  });
}

/**
 * Names, never values. An org's listing: its org secrets. A project's listing: the project's own
 * and the org's, which its workloads may use too (marked `shadowed` where the project's wins).
 */
export async function listSecrets(ctx: Ctx, scope: SecretScope): Promise<{ items: SecretInfo[]; nextCursor: null }> {
  const s = await resolveScope(ctx, scope);
  // Values are never readable; names are what an operator outside the org could read: only under
  // break-glass (one audit entry per listing).
  const access = await requireTenantDataAccess(
    ctx,
    { id: s.orgId, name: s.orgName, residency: s.orgResidency },
    'secrets',
    s.resource,
  );
  if (access.via === 'roles' && !mayList(ctx, s)) throw forbidden('listing secrets');
  const rows = await ctx.db
    .selectFrom('secrets')
    .selectAll()
    .where('org_id', '=', s.orgId)
    .where('project_id', 'in', s.projectId ? [s.projectId, ''] : [''])
    .orderBy('name')
    .orderBy('project_id', 'desc')
    .execute();
  const own = new Set(rows.filter((r) => r.project_id !== '').map((r) => r.name));
  const items = rows.map((r) => infoOf(r, s, r.project_id === '' && own.has(r.name)));
  return { items, nextCursor: null };
}

/** Members may see names: of a project they are members of, or of an org they are a member in. */
function mayList(ctx: Ctx, s: ResolvedScope): boolean {
  if (s.projectId) return hasRole(ctx, s.orgId, 'member', s.projectId);
  if (hasRole(ctx, s.orgId, 'member')) return true;
  // A project member's workloads may use org secrets, so it may know their names.
  return ctx.caller.grants.some(
    (g) =>
      g.orgId === s.orgId &&
      g.projectId &&
      roleRank(projectRole(ctx.caller, s.orgId, g.projectId)) >= roleRank('member'),
  );
}

function checkValue(value: string): void {
  if (value.length === 0)
    throw new AppError('INVALID_ARGUMENT', 'a secret value must not be empty', { field: 'value' });
  if (value.includes('\0'))
    throw new AppError('INVALID_ARGUMENT', 'a secret value must not contain NUL characters', { field: 'value' });
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_BYTES) {
    throw new AppError('PAYLOAD_TOO_LARGE', `a secret value may be at most ${MAX_SECRET_BYTES / 1024} KiB`, {
      field: 'value',
      bytes,
    });
  }
}

async function checkRoom(trx: Trx, s: ResolvedScope): Promise<void> {
  const row = await trx
    .selectFrom('secrets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('org_id', '=', s.orgId)
    .where('project_id', '=', s.projectId)
    .executeTakeFirstOrThrow();
  if (Number(row.n) >= MAX_SECRETS_PER_SCOPE) {
    throw new AppError('UNPROCESSABLE', `at most ${MAX_SECRETS_PER_SCOPE} secrets per org or project`);
  }
}

function findRow(db: Kysely<Database> | Trx, orgId: string, projectId: string, name: string) {
  return db
    .selectFrom('secrets')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('project_id', '=', projectId)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** For each name, the row a workload of the project gets: the project's own, else the org's. */
async function effectiveRows(
  db: Kysely<Database> | Trx,
  orgId: string,
  projectId: string,
  names: readonly string[],
): Promise<Map<string, SecretsTable>> {
  const out = new Map<string, SecretsTable>();
  if (names.length === 0) return out;
  const rows = await db
    .selectFrom('secrets')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('project_id', 'in', [projectId, ''])
    .where('name', 'in', [...new Set(names)])
    .execute();
  for (const r of rows) if (r.project_id !== '' || !out.has(r.name)) out.set(r.name, r);
  return out;
}

/** The referenced names that neither the project nor its org holds (checked at submit). */
export async function missingSecrets(
  db: Kysely<Database> | Trx,
  orgId: string,
  projectId: string,
  names: readonly string[],
): Promise<string[]> {
  const found = await effectiveRows(db, orgId, projectId, names);
  return [...new Set(names)].filter((n) => !found.has(n));
}

/** A task cannot start because a secret it refers to is gone or does not open. Not retryable. */
export class SecretUnavailableError extends ExecError {
  constructor(message: string) {
    super(message, false);
    this.name = 'SecretUnavailableError';
  }
}

/**
 * A task's environment: literal values as they are, references replaced by the secret's value.
 * Throws SecretUnavailableError naming the secret (never a value) when one is gone or does not open.
 */
export async function resolveTaskEnv(
  db: Kysely<Database>,
  box: SecretBox,
  w: { readonly orgId: string; readonly projectId: string; readonly env: WorkloadEnv },
): Promise<Record<string, string>> {
  const entries = Object.entries(w.env);
  const names = entries.flatMap(([, v]) => (isSecretRef(v) ? [v.secret] : []));
  const rows = await effectiveRows(db, w.orgId, w.projectId, names);
  const out: Record<string, string> = {};
  for (const [variable, v] of entries) {
    if (!isSecretRef(v)) {
      out[variable] = v;
      continue;
    }
    const row = rows.get(v.secret);
    if (!row) {
      throw new SecretUnavailableError(
        `secret "${v.secret}" (env.${variable}) no longer exists in the project or its org; create it again and resubmit`,
      );
    }
    try {
      // The location comes from the row itself: a row moved elsewhere fails here, by its AAD.
      out[variable] = box.open(
        { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext },
        { orgId: row.org_id, projectId: row.project_id, name: row.name },
      );
    } catch (err) {
      if (!(err instanceof SecretOpenError)) throw err;
      throw new SecretUnavailableError(`secret "${v.secret}" (env.${variable}) cannot be opened: ${err.message}`);
    }
  }
  return out;
}
