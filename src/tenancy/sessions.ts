// Console sessions: a browser signs in once (with an API key, or through OpenID Connect) and then
// holds an opaque cookie instead of a key. The token is 256 random bits, stored only as its SHA-256;
// a session expires after 12 h, ends at logout, and a key session ends with its key (revoked or
// expired: checked on every request, through the key cache, so within a second on every replica).
// The CSRF token is derived from the session token, so it needs no storage and is bound to it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashSecret } from './api-key.js';
import type { Kysely } from 'kysely';
import { type Ctx, write } from '../app/context.js';
import { type ActorContext, mutate } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { type Caller, type Grant, type OrgRole, narrowGrants } from '../policy/roles.js';
import type { ConsoleSessionsTable, Database } from '../store/schema.js';
import { type Authenticator, principalRef } from './authn.js';

export const SESSION_TTL_MS = 12 * 3600_000;
const TOKEN = /^fbs_[A-Za-z0-9_-]{43}$/;

export type SessionMethod = 'api-key' | 'oidc';

/** A session as the request path sees it: who acts, and the CSRF token mutations must carry. */
export interface ActiveSession {
  readonly id: string;
  readonly method: SessionMethod;
  readonly expiresAt: string;
  readonly caller: Caller;
  readonly csrfToken: string;
}

export interface OpenedSession {
  /** The cookie's value; never stored. */
  readonly token: string;
  readonly session: ActiveSession;
}

/** Session tokens are stored as keys' secrets are: their SHA-256 (api-key.ts). */
export const hashToken = hashSecret;

/** The session's CSRF token (double submit: a cookie JS can read, echoed in a header). */
export function csrfTokenOf(token: string): string {
  return createHmac('sha256', token).update('fabrik console csrf').digest('base64url');
}

