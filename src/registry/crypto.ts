// Encryption at rest of registry blobs, and the wrapping of the keys that do it.
//
// A blob is encrypted in fixed-size segments, each its own AES-256-GCM message, so that a ranged
// read decrypts only the segments it covers and checks their tags before any byte leaves. Object
// layout (no header): segment i is the ciphertext of plaintext bytes [i*S, (i+1)*S) followed by its
// 16-byte tag; a zero-length blob is one empty segment (just a tag).
//
// Keys: each org has data keys (keys.ts) wrapped by a KMS; each object gets its own key, derived
// from the data key and a random salt stored with the blob, so a nonce is never reused under a key
// even though nonces are just segment numbers. The AAD marks the last segment, so an object cut
// short at a segment boundary, or with segments reordered, does not decrypt.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { CipherGCM, DecipherGCM } from 'node:crypto';
import { type Readable, Transform, type TransformCallback, pipeline } from 'node:stream';
import { keyIdOf } from '../app/secret-box.js';
import { AppError } from '../domain/errors.js';
import type { ByteRange } from './blob-store.js';

/** Plaintext bytes per segment. Upload chunk sizes are multiples of it. */
export const SEGMENT_BYTES = 1 << 20;
export const TAG_BYTES = 16;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const SALT_BYTES = 16;
const OBJECT_KEY_INFO = 'fabrik blob v1';
const KEK_INFO = 'fabrik registry kek v1';

/** Stored bytes that do not decrypt: altered, cut short, reordered, or opened with the wrong key. */
export class BlobIntegrityError extends AppError {
  constructor(message: string) {
    // A server-side fault: the client sent nothing wrong. The reason is stable for alerting.
    super('INTERNAL', message, { reason: 'BLOB_INTEGRITY' });
    this.name = 'BlobIntegrityError';
  }
}

// ---- Layout ---------------------------------------------------------------------------------

/** Segments of a blob of `plainSize` bytes; at least one, even for an empty blob. */
export function segmentCount(plainSize: number): number {
  return Math.max(1, Math.ceil(plainSize / SEGMENT_BYTES));
}

/** Bytes the encrypted object of a `plainSize`-byte blob takes in the store. */
export function encryptedSize(plainSize: number): number {
  return plainSize + segmentCount(plainSize) * TAG_BYTES;
}

/** Where segment `segmentIndex` begins in the encrypted object. */
export function encryptedOffset(segmentIndex: number): number {
  return segmentIndex * (SEGMENT_BYTES + TAG_BYTES);
}

function nonceOf(segment: number): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeBigUInt64BE(BigInt(segment), NONCE_BYTES - 8);
  return nonce;
}

function aadOf(isLast: boolean): Buffer {
  return Buffer.from([isLast ? 1 : 0]);
}

// ---- Keys -----------------------------------------------------------------------------------

/** A fresh per-object salt, stored with the blob (base64 in the blobs table). */
export function newSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

/** The key of one object: HKDF-SHA256 of the org's data key and the object's salt. */
export function deriveObjectKey(dataKey: Buffer, salt: Buffer): Buffer {
  if (dataKey.length !== KEY_BYTES) throw new Error(`a data key must be ${KEY_BYTES} bytes, got ${dataKey.length}`);
  return Buffer.from(hkdfSync('sha256', dataKey, salt, OBJECT_KEY_INFO, KEY_BYTES));
}

/** The id of a blob in an org: HMAC-SHA256(org's blob-id key, sha256), so ids differ across orgs. */
export function blobIdOf(blobIdKey: Buffer, sha256hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256hex)) {
    throw new AppError('INVALID_ARGUMENT', 'a sha256 must be 64 lowercase hex digits', { sha256: sha256hex });
  }
  return createHmac('sha256', blobIdKey).update(sha256hex, 'ascii').digest('hex');
}

// ---- Encryption -----------------------------------------------------------------------------

/**
 * Encrypts plaintext that begins at segment `firstSegment` of an object of `totalSegments`
 * segments: the whole object (0), or one part of a multipart upload (its plaintext offset / S).
 * A part other than the object's last must end on a segment boundary.
 */
