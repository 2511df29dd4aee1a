// Reading what is stored: a blob of an org by its id, whole or a range, decrypted on the way out;
// and the small reads a commit makes of new files (model card, safetensors and GGUF headers),
// which never read a whole file.
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import type { BlobsTable, Database } from '../store/schema.js';
import type { ByteRange } from './blob-store.js';
import { blobIdOf, decryptRange, deriveObjectKey } from './crypto.js';
import { type FormatInfo, type GgufInfo, MAX_SAFETENSORS_HEADER, parseSafetensorsHeader, readGguf } from './formats.js';
import { type Registry, storeNamed } from './registry.js';

export async function findBlob(
  db: Kysely<Database> | Trx,
  orgId: string,
  blobId: string,
): Promise<BlobsTable | undefined> {
  return db
    .selectFrom('blobs')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('blob_id', '=', blobId)
    .executeTakeFirst();
}

export async function findBlobByDigest(
  db: Kysely<Database> | Trx,
  reg: Registry,
  orgId: string,
  sha256: string,
): Promise<BlobsTable | undefined> {
  return findBlob(db, orgId, blobIdOf(await reg.keys.blobIdKey(orgId), sha256));
}

/** The plaintext of a blob (or of a range of it), streamed. */
export async function openBlob(reg: Registry, blob: BlobsTable, range?: ByteRange): Promise<Readable> {
  const key = await reg.keys.byId(blob.org_id, blob.key_id);
  const objectKey = deriveObjectKey(key, Buffer.from(blob.salt, 'base64'));
  // From the store it was written to, whatever the policy says about new writes today.
  const store = storeNamed(reg, blob.store).store;
  return decryptRange(objectKey, Number(blob.size), range, (r) => store.read(blob.storage_key, r));
}

/** A small range of a blob in memory (headers, model cards); refuses more than `max` bytes. */
export async function readBytes(reg: Registry, blob: BlobsTable, start: number, length: number): Promise<Buffer> {
  const size = Number(blob.size);
  if (length <= 0 || start >= size) return Buffer.alloc(0);
  const end = Math.min(size, start + length) - 1;
  const parts: Buffer[] = [];
  for await (const b of await openBlob(reg, blob, { start, end })) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/** Reads `length` bytes from `start` (fewer at the end) of some content: a stored blob, or bytes at hand. */
export type ByteSource = (start: number, length: number) => Promise<Buffer>;

/** The bytes of content not stored yet (an inline file of a commit being checked). */
export function bufferSource(b: Buffer): ByteSource {
  return async (start, length) => (length <= 0 ? Buffer.alloc(0) : b.subarray(start, start + length));
}

/** What the header of a .safetensors or .gguf file says; undefined for other files. */
export async function formatOf(reg: Registry, blob: BlobsTable, path: string): Promise<FormatInfo | undefined> {
  return formatOfSource((start, length) => readBytes(reg, blob, start, length), Number(blob.size), path);
}

/** formatOf for content of `size` bytes read through `read`. */
export async function formatOfSource(read: ByteSource, size: number, path: string): Promise<FormatInfo | undefined> {
  const lower = path.toLowerCase();
  if (lower.endsWith('.safetensors')) {
    const head = await read(0, 8);
    if (head.length < 8)
      throw new AppError('FORMAT_INVALID', `${path} is not a valid safetensors file: shorter than 8 bytes`, { path });
    const n = Number(head.readBigUInt64LE(0));
    if (n > MAX_SAFETENSORS_HEADER || 8 + n > size) {
      throw new AppError('FORMAT_INVALID', `${path} is not a valid safetensors file: header length ${n} does not fit`, {
        path,
      });
    }
    return parseSafetensorsHeader(await read(0, 8 + n), size, path);
  }
  if (lower.endsWith('.gguf')) return ggufOf(read, size, path);
  return undefined;
}

/** GGUF metadata through the library, which asks for ranges; they are served from the content. */
async function ggufOf(read: ByteSource, size: number, path: string): Promise<GgufInfo> {
  const rangedFetch = (async (_url: string | URL | Request, init?: RequestInit) => {
    const header = new Headers(init?.headers).get('range') ?? `bytes=0-${size - 1}`;
    const m = /bytes=(\d+)-(\d*)/.exec(header);
    const start = Number(m?.[1] ?? 0);
    const end = Math.min(size - 1, m?.[2] ? Number(m[2]) : size - 1);
    const body = start > end ? Buffer.alloc(0) : await read(start, end - start + 1);
    return new Response(new Uint8Array(body), {
      status: 206,
      headers: { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(body.length) },
    });
  }) as typeof fetch;
  return readGguf(`http://blob.invalid/${encodeURIComponent(path)}`, path, rangedFetch);
}
