// New versions: a commit applies file changes to its branch's current version and lands, signed,
// in one audited transaction, or not at all. The slow reads (headers of new model files, the
// model card) happen before the transaction; inside it the branch head is checked again, so a
// concurrent commit on the same parent gets 409 rather than losing its changes.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Ctx } from '../app/context.js';
import { write } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import type { Kysely } from 'kysely';
import type { CommitsTable, Database, RepoKind } from '../store/schema.js';
import { blobIdOf } from './crypto.js';
import { bufferSource, findBlobByDigest, formatOfSource, readBytes } from './content.js';
import type { Trx } from '../audit/journal.js';
import type { FormatInfo } from './formats.js';
import { MAX_MODEL_CARD_BYTES, type ModelCard, parseModelCard } from './model-card.js';
import { COMMIT_ID, type RepoId, SHA256_HEX, checkPath, checkRefName, repoIdText } from './names.js';
import type { Registry } from './registry.js';
import { type FoundRepo, branchHead, findRepo, requireWriter } from './repos.js';
import { type ManifestFile, signVersion } from './signing.js';
import { checkRoom } from './storage-quota.js';
import { locationFacts } from './store-choice.js';
import { storeInline } from './uploads.js';

export type CommitOp =
  | { readonly op: 'lfs'; readonly path: string; readonly sha256: string; readonly size: number }
  | { readonly op: 'inline'; readonly path: string; readonly content: Buffer }
  | { readonly op: 'delete'; readonly path: string }
  | { readonly op: 'deleteFolder'; readonly path: string };

export interface CommitRequest {
  readonly summary: string;
  readonly description?: string;
  /** The commit the client based its changes on; a different branch head is a conflict. */
  readonly parentCommit?: string;
  readonly ops: readonly CommitOp[];
  /** The workload attempt that produced this version (outputs of a training job). */
  readonly producer?: { readonly workloadId: string; readonly attempt: number };
}

export interface CommitResult {
  commit: string;
  parent: string;
  branch: string;
  files: number;
  bytes: number;
}

export const MAX_SUMMARY = 1000;
export const MAX_DESCRIPTION = 64 * 1024;

export function parseManifest(c: Pick<CommitsTable, 'manifest'>): ManifestFile[] {
  return JSON.parse(c.manifest) as ManifestFile[];
}

