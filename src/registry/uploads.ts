// Uploads of blobs, the Git LFS way the Hub clients speak: a batch call says which objects the
// org lacks and where to send them; each object goes up in one PUT (basic) or in parts
// (multipart), any order, in parallel, resumable part by part; the digest of the whole is checked
// before the blob exists. Nothing an upload writes is visible in a repo until a commit names it.
//
// Content is encrypted on the way in (crypto.ts): the store never holds a plaintext byte, parts
// included. Blob ids are keyed per org, so dedup happens within an org and never across orgs.
import { type Hash, createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Ctx } from '../app/context.js';
import { recordDenied } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import type { Database, RepoKind, UploadsTable } from '../store/schema.js';
import type { StoredPart } from './blob-store.js';
import {
  SEGMENT_BYTES,
  TAG_BYTES,
  blobIdOf,
  decryptRange,
  deriveObjectKey,
  encryptStream,
  encryptedOffset,
  newSalt,
} from './crypto.js';
import { SHA256_HEX, type RepoId } from './names.js';
import { findBlobByDigest } from './content.js';
import { type Registry, storeNamed } from './registry.js';
import { claimPart, dropDigest, partHashed, takeDigest } from './running-digest.js';
import { findRepo, requireWriter } from './repos.js';
import { checkRoom } from './storage-quota.js';
import { type ChosenStore, chooseStore } from './store-choice.js';

export interface BatchObject {
  readonly oid: string;
  readonly size: number;
}

/** One object of the batch answer, in the Git LFS shape. */
export interface BatchAnswer {
  oid: string;
  size: number;
  authenticated?: boolean;
  actions?: { upload: { href: string; header?: Record<string, string>; expires_in?: number } };
  error?: { code: number; message: string };
}

export interface UploadView {
  oid: string;
  size: number;
  chunkSize: number;
  status: UploadsTable['status'];
  parts: { partNumber: number; etag: string; size: number }[];
}

/** How many parts an object of `size` has at `chunk` bytes per part (at least one). */
export function partCount(size: number, chunk: number): number {
  return Math.max(1, Math.ceil(size / chunk));
}

/** Plaintext bytes of part n (1-based). */
export function partLength(size: number, chunk: number, n: number): number {
  return Math.max(0, Math.min(chunk, size - (n - 1) * chunk));
}

function partSegments(size: number, chunk: number, n: number): { first: number; count: number } {
  const first = ((n - 1) * chunk) / SEGMENT_BYTES;
  return { first, count: Math.max(1, Math.ceil(partLength(size, chunk, n) / SEGMENT_BYTES)) };
}

const totalSegments = (size: number) => Math.max(1, Math.ceil(size / SEGMENT_BYTES));

/** The Hub's batch call: which of these objects to send, and where. */
export async function batch(
  ctx: Ctx,
  reg: Registry,
  kind: RepoKind,
  id: RepoId,
  req: { objects: readonly BatchObject[]; transfers: readonly string[] },
  baseUrl: string,
): Promise<{ transfer: 'basic' | 'multipart'; objects: BatchAnswer[] }> {
  const r = await findRepo(ctx, kind, id);
  await requireWriter(ctx, r, `${kind}.upload`);
  const multipart = req.transfers.includes('multipart');
  if (!multipart && !req.transfers.includes('basic') && req.transfers.length > 0) {
    throw new AppError(
      'UNPROCESSABLE',
      `no transfer fabrik offers: it speaks basic and multipart (asked: ${req.transfers.join(', ')})`,
    );
  }
  const answers: BatchAnswer[] = [];
  const toSend: { o: BatchObject; i: number }[] = [];
  for (const o of req.objects) {
    if (!SHA256_HEX.test(o.oid)) {
      answers.push({
        oid: String(o.oid).slice(0, 80),
        size: o.size,
        error: { code: 422, message: 'oid must be 64 lowercase hex digits (sha256)' },
      });
      continue;
    }
    if (!Number.isSafeInteger(o.size) || o.size < 0) {
      answers.push({ oid: o.oid, size: o.size, error: { code: 422, message: 'size must be a non-negative integer' } });
      continue;
    }
    const have = await findBlobByDigest(ctx.db, reg, r.org.id, o.oid);
    if (have && Number(have.size) === o.size) {
      answers.push({ oid: o.oid, size: o.size });
      continue;
    }
    toSend.push({ o, i: answers.length });
    answers.push({ oid: o.oid, size: o.size });
  }
  // An object with an open upload of this project is counted among the uploads in progress
  // already: resuming it adds nothing.
  const resuming = new Set(
    toSend.length === 0
      ? []
      : (
          await ctx.db
            .selectFrom('uploads')
            .select(['sha256', 'size'])
            .where('project_id', '=', r.project.id)
            .where('status', '=', 'open')
            .where('expires_at', '>', nowIso())
            .where(
              'sha256',
              'in',
              toSend.map((s) => s.o.oid),
            )
            .execute()
        ).map((u) => `${u.sha256}:${Number(u.size)}`),
  );
  const newBytes = toSend.reduce((n, s) => n + (resuming.has(`${s.o.oid}:${s.o.size}`) ? 0 : s.o.size), 0);
  if (newBytes > 0) await checkRoom(ctx.db, reg, r.project.id, newBytes, { countOpenUploads: true });
  const useMultipart = multipart && toSend.some((s) => s.o.size > reg.limits.basicMaxBytes);
  if (toSend.length > 0) {
    // One store for the whole batch: the first the org's sovereignty policy allows.
    const where = await storeFor(ctx, reg, r.org.id, {
      action: `${kind}.upload`,
      resource: r.resource,
      projectId: r.project.id,
    });
    for (const { o, i } of toSend) {
      const big = useMultipart && o.size > reg.limits.basicMaxBytes;
      const u = await openUpload(ctx, reg, r.org.id, r.project.id, o, big, where);
      answers[i] = {
        oid: o.oid,
        size: o.size,
        authenticated: true,
        actions: { upload: uploadAction(reg, u, baseUrl) },
      };
    }
  }
  return { transfer: useMultipart ? 'multipart' : 'basic', objects: answers };
}

