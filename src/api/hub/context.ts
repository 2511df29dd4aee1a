// What every Hub route needs: its dependencies, the caller's context, and the server's address as
// the client reached it (the protocol hands out absolute URLs).
import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../../app/context.js';
import { AppError } from '../../domain/errors.js';
import type { Registry } from '../../registry/registry.js';
import type { Store } from '../../store/db.js';
import type { RepoKind } from '../../store/schema.js';
import type { Authenticator } from '../../tenancy/authn.js';

export interface HubDeps {
  readonly store: Store;
  readonly registry: Registry;
  readonly auth: Authenticator;
}

export function hubCtx(req: FastifyRequest, deps: HubDeps): Ctx {
  if (!req.caller)
    throw new AppError('UNAUTHENTICATED', 'missing API key: send "Authorization: Bearer hf_<fabrik key>"');
  return { db: deps.store.db, caller: req.caller, requestId: req.id };
}

/** The server's address as the client reached it, for the absolute URLs the protocol hands out. */
export function baseUrlOf(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}

/** `models` or `datasets` in a URL. */
export function kindOf(type: string): RepoKind {
  if (type === 'models') return 'model';
  if (type === 'datasets') return 'dataset';
  throw new AppError('NOT_FOUND', `fabrik's registry holds models and datasets, not ${type.slice(0, 40)}`, {
    hubErrorCode: 'RepoNotFound',
  });
}
