// The one path every state change takes: the change and its audit entry are written in the same
// transaction, so there is never a change without its entry nor an entry without its change.
// Sequence numbers come from a single counter row; its row lock serialises writers (in PostgreSQL
// too), so the numbers are gap-free and in commit order.
import type { Kysely, Transaction } from 'kysely';
import { sql } from 'kysely';
import { nowIso } from '../domain/ids.js';
import type { Database } from '../store/schema.js';
import { type AuditEntry, type AuditOutcome, serialiseEntry, stateDigest } from './entry.js';

export type Trx = Transaction<Database>;

/** Who acts, and for which request. */
export interface ActorContext {
  readonly keyId: string;
  readonly principal: string;
  readonly requestId: string;
}

/** What a mutation function reports back: its result and the states that the audit entry digests. */
export interface Change<T> {
  readonly result: T;
  readonly before?: unknown;
  readonly after?: unknown;
  /** Overrides the spec's resource, e.g. when the id is only known after creation. */
  readonly resource?: string;
}

export interface MutationSpec {
  readonly action: string;
  readonly resource: string;
  readonly orgId: string;
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
    const change = await fn(trx);
    await appendEntry(trx, seq, ctx, { ...spec, resource: change.resource ?? spec.resource }, 'success', change);
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

/** Records a refused mutation (an authorization denial): no state changed, but auditors see the attempt. */
export async function recordDenied(db: Kysely<Database>, ctx: ActorContext, spec: MutationSpec): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await appendEntry(trx, await nextSeq(trx), ctx, spec, 'denied', {});
  });
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
  change: { before?: unknown; after?: unknown },
): Promise<AuditEntry> {
  const entry: AuditEntry = {
    seq,
    time: nowIso(),
    orgId: spec.orgId,
    actor: { keyId: ctx.keyId, principal: ctx.principal },
    action: spec.action,
    resource: spec.resource,
    requestId: ctx.requestId,
    beforeDigest: stateDigest(change.before),
    afterDigest: stateDigest(change.after),
    outcome,
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

/** The system itself (bootstrap, local node registration) acts under this name. */
export const SYSTEM_ACTOR: ActorContext = { keyId: '', principal: 'system:fabrik', requestId: 'startup' };
