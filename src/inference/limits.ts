// Rate limits and budgets of inference (the `inference_limits` table): per project (requests and
// tokens per minute, tokens per calendar month) and per API key (requests and tokens per minute).
// 0 in the table is "no limit"; views show it as null. The gateway enforces them
// (./gateway/limits.ts); this module sets, shows and removes them.
import type { Kysely } from 'kysely';
import { type Ctx, findProject, requireRole, write } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import type { Database, InferenceLimitsTable, OrgsTable, ProjectsTable } from '../store/schema.js';
import { principalRef } from '../tenancy/authn.js';
import { monthStart, monthTokens } from './usage.js';

/** What PUT …/inference-limits sends; 0 removes that limit, an absent field keeps its value. */
export interface LimitsInput {
  readonly rpm?: number;
  readonly tpm?: number;
  /** Project only: tokens (in + out) per calendar month (UTC). */
  readonly monthlyTokens?: number;
  /** An API key of the project's org (its prefix or id): limits for that key instead of the project. */
  readonly key?: string;
}

/** Limits of one scope; null: no limit. */
export interface LimitView {
  readonly rpm: number | null;
  readonly tpm: number | null;
  readonly monthlyTokens: number | null;
  readonly updatedAt: string;
}

export interface KeyLimitView extends LimitView {
  readonly keyId: string;
  readonly keyPrefix: string;
  readonly keyName: string;
  readonly principal: string;
}

export interface InferenceLimitsView {
  /** `org.project` */
  readonly project: string;
  /** The project's limits; null when none are set. */
  readonly limits: LimitView | null;
  /** Per-key limits of the org's keys that may call this project. */
  readonly keys: KeyLimitView[];
  /** Tokens (in + out) the project used this calendar month (UTC), against monthlyTokens. */
  readonly monthTokens: number;
  readonly monthStart: string;
}

/** rpm and tpm are 32-bit integer columns; monthly budgets bigint (kept within exact doubles). */
export const MAX_PER_MINUTE = 2_147_483_647;
export const MAX_MONTHLY_TOKENS = 1_000_000_000_000_000;

const orNull = (n: number) => (n > 0 ? n : null);

function limitView(r: InferenceLimitsTable): LimitView {
  return { rpm: orNull(r.rpm), tpm: orNull(r.tpm), monthlyTokens: orNull(r.monthly_tokens), updatedAt: r.updated_at };
}

function invalid(path: string, message: string): AppError {
  return new AppError('INVALID_ARGUMENT', `${path}: ${message}`, { path });
}

function checkCount(path: string, v: number | undefined, max: number): void {
  if (v === undefined) return;
  if (!Number.isSafeInteger(v) || v < 0 || v > max)
    throw invalid(path, `must be a whole number from 0 (no limit) to ${max}`);
}

interface KeyRow {
  readonly id: string;
  readonly prefix: string;
  readonly name: string;
  readonly principal: string;
}

/**
 * A key of the project's org, by prefix or id, that may call the project (org-wide or scoped to
 * it). Another org's key, or one scoped to another project, is "not found".
 */
async function findKey(
  db: Kysely<Database> | Trx,
  org: OrgsTable,
  project: ProjectsTable,
  ref: string,
): Promise<KeyRow> {
  const row = await db
    .selectFrom('api_keys')
    .innerJoin('principals', 'principals.id', 'api_keys.principal_id')
    .select(['api_keys.id', 'api_keys.prefix', 'api_keys.name', 'principals.kind', 'principals.name as p_name'])
    .where('api_keys.org_id', '=', org.id)
    .where('api_keys.project_id', 'in', ['', project.id])
    .where((eb) => eb.or([eb('api_keys.id', '=', ref), eb('api_keys.prefix', '=', ref)]))
    .executeTakeFirst();
  if (!row) throw notFound('API key', ref);
  return { id: row.id, prefix: row.prefix, name: row.name, principal: principalRef(row.kind, row.p_name, org.name) };
}

/**
 * The project, the scope (the project, or a key of it) and the audit spec; the role is checked
 * before the key is looked up, so only admins learn which keys exist.
 */
