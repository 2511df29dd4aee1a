// Hub upload side: repos/create and delete, preupload, the Git LFS batch API with basic and
// multipart transfer (part URLs carry a capability token), and the NDJSON commit. Thin: the
// registry's services decide; here only the wire shapes are read and written.
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import { type CommitOp, commit } from '../../registry/commits.js';
import { parseModelCard } from '../../registry/model-card.js';
import { type RepoId, parseRepoId, repoIdText } from '../../registry/names.js';
import { createRepo, deleteRepo, findRepo } from '../../registry/repos.js';
import { type BatchObject, batch, completeUpload, putPart, unquote, uploadStatus } from '../../registry/uploads.js';
import type { RepoKind } from '../../store/schema.js';
import { type HubDeps, baseUrlOf, hubCtx, kindOf } from './context.js';

type P = Record<string, string>;
/** An NDJSON commit body: inline files are capped each (registry limits); this caps the whole. */
const COMMIT_BODY_LIMIT = 64 * 1024 * 1024;
/** Files up to this size whose first bytes look like text go inline in the commit, as on the Hub. */
const REGULAR_MAX_BYTES = 1024 * 1024;

function repoUrl(base: string, kind: RepoKind, id: RepoId): string {
  return `${base}/hub/${kind === 'dataset' ? 'datasets/' : ''}${repoIdText(id)}`;
}

function kindOfBody(type: unknown): RepoKind {
  if (type === undefined || type === null || type === 'model') return 'model';
  if (type === 'dataset') return 'dataset';
  throw new AppError(
    'INVALID_ARGUMENT',
    `fabrik's registry holds models and datasets, not ${String(type).slice(0, 40)}s`,
  );
}

function repoOfBody(body: unknown): { kind: RepoKind; id: RepoId; private?: boolean } {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.name !== 'string' || typeof b.organization !== 'string') {
    throw new AppError('INVALID_ARGUMENT', 'name and organization (<org>.<project>) are required');
  }
  const priv = b.visibility === 'public' ? false : b.private === false ? false : undefined;
  return { kind: kindOfBody(b.type), id: parseRepoId(b.organization, b.name), private: priv };
}

