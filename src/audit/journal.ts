// The one path every state change takes: the change and its audit entry are written in the same
// transaction, so there is never a change without its entry nor an entry without its change.
// Sequence numbers come from a single counter row; its row lock serialises writers (in PostgreSQL
// too), so the numbers are gap-free and in commit order.
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { nowIso } from '../domain/ids.js';
import { appendEvent } from './outbox.js';
import type { Database } from '../store/schema.js';
import {
  AUDIT_ENTRY_VERSION,
  type AuditEntry,
  type AuditOutcome,
  type EntryFacts,
  sanitiseAuditText,
  serialiseEntry,
  stateDigest,
} from './entry.js';

export type { Trx } from '../store/db.js';
import type { Trx } from '../store/db.js';

/** Who acts, and for which request. */
export interface ActorContext {
  readonly keyId: string;
  readonly principal: string;
  readonly requestId: string;
  /**
   * For the control loops of a replica: checks, inside the mutation's transaction, that this
   * replica still holds its lease (src/app/lease.ts); throws FencedError, and nothing is written,
   * when another replica took over.
   */
  readonly fence?: (trx: Trx) => Promise<void>;
}

/** What a mutation function reports back: its result and the states that the audit entry digests. */
export interface Change<T> {
  readonly result: T;
  readonly before?: unknown;
  readonly after?: unknown;
  /** Overrides the spec's resource, e.g. when the id is only known after creation. */
  readonly resource?: string;
  /** Overrides the spec's action, when the change itself decides what happened (a lifecycle transition). */
  readonly action?: string;
  /** Whom the change is for, besides the actor (the principal of an API key): named in the entry. */
  readonly subject?: string;
  /** Facts the entry records: the deciding policy set, where bytes went, a break-glass grant used. */
  readonly facts?: EntryFacts;
}

export interface MutationSpec {
  readonly action: string;
  readonly resource: string;
  readonly orgId: string;
  /** The project the resource belongs to, where known: events of it are visible to its members. */
  readonly projectId?: string;
}

/** A pending idempotent create: stored with its response in the same transaction. */
export interface IdempotencyRecord {
  readonly keyId: string;
  readonly idemKey: string;
  readonly method: string;
  readonly path: string;
  readonly bodyHash: string;
  readonly status: number;
}

export async function mutate<T>(
  db: Kysely<Database>,
  ctx: ActorContext,
  spec: MutationSpec,
  fn: (trx: Trx) => Promise<Change<T>>,
  idempotency?: IdempotencyRecord,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    // Taking the sequence number first locks the head row for the whole transaction: mutations
    // run one at a time, so checks such as "sum of guarantees fits the pool" cannot race.
    const seq = await nextSeq(trx);
    // A replica that lost its lease writes no decision (the head row lock also orders this check
    // before every later writer, a new leader included).
    await ctx.fence?.(trx);
    const change = await fn(trx);
    const done = { ...spec, resource: change.resource ?? spec.resource, action: change.action ?? spec.action };
    const entry = await appendEntry(trx, seq, ctx, done, 'success', change);
    // The event outbox: applications learn of the change (CloudEvents) exactly when it commits.
    await appendEvent(trx, entry, change, spec.projectId);
    if (idempotency) {
      await trx
        .insertInto('idempotency_keys')
        .values({
          key_id: idempotency.keyId,
          idem_key: idempotency.idemKey,
          method: idempotency.method,
          path: idempotency.path,
          body_hash: idempotency.bodyHash,
          status: idempotency.status,
          response: JSON.stringify(change.result),
          created_at: nowIso(),
        })
        .execute();
    }
    return change.result;
  });
}

/**
 * Records a refused mutation (an authorization denial): no state changed, but auditors see the
 * attempt. Any key can provoke denials, so they are bounded per key (see DenialLimiter).
 */
export async function recordDenied(db: Kysely<Database>, ctx: ActorContext, spec: MutationSpec): Promise<void> {
  await denialLimiter(db).record(ctx, spec);
}

/** Sets the denial bound of one database's limiter (tests use a short window). */
export function limitDenials(db: Kysely<Database>, opts: { perWindow?: number; windowMs?: number }): void {
  const l = denialLimiter(db);
  l.perWindow = opts.perWindow ?? l.perWindow;
  l.windowMs = opts.windowMs ?? l.windowMs;
}

export const DENIALS_PER_WINDOW = 10;
export const DENIAL_WINDOW_MS = 60_000;

interface DenialWindow {
  readonly start: number;
  written: number;
  suppressed: number;
  /** Org of the suppressed denials; '' (platform, operators only) once they span several. */
  orgId: string;
  actor: ActorContext;
  timer?: NodeJS.Timeout;
}

/**
 * Per key, at most `perWindow` denied entries are written in each window of `windowMs` (a fixed
 * window that starts at the key's first denial). Further denials in that window write nothing
 * then; they are counted, and one summary entry (action `audit.denials-suppressed`, outcome
 * `denied`, with `suppressed: {count, since}`, naming the last such request) is written when the
 * window ends, or on the key's next denial if that comes first. State is per process: each
 * replica bounds its own share.
 */
