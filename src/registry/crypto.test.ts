import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import type { ByteRange } from './blob-store.js';
import {
  BlobIntegrityError,
  SEGMENT_BYTES,
  TAG_BYTES,
  blobIdOf,
  decryptRange,
  deriveObjectKey,
  encryptStream,
  encryptedOffset,
  encryptedSize,
  localKms,
  newSalt,
  segmentCount,
} from './crypto.js';

const S = SEGMENT_BYTES;
const objectKey = deriveObjectKey(randomBytes(32), newSalt());

/** Streams `data` in uneven chunks, so segment boundaries fall inside chunks. */
function chunked(data: Buffer, size = 300_007): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) parts.push(data.subarray(at, at + size));
  return Readable.from(parts);
}

async function encrypt(key: Buffer, plain: Buffer, first = 0, total = segmentCount(plain.length)): Promise<Buffer> {
  return buffer(chunked(plain).pipe(encryptStream(key, first, total)));
}

/** A `read` over an in-memory object that records the ranges asked for. */
function reader(stored: Buffer, calls: ByteRange[] = []) {
  return async (r: ByteRange) => {
    calls.push(r);
    return chunked(stored.subarray(r.start, r.end + 1), 65_536);
  };
}

async function decrypt(key: Buffer, size: number, stored: Buffer, range?: ByteRange): Promise<Buffer> {
  return buffer(await decryptRange(key, size, range, reader(stored)));
}