export async function uploadRoutes(hub: FastifyInstance, deps: HubDeps): Promise<void> {
  const reg = deps.registry;

  hub.get('/api/whoami-v2', { schema: { hide: true } }, async (req) => {
    const ctx = hubCtx(req, deps);
    return {
      type: 'user',
      name: ctx.caller.principal,
      fullname: ctx.caller.principal,
      orgs: [],
      auth: { type: 'access_token', accessToken: { role: 'write' } },
    };
  });

  hub.post('/api/repos/create', { schema: { hide: true } }, async (req, reply) => {
    const ctx = hubCtx(req, deps);
    const { kind, id, private: priv } = repoOfBody(req.body);
    const url = repoUrl(baseUrlOf(req), kind, id);
    try {
      const repo = await createRepo(ctx, kind, id, { private: priv });
      return { url, id: repo.id, name: repoIdText(id) };
    } catch (err) {
      // The Hub's clients read the url even from a 409.
      if (!(err instanceof AppError && err.code === 'ALREADY_EXISTS')) throw err;
      return reply
        .status(409)
        .header('x-error-code', 'RepoExists')
        .send({ error: err.message, code: 'ALREADY_EXISTS', url, id: repoIdText(id) });
    }
  });

  hub.delete('/api/repos/delete', { schema: { hide: true } }, async (req) => {
    const ctx = hubCtx(req, deps);
    const { kind, id } = repoOfBody(req.body);
    await deleteRepo(ctx, reg, kind, id);
    return {};
  });

  hub.post('/api/validate-yaml', { schema: { hide: true } }, async (req) => {
    const b = (req.body ?? {}) as { content?: unknown };
    hubCtx(req, deps);
    if (typeof b.content !== 'string')
      throw new AppError('INVALID_ARGUMENT', 'content (the README.md text) is required');
    parseModelCard(b.content);
    return { errors: [], warnings: [] };
  });

  hub.post('/api/:type/:ns/:name/preupload/:rev', { schema: { hide: true } }, async (req) => {
    const ctx = hubCtx(req, deps);
    const p = req.params as P;
    // As on the Hub: a repo the caller cannot see is not found, here as on every repo route.
    await findRepo(ctx, kindOf(p.type!), parseRepoId(p.ns!, p.name!));
    const b = (req.body ?? {}) as { files?: unknown };
    if (!Array.isArray(b.files)) throw new AppError('INVALID_ARGUMENT', 'files must be a list of {path, size, sample}');
    return {
      files: b.files.slice(0, 1000).map((x: unknown) => {
        const f = (typeof x === 'object' && x !== null ? x : {}) as {
          path?: unknown;
          size?: unknown;
          sample?: unknown;
        };
        const size = typeof f.size === 'number' ? f.size : Number.POSITIVE_INFINITY;
        const sample = typeof f.sample === 'string' ? Buffer.from(f.sample, 'base64') : Buffer.alloc(0);
        const text = size <= REGULAR_MAX_BYTES && !sample.includes(0);
        return { path: f.path, uploadMode: text ? 'regular' : 'lfs', shouldIgnore: false };
      }),
    };
  });

  for (const prefix of ['', '/datasets']) {
    hub.post(`${prefix}/:ns/:repo/info/lfs/objects/batch`, { schema: { hide: true } }, async (req, reply) => {
      const ctx = hubCtx(req, deps);
      const p = req.params as P;
      if (!p.repo!.endsWith('.git'))
        throw new AppError('NOT_FOUND', 'LFS lives at <repo>.git/info/lfs', { hubErrorCode: 'RepoNotFound' });
      const id = parseRepoId(p.ns!, p.repo!.slice(0, -'.git'.length));
      const b = (req.body ?? {}) as {
        operation?: unknown;
        transfers?: unknown;
        objects?: unknown;
        hash_algo?: unknown;
      };
      if (b.operation !== 'upload')
        throw new AppError('INVALID_ARGUMENT', 'only the upload operation is offered; download files through resolve');
      if (b.hash_algo !== undefined && b.hash_algo !== 'sha256' && b.hash_algo !== 'sha_256') {
        throw new AppError('INVALID_ARGUMENT', `hash_algo ${String(b.hash_algo).slice(0, 40)} is not offered: sha256`);
      }
      if (!Array.isArray(b.objects) || b.objects.length > 1000)
        throw new AppError('INVALID_ARGUMENT', 'objects must be a list of at most 1000 {oid, size}');
      const transfers = Array.isArray(b.transfers)
        ? b.transfers.filter((t): t is string => typeof t === 'string')
        : ['basic'];
      const objects = b.objects.map(
        (o: { oid?: unknown; size?: unknown }) => ({ oid: String(o?.oid ?? ''), size: Number(o?.size) }) as BatchObject,
      );
      const out = await batch(ctx, reg, prefix ? 'dataset' : 'model', id, { objects, transfers }, baseUrlOf(req));
      reply.header('content-type', 'application/vnd.git-lfs+json');
      return { ...out, hash_algo: 'sha256' };
    });
  }

  const token = (q: unknown) => String((q as Record<string, unknown>)?.token ?? '');

  hub.put('/lfs/uploads/:id/parts/:n', { schema: { hide: true }, config: { auth: false } }, async (req, reply) => {
    const p = req.params as P;
    const length = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    const body = (req.body ?? req.raw) as Readable;
    const out = await putPart(deps.store.db, reg, p.id!, token(req.query), Number(p.n), body, length);
    return reply.header('etag', `"${unquote(out.etag)}"`).send({ etag: out.etag, complete: out.complete });
  });

  hub.get('/lfs/uploads/:id', { schema: { hide: true }, config: { auth: false } }, async (req) =>
    uploadStatus(deps.store.db, reg, (req.params as P).id!, token(req.query)),
  );

  hub.post('/lfs/uploads/:id', { schema: { hide: true }, config: { auth: false } }, async (req) => {
    await completeUpload(deps.store.db, reg, (req.params as P).id!, token(req.query), (req.body ?? {}) as never);
    return {};
  });

  hub.addContentTypeParser(
    'application/x-ndjson',
    { parseAs: 'buffer', bodyLimit: COMMIT_BODY_LIMIT },
    (_req, body, done) => done(null, body),
  );

  hub.post(
    '/api/:type/:ns/:name/commit/:rev',
    { schema: { hide: true }, bodyLimit: COMMIT_BODY_LIMIT },
    async (req) => {
      const ctx = hubCtx(req, deps);
      const p = req.params as P;
      const kind = kindOf(p.type!);
      const id = parseRepoId(p.ns!, p.name!);
      if (!Buffer.isBuffer(req.body))
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the commit as application/x-ndjson');
      const { header, ops } = parseCommitBody(req.body);
      const out = await commit(ctx, reg, kind, id, p.rev!, {
        summary: header.summary ?? '',
        description: header.description,
        parentCommit: header.parentCommit,
        ops,
      });
      return {
        success: true,
        commitOid: out.commit,
        commitUrl: `${repoUrl(baseUrlOf(req), kind, id)}/commit/${out.commit}`,
        commitMessage: header.summary ?? '',
      };
    },
  );
}

