// The verifiable audit log over HTTP. Public (hashes and signatures only, for auditors, mirrors
// and witnesses): the checkpoint, the log's key at a well-known path, consistency proofs, hash
// tiles, and witnesses' cosignatures. Under /api/v1 (with a key): receipts, and a checkpoint on demand.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { addCosignature, consistency, hashTile, latestCheckpoint, receipt } from '../../app/audit-log.js';
import { requireOperator } from '../../app/context.js';
import { AppError } from '../../domain/errors.js';
import type { Store } from '../../store/db.js';
import { type AuditLogDeps, type RouteDeps, ctxOf } from '../context.js';

export type { AuditLogDeps } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const Receipt = T.Object({
  seq: T.Integer(),
  entry: T.String({ description: 'the canonical JSON that is the leaf' }),
  leafIndex: T.Integer(),
  treeSize: T.Integer(),
  leafHash: T.String(),
  proof: T.Array(T.String()),
  checkpoint: T.String({ description: 'the signed checkpoint of treeSize' }),
});

/** Routes outside /api/v1 that need no key. */
export async function publicAuditLogRoutes(app: FastifyInstance, store: Store, log: AuditLogDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const text = { schema: { hide: true }, config: { auth: false } } as const;
  r.get('/audit/checkpoint', text, async (_req, reply) => {
    const cp = await latestCheckpoint(store.db);
    reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-cache');
    return cp.note;
  });
  for (const path of ['/audit/key', '/.well-known/fabrik/audit-log-key']) {
    r.get(path, text, async (_req, reply) => {
      reply.header('content-type', 'text/plain; charset=utf-8');
      return `${log.verifierKey}\n`;
    });
  }
  r.get(
    '/audit/proof/consistency',
    {
      schema: {
        tags: ['audit'],
        summary: 'Consistency proof between two tree sizes (public: hashes only)',
        querystring: T.Object(
          { from: T.Integer({ minimum: 1 }), to: T.Integer({ minimum: 1 }) },
          { additionalProperties: false },
        ),
        response: { 200: T.Object({ size1: T.Integer(), size2: T.Integer(), proof: T.Array(T.String()) }), ...errors },
        security: [],
      },
      config: { auth: false },
    },
    async (req) => consistency(store.db, req.query.from, req.query.to),
  );
  r.get('/audit/tile/*', text, async (req, reply) => {
    const path = `tile/${(req.params as { '*': string })['*']}`;
    const tile = await hashTile(store.db, path);
    if (!tile) throw new AppError('NOT_FOUND', `no tile ${path.slice(0, 100)} (yet)`);
    // A full tile never changes: mirrors and CDNs may keep it forever.
    reply
      .header('content-type', 'application/octet-stream')
      .header('cache-control', tile.full ? 'public, max-age=31536000, immutable' : 'no-cache');
    return tile.bytes;
  });
  r.post(
    '/audit/cosignatures',
    {
      schema: {
        tags: ['audit'],
        summary: "A witness's cosignature of a checkpoint (C2SP tlog-cosignature)",
        body: T.Object(
          { checkpoint: T.String({ maxLength: 65_536 }), cosignature: T.String({ maxLength: 1024 }) },
          { additionalProperties: false },
        ),
        response: { 200: T.Object({ size: T.Integer(), witness: T.String() }), ...errors },
        security: [],
      },
      config: { auth: false },
    },
    async (req) => addCosignature(store.db, log.verifierKey, log.witnessKeys, req.body),
  );
}

/** Routes under /api/v1. */
export async function auditLogRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const log = deps.auditLog;
  if (!log) return;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/audit/entries/:seq/receipt',
    {
      schema: {
        tags: ['audit'],
        summary: 'An audit entry with its inclusion proof and the signed checkpoint it leads to',
        params: T.Object({ seq: T.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
        querystring: T.Object(
          { size: T.Optional(T.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })) },
          { additionalProperties: false },
        ),
        response: { 200: Receipt, ...errors },
      },
    },
    async (req) => receipt(ctxOf(req, deps), req.params.seq, req.query.size),
  );
  r.post(
    '/audit/checkpoint',
    {
      schema: {
        tags: ['audit'],
        summary: 'Integrate every committed entry and sign a checkpoint now (operators)',
        response: { 200: T.Object({ size: T.Integer(), checkpoint: T.String() }), ...errors },
      },
    },
    async (req) => {
      requireOperator(ctxOf(req, deps), 'sign checkpoints on demand');
      const cp = await log.flush();
      return { size: cp.size, checkpoint: cp.note };
    },
  );
}