describe('registry encryption at rest', () => {
  it('lays out segments as documented', () => {
    assert.equal(segmentCount(0), 1);
    assert.equal(segmentCount(S), 1);
    assert.equal(segmentCount(S + 1), 2);
    assert.equal(encryptedSize(0), TAG_BYTES);
    assert.equal(encryptedSize(3 * S + 5), 3 * S + 5 + 4 * TAG_BYTES);
    assert.equal(encryptedOffset(2), 2 * (S + TAG_BYTES));
  });

  for (const size of [0, 1, S - 1, S, S + 1, 3 * S + 5]) {
    it(`round-trips ${size} bytes, whole and in every kind of range`, async () => {
      const plain = randomBytes(size);
      const stored = await encrypt(objectKey, plain);
      assert.equal(stored.length, encryptedSize(size));
      assert.deepEqual(await decrypt(objectKey, size, stored), plain);
      if (size === 0) return;
      const ranges: [number, number][] = [
        [0, 0], // first byte
        [size - 1, size - 1], // last byte
        [0, size - 1], // all, as a range
        [Math.floor(size / 2), size - 1], // a suffix
        [0, Math.floor(size / 3)], // a prefix
      ];
      if (size > S) ranges.push([S - 1, S], [S, S], [S - 3, Math.min(size - 1, 2 * S + 2)]); // across boundaries
      for (const [start, end] of ranges) {
        const calls: ByteRange[] = [];
        const got = await buffer(await decryptRange(objectKey, size, { start, end }, reader(stored, calls)));
        assert.deepEqual(got, plain.subarray(start, end + 1), `range ${start}-${end}`);
        // One read, of just the covering segments.
        assert.equal(calls.length, 1);
        assert.equal(calls[0].start, encryptedOffset(Math.floor(start / S)));
        const lastSeg = Math.floor(end / S);
        assert.equal(calls[0].end, Math.min(encryptedOffset(lastSeg + 1), stored.length) - 1);
      }
    });
  }

  it('refuses a range outside the blob', async () => {
    await assert.rejects(decryptRange(objectKey, 10, { start: 5, end: 10 }, reader(Buffer.alloc(0))), {
      code: 'INVALID_ARGUMENT',
    });
  });

  it('encrypts parts separately to the same bytes as the whole', async () => {
    const plain = randomBytes(5 * S + 123);
    const total = segmentCount(plain.length);
    const whole = await encrypt(objectKey, plain);
    for (const k of [1, 2, 5]) {
      const a = await encrypt(objectKey, plain.subarray(0, k * S), 0, total);
      const b = await encrypt(objectKey, plain.subarray(k * S), k, total);
      assert.deepEqual(Buffer.concat([a, b]), whole, `split at segment ${k}`);
    }
  });

  it('refuses a non-final part that ends mid-segment, and input past the last segment', async () => {
    await assert.rejects(encrypt(objectKey, randomBytes(S + 10), 0, 3), /not the object's last/);
    await assert.rejects(encrypt(objectKey, randomBytes(2 * S + 1), 0, 2), /more plaintext/);
    await assert.rejects(encrypt(objectKey, randomBytes(S + 1), 1, 2), /more plaintext/);
  });

  it('detects a tampered byte in any segment, and in a tag', async () => {
    const plain = randomBytes(2 * S + 77);
    const stored = await encrypt(objectKey, plain);
    for (const at of [0, S - 1, S + 5, stored.length - 1, S + TAG_BYTES + 3]) {
      const bad = Buffer.from(stored);
      bad[at] ^= 0x01;
      await assert.rejects(decrypt(objectKey, plain.length, bad), BlobIntegrityError, `byte ${at}`);
    }
  });

  it('never emits plaintext of a segment that fails its tag', async () => {
    const plain = randomBytes(2 * S);
    const bad = await encrypt(objectKey, plain);
    bad[10] ^= 0x80;
    const out = await decryptRange(objectKey, plain.length, undefined, reader(bad));
    let emitted = 0;
    out.on('data', (c: Buffer) => {
      emitted += c.length;
    });
    await assert.rejects(new Promise((resolve, reject) => out.on('end', resolve).on('error', reject)));
    assert.equal(emitted, 0);
  });

  it('detects a dropped last segment, and reordered segments', async () => {
    const plain = randomBytes(3 * S);
    const stored = await encrypt(objectKey, plain);
    const cut = stored.subarray(0, encryptedOffset(2));
    // Against the recorded size: the object ends early.
    await assert.rejects(decrypt(objectKey, plain.length, cut), BlobIntegrityError);
    // Even with the size forged to match: segment 1 was not sealed as the last.
    await assert.rejects(decrypt(objectKey, 2 * S, cut), BlobIntegrityError);
    const seg = (i: number) => stored.subarray(encryptedOffset(i), encryptedOffset(i + 1));
    await assert.rejects(decrypt(objectKey, plain.length, Buffer.concat([seg(1), seg(0), seg(2)])), BlobIntegrityError);
  });

  it('fails with a wrong key, and with the right data key but another salt', async () => {
    const dataKey = randomBytes(32);
    const salt = newSalt();
    const plain = randomBytes(1000);
    const stored = await encrypt(deriveObjectKey(dataKey, salt), plain);
    await assert.rejects(decrypt(deriveObjectKey(randomBytes(32), salt), 1000, stored), BlobIntegrityError);
    await assert.rejects(decrypt(deriveObjectKey(dataKey, newSalt()), 1000, stored), BlobIntegrityError);
    // Even an empty blob carries a tag the wrong key cannot pass.
    const empty = await encrypt(deriveObjectKey(dataKey, salt), Buffer.alloc(0));
    await assert.rejects(decrypt(deriveObjectKey(dataKey, newSalt()), 0, empty), BlobIntegrityError);
  });

  it('leaves no run of plaintext in the ciphertext', async () => {
    const marker = Buffer.from('FABRIK-PLAINTEXT-MARKER-');
    const plain = Buffer.concat(Array.from({ length: 100_000 }, () => marker));
    const stored = await encrypt(objectKey, plain);
    assert.equal(stored.indexOf(marker.subarray(0, 12)), -1);
    // Same plaintext under another object's key differs entirely (a fresh salt per object).
    const other = await encrypt(deriveObjectKey(randomBytes(32), newSalt()), plain);
    assert.notDeepEqual(other.subarray(0, 64), stored.subarray(0, 64));
  });

  it('makes blob ids keyed per org', () => {
    const sha = 'ab'.repeat(32);
    const k1 = randomBytes(32);
    assert.equal(blobIdOf(k1, sha), blobIdOf(k1, sha));
    assert.match(blobIdOf(k1, sha), /^[0-9a-f]{64}$/);
    assert.notEqual(blobIdOf(k1, sha), blobIdOf(randomBytes(32), sha));
    assert.throws(() => blobIdOf(k1, 'AB'.repeat(32)), { code: 'INVALID_ARGUMENT' });
  });
});

describe('local KMS', () => {
  const ctx = 'fabrik-registry:org_a:dk1:data';

  it('wraps and unwraps, bound to its context', async () => {
    const kms = localKms(randomBytes(32));
    const key = randomBytes(32);
    const wrapped = await kms.wrap(key, ctx);
    assert.ok(!wrapped.includes(key.toString('base64url')));
    assert.deepEqual(await kms.unwrap(wrapped, ctx), key);
    await assert.rejects(kms.unwrap(wrapped, 'fabrik-registry:org_b:dk1:data'), { name: 'KmsError' });
    const [version, kekId, nonce, ct] = wrapped.split('.');
    const altered = Buffer.from(ct, 'base64url');
    altered[0] ^= 1;
    await assert.rejects(kms.unwrap([version, kekId, nonce, altered.toString('base64url')].join('.'), ctx), {
      name: 'KmsError',
    });
    await assert.rejects(kms.unwrap('garbage', ctx), { name: 'KmsError' });
  });

  it('opens wraps of an older master key after a rotation, and not without it', async () => {
    const oldMaster = randomBytes(32);
    const newMaster = randomBytes(32);
    const key = randomBytes(32);
    const wrapped = await localKms(oldMaster).wrap(key, ctx);
    const rotated = localKms(newMaster, [oldMaster]);
    assert.deepEqual(await rotated.unwrap(wrapped, ctx), key);
    assert.notEqual(rotated.id, localKms(oldMaster).id);
    // New wraps use the new master key: they open without the old one.
    const rewrapped = await rotated.wrap(key, ctx);
    assert.deepEqual(await localKms(newMaster).unwrap(rewrapped, ctx), key);
    await assert.rejects(localKms(newMaster).unwrap(wrapped, ctx), /does not hold/);
  });
});
