// Break-glass grants: the one way a platform operator reaches a tenant's data (logs, artifacts,
// secrets). A grant names one operator and one org, carries the operator's reason and an expiry (at
// most 24 h), and ends early when the org's owner (or the operator) revokes it. Owns
// `break_glass_grants`. Pure table operations: who may open, list and revoke is decided in
// src/app/break-glass.ts, which runs these inside audited mutations; whether an access is allowed is
// asked of the sovereignty policy (decideOperatorAccess) with `breakGlass` = activeGrant() exists.
import { type Kysely, sql } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { durationSeconds } from '../domain/duration.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { type Page, type PageRequest, decodeCursor, page } from '../store/paging.js';
import type { BreakGlassGrantsTable, Database } from '../store/schema.js';

/** The longest a grant may last. */
export const MAX_BREAK_GLASS_MS = 24 * 3_600_000;
/** The shortest (shorter ones are typing mistakes, not investigations). */
export const MIN_BREAK_GLASS_MS = 1000;
export const MIN_REASON_LENGTH = 10;
export const MAX_REASON_LENGTH = 500;

export const BREAK_GLASS_STATES = ['active', 'expired', 'revoked'] as const;
export type BreakGlassState = (typeof BREAK_GLASS_STATES)[number];

/** What the API shows of a grant. */
export interface BreakGlassGrant {
  readonly id: string;
  readonly org: string;
  /** The operator it lets in, e.g. `user:ops`. */
  readonly principal: string;
  readonly reason: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
  readonly revokedBy: string | null;
  readonly state: BreakGlassState;
}

export function stateOf(row: BreakGlassGrantsTable, now: Date): BreakGlassState {
  if (row.revoked_at !== '') return 'revoked';
  return Date.parse(row.expires_at) > now.getTime() ? 'active' : 'expired';
}

export function grantView(row: BreakGlassGrantsTable, orgName: string, now: Date): BreakGlassGrant {
  return {
    id: row.id,
    org: orgName,
    principal: row.principal,
    reason: row.reason,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at || null,
    revokedBy: row.revoked_by || null,
    state: stateOf(row, now),
  };
}

/**
 * A grant's lifetime from text such as `30m`, `2h`, `1h30m` or `90s`: milliseconds, between 1 s
 * and 24 h. Anything else is refused with INVALID_ARGUMENT naming the field.
 */
export function parseExpiresIn(text: string, field = 'expiresIn'): number {
  const seconds = durationSeconds(text);
  const ms = seconds === undefined ? Number.NaN : seconds * 1000;
  if (!Number.isFinite(ms)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `${field}: "${text.slice(0, 40)}" is not a duration such as 30m, 2h or 1h30m`,
      {
        field,
      },
    );
  }
  if (ms < MIN_BREAK_GLASS_MS || ms > MAX_BREAK_GLASS_MS) {
    throw new AppError('INVALID_ARGUMENT', `${field}: a break-glass grant lasts between 1s and 24h, not ${text}`, {
      field,
    });
  }
  return ms;
}

/** The operator's reason, trimmed: 10 to 500 characters, no control characters. */
export function checkReason(reason: string): string {
  const r = reason.trim();
  if (r.length < MIN_REASON_LENGTH || r.length > MAX_REASON_LENGTH) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `reason: say why, in ${MIN_REASON_LENGTH} to ${MAX_REASON_LENGTH} characters (the tenant reads it)`,
      { field: 'reason' },
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(r)) {
    throw new AppError('INVALID_ARGUMENT', 'reason: one line of text, without control characters', {
      field: 'reason',
    });
  }
  return r;
}

/** Inserts a new grant (inside the caller's audited mutation). */
export async function insertGrant(
  trx: Trx,
  g: {
    readonly orgId: string;
    readonly principalId: string;
    readonly principal: string;
    readonly reason: string;
    readonly expiresInMs: number;
    readonly now: Date;
  },
): Promise<BreakGlassGrantsTable> {
  const row: BreakGlassGrantsTable = {
    id: newId('bg'),
    org_id: g.orgId,
    principal_id: g.principalId,
    principal: g.principal,
    reason: g.reason,
    created_at: g.now.toISOString(),
    expires_at: new Date(g.now.getTime() + g.expiresInMs).toISOString(),
    revoked_at: '',
    revoked_by: '',
  };
  await trx.insertInto('break_glass_grants').values(row).execute();
  return row;
}

/** One grant of an org, by id. */
export function findGrant(
  db: Kysely<Database> | Trx,
  orgId: string,
  id: string,
): Promise<BreakGlassGrantsTable | undefined> {
  return db
    .selectFrom('break_glass_grants')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/**
 * Ends a grant now (inside the caller's audited mutation): the row as it is afterwards. CONFLICT
 * when it already ended, NOT_FOUND when the org has no such grant.
 */
export async function revokeGrant(
  trx: Trx,
  orgId: string,
  id: string,
  by: string,
  now: Date,
): Promise<{ before: BreakGlassGrantsTable; after: BreakGlassGrantsTable }> {
  const before = await findGrant(trx, orgId, id);
  if (!before)
    throw new AppError('NOT_FOUND', `break-glass grant "${id.slice(0, 60)}" not found`, { kind: 'break-glass grant' });
  const state = stateOf(before, now);
  if (state !== 'active') throw new AppError('CONFLICT', `break-glass grant ${id} is already ${state}`, { state });
  const after = { ...before, revoked_at: now.toISOString(), revoked_by: by };
  await trx
    .updateTable('break_glass_grants')
    .set({ revoked_at: after.revoked_at, revoked_by: by })
    .where('id', '=', id)
    .where('revoked_at', '=', '')
    .execute();
  return { before, after };
}

/** An org's grants, newest first (ids are random, so the page is ordered by creation time and id). */
export async function listGrants(
  db: Kysely<Database>,
  org: { readonly id: string; readonly name: string },
  req: PageRequest,
  now: Date,
): Promise<Page<BreakGlassGrant>> {
  if (req.cursor !== undefined) {
    const c = decodeCursor(req.cursor);
    if (typeof c !== 'string' || !c.includes('|'))
      throw new AppError('INVALID_ARGUMENT', 'invalid cursor: pass the nextCursor of a previous page unchanged', {
        field: 'cursor',
      });
  }
  // Paged by creation time and id in one sortable text, computed in a subquery so both dialects
  // can filter on it.
  const q = db
    .selectFrom('break_glass_grants')
    .selectAll()
    .select(sql<string>`created_at || '|' || id`.as('order_key'))
    .where('org_id', '=', org.id);
  return page(db.selectFrom(q.as('g')).selectAll(), 'order_key', req, (r) => grantView(r, org.name, now), 'desc');
}

/**
 * The grant in force for this operator on this org at `now`: unrevoked and unexpired (the one
 * that lasts longest when there are several), or undefined.
 */
export function activeGrant(
  db: Kysely<Database> | Trx,
  orgId: string,
  principalId: string,
  now: Date,
): Promise<BreakGlassGrantsTable | undefined> {
  return db
    .selectFrom('break_glass_grants')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('principal_id', '=', principalId)
    .where('revoked_at', '=', '')
    .where('expires_at', '>', now.toISOString())
    .orderBy('expires_at', 'desc')
    .limit(1)
    .executeTakeFirst();
}