/** The store new bytes of the org go to; a refusal by policy is on the audit record too. */
async function storeFor(
  ctx: Ctx,
  reg: Registry,
  orgId: string,
  spec: { action: string; resource: string; projectId: string },
): Promise<ChosenStore> {
  try {
    return await chooseStore(ctx.db, reg, orgId);
  } catch (err) {
    if (err instanceof AppError && err.code === 'POLICY_DENIED') {
      await recordDenied(
        ctx.db,
        { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId },
        { ...spec, orgId },
      );
    }
    throw err;
  }
}

/**
 * The open upload of this content in the org (resume), or a new one. An open upload is resumed
 * only in the store the policy chooses now: one begun elsewhere before a policy change is left to expire.
 */
async function openUpload(
  ctx: Ctx,
  reg: Registry,
  orgId: string,
  projectId: string,
  o: BatchObject,
  multipart: boolean,
  where: ChosenStore,
): Promise<UploadsTable> {
  const open = await ctx.db
    .selectFrom('uploads')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('sha256', '=', o.oid)
    .where('status', '=', 'open')
    .where('expires_at', '>', nowIso())
    .where('store', '=', where.store.name)
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
  const chunk = chunkFor(reg, o.size, multipart);
  if (open && Number(open.size) === o.size && Number(open.chunk_size) === chunk) return open;
  return newUpload(
    ctx.db,
    reg,
    { orgId, projectId, sha256: o.oid, size: o.size, chunk, actor: ctx.caller.principal },
    where,
  );
}

/** Plaintext bytes per part of an upload: one part up to basicMaxBytes (rounded up to a segment), else the chunk size. */
export function chunkFor(reg: Registry, size: number, multipart: boolean): number {
  return multipart ? reg.limits.chunkBytes : Math.max(SEGMENT_BYTES, Math.ceil(size / SEGMENT_BYTES) * SEGMENT_BYTES);
}

/**
 * A new upload row and its object, encrypted under the org's current data key, in the store the
 * org's sovereignty policy allows (`where`, or chosen here: POLICY_DENIED when none may hold it).
 */
export async function newUpload(
  db: Kysely<Database>,
  reg: Registry,
  u: { orgId: string; projectId: string; sha256: string; size: number; chunk: number; actor: string },
  where?: ChosenStore,
): Promise<UploadsTable> {
  const target = (where ?? (await chooseStore(db, reg, u.orgId))).store;
  const key = await reg.keys.current(u.orgId);
  const id = newId('upl');
  const storageKey = `${u.orgId}_${id}`.replace(/[^a-z0-9_-]/gi, '');
  const handle = await target.store.start(storageKey);
  const now = Date.now();
  const row: UploadsTable = {
    id,
    org_id: u.orgId,
    project_id: u.projectId,
    sha256: u.sha256,
    size: u.size,
    chunk_size: u.chunk,
    storage_key: storageKey,
    store_handle: handle,
    store: target.name,
    key_id: key.keyId,
    salt: newSalt().toString('base64'),
    status: 'open',
    created_at: new Date(now).toISOString(),
    created_by: u.actor,
    expires_at: new Date(now + reg.limits.uploadTtlMs).toISOString(),
  };
  await db.insertInto('uploads').values(row).execute();
  return row;
}