interface CommitHeader {
  summary?: string;
  description?: string;
  parentCommit?: string;
}

/** The NDJSON lines of a commit: one header first, then files, LFS files and deletions. */
export function parseCommitBody(body: Buffer): { header: CommitHeader; ops: CommitOp[] } {
  let header: CommitHeader | undefined;
  const ops: CommitOp[] = [];
  const lines = body.toString('utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let item: { key?: unknown; value?: Record<string, unknown> };
    try {
      item = JSON.parse(line);
    } catch {
      throw new AppError('INVALID_JSON', `commit line ${i + 1} is not JSON`);
    }
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new AppError('INVALID_ARGUMENT', `commit line ${i + 1} is not an object {key, value}`);
    const v = item.value ?? {};
    const str = (k: string) => {
      if (typeof v[k] !== 'string')
        throw new AppError('INVALID_ARGUMENT', `commit line ${i + 1}: ${k} must be a string`);
      return v[k] as string;
    };
    switch (item.key) {
      case 'header':
        if (header) throw new AppError('INVALID_ARGUMENT', 'a commit has one header');
        header = {
          summary: typeof v.summary === 'string' ? v.summary : undefined,
          description: typeof v.description === 'string' ? v.description : undefined,
          parentCommit: typeof v.parentCommit === 'string' ? v.parentCommit : undefined,
        };
        return;
      case 'file': {
        if (v.encoding !== undefined && v.encoding !== 'base64')
          throw new AppError('INVALID_ARGUMENT', `commit line ${i + 1}: encoding must be base64`);
        ops.push({ op: 'inline', path: str('path'), content: Buffer.from(str('content'), 'base64') });
        return;
      }
      case 'lfsFile':
        if (v.algo !== undefined && v.algo !== 'sha256')
          throw new AppError('INVALID_ARGUMENT', `commit line ${i + 1}: algo must be sha256`);
        if (typeof v.size !== 'number')
          throw new AppError('INVALID_ARGUMENT', `commit line ${i + 1}: size must be a number`);
        ops.push({ op: 'lfs', path: str('path'), sha256: str('oid'), size: v.size });
        return;
      case 'deletedFile':
        ops.push({ op: 'delete', path: str('path') });
        return;
      case 'deletedFolder':
        ops.push({ op: 'deleteFolder', path: str('path').replace(/\/+$/, '') });
        return;
      default:
        throw new AppError('INVALID_ARGUMENT', `commit line ${i + 1}: unknown key ${String(item.key).slice(0, 40)}`);
    }
  });
  if (!header) throw new AppError('INVALID_ARGUMENT', 'the commit has no header line');
  return { header, ops };
}