/** Applies a commit to `branch` (default main) of a repo. */
export async function commit(
  ctx: Ctx,
  reg: Registry,
  kind: RepoKind,
  id: RepoId,
  branch: string,
  req: CommitRequest,
): Promise<CommitResult> {
  checkRefName(branch);
  const r = await findRepo(ctx, kind, id);
  await requireWriter(ctx, r, `${kind}.commit`);
  if (req.summary.length > MAX_SUMMARY)
    throw new AppError('PAYLOAD_TOO_LARGE', `the summary is longer than ${MAX_SUMMARY} characters`);
  if ((req.description ?? '').length > MAX_DESCRIPTION)
    throw new AppError('PAYLOAD_TOO_LARGE', `the description is longer than ${MAX_DESCRIPTION} characters`);
  if (req.parentCommit !== undefined && req.parentCommit !== '' && !COMMIT_ID.test(req.parentCommit)) {
    throw new AppError('INVALID_ARGUMENT', 'parentCommit must be a 40-hex commit id');
  }
  const head = await branchHead(ctx.db, r.repo, branch);
  if (req.parentCommit && req.parentCommit !== (head?.id ?? '')) throw staleParent(branch, req.parentCommit, head?.id);

  const files = new Map<string, ManifestFile>((head ? parseManifest(head) : []).map((f) => [f.path, f]));
  const changed = new Set<string>();
  // Inline files are stored only once the whole commit has been checked: a refused commit
  // leaves nothing behind. Until then their bytes are read from here.
  const inline = new Map<string, Buffer>();
  for (const op of req.ops) checkPath(op.path);
  for (const op of req.ops) {
    if (op.op === 'delete') {
      if (!files.delete(op.path))
        throw new AppError('NOT_FOUND', `cannot delete ${op.path}: no such file in ${branch}`, {
          hubErrorCode: 'EntryNotFound',
        });
      continue;
    }
    if (op.op === 'deleteFolder') {
      const prefix = op.path.endsWith('/') ? op.path : `${op.path}/`;
      for (const p of [...files.keys()]) if (p.startsWith(prefix)) files.delete(p);
      continue;
    }
    if (changed.has(op.path)) throw new AppError('INVALID_ARGUMENT', `file ${op.path} appears twice in the commit`);
    changed.add(op.path);
    files.set(op.path, await fileOf(ctx, reg, r, op, inline));
  }
  if (files.size > reg.limits.maxFiles)
    throw new AppError('PAYLOAD_TOO_LARGE', `a version holds at most ${reg.limits.maxFiles} files`);
  checkNoFileUnderFile([...files.keys()]);
  const manifest = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const { card, formats } = await describeChanges(ctx.db, reg, r, manifest, changed, head, inline);
  if (inline.size > 0) {
    // The exact check is made again when the commit lands; this one keeps refused content out.
    const adding = await freshBytes(ctx.db, r.project.id, manifest);
    if (adding.bytes > 0) await checkRoom(ctx.db, reg, r.project.id, adding.bytes, { countOpenUploads: false });
    for (const content of new Set(inline.values()))
      await storeInline(ctx, reg, r.org.id, r.project.id, content, {
        action: `${kind}.upload`,
        resource: r.resource,
        projectId: r.project.id,
      });
  }
  // The commit is the audited write that makes uploaded bytes part of the registry: its entry
  // records where the new files' bytes are and the policy set that allows them there.
  const facts = await locationFacts(
    ctx.db,
    reg,
    r.org.id,
    manifest.filter((f) => changed.has(f.path)).map((f) => f.blobId),
  );

  const createdAt = nowIso();
  const parent = head?.id ?? '';
  const seq = (head?.seq ?? (await lastSeq(ctx, r.repo.id))) + 1;
  const summary = req.summary || (head ? `Update ${repoIdText(id)}` : `Initial version of ${repoIdText(id)}`);
  const producer = req.producer ? { workloadId: req.producer.workloadId, attempt: req.producer.attempt } : undefined;
  const commitId = createHash('sha256')
    .update(
      canonicalize({
        repo: r.repo.id,
        parent,
        seq,
        manifest,
        summary,
        description: req.description ?? '',
        producer: producer ?? null,
        createdAt,
        author: ctx.caller.principal,
      }) ?? '',
    )
    .digest('hex')
    .slice(0, 40);
  const envelope = signVersion(
    { repo: repoIdText(id), kind, commit: commitId, parent, files: manifest, producer },
    reg.signer,
  );
  const total = manifest.reduce((n, f) => n + f.size, 0);
  const row: CommitsTable = {
    id: commitId,
    repo_id: r.repo.id,
    parent_id: parent,
    seq,
    summary,
    description: req.description ?? '',
    manifest: canonicalize(manifest) ?? '[]',
    total_bytes: total,
    file_count: manifest.length,
    card: JSON.stringify(card ?? {}),
    formats: JSON.stringify(formats),
    envelope: JSON.stringify(envelope),
    producer_workload_id: producer?.workloadId ?? '',
    producer_attempt: producer?.attempt ?? 0,
    created_at: createdAt,
    created_by: ctx.caller.principal,
  };
  const spec = { action: `${kind}.commit`, resource: r.resource, orgId: r.org.id, projectId: r.project.id };
  return write(ctx, spec, async (trx) => {
    const now = await branchHead(trx, r.repo, branch);
    if ((now?.id ?? '') !== parent) throw staleParent(branch, parent, now?.id);
    const { fresh, bytes: adding } = await freshBytes(trx, r.project.id, manifest);
    if (adding > 0) await checkRoom(trx, reg, r.project.id, adding, { countOpenUploads: false });
    await trx.insertInto('commits').values(row).execute();
    await trx
      .insertInto('repo_refs')
      .values({
        repo_id: r.repo.id,
        name: branch,
        kind: 'branch',
        commit_id: commitId,
        updated_at: createdAt,
        updated_by: ctx.caller.principal,
      })
      .onConflict((oc) =>
        oc
          .columns(['repo_id', 'name'])
          .doUpdateSet({ commit_id: commitId, updated_at: createdAt, updated_by: ctx.caller.principal }),
      )
      .execute();
    for (const [blobId, size] of fresh) {
      await trx
        .insertInto('project_blobs')
        .values({ project_id: r.project.id, blob_id: blobId, size })
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    await trx.updateTable('repos').set({ updated_at: createdAt }).where('id', '=', r.repo.id).execute();
    if (producer) {
      await trx
        .insertInto('lineage_edges')
        .values({
          id: newId('lin'),
          org_id: r.org.id,
          from_kind: 'attempt',
          from_id: `${producer.workloadId}:${producer.attempt}`,
          to_kind: 'commit',
          to_id: commitId,
          created_at: createdAt,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    const result: CommitResult = { commit: commitId, parent, branch, files: manifest.length, bytes: total };
    return {
      result,
      after: { commit: commitId, parent, branch, files: manifest.length, bytes: total, summary },
      ...(facts ? { facts } : {}),
    };
  });
}

/** The blobs of a manifest the project does not hold yet, and their bytes. */
async function freshBytes(
  db: Kysely<Database> | Trx,
  projectId: string,
  manifest: readonly ManifestFile[],
): Promise<{ fresh: Map<string, number>; bytes: number }> {
  const held = new Set(
    (await db.selectFrom('project_blobs').select('blob_id').where('project_id', '=', projectId).execute()).map(
      (b) => b.blob_id,
    ),
  );
  const fresh = new Map<string, number>();
  for (const f of manifest) if (!held.has(f.blobId)) fresh.set(f.blobId, f.size);
  return { fresh, bytes: [...fresh.values()].reduce((n, s) => n + s, 0) };
}

function staleParent(branch: string, given: string, head: string | undefined): AppError {
  return new AppError(
    'CONFLICT',
    `${branch} is at ${head || '(no commit)'}, not at ${given || '(no commit)'}: fetch the new head and commit again`,
    { branch, head: head ?? '' },
  );
}

async function lastSeq(ctx: Ctx, repoId: string): Promise<number> {
  const r = await ctx.db
    .selectFrom('commits')
    .select((eb) => eb.fn.max<number>('seq').as('n'))
    .where('repo_id', '=', repoId)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** The manifest entry of an added file: its content must be a blob the org holds, of that size. */
async function fileOf(
  ctx: Ctx,
  reg: Registry,
  r: FoundRepo,
  op: Extract<CommitOp, { op: 'lfs' | 'inline' }>,
  inline: Map<string, Buffer>,
): Promise<ManifestFile> {
  if (op.op === 'inline') {
    if (op.content.length > reg.limits.inlineMaxBytes) {
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `inline file ${op.path} is over ${reg.limits.inlineMaxBytes} bytes; upload it through LFS`,
      );
    }
    const sha256 = createHash('sha256').update(op.content).digest('hex');
    inline.set(op.path, op.content);
    const blobId = blobIdOf(await reg.keys.blobIdKey(r.org.id), sha256);
    return { path: op.path, size: op.content.length, sha256, blobId };
  }
  if (!SHA256_HEX.test(op.sha256))
    throw new AppError('INVALID_ARGUMENT', `file ${op.path}: oid must be 64 lowercase hex digits`);
  const blob = await findBlobByDigest(ctx.db, reg, r.org.id, op.sha256);
  if (!blob) {
    throw new AppError(
      'BLOB_NOT_FOUND',
      `file ${op.path} names content ${op.sha256} that was never uploaded; upload it first`,
      { path: op.path, oid: op.sha256 },
    );
  }
  if (Number(blob.size) !== op.size) {
    throw new AppError(
      'BLOB_NOT_FOUND',
      `file ${op.path}: the content ${op.sha256} has ${blob.size} bytes, not ${op.size}`,
      { path: op.path },
    );
  }
  return { path: op.path, size: op.size, sha256: op.sha256, blobId: blob.blob_id };
}

/** A path cannot be both a file and a folder of other files. */
function checkNoFileUnderFile(paths: readonly string[]): void {
  const set = new Set(paths);
  for (const p of paths) {
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) {
      if (set.has(p.slice(0, i)))
        throw new AppError('INVALID_ARGUMENT', `${p.slice(0, i)} is a file, so ${p} cannot be inside it`);
    }
  }
}

/** Model card and file formats of the new version: read for changed files, carried over otherwise. */
async function describeChanges(
  db: Kysely<Database>,
  reg: Registry,
  r: FoundRepo,
  manifest: readonly ManifestFile[],
  changed: ReadonlySet<string>,
  head: CommitsTable | undefined,
  inline: ReadonlyMap<string, Buffer>,
): Promise<{ card: ModelCard | undefined; formats: Record<string, FormatInfo> }> {
  const before = head ? (JSON.parse(head.formats) as Record<string, FormatInfo>) : {};
  const formats: Record<string, FormatInfo> = {};
  let card: ModelCard | undefined = head && head.card !== '{}' ? (JSON.parse(head.card) as ModelCard) : undefined;
  const paths = new Set(manifest.map((f) => f.path));
  if (!paths.has('README.md')) card = undefined;
  for (const f of manifest) {
    if (!changed.has(f.path)) {
      if (before[f.path]) formats[f.path] = before[f.path]!;
      continue;
    }
    const bytes = inline.get(f.path);
    const blob = bytes ? undefined : await findBlobByDigest(db, reg, r.org.id, f.sha256);
    if (!bytes && !blob) continue;
    const read = bytes ? bufferSource(bytes) : (start: number, length: number) => readBytes(reg, blob!, start, length);
    if (f.path === 'README.md') {
      if (f.size > MAX_MODEL_CARD_BYTES) {
        throw new AppError(
          'MODEL_CARD_TOO_LARGE',
          `README.md is ${f.size} bytes; a model card may have at most ${MAX_MODEL_CARD_BYTES}`,
        );
      }
      card = parseModelCard(await read(0, f.size));
      continue;
    }
    const info = await formatOfSource(read, f.size, f.path);
    if (info) formats[f.path] = info;
  }
  return { card, formats };
}