class DenialLimiter {
  perWindow = DENIALS_PER_WINDOW;
  windowMs = DENIAL_WINDOW_MS;
  private readonly windows = new Map<string, DenialWindow>();

  constructor(private readonly db: Kysely<Database>) {}

  async record(ctx: ActorContext, spec: MutationSpec): Promise<void> {
    const now = Date.now();
    let w = this.windows.get(ctx.keyId);
    if (w && now - w.start >= this.windowMs) {
      await this.close(ctx.keyId, w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= 10_000) this.sweep(now);
      w = { start: now, written: 0, suppressed: 0, orgId: spec.orgId, actor: ctx };
      this.windows.set(ctx.keyId, w);
    }
    if (w.written < this.perWindow) {
      w.written++;
      await this.append(ctx, spec, {});
      return;
    }
    if (w.suppressed++ === 0) {
      w.orgId = spec.orgId;
      const win = w;
      win.timer = setTimeout(() => void this.close(ctx.keyId, win), win.start + this.windowMs - now);
      win.timer.unref();
    } else if (w.orgId !== spec.orgId) {
      w.orgId = '';
    }
    w.actor = ctx;
  }

  /** Ends a window: forgets it and writes its summary if denials were suppressed. */
  private async close(keyId: string, w: DenialWindow): Promise<void> {
    if (this.windows.get(keyId) !== w) return;
    this.windows.delete(keyId);
    clearTimeout(w.timer);
    if (w.suppressed === 0) return;
    const spec = { action: 'audit.denials-suppressed', resource: 'audit/denials', orgId: w.orgId };
    const suppressed = { count: w.suppressed, since: new Date(w.start).toISOString() };
    // From a timer the database may be closed already (shutdown): the summary is then lost.
    await this.append(w.actor, spec, { suppressed }).catch(() => undefined);
  }

  /** Drops ended windows that suppressed nothing (those that did end through their timer). */
  private sweep(now: number): void {
    for (const [keyId, w] of this.windows) {
      if (w.suppressed === 0 && now - w.start >= this.windowMs) this.windows.delete(keyId);
    }
  }

  private append(ctx: ActorContext, spec: MutationSpec, extra: Pick<AuditEntry, 'suppressed'>): Promise<void> {
    return this.db.transaction().execute(async (trx) => {
      await appendEntry(trx, await nextSeq(trx), ctx, spec, 'denied', {}, extra);
    });
  }
}

const limiters = new WeakMap<Kysely<Database>, DenialLimiter>();

function denialLimiter(db: Kysely<Database>): DenialLimiter {
  let l = limiters.get(db);
  if (!l) {
    l = new DenialLimiter(db);
    limiters.set(db, l);
  }
  return l;
}

async function nextSeq(trx: Trx): Promise<number> {
  const head = await trx
    .updateTable('audit_head')
    .set({ seq: sql`seq + 1` })
    .where('id', '=', 1)
    .returning('seq')
    .executeTakeFirstOrThrow();
  return Number(head.seq);
}

async function appendEntry(
  trx: Trx,
  seq: number,
  ctx: ActorContext,
  spec: MutationSpec,
  outcome: AuditOutcome,
  change: { before?: unknown; after?: unknown; subject?: string; facts?: EntryFacts },
  extra: Pick<AuditEntry, 'suppressed'> = {},
): Promise<AuditEntry> {
  const entry: AuditEntry = {
    version: AUDIT_ENTRY_VERSION,
    seq,
    time: nowIso(),
    orgId: spec.orgId,
    actor: { keyId: ctx.keyId, principal: ctx.principal },
    action: spec.action,
    // Resources carry caller-chosen text (path parameters): stored only in a safe, bounded form.
    resource: sanitiseAuditText(spec.resource),
    requestId: ctx.requestId,
    beforeDigest: stateDigest(change.before),
    afterDigest: stateDigest(change.after),
    outcome,
    ...(change.subject !== undefined ? { subject: sanitiseAuditText(change.subject) } : {}),
    ...sanitisedFacts(change.facts),
    ...extra,
  };
  await trx
    .insertInto('audit_entries')
    .values({
      seq: entry.seq,
      time: entry.time,
      org_id: entry.orgId,
      action: entry.action,
      resource: entry.resource,
      request_id: entry.requestId,
      actor_key_id: entry.actor.keyId,
      actor_principal: entry.actor.principal,
      before_digest: entry.beforeDigest,
      after_digest: entry.afterDigest,
      outcome: entry.outcome,
      canonical: serialiseEntry(entry),
    })
    .execute();
  return entry;
}

function sanitisedFacts(f: EntryFacts | undefined): EntryFacts {
  if (!f) return {};
  return {
    ...(f.policy ? { policy: f.policy } : {}),
    ...(f.location ? { location: f.location } : {}),
    // The reason is the operator's own text: stored only in a safe, bounded form.
    ...(f.breakGlass
      ? { breakGlass: { grant: f.breakGlass.grant, reason: sanitiseAuditText(f.breakGlass.reason) } }
      : {}),
  };
}

/** The system itself (bootstrap, local node registration) acts under this name. */
export const SYSTEM_ACTOR: ActorContext = { keyId: '', principal: 'system:fabrik', requestId: 'startup' };
