// Hub download side: repo info (sha, siblings), tree listing with Link pagination, paths-info, and
// HEAD/GET/Range on resolve with the headers the clients rely on (X-Repo-Commit, ETag and
// X-Linked-Etag, X-Linked-Size, Content-Range). No Xet hints, so clients use plain HTTP.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireTenantDataAccess } from '../../app/tenant-data.js';
import { AppError } from '../../domain/errors.js';
import { parseManifest } from '../../registry/commits.js';
import { findBlob, openBlob } from '../../registry/content.js';
import type { ModelCard } from '../../registry/model-card.js';
import { DEFAULT_BRANCH, parseRepoId, repoIdText } from '../../registry/names.js';
import { type FoundRepo, branchHead, findRepo, resolveRevision } from '../../registry/repos.js';
import type { ManifestFile } from '../../registry/signing.js';
import type { CommitsTable } from '../../store/schema.js';
import { type HubDeps, baseUrlOf, hubCtx, kindOf } from './context.js';

type P = Record<string, string>;
const TREE_PAGE = 1000;
/** What a Git LFS pointer file of a blob would weigh; clients show it, nothing depends on it. */
const POINTER_SIZE = 134;

/** A revision of a URL: `HEAD` is the default branch. */
const revOf = (rev: string) => (rev === 'HEAD' ? DEFAULT_BRANCH : rev);

function entryNotFound(path: string): AppError {
  return new AppError('NOT_FOUND', `no file ${path.slice(0, 300)} in this revision`, { hubErrorCode: 'EntryNotFound' });
}

function treeEntry(f: ManifestFile) {
  return {
    type: 'file' as const,
    path: f.path,
    size: f.size,
    oid: f.sha256.slice(0, 40),
    lfs: { oid: f.sha256, size: f.size, pointerSize: POINTER_SIZE },
  };
}

function dirEntry(path: string, commit: string) {
  return {
    type: 'directory' as const,
    path,
    size: 0,
    oid: `${commit.slice(0, 20)}${Buffer.from(path).toString('hex').slice(0, 20).padEnd(20, '0')}`,
  };
}

/** Repo info in the Hub's shape; `commit` undefined for a repo without versions yet. */
function repoInfoBody(r: FoundRepo, commit: CommitsTable | undefined) {
  const files = commit ? parseManifest(commit) : [];
  const card = commit && commit.card !== '{}' ? (JSON.parse(commit.card) as ModelCard) : undefined;
  const id = repoIdText(r.id);
  return {
    _id: r.repo.id,
    id,
    ...(r.repo.kind === 'model' ? { modelId: id } : {}),
    author: `${r.id.org}.${r.id.project}`,
    sha: commit?.id ?? null,
    lastModified: commit?.created_at ?? r.repo.updated_at,
    createdAt: r.repo.created_at,
    private: r.repo.private === 1,
    gated: false,
    disabled: false,
    downloads: 0,
    likes: 0,
    tags: card?.tags ?? [],
    ...(card?.pipelineTag ? { pipeline_tag: card.pipelineTag } : {}),
    ...(card?.libraryName ? { library_name: card.libraryName } : {}),
    ...(card ? { cardData: card } : {}),
    siblings: files.map((f) => ({
      rfilename: f.path,
      size: f.size,
      blobId: f.sha256.slice(0, 40),
      lfs: { size: f.size, sha256: f.sha256, pointerSize: POINTER_SIZE },
    })),
  };
}