function uploadAction(reg: Registry, u: UploadsTable, baseUrl: string) {
  const t = encodeURIComponent(reg.uploadTokens.tokenFor(u.id));
  const base = `${baseUrl}/hub/lfs/uploads/${u.id}`;
  const expires_in = Math.max(0, Math.floor((Date.parse(u.expires_at) - Date.now()) / 1000));
  const n = partCount(Number(u.size), Number(u.chunk_size));
  // One part: a basic PUT of the whole. The JS client picks multipart by the chunk_size header.
  if (n === 1) return { href: `${base}/parts/1?token=${t}`, expires_in };
  const header: Record<string, string> = { chunk_size: String(u.chunk_size) };
  for (let i = 1; i <= n; i++) header[String(i).padStart(5, '0')] = `${base}/parts/${i}?token=${t}`;
  return { href: `${base}?token=${t}`, header, expires_in };
}

/** An upload by id and token, refused alike when either is wrong (no probing of ids). */
async function uploadFor(db: Kysely<Database>, reg: Registry, id: string, token: string): Promise<UploadsTable> {
  const u = reg.uploadTokens.matches(id, token)
    ? await db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst()
    : undefined;
  if (!u) throw new AppError('NOT_FOUND', 'no such upload, or its token does not match');
  return u;
}

function requireOpen(u: UploadsTable): void {
  if (u.status !== 'open') throw new AppError('CONFLICT', `upload ${u.id} is ${u.status}`);
  if (u.expires_at <= nowIso())
    throw new AppError('CONFLICT', `upload ${u.id} expired at ${u.expires_at}; start again with a new batch call`);
}

export async function uploadStatus(
  db: Kysely<Database>,
  reg: Registry,
  id: string,
  token: string,
): Promise<UploadView> {
  const u = await uploadFor(db, reg, id, token);
  const parts = await db.selectFrom('upload_parts').selectAll().where('upload_id', '=', id).orderBy('part').execute();
  return {
    oid: u.sha256,
    size: Number(u.size),
    chunkSize: Number(u.chunk_size),
    status: u.status,
    parts: parts.map((p) => ({ partNumber: p.part, etag: p.etag, size: Number(p.size) })),
  };
}

/** Counts bytes and refuses more than expected, so an oversized part never reaches the store. */
class Measured extends Transform {
  bytes = 0;
  constructor(private readonly expected: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected)
      cb(new AppError('INVALID_ARGUMENT', `part is longer than the ${this.expected} bytes expected`));
    else cb(null, chunk);
  }
}

/** Parts being written by this process now, as `<upload id>:<part>`. */
const writing = new Set<string>();

/**
 * Stores part n of an upload from `body`. A single-part upload (basic) is checked against its
 * digest and becomes a blob at once; a multipart part is confirmed and waits for completion.
 */