export function encryptStream(objectKey: Buffer, firstSegment: number, totalSegments: number): Transform {
  if (!Number.isInteger(firstSegment) || firstSegment < 0 || firstSegment >= totalSegments) {
    throw new RangeError(`segment ${firstSegment} is outside an object of ${totalSegments} segments`);
  }
  let segment = firstSegment;
  let cipher: CipherGCM | undefined; // the open segment's cipher, made on its first byte
  let inSegment = 0; // plaintext bytes of the open segment so far
  let sawInput = false;

  const open = (): CipherGCM => {
    const c = createCipheriv('aes-256-gcm', objectKey, nonceOf(segment), { authTagLength: TAG_BYTES });
    c.setAAD(aadOf(segment === totalSegments - 1));
    return c;
  };
  const close = (t: Transform): void => {
    const c = cipher ?? open();
    const tail = c.final();
    if (tail.length > 0) t.push(tail);
    t.push(c.getAuthTag());
    cipher = undefined;
    inSegment = 0;
    segment++;
  };

  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      sawInput ||= chunk.length > 0;
      // GCM streams: ciphertext goes out as plaintext comes in; only segment ends need care.
      let at = 0;
      while (at < chunk.length) {
        if (segment >= totalSegments) {
          done(new AppError('INVALID_ARGUMENT', `more plaintext than an object of ${totalSegments} segments holds`));
          return;
        }
        cipher ??= open();
        const take = Math.min(SEGMENT_BYTES - inSegment, chunk.length - at);
        this.push(cipher.update(chunk.subarray(at, at + take)));
        inSegment += take;
        at += take;
        if (inSegment === SEGMENT_BYTES) close(this);
      }
      done();
    },
    flush(done: TransformCallback) {
      if (cipher) {
        if (segment !== totalSegments - 1) {
          done(
            new AppError(
              'INVALID_ARGUMENT',
              `plaintext ended ${inSegment} bytes into segment ${segment}, which is not the object's last`,
            ),
          );
          return;
        }
        close(this);
      } else if (!sawInput && firstSegment === 0 && totalSegments === 1) {
        close(this); // a zero-length blob: one empty segment, so even it carries a tag
      }
      done();
    },
  });
}

// ---- Decryption -----------------------------------------------------------------------------

/** Plaintext bytes of segment `i` in a blob of `plainSize` bytes. */
function plainLengthOf(i: number, plainSize: number): number {
  return Math.max(0, Math.min(SEGMENT_BYTES, plainSize - i * SEGMENT_BYTES));
}

/**
 * The plaintext of `range` (inclusive; the whole blob when undefined). Reads only the segments
 * covering it, with one call to `read`, and checks every tag before a byte of a segment goes out:
 * the stream errors with BlobIntegrityError on any alteration or a wrong key.
 */
export async function decryptRange(
  objectKey: Buffer,
  plainSize: number,
  range: ByteRange | undefined,
  read: (r: ByteRange) => Promise<Readable>,
): Promise<Readable> {
  const start = range?.start ?? 0;
  const end = range?.end ?? plainSize - 1;
  if (range && !(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end < plainSize)) {
    throw new AppError('INVALID_ARGUMENT', `range ${start}-${end} is outside a blob of ${plainSize} bytes`);
  }
  const total = segmentCount(plainSize);
  // For an empty blob end is -1: segment 0 is still read, so that its tag is checked.
  const first = Math.floor(start / SEGMENT_BYTES);
  const last = Math.max(first, Math.floor(end / SEGMENT_BYTES));
  const stored = {
    start: encryptedOffset(first),
    end: encryptedOffset(last) + plainLengthOf(last, plainSize) + TAG_BYTES - 1,
  };

  let segment = first;
  // One segment is buffered whole: its plaintext must not leave before its tag is checked.
  let buf = Buffer.allocUnsafe(plainLengthOf(segment, plainSize) + TAG_BYTES);
  let filled = 0;

  const decryptSegment = (t: Transform): void => {
    const plainLen = buf.length - TAG_BYTES;
    const d: DecipherGCM = createDecipheriv('aes-256-gcm', objectKey, nonceOf(segment), { authTagLength: TAG_BYTES });
    d.setAAD(aadOf(segment === total - 1));
    d.setAuthTag(buf.subarray(plainLen));
    let plain: Buffer;
    try {
      plain = d.update(buf.subarray(0, plainLen));
      d.final(); // GCM has no tail: final() only checks the tag
    } catch {
      throw new BlobIntegrityError(`segment ${segment} of the stored blob does not decrypt: altered, or a wrong key`);
    }
    // Only the requested bytes of the first and last segments go out.
    const base = segment * SEGMENT_BYTES;
    const from = Math.max(start, base) - base;
    const to = Math.min(end + 1, base + plainLen) - base;
    if (to > from) t.push(plain.subarray(from, to));
    segment++;
    filled = 0;
    if (segment <= last) buf = Buffer.allocUnsafe(plainLengthOf(segment, plainSize) + TAG_BYTES);
  };

  const decrypt = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        let at = 0;
        while (at < chunk.length) {
          if (segment > last) throw new BlobIntegrityError('the stored blob is longer than its recorded size');
          const take = Math.min(buf.length - filled, chunk.length - at);
          chunk.copy(buf, filled, at, at + take);
          filled += take;
          at += take;
          if (filled === buf.length) decryptSegment(this);
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      if (segment <= last) {
        done(new BlobIntegrityError(`the stored blob ends early, in segment ${segment} of ${total}`));
        return;
      }
      done();
    },
  });

  const source = await read(stored);
  // pipeline carries a read error into `decrypt` and a consumer's destroy back to the source.
  pipeline(source, decrypt, () => undefined);
  return decrypt;
}

