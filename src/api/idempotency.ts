// Idempotency-Key on creating requests (as Stripe and the IETF draft define it): the first
// request's response is stored with its change, in the same transaction; a retry with the same key
// and body gets that response again, with the same body but a different body it gets 422.
// Records live IDEMPOTENCY_TTL_MS: an older one is ignored (the request counts as new and replaces
// it), and expired rows are purged now and then on the way to a new record. A stored response
// never holds a secret: a replayed key creation answers `"token": null, "tokenShownOnce": true`.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson, sha256Hex } from '../audit/entry.js';
import { AppError } from '../domain/errors.js';
import type { Store } from '../store/db.js';

const KEY = /^[\x21-\x7e]{1,255}$/;

/** How long a stored response is replayed (Stripe keeps keys for 24 hours, too). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Expired rows are purged at most this often, and at most PURGE_BATCH of them at a time. */
const PURGE_INTERVAL_MS = 60_000;
const PURGE_BATCH = 500;

export function idempotencyGuard(store: Store, ttlMs = IDEMPOTENCY_TTL_MS) {
  let lastPurge = 0;
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const status = req.routeOptions.config.idempotent;
    const header = req.headers['idempotency-key'];
    if (!status || header === undefined || !req.caller) return;
    if (typeof header !== 'string' || !KEY.test(header)) {
      throw new AppError('INVALID_ARGUMENT', 'Idempotency-Key must be 1–255 printable ASCII characters');
    }
    const path = req.url.split('?')[0];
    const bodyHash = sha256Hex(canonicalJson(req.body ?? null));
    // RFC 3339 UTC timestamps of one length compare as text.
    const cutoff = new Date(Date.now() - ttlMs).toISOString();
    if (Date.now() - lastPurge >= PURGE_INTERVAL_MS) {
      lastPurge = Date.now();
      await purgeExpired(store, cutoff);
    }
    const prior = await store.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('key_id', '=', req.caller.keyId)
      .where('idem_key', '=', header)
      .executeTakeFirst();
    if (prior && prior.created_at < cutoff) {
      // Expired: as if never seen; the new request's record takes its place.
      await store.db
        .deleteFrom('idempotency_keys')
        .where('key_id', '=', prior.key_id)
        .where('idem_key', '=', prior.idem_key)
        .where('created_at', '=', prior.created_at)
        .execute();
    } else if (prior) {
      if (prior.method !== req.method || prior.path !== path || prior.body_hash !== bodyHash) {
        throw new AppError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was used for a different request; use a new key',
          {
            firstRequest: `${prior.method} ${prior.path}`,
          },
        );
      }
      reply.header('idempotent-replayed', 'true');
      reply.status(prior.status).type('application/json').send(withoutToken(prior.response));
      return reply;
    }
    req.idempotency = { keyId: req.caller.keyId, idemKey: header, method: req.method, path, bodyHash, status };
  };
}

/** Records stored before tokens were kept out of them may still hold one: it is never replayed. */
function withoutToken(response: string): string {
  if (!response.includes('"token":"')) return response;
  const body = JSON.parse(response) as Record<string, unknown>;
  return typeof body.token === 'string' ? JSON.stringify({ ...body, token: null, tokenShownOnce: true }) : response;
}

/** Deletes up to PURGE_BATCH records created before `cutoff`. */
async function purgeExpired(store: Store, cutoff: string): Promise<void> {
  await store.db
    .deleteFrom('idempotency_keys')
    .where((eb) =>
      eb(
        eb.refTuple('key_id', 'idem_key'),
        'in',
        eb
          .selectFrom('idempotency_keys')
          .select(['key_id', 'idem_key'])
          .where('created_at', '<', cutoff)
          .limit(PURGE_BATCH)
          .$asTuple('key_id', 'idem_key'),
      ),
    )
    .execute();
}
