// Blob objects on the local filesystem (the embedded default), under the data directory:
//   <root>/objects/<key[0..2]>/<key>   finished objects (two-character fan-out keeps dirs small)
//   <root>/partial/<key>               an object being written
// Parts are written in place at their offsets, so they may come in any order, in parallel, and
// again; finish() makes the file durable and renames it into objects/, so a reader sees either
// nothing or the whole object. Only fabrik's user may read any of it (0700 dirs, 0600 files).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AppError, notFound } from '../domain/errors.js';
import type { BlobStore, ByteRange, StoredPart } from './blob-store.js';

const KEY_PATTERN = /^[a-z0-9_-]{8,128}$/i;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
const WRITE_BATCH = 1 << 20;

/** The buffers left after the first `n` bytes of `bufs` were written. */
function dropBytes(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** Refuses a storage key that could name anything outside the store (slashes, dots, ...). */
export function assertStorageKey(key: string): void {
  if (!KEY_PATTERN.test(key)) {
    throw new AppError('INVALID_ARGUMENT', 'a storage key is 8 to 128 letters, digits, _ or -', { key });
  }
}

export function assertRange(range: ByteRange): void {
  const { start, end } = range;
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end)) {
    throw new AppError('INVALID_ARGUMENT', `invalid byte range ${start}-${end}`);
  }
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;

  constructor(private readonly root: string) {}

  private objectPath(key: string): string {
    assertStorageKey(key);
    return join(this.root, 'objects', key.slice(0, 2), key);
  }

  private partialPath(key: string): string {
    assertStorageKey(key);
    return join(this.root, 'partial', key);
  }

  /** Creates an empty partial file; the filesystem needs no handle. */
  async start(key: string): Promise<string> {
    const path = this.partialPath(key);
    await mkdir(join(this.root, 'partial'), { recursive: true, mode: DIR_MODE });
    const fh = await open(path, 'w', FILE_MODE);
    await fh.close();
    return '';
  }

  async writePart(
    key: string,
    _handle: string,
    part: number,
    offset: number,
    length: number,
    body: Readable,
  ): Promise<StoredPart> {
    const path = this.partialPath(key);
    await mkdir(join(this.root, 'partial'), { recursive: true, mode: DIR_MODE });
    // Read-write, created if absent, never truncated: other parts may be in the file already.
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, FILE_MODE);
    let written = 0;
    // Chunks are gathered into writes of about WRITE_BATCH bytes (one writev each): a syscall per
    // small network chunk would cost more than the encryption.
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      let at = offset + written - batched;
      let bufs = batch;
      while (bufs.length > 0) {
        const { bytesWritten } = await fh.writev(bufs, at);
        at += bytesWritten;
        bufs = dropBytes(bufs, bytesWritten);
      }
      batch = [];
      batched = 0;
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (written + chunk.length > length) {
          throw new AppError('INVALID_ARGUMENT', `part ${part} is longer than its ${length} bytes`, { part });
        }
        batch.push(chunk);
        batched += chunk.length;
        written += chunk.length;
        if (batched >= WRITE_BATCH) await flush();
      }
      await flush();
    } catch (err) {
      body.destroy();
      throw err;
    } finally {
      await fh.close();
    }
    if (written !== length) {
      throw new AppError('INVALID_ARGUMENT', `part ${part} ended after ${written} of its ${length} bytes`, { part });
    }
    // The etag names this writing of the part (the digest of the whole is checked at completion):
    // hashing every byte once more here would cost as much as the encryption.
    return { part, etag: randomBytes(16).toString('hex') };
  }

  /**
   * Makes the partial file durable and moves it into objects/. The parts' etags are not checked
   * again here: each was the digest of bytes written in place, and the caller verifies the
   * whole blob's digest and tags as it streams.
   */
  async finish(key: string, _handle: string, _parts: readonly StoredPart[]): Promise<void> {
    const from = this.partialPath(key);
    const to = this.objectPath(key);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(from, 'r+');
    } catch (err) {
      if (isMissing(err)) throw notFound('unfinished blob object', key);
      throw err;
    }
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const dir = join(this.root, 'objects', key.slice(0, 2));
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    await rename(from, to);
    // The rename is durable only once its directory is.
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  async abort(key: string, _handle: string): Promise<void> {
    await rm(this.partialPath(key), { force: true });
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    if (range) assertRange(range);
    // Opened first, so a missing object rejects here rather than erroring the stream later.
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.objectPath(key), 'r');
    } catch (err) {
      if (isMissing(err)) throw notFound('blob object', key);
      throw err;
    }
    // Reads of a segment and more at a time: the decryption works segment by segment (1 MiB).
    const highWaterMark = 2 << 20;
    return fh.createReadStream(range ? { start: range.start, end: range.end, highWaterMark } : { highWaterMark });
  }

  async size(key: string): Promise<number | undefined> {
    try {
      return (await stat(this.objectPath(key))).size;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.objectPath(key), { force: true });
  }
}