/** Constant-time comparison of a presented CSRF header with the session's token. */
export function csrfMatches(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function isSessionToken(s: string): boolean {
  return TOKEN.test(s);
}

function mint(): { token: string; hash: string } {
  const token = `fbs_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

function sessionView(row: ConsoleSessionsTable, principal: string) {
  return {
    id: row.id,
    method: row.method,
    principal,
    keyPrefix: row.key_prefix || null,
    expiresAt: row.expires_at,
    endedAt: row.ended_at || null,
    endedReason: row.ended_reason || null,
  };
}

/** Opens a session for the caller of an API key (POST /api/v1/session): audited as the key. */
export async function openKeySession(ctx: Ctx, ttlMs = SESSION_TTL_MS): Promise<OpenedSession> {
  const { token, hash } = mint();
  const c = ctx.caller;
  const row: ConsoleSessionsTable = {
    id: newId('ses'),
    token_hash: hash,
    principal_id: c.principalId,
    method: 'api-key',
    key_id: c.keyId,
    key_prefix: c.keyPrefix,
    created_at: nowIso(),
    expires_at: new Date(Date.now() + ttlMs).toISOString(),
    ended_at: '',
    ended_reason: '',
  };
  await write(ctx, { action: 'session.create', resource: `sessions/${row.id}`, orgId: c.scopeOrgId }, async (trx) => {
    await trx.insertInto('console_sessions').values(row).execute();
    return { result: undefined, after: sessionView(row, c.principal), subject: c.principal };
  });
  return {
    token,
    session: { id: row.id, method: 'api-key', expiresAt: row.expires_at, caller: c, csrfToken: csrfTokenOf(token) },
  };
}

/** Opens a session for a user signed in through OpenID Connect (its memberships already reconciled). */
export async function openOidcSession(
  db: Kysely<Database>,
  principalId: string,
  requestId: string,
  ttlMs = SESSION_TTL_MS,
): Promise<OpenedSession> {
  const { token, hash } = mint();
  const row: ConsoleSessionsTable = {
    id: newId('ses'),
    token_hash: hash,
    principal_id: principalId,
    method: 'oidc',
    key_id: '',
    key_prefix: '',
    created_at: nowIso(),
    expires_at: new Date(Date.now() + ttlMs).toISOString(),
    ended_at: '',
    ended_reason: '',
  };
  const caller = await principalCaller(db, row);
  const actor: ActorContext = { keyId: row.id, principal: caller.principal, requestId };
  await mutate(db, actor, { action: 'session.create', resource: `sessions/${row.id}`, orgId: '' }, async (trx) => {
    await trx.insertInto('console_sessions').values(row).execute();
    return { result: undefined, after: sessionView(row, caller.principal), subject: caller.principal };
  });
  return {
    token,
    session: { id: row.id, method: 'oidc', expiresAt: row.expires_at, caller, csrfToken: csrfTokenOf(token) },
  };
}

/** Ends a session server-side (logout): audited; a cookie presented later finds nothing. */
export async function endSession(ctx: Ctx, session: ActiveSession, reason = 'logout'): Promise<void> {
  await write(
    ctx,
    { action: 'session.end', resource: `sessions/${session.id}`, orgId: ctx.caller.scopeOrgId },
    async (trx) => {
      const row = await trx
        .selectFrom('console_sessions')
        .selectAll()
        .where('id', '=', session.id)
        .executeTakeFirstOrThrow();
      if (row.ended_at) throw new AppError('UNAUTHENTICATED', 'the session has already ended');
      const ended = { ...row, ended_at: nowIso(), ended_reason: reason };
      await trx
        .updateTable('console_sessions')
        .set({ ended_at: ended.ended_at, ended_reason: reason })
        .where('id', '=', row.id)
        .execute();
      const who = ctx.caller.principal;
      return { result: undefined, before: sessionView(row, who), after: sessionView(ended, who), subject: who };
    },
  );
}

interface CachedSession {
  readonly row: ConsoleSessionsTable | undefined;
  /** OIDC sessions' caller, loaded with the row (key sessions ask the key cache each time). */
  readonly caller?: Caller;
  readonly fetchedAt: number;
}

/**
 * From a cookie to an active session. Rows are cached for at most `cacheTtlMs` (default 1 s, as
 * keys), so a logout elsewhere takes effect within that time on every replica (at once on this one).
 */
export class SessionAuthenticator {
  private readonly cache = new Map<string, CachedSession>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly keys: Authenticator,
    private readonly cacheTtlMs = 1000,
  ) {}

  async authenticate(token: string): Promise<ActiveSession> {
    if (!isSessionToken(token)) throw new AppError('UNAUTHENTICATED', 'invalid session cookie; sign in again');
    const hash = hashToken(token);
    const now = Date.now();
    let entry = this.cache.get(hash);
    if (!entry || now - entry.fetchedAt > this.cacheTtlMs) {
      entry = await this.load(hash, now);
      this.cache.set(hash, entry);
      if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!);
    }
    const row = entry.row;
    if (!row || row.ended_at) throw new AppError('UNAUTHENTICATED', 'the session has ended; sign in again');
    if (Date.parse(row.expires_at) <= now) throw new AppError('UNAUTHENTICATED', 'the session expired; sign in again');
    const caller = row.method === 'api-key' ? await this.keys.callerOfKey(row.key_prefix) : entry.caller;
    // A key session lives only as long as its key: revoked or expired, the session is over.
    if (!caller || caller.keyId !== (row.method === 'api-key' ? row.key_id : row.id))
      throw new AppError('UNAUTHENTICATED', 'the API key of this session was revoked or expired; sign in again');
    return {
      id: row.id,
      method: row.method as SessionMethod,
      expiresAt: row.expires_at,
      caller,
      csrfToken: csrfTokenOf(token),
    };
  }

  /** Forgets a session at once (after logout on this replica). */
  invalidate(token: string): void {
    this.cache.delete(hashToken(token));
  }

  private async load(hash: string, now: number): Promise<CachedSession> {
    const row = await this.db
      .selectFrom('console_sessions')
      .selectAll()
      .where('token_hash', '=', hash)
      .executeTakeFirst();
    if (row?.method !== 'oidc' || row.ended_at) return { row, fetchedAt: now };
    return { row, caller: await principalCaller(this.db, row), fetchedAt: now };
  }
}

/**
 * The caller of an OIDC session: the user with all its grants (as an unscoped key would give,
 * operator when the user is one). The session id stands in for a key id in audit entries and
 * rate limits.
 */
async function principalCaller(db: Kysely<Database>, row: ConsoleSessionsTable): Promise<Caller> {
  const principal = await db
    .selectFrom('principals')
    .select(['id', 'kind', 'name', 'platform_role'])
    .where('id', '=', row.principal_id)
    .executeTakeFirstOrThrow();
  const rows = await db
    .selectFrom('memberships')
    .innerJoin('orgs', 'orgs.id', 'memberships.org_id')
    .select(['memberships.org_id', 'memberships.project_id', 'memberships.role', 'orgs.status'])
    .where('principal_id', '=', principal.id)
    .execute();
  const grants: Grant[] = rows
    .filter((r) => r.status === 'active')
    .map((r) => ({ orgId: r.org_id, projectId: r.project_id, role: r.role as OrgRole }));
  return {
    keyId: row.id,
    keyPrefix: `session-${row.id.slice(4, 16)}`,
    principalId: principal.id,
    principal: principalRef(principal.kind, principal.name, ''),
    operator: principal.platform_role === 'operator',
    scopeOrgId: '',
    scopeProjectId: '',
    grants: narrowGrants(grants, '', ''),
  };
}

/** GET /api/v1/session: who is signed in, with org names for the grants. */
export async function describeSession(db: Kysely<Database>, s: ActiveSession) {
  const c = s.caller;
  const principal = await db
    .selectFrom('principals')
    .select(['id', 'name', 'kind'])
    .where('id', '=', c.principalId)
    .executeTakeFirstOrThrow();
  const orgIds = [...new Set(c.grants.map((g) => g.orgId))];
  const projectIds = [...new Set(c.grants.map((g) => g.projectId).filter(Boolean))];
  const orgs = orgIds.length
    ? await db.selectFrom('orgs').select(['id', 'name']).where('id', 'in', orgIds).execute()
    : [];
  const projects = projectIds.length
    ? await db.selectFrom('projects').select(['id', 'name']).where('id', 'in', projectIds).execute()
    : [];
  const memberships = c.grants
    .map((g) => ({
      org: orgs.find((o) => o.id === g.orgId)?.name ?? g.orgId,
      ...(g.projectId ? { project: projects.find((p) => p.id === g.projectId)?.name ?? g.projectId } : {}),
      role: g.role,
    }))
    .sort((a, b) => a.org.localeCompare(b.org) || (a.project ?? '').localeCompare(b.project ?? ''));
  return {
    principal: { id: principal.id, name: principal.name, kind: principal.kind as 'user' | 'service_account' },
    operator: c.operator,
    memberships,
    method: s.method,
    csrfToken: s.csrfToken,
    expiresAt: s.expiresAt,
  };
}
