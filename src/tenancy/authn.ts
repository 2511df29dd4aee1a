// Authentication: from an `Authorization: Bearer fbk_…` header to a Caller with its grants.
// Verified keys are cached for at most `cacheTtlMs` (default 1 s) so key checks are not the
// bottleneck, and a revocation takes effect within that time on every replica (at once on this one).
import type { Kysely } from 'kysely';
import { AppError } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import { type Caller, type Grant, type OrgRole, narrowGrants } from '../policy/roles.js';
import type { Database } from '../store/schema.js';
import { parseToken, secretMatches } from './api-key.js';

interface CachedKey {
  readonly secretHash: string;
  readonly caller: Caller;
  readonly expiresAt: number | null;
  readonly fetchedAt: number;
}

const TOUCH_INTERVAL_MS = 60_000;

export class Authenticator {
  private readonly cache = new Map<string, CachedKey>();
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly cacheTtlMs = 1000,
  ) {}

  async authenticate(header: string | undefined): Promise<Caller> {
    const token = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (!token) throw new AppError('UNAUTHENTICATED', 'missing API key: send "Authorization: Bearer <key>"');
    const parsed = parseToken(token);
    if (!parsed) throw new AppError('UNAUTHENTICATED', 'invalid API key');

    const now = Date.now();
    let entry = this.cache.get(parsed.prefix);
    if (!entry || now - entry.fetchedAt > this.cacheTtlMs) {
      entry = await this.load(parsed.prefix, now);
      if (entry) this.cache.set(parsed.prefix, entry);
      else this.cache.delete(parsed.prefix);
    }
    if (!entry || !secretMatches(parsed.secret, entry.secretHash))
      throw new AppError('UNAUTHENTICATED', 'invalid API key');
    if (entry.expiresAt !== null && entry.expiresAt <= now) throw new AppError('UNAUTHENTICATED', 'API key expired');
    this.touch(entry.caller.keyId, now);
    return entry.caller;
  }

  /**
   * The caller of a key by its prefix, without the secret: for console sessions opened with the
   * secret once (src/tenancy/sessions.ts). undefined once the key is revoked, expired or gone.
   */
  async callerOfKey(prefix: string): Promise<Caller | undefined> {
    const now = Date.now();
    let entry = this.cache.get(prefix);
    if (!entry || now - entry.fetchedAt > this.cacheTtlMs) {
      entry = await this.load(prefix, now);
      if (entry) this.cache.set(prefix, entry);
      else this.cache.delete(prefix);
    }
    if (!entry?.secretHash || (entry.expiresAt !== null && entry.expiresAt <= now)) return undefined;
    this.touch(entry.caller.keyId, now);
    return entry.caller;
  }

  /** Drops a key from the cache, e.g. right after it was revoked. */
  invalidate(prefix: string): void {
    this.cache.delete(prefix);
  }

  private async load(prefix: string, now: number): Promise<CachedKey | undefined> {
    const key = await this.db.selectFrom('api_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
    if (!key) return undefined;
    if (key.revoked_at) {
      // A revoked key is cached as one that never matches, so it costs no further lookups.
      return { secretHash: '', caller: undefined as unknown as Caller, expiresAt: null, fetchedAt: now };
    }
    const principal = await this.db
      .selectFrom('principals')
      .leftJoin('orgs', 'orgs.id', 'principals.org_id')
      .select([
        'principals.id',
        'principals.kind',
        'principals.name',
        'principals.platform_role',
        'orgs.name as org_name',
      ])
      .where('principals.id', '=', key.principal_id)
      .executeTakeFirstOrThrow();
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('orgs', 'orgs.id', 'memberships.org_id')
      .select(['memberships.org_id', 'memberships.project_id', 'memberships.role', 'orgs.status'])
      .where('principal_id', '=', principal.id)
      .execute();
    // Suspended orgs grant nothing.
    const grants: Grant[] = rows
      .filter((r) => r.status === 'active')
      .map((r) => ({ orgId: r.org_id, projectId: r.project_id, role: r.role as OrgRole }));
    const caller: Caller = {
      keyId: key.id,
      keyPrefix: key.prefix,
      principalId: principal.id,
      principal: principalRef(principal.kind, principal.name, principal.org_name ?? ''),
      operator: principal.platform_role === 'operator' && key.org_id === '',
      scopeOrgId: key.org_id,
      scopeProjectId: key.project_id,
      grants: narrowGrants(grants, key.org_id, key.project_id),
    };
    return {
      secretHash: key.secret_hash,
      caller,
      expiresAt: key.expires_at ? Date.parse(key.expires_at) : null,
      fetchedAt: now,
    };
  }

  /** Records last use at most once a minute per key, off the request path. */
  private touch(keyId: string, now: number): void {
    const last = this.touched.get(keyId) ?? 0;
    if (now - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(keyId, now);
    this.db
      .updateTable('api_keys')
      .set({ last_used_at: nowIso() })
      .where('id', '=', keyId)
      .execute()
      .catch(() => this.touched.delete(keyId));
  }
}

/** How a principal is named in audit entries and listings. */
export function principalRef(kind: string, name: string, orgName: string): string {
  return kind === 'user' ? `user:${name}` : `serviceaccount:${orgName}/${name}`;
}
