// Idempotency-Key on creating requests (as Stripe and the IETF draft define it): the first
// request's response is stored with its change, in the same transaction; a retry with the same key
// and body gets that response again, with the same body but a different body it gets 422.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson, sha256Hex } from '../audit/entry.js';
import { AppError } from '../domain/errors.js';
import type { Store } from '../store/db.js';

const KEY = /^[\x21-\x7e]{1,255}$/;

export function idempotencyGuard(store: Store) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const status = req.routeOptions.config.idempotent;
    const header = req.headers['idempotency-key'];
    if (!status || header === undefined || !req.caller) return;
    if (typeof header !== 'string' || !KEY.test(header)) {
      throw new AppError('INVALID_ARGUMENT', 'Idempotency-Key must be 1–255 printable ASCII characters');
    }
    const path = req.url.split('?')[0];
    const bodyHash = sha256Hex(canonicalJson(req.body ?? null));
    const prior = await store.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('key_id', '=', req.caller.keyId)
      .where('idem_key', '=', header)
      .executeTakeFirst();
    if (prior) {
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
      reply.status(prior.status).type('application/json').send(prior.response);
      return reply;
    }
    req.idempotency = { keyId: req.caller.keyId, idemKey: header, method: req.method, path, bodyHash, status };
  };
}