export async function downloadRoutes(hub: FastifyInstance, deps: HubDeps): Promise<void> {
  const found = async (req: { params: unknown }, ctx: ReturnType<typeof hubCtx>) => {
    const p = req.params as P;
    const kind = kindOf(p.type ?? (p.ds ? 'datasets' : 'models'));
    return findRepo(ctx, kind, parseRepoId(p.ns!, p.name!));
  };

  const info = async (req: FastifyRequest) => {
    const ctx = hubCtx(req, deps);
    const r = await found(req, ctx);
    const rev = revOf((req.params as P).rev ?? DEFAULT_BRANCH);
    const commit =
      rev === DEFAULT_BRANCH ? await branchHead(ctx.db, r.repo, rev) : await resolveRevision(ctx.db, r.repo, rev);
    return repoInfoBody(r, commit);
  };
  hub.get('/api/:type/:ns/:name', { schema: { hide: true } }, info);
  hub.get('/api/:type/:ns/:name/revision/:rev', { schema: { hide: true } }, info);

  /** The files of a revision; an empty list for the default branch of a repo without versions. */
  async function filesAt(
    ctx: ReturnType<typeof hubCtx>,
    r: FoundRepo,
    rev: string,
  ): Promise<{ commit?: CommitsTable; files: ManifestFile[] }> {
    if (rev === DEFAULT_BRANCH) {
      const head = await branchHead(ctx.db, r.repo, rev);
      return { commit: head, files: head ? parseManifest(head) : [] };
    }
    const commit = await resolveRevision(ctx.db, r.repo, rev);
    return { commit, files: parseManifest(commit) };
  }

  const tree = async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = hubCtx(req, deps);
    const r = await found(req, ctx);
    const p = req.params as P;
    const q = req.query as Record<string, string | undefined>;
    const { commit, files } = await filesAt(ctx, r, revOf(p.rev!));
    const dir = (p['*'] ?? '').replace(/\/+$/, '');
    const prefix = dir ? `${dir}/` : '';
    if (dir && !files.some((f) => f.path.startsWith(prefix))) throw entryNotFound(dir);
    const recursive = q.recursive === 'true' || q.recursive === '1';
    const entries: (ReturnType<typeof treeEntry> | ReturnType<typeof dirEntry>)[] = [];
    const dirs = new Set<string>();
    for (const f of files) {
      if (!f.path.startsWith(prefix)) continue;
      const rest = f.path.slice(prefix.length).split('/');
      // Directories on the way to the file, once each (all of them when recursive).
      for (let i = 1; i < rest.length && (recursive || i === 1); i++) {
        const d = prefix + rest.slice(0, i).join('/');
        if (!dirs.has(d)) {
          dirs.add(d);
          entries.push(dirEntry(d, commit?.id ?? ''));
        }
      }
      if (recursive || rest.length === 1) entries.push(treeEntry(f));
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const start = q.cursor ? Number.parseInt(Buffer.from(q.cursor, 'base64url').toString(), 10) : 0;
    if (!Number.isInteger(start) || start < 0)
      throw new AppError('INVALID_ARGUMENT', 'cursor is not one this server gave');
    const pageItems = entries.slice(start, start + TREE_PAGE);
    if (start + TREE_PAGE < entries.length) {
      const next = new URL(`${baseUrlOf(req)}${req.url}`);
      next.searchParams.set('cursor', Buffer.from(String(start + TREE_PAGE)).toString('base64url'));
      reply.header('link', `<${next.href}>; rel="next"`);
    }
    return pageItems;
  };
  hub.get('/api/:type/:ns/:name/tree/:rev', { schema: { hide: true } }, tree);
  hub.get('/api/:type/:ns/:name/tree/:rev/*', { schema: { hide: true } }, tree);

  hub.post('/api/:type/:ns/:name/paths-info/:rev', { schema: { hide: true } }, async (req) => {
    const ctx = hubCtx(req, deps);
    const r = await found(req, ctx);
    const body = (req.body ?? {}) as { paths?: unknown };
    const paths = Array.isArray(body.paths)
      ? body.paths.filter((x): x is string => typeof x === 'string').slice(0, 10_000)
      : [];
    const { commit, files } = await filesAt(ctx, r, revOf((req.params as P).rev!));
    const byPath = new Map(files.map((f) => [f.path, f]));
    const out: unknown[] = [];
    for (const path of paths) {
      const f = byPath.get(path);
      if (f) out.push(treeEntry(f));
      else if (files.some((x) => x.path.startsWith(`${path}/`))) out.push(dirEntry(path, commit?.id ?? ''));
    }
    return out;
  });

  const resolve = (head: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = hubCtx(req, deps);
    const r = await found(req, ctx);
    const p = req.params as P;
    const path = p['*'] ?? '';
    const { commit, files } = await filesAt(ctx, r, revOf(p.rev!));
    const f = files.find((x) => x.path === path);
    if (!commit || !f) throw entryNotFound(path);
    const blob = await findBlob(ctx.db, r.org.id, f.blobId);
    if (!blob) throw new AppError('INTERNAL', `the content of ${path} is missing from the store`);
    // Content (not HEAD's metadata): an operator outside the org only under break-glass.
    if (!head) await requireTenantDataAccess(ctx, r.org, 'artifacts', `${r.resource}/files/${path}@${commit.id}`);
    const range = parseRange(req.headers.range, f.size);
    const etag = `"${f.sha256}"`;
    reply
      .header('x-repo-commit', commit.id)
      .header('etag', etag)
      .header('x-linked-etag', etag)
      .header('x-linked-size', String(f.size))
      .header('accept-ranges', 'bytes')
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', `attachment; filename="${encodeURIComponent(path.split('/').at(-1)!)}"`);
    if (range === 'unsatisfiable') {
      reply.status(416).header('content-range', `bytes */${f.size}`);
      return reply.send();
    }
    if (range) {
      reply
        .status(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${f.size}`)
        .header('content-length', String(range.end - range.start + 1));
    } else {
      reply.header('content-length', String(f.size));
    }
    if (head || f.size === 0) return reply.send();
    return reply.send(await openBlob(deps.registry, blob, range));
  };
  for (const prefix of ['', '/datasets']) {
    const url = `${prefix}/:ns/:name/resolve/:rev/*`;
    const ds = prefix ? { ds: true } : {};
    hub.get(url, { schema: { hide: true }, exposeHeadRoute: false }, (req, reply) => {
      Object.assign(req.params as object, ds);
      return resolve(false)(req, reply);
    });
    hub.head(url, { schema: { hide: true } }, (req, reply) => {
      Object.assign(req.params as object, ds);
      return resolve(true)(req, reply);
    });
  }
}

/** One byte range of a Range header (`bytes=a-b`, `a-`, `-n`); undefined for none or several. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined | 'unsatisfiable' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}