export async function putPart(
  db: Kysely<Database>,
  reg: Registry,
  id: string,
  token: string,
  n: number,
  body: Readable,
  contentLength: number | undefined,
): Promise<{ etag: string; complete: boolean }> {
  const u = await uploadFor(db, reg, id, token);
  requireOpen(u);
  const size = Number(u.size);
  const chunk = Number(u.chunk_size);
  const count = partCount(size, chunk);
  if (!Number.isInteger(n) || n < 1 || n > count)
    throw new AppError('INVALID_ARGUMENT', `part ${n} is out of range: this upload has parts 1..${count}`);
  const expected = partLength(size, chunk, n);
  if (contentLength !== undefined && contentLength !== expected) {
    throw new AppError('INVALID_ARGUMENT', `part ${n} must be ${expected} bytes, Content-Length says ${contentLength}`);
  }
  const key = await reg.keys.byId(u.org_id, u.key_id);
  const objectKey = deriveObjectKey(key, Buffer.from(u.salt, 'base64'));
  const seg = partSegments(size, chunk, n);
  const measured = new Measured(expected);
  const whole = count === 1 ? createHash('sha256') : undefined;
  // One write of a part at a time: with two, which bytes the store keeps is anyone's guess (or a
  // mix of both), while a digest computed on the way in, and the etag recorded, may be the other's.
  const slot = `${id}:${n}`;
  if (writing.has(slot))
    throw new AppError(
      'CONFLICT',
      `part ${n} of upload ${id} is being written by another request; send it again later`,
    );
  writing.add(slot);
  try {
    const running = count > 1 ? claimPart(id, n) : undefined;
    const hash = whole ?? running;
    const tap = new PassThrough();
    if (hash) tap.on('data', (b: Buffer) => hash.update(b));
    const encrypted = encryptStream(objectKey, seg.first, totalSegments(size));
    // An error anywhere on the way (the client leaving, a part too long) ends the store's read with
    // it. Every stream keeps an error listener for good: an error the store is not (or no longer)
    // listening for must not go unhandled, which would take the process down.
    const relay = (err: Error) => {
      if (!encrypted.destroyed) encrypted.destroy(err);
    };
    body.on('error', relay);
    measured.on('error', relay);
    tap.on('error', relay);
    encrypted.on('error', () => undefined);
    body.pipe(measured).pipe(tap).pipe(encrypted);
    const stored = await storeNamed(reg, u.store)
      .store.writePart(
        u.storage_key,
        u.store_handle,
        n,
        encryptedOffset(seg.first),
        expected + seg.count * TAG_BYTES,
        encrypted,
      )
      .catch((err) => {
        if (running) dropDigest(id);
        // What the client still sends is read and dropped, as Node does with a body nobody reads:
        // left paused, it would stall the connection, and the next request on it would never arrive.
        body.unpipe();
        body.resume();
        throw err;
      });
    if (measured.bytes !== expected) {
      if (running) dropDigest(id);
      throw new AppError('INVALID_ARGUMENT', `part ${n} was cut short: ${measured.bytes} of ${expected} bytes arrived`);
    }
    await db
      .insertInto('upload_parts')
      .values({ upload_id: id, part: n, etag: stored.etag, size: expected, created_at: nowIso() })
      .onConflict((oc) =>
        oc.columns(['upload_id', 'part']).doUpdateSet({ etag: stored.etag, size: expected, created_at: nowIso() }),
      )
      .execute();
    if (!whole) {
      if (running) partHashed(id, n);
      return { etag: stored.etag, complete: false };
    }
    if (whole.digest('hex') !== u.sha256) {
      await abortUpload(db, reg, u);
      throw digestMismatch(u.sha256);
    }
    await finishBlob(db, reg, u, [stored], { verified: true });
    return { etag: stored.etag, complete: true };
  } finally {
    writing.delete(slot);
  }
}

/** ETags go out quoted, as HTTP writes them; clients echo them back either way. */
export const unquote = (etag: string) =>
  String(etag)
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');

function digestMismatch(oid: string): AppError {
  return new AppError('DIGEST_MISMATCH', `the content's sha256 is not ${oid}; the upload was dropped, send it again`);
}

/** Completion of a multipart upload: every part once, with the ETags the server gave. */
export async function completeUpload(
  db: Kysely<Database>,
  reg: Registry,
  id: string,
  token: string,
  body: { oid?: string; parts?: { partNumber: number; etag: string }[] },
): Promise<void> {
  const u = await uploadFor(db, reg, id, token);
  if (u.status === 'complete') return;
  requireOpen(u);
  if (body.oid !== undefined && body.oid !== u.sha256)
    throw new AppError('INVALID_ARGUMENT', `oid ${String(body.oid).slice(0, 80)} is not this upload's (${u.sha256})`);
  const count = partCount(Number(u.size), Number(u.chunk_size));
  const stored = new Map(
    (await db.selectFrom('upload_parts').selectAll().where('upload_id', '=', id).execute()).map((p) => [p.part, p]),
  );
  const given: unknown = body.parts ?? [];
  if (!Array.isArray(given) || given.some((p) => typeof p !== 'object' || p === null || Array.isArray(p)))
    throw new AppError('INVALID_ARGUMENT', 'parts must be a list of {partNumber, etag}');
  const seen = new Set<number>();
  for (const p of given as { partNumber: number; etag: unknown }[]) {
    if (
      typeof p.partNumber !== 'number' ||
      !Number.isInteger(p.partNumber) ||
      p.partNumber < 1 ||
      p.partNumber > count
    ) {
      throw new AppError('INVALID_ARGUMENT', `part ${String(p.partNumber).slice(0, 40)} is out of range 1..${count}`);
    }
    if (seen.has(p.partNumber)) throw new AppError('INVALID_ARGUMENT', `part ${p.partNumber} is listed twice`);
    seen.add(p.partNumber);
    const s = stored.get(p.partNumber);
    if (!s) throw new AppError('INVALID_ARGUMENT', `part ${p.partNumber} was never stored; send it first`);
    if (typeof p.etag !== 'string' || unquote(s.etag) !== unquote(p.etag))
      throw new AppError('INVALID_ARGUMENT', `part ${p.partNumber}'s etag is not the one the server gave`);
  }
  const missing = [...Array(count).keys()].map((i) => i + 1).filter((n) => !seen.has(n));
  if (missing.length > 0)
    throw new AppError(
      'INVALID_ARGUMENT',
      `parts missing from the completion: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}`,
    );
  const parts = [...stored.values()].sort((a, b) => a.part - b.part).map((p) => ({ part: p.part, etag: p.etag }));
  await finishBlob(db, reg, u, parts, { verified: false, running: takeDigest(id) });
}