async function resolveScope(ctx: Ctx, projectRef: string, keyRef: string | undefined, action: string, what: string) {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const base = `projects/${ref}/inference-limits`;
  const spec = {
    action,
    resource: keyRef === undefined ? base : `${base}/keys/${keyRef}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireRole(ctx, spec, 'admin', what, project.id);
  const key = keyRef === undefined ? undefined : await findKey(ctx.db, org, project, keyRef);
  const scope = key ? { scope: 'key' as const, scopeId: key.id } : { scope: 'project' as const, scopeId: project.id };
  return { org, project, ref, key, spec, resource: key ? `${base}/keys/${key.prefix}` : base, ...scope };
}

function currentRow(db: Kysely<Database> | Trx, scope: 'project' | 'key', scopeId: string) {
  return db
    .selectFrom('inference_limits')
    .selectAll()
    .where('scope', '=', scope)
    .where('scope_id', '=', scopeId)
    .executeTakeFirst();
}

/** Sets a project's limits, or one key's (project admins). Returns every limit of the project. */
export async function setInferenceLimits(
  ctx: Ctx,
  projectRef: string,
  input: LimitsInput,
): Promise<InferenceLimitsView> {
  const s = await resolveScope(ctx, projectRef, input.key, 'inference-limits.set', 'setting inference limits');
  checkCount('rpm', input.rpm, MAX_PER_MINUTE);
  checkCount('tpm', input.tpm, MAX_PER_MINUTE);
  checkCount('monthlyTokens', input.monthlyTokens, MAX_MONTHLY_TOKENS);
  if (input.rpm === undefined && input.tpm === undefined && input.monthlyTokens === undefined)
    throw invalid('rpm', 'give at least one of rpm, tpm or monthlyTokens (0 removes a limit)');
  if (s.key && input.monthlyTokens !== undefined)
    throw invalid('monthlyTokens', 'monthly token budgets are per project; a key takes rpm and tpm');
  await write(ctx, s.spec, async (trx) => {
    const before = await currentRow(trx, s.scope, s.scopeId);
    const row: InferenceLimitsTable = {
      scope: s.scope,
      scope_id: s.scopeId,
      org_id: s.org.id,
      rpm: input.rpm ?? before?.rpm ?? 0,
      tpm: input.tpm ?? before?.tpm ?? 0,
      monthly_tokens: input.monthlyTokens ?? before?.monthly_tokens ?? 0,
      updated_at: nowIso(),
    };
    if (before)
      await trx
        .updateTable('inference_limits')
        .set({ rpm: row.rpm, tpm: row.tpm, monthly_tokens: row.monthly_tokens, updated_at: row.updated_at })
        .where('scope', '=', s.scope)
        .where('scope_id', '=', s.scopeId)
        .execute();
    else await trx.insertInto('inference_limits').values(row).execute();
    const who = s.key ? { key: s.key.prefix } : {};
    return {
      result: undefined,
      before: before ? { ...who, ...limitView(before) } : null,
      after: { ...who, ...limitView(row) },
      resource: s.resource,
    };
  });
  return projectLimits(ctx.db, s.org, s.project);
}

/** Removes a project's limits, or one key's (project admins); 404 when none were set. */
export async function deleteInferenceLimits(ctx: Ctx, projectRef: string, opts: { key?: string } = {}): Promise<void> {
  const s = await resolveScope(ctx, projectRef, opts.key, 'inference-limits.delete', 'removing inference limits');
  await write(ctx, s.spec, async (trx) => {
    const before = await currentRow(trx, s.scope, s.scopeId);
    if (!before) throw notFound('inference limits', s.key ? `${s.ref} key ${s.key.prefix}` : s.ref);
    await trx.deleteFrom('inference_limits').where('scope', '=', s.scope).where('scope_id', '=', s.scopeId).execute();
    const who = s.key ? { key: s.key.prefix } : {};
    return { result: undefined, before: { ...who, ...limitView(before) }, after: null, resource: s.resource };
  });
}

/** The limits in force for a project and its org's keys (any member of the project may read them). */
export async function getInferenceLimits(ctx: Ctx, projectRef: string): Promise<InferenceLimitsView> {
  const { org, project } = await findProject(ctx, projectRef);
  return projectLimits(ctx.db, org, project);
}

async function projectLimits(
  db: Kysely<Database>,
  org: OrgsTable,
  project: ProjectsTable,
  now = new Date(),
): Promise<InferenceLimitsView> {
  const own = await currentRow(db, 'project', project.id);
  const keys = await db
    .selectFrom('inference_limits as l')
    .innerJoin('api_keys as k', 'k.id', 'l.scope_id')
    .innerJoin('principals as p', 'p.id', 'k.principal_id')
    .selectAll('l')
    .select(['k.prefix', 'k.name as k_name', 'p.kind', 'p.name as p_name'])
    .where('l.scope', '=', 'key')
    .where('l.org_id', '=', org.id)
    .where('k.org_id', '=', org.id)
    .where('k.project_id', 'in', ['', project.id])
    .orderBy('k.prefix')
    .execute();
  return {
    project: `${org.name}.${project.name}`,
    limits: own ? limitView(own) : null,
    keys: keys.map((r) => ({
      keyId: r.scope_id,
      keyPrefix: r.prefix,
      keyName: r.k_name,
      principal: principalRef(r.kind, r.p_name, org.name),
      ...limitView(r),
    })),
    monthTokens: await monthTokens(db, project.id, now),
    monthStart: monthStart(now),
  };
}
