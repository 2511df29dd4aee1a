// Server-side ingestion of a file on this machine's disk as a blob of an org: what a workload's
// outputs become before a commit names them. The file is streamed twice at most (once to hash it,
// unless the caller already did; once to encrypt and store it, part by part, through the same
// upload path the Hub clients use: uploads.ts's putPart and completeUpload, which check the size
// and the digest again), so no file is ever held in memory whole. Content the org already holds is
// not stored again. Like an upload, a stored blob is visible in no repo until a commit names it.
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { AppError } from '../domain/errors.js';
import type { Database } from '../store/schema.js';
import { findBlobByDigest } from './content.js';
import type { Registry } from './registry.js';
import { chunkFor, completeUpload, newUpload, partCount, partLength, putPart } from './uploads.js';

export interface IngestedFile {
  readonly sha256: string;
  readonly size: number;
  readonly blobId: string;
  /** false when the org held this content already (nothing was written). */
  readonly stored: boolean;
}

export interface IngestOptions {
  /** Digest and size computed by the caller; the upload checks them against what is read. */
  readonly known?: { readonly sha256: string; readonly size: number };
  /** The file must still be this inode (what the caller saw with lstat): a swapped file is refused. */
  readonly expect?: { readonly dev: number; readonly ino: number };
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Opens a regular file without following a link at its last component; refuses anything else. */
export function openRegularFile(path: string, expect?: IngestOptions['expect']): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new AppError('INVALID_ARGUMENT', `${path} is a symbolic link, not a file`);
    throw err;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || (expect && (st.dev !== expect.dev || st.ino !== expect.ino))) {
    closeSync(fd);
    throw new AppError('INVALID_ARGUMENT', `${path} is not the regular file it was a moment ago`);
  }
  return { fd, size: st.size };
}

/** sha256 of an open file's first `size` bytes, streamed. */
export async function hashFd(fd: number, size: number): Promise<string> {
  const hash = createHash('sha256');
  if (size > 0) {
    for await (const b of createReadStream('', { fd, start: 0, end: size - 1, autoClose: false })) {
      hash.update(b as Buffer);
    }
  }
  return hash.digest('hex');
}

/** sha256 and size of a regular file (no link followed), streamed. */
export async function hashFile(
  path: string,
  expect?: IngestOptions['expect'],
): Promise<{ sha256: string; size: number }> {
  const { fd, size } = openRegularFile(path, expect);
  try {
    return { sha256: await hashFd(fd, size), size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Stores the file at `path` as a blob of the org (`projectId` is charged for it while the upload is
 * open, as a Hub upload would be). `actor` is recorded as the upload's creator.
 */
export async function ingestFile(
  db: Kysely<Database>,
  reg: Registry,
  orgId: string,
  projectId: string,
  path: string,
  actor: string,
  opts: IngestOptions = {},
): Promise<IngestedFile> {
  const { fd, size } = openRegularFile(path, opts.expect);
  try {
    if (opts.known && opts.known.size !== size) {
      throw new AppError('DIGEST_MISMATCH', `${path} changed size while it was being published`);
    }
    const sha256 = opts.known?.sha256 ?? (await hashFd(fd, size));
    const have = await findBlobByDigest(db, reg, orgId, sha256);
    if (have && Number(have.size) === size) return { sha256, size, blobId: have.blob_id, stored: false };

    const u = await newUpload(db, reg, {
      orgId,
      projectId,
      sha256,
      size,
      chunk: chunkFor(reg, size, size > reg.limits.basicMaxBytes),
      actor,
    });
    const token = reg.uploadTokens.tokenFor(u.id);
    const chunk = Number(u.chunk_size);
    const count = partCount(size, chunk);
    const parts: { partNumber: number; etag: string }[] = [];
    for (let n = 1; n <= count; n++) {
      const len = partLength(size, chunk, n);
      const start = (n - 1) * chunk;
      // An empty file is one empty part: a stream that ends at once.
      const body =
        len === 0 ? Readable.from([]) : createReadStream('', { fd, start, end: start + len - 1, autoClose: false });
      const { etag } = await putPart(db, reg, u.id, token, n, body, len);
      parts.push({ partNumber: n, etag });
    }
    if (count > 1) await completeUpload(db, reg, u.id, token, { oid: sha256, parts });
    const blob = await findBlobByDigest(db, reg, orgId, sha256);
    if (!blob) throw new AppError('INTERNAL', `${path} was stored but its blob is not on record`);
    return { sha256, size, blobId: blob.blob_id, stored: true };
  } finally {
    closeSync(fd);
  }
}