/** Makes the object readable, checks its digest where not done yet, and records the blob. */
async function finishBlob(
  db: Kysely<Database>,
  reg: Registry,
  u: UploadsTable,
  parts: readonly StoredPart[],
  o: { verified: boolean; running?: { hash: Hash; next: number } },
): Promise<void> {
  const store = storeNamed(reg, u.store).store;
  await store.finish(u.storage_key, u.store_handle, parts);
  if (!o.verified) {
    // What was not hashed on the way in is read back from the store (decrypted, so also checked).
    const size = Number(u.size);
    const hash = o.running?.hash ?? createHash('sha256');
    const from = o.running ? (o.running.next - 1) * Number(u.chunk_size) : 0;
    if (from < size) {
      const key = await reg.keys.byId(u.org_id, u.key_id);
      const plain = await decryptRange(
        deriveObjectKey(key, Buffer.from(u.salt, 'base64')),
        size,
        { start: from, end: size - 1 },
        (r) => store.read(u.storage_key, r),
      );
      for await (const b of plain) hash.update(b as Buffer);
    }
    if (hash.digest('hex') !== u.sha256) {
      await store.delete(u.storage_key);
      await db.updateTable('uploads').set({ status: 'aborted' }).where('id', '=', u.id).execute();
      throw digestMismatch(u.sha256);
    }
  }
  const blobIdKey = await reg.keys.blobIdKey(u.org_id);
  const inserted = await db
    .insertInto('blobs')
    .values({
      org_id: u.org_id,
      blob_id: blobIdOf(blobIdKey, u.sha256),
      sha256: u.sha256,
      size: u.size,
      storage_key: u.storage_key,
      key_id: u.key_id,
      salt: u.salt,
      created_at: nowIso(),
      store: u.store,
    })
    .onConflict((oc) => oc.columns(['org_id', 'blob_id']).doNothing())
    .executeTakeFirst();
  // Another upload of the same content finished first: keep that one.
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) await store.delete(u.storage_key);
  await db.updateTable('uploads').set({ status: 'complete' }).where('id', '=', u.id).execute();
  await db.deleteFrom('upload_parts').where('upload_id', '=', u.id).execute();
}

async function abortUpload(db: Kysely<Database>, reg: Registry, u: UploadsTable): Promise<void> {
  // A store no longer configured keeps its part-written object; the upload is closed all the same.
  await Promise.resolve()
    .then(() => storeNamed(reg, u.store).store.abort(u.storage_key, u.store_handle))
    .catch(() => undefined);
  await db.updateTable('uploads').set({ status: 'aborted' }).where('id', '=', u.id).execute();
  await db.deleteFrom('upload_parts').where('upload_id', '=', u.id).execute();
}

/** Collects uploads past their expiry: their parts leave the store. Returns how many. */
export async function collectExpiredUploads(db: Kysely<Database>, reg: Registry, now = new Date()): Promise<number> {
  const expired = await db
    .selectFrom('uploads')
    .selectAll()
    .where('status', '=', 'open')
    .where('expires_at', '<=', now.toISOString())
    .limit(500)
    .execute();
  for (const u of expired) await abortUpload(db, reg, u);
  return expired.length;
}

/** Stores content that came inline (a small file of a commit) as a blob of the org, once. */
export async function storeInline(
  ctx: Ctx,
  reg: Registry,
  orgId: string,
  projectId: string,
  content: Buffer,
  spec: { action: string; resource: string; projectId: string },
): Promise<{ sha256: string }> {
  const sha256 = createHash('sha256').update(content).digest('hex');
  if (await findBlobByDigest(ctx.db, reg, orgId, sha256)) return { sha256 };
  const where = await storeFor(ctx, reg, orgId, spec);
  const u = await openUpload(ctx, reg, orgId, projectId, { oid: sha256, size: content.length }, false, where);
  await putPart(ctx.db, reg, u.id, reg.uploadTokens.tokenFor(u.id), 1, Readable.from([content]), content.length);
  return { sha256 };
}