// ---- Key wrapping ---------------------------------------------------------------------------

/**
 * Wraps the registry's data keys. The local one derives its key-encryption key from the master
 * key; an HSM or Vault transit can take its place behind the same three members.
 */
export interface Kms {
  readonly id: string;
  /** Text naming the wrapping key and holding `key` encrypted, bound to `context`. */
  wrap(key: Buffer, context: string): Promise<string>;
  unwrap(wrapped: string, context: string): Promise<Buffer>;
}

/** A wrapped key that does not open: a master key this server lacks, altered text, wrong context. */
export class KmsError extends AppError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
    this.name = 'KmsError';
  }
}

const LOCAL_WRAP_VERSION = 'lk1';

/**
 * A KMS on the server's master key. Wrapped text: `lk1.<kek id>.<nonce>.<ciphertext+tag>` (base64url),
 * so that keys wrapped under an older master key still open while `olderMasterKeys` are given.
 */
export function localKms(masterKey: Buffer, olderMasterKeys: Buffer[] = []): Kms {
  const keks = new Map<string, Buffer>();
  for (const k of [masterKey, ...olderMasterKeys]) {
    if (k.length !== KEY_BYTES) throw new KmsError(`a master key must be ${KEY_BYTES} bytes, got ${k.length}`);
    keks.set(keyIdOf(k), Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), KEK_INFO, KEY_BYTES)));
  }
  const kekId = keyIdOf(masterKey);
  return {
    id: `local:${kekId}`,
    async wrap(key, context) {
      const nonce = randomBytes(NONCE_BYTES);
      const c = createCipheriv('aes-256-gcm', keks.get(kekId)!, nonce, { authTagLength: TAG_BYTES });
      c.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([c.update(key), c.final(), c.getAuthTag()]);
      return [LOCAL_WRAP_VERSION, kekId, nonce.toString('base64url'), ct.toString('base64url')].join('.');
    },
    async unwrap(wrapped, context) {
      const [version, id, nonceText, ctText, extra] = wrapped.split('.');
      if (version !== LOCAL_WRAP_VERSION || !id || !nonceText || !ctText || extra !== undefined) {
        throw new KmsError('malformed wrapped key');
      }
      const kek = keks.get(id);
      if (!kek) throw new KmsError(`key wrapped with master key ${id}, which this server does not hold`);
      const nonce = Buffer.from(nonceText, 'base64url');
      const ct = Buffer.from(ctText, 'base64url');
      if (nonce.length !== NONCE_BYTES || ct.length <= TAG_BYTES) throw new KmsError('malformed wrapped key');
      try {
        const d = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_BYTES });
        d.setAAD(Buffer.from(context, 'utf8'));
        d.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
        return Buffer.concat([d.update(ct.subarray(0, ct.length - TAG_BYTES)), d.final()]);
      } catch {
        throw new KmsError('wrapped key does not open: altered, or wrapped for another context');
      }
    },
  };
}
