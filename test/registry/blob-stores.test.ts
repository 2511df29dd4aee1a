// One behaviour suite for both blob stores: FsBlobStore on a temp directory, and S3BlobStore
// against s3rver, which stands in here for a production S3-compatible store such as Ceph RGW or
// MinIO. s3rver runs in a child process, so that its own buffers do not count when the suite
// checks that a 64 MiB object streams through fabrik's process in flat memory.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { BlobStore } from '../../src/registry/blob-store.js';
import {
  SEGMENT_BYTES,
  decryptRange,
  deriveObjectKey,
  encryptStream,
  encryptedOffset,
  encryptedSize,
  newSalt,
  segmentCount,
} from '../../src/registry/crypto.js';
import { FsBlobStore } from '../../src/registry/fs-store.js';
import { S3BlobStore } from '../../src/registry/s3-store.js';

const MiB = 1 << 20;
/** S3's smallest part other than the last. */
const PART = 5 * MiB;

interface Backend {
  readonly store: BlobStore;
  /** Why abort() cannot be tested here, if it cannot. */
  readonly noAbort?: string;
  close(): Promise<void>;
}

async function fsBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-blobs-'));
  return {
    store: new FsBlobStore(join(dir, 'blobs')),
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

const S3RVER_MAIN = `
import S3rver from 's3rver';
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: process.argv[1], silent: true });
const { port } = await server.run();
console.log(JSON.stringify({ port }));
`;

async function s3Backend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', S3RVER_MAIN, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // s3rver stores aws-chunked bodies verbatim (see s3-store.ts).
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  await client.send(new CreateBucketCommand({ Bucket: 'fabrik-test' }));
  return {
    store: new S3BlobStore({ client, bucket: 'fabrik-test', prefix: 'blobs/' }),
    noAbort: 's3rver does not implement AbortMultipartUpload (405 MethodNotAllowed)',
    close: async () => {
      client.destroy();
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let keySeq = 0;
const newKey = () => `obj_${process.pid}_${++keySeq}_${randomBytes(4).toString('hex')}`;

/** Streams `data` in 64 KiB chunks, as a request body would arrive. */
const body = (data: Buffer) => Readable.from(chunks(data, 64 * 1024));
function* chunks(data: Buffer, size: number) {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** `mib` MiB of content made on the fly (chunk i filled from a digest of i), fed to `seen` too. */
function* generated(firstMiB: number, mib: number, seen: (chunk: Buffer) => void) {
  for (let i = firstMiB; i < firstMiB + mib; i++) {
    const chunk = Buffer.alloc(MiB, createHash('sha256').update(String(i)).digest());
    seen(chunk);
    yield chunk;
  }
}

/** Bytes the process holds in JS heap and buffers: what buffering an object would inflate. */
const heldBytes = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

// A collection on demand, so that earlier tests' garbage does not blur the baseline.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const BACKENDS: [string, () => Promise<Backend>][] = [
  ['FsBlobStore on a temp directory', fsBackend],
  ['S3BlobStore against s3rver (standing in for Ceph RGW or MinIO)', s3Backend],
];

for (const [name, open] of BACKENDS) {
  describe(`blob store: ${name}`, () => {
    let backend: Backend;
    let store: BlobStore;
    before(async () => {
      backend = await open();
      store = backend.store;
    });
    after(() => backend?.close());

    it('assembles parts written out of order and in parallel, and serves ranges', async () => {
      const key = newKey();
      const data = randomBytes(2 * PART + 1000);
      const handle = await store.start(key);
      const p3 = await store.writePart(key, handle, 3, 2 * PART, 1000, body(data.subarray(2 * PART)));
      const [p2, p1] = await Promise.all([
        store.writePart(key, handle, 2, PART, PART, body(data.subarray(PART, 2 * PART))),
        store.writePart(key, handle, 1, 0, PART, body(data.subarray(0, PART))),
      ]);
      assert.deepEqual([p1.part, p2.part, p3.part], [1, 2, 3]);
      await store.finish(key, handle, [p3, p1, p2]);
      assert.equal(await store.size(key), data.length);
      assert.deepEqual(await buffer(await store.read(key)), data);
      // Not [0, 0]: s3rver reads `bytes=0-0` as the whole object (S3BlobStore refuses such an answer).
      for (const [start, end] of [
        [0, 1],
        [1, 1],
        [PART - 1, PART + 1],
        [2 * PART, data.length - 1],
        [123, 2 * PART + 7],
      ]) {
        assert.deepEqual(await buffer(await store.read(key, { start, end })), data.subarray(start, end + 1));
      }
    });

    it('keeps the last write of a part written twice', async () => {
      const key = newKey();
      const first = randomBytes(PART);
      const [old, fresh] = [randomBytes(500), randomBytes(500)];
      const handle = await store.start(key);
      const p1 = await store.writePart(key, handle, 1, 0, PART, body(first));
      const before = await store.writePart(key, handle, 2, PART, 500, body(old));
      const p2 = await store.writePart(key, handle, 2, PART, 500, body(fresh));
      assert.notEqual(before.etag, p2.etag);
      await store.finish(key, handle, [p1, p2]);
      assert.deepEqual(await buffer(await store.read(key)), Buffer.concat([first, fresh]));
    });

    it('shows nothing before finish', async () => {
      const key = newKey();
      const handle = await store.start(key);
      await store.writePart(key, handle, 1, 0, 10, body(Buffer.from('0123456789')));
      assert.equal(await store.size(key), undefined);
      await assert.rejects(store.read(key), { code: 'NOT_FOUND' });
      await assert.rejects(store.read(key, { start: 0, end: 3 }), { code: 'NOT_FOUND' });
    });

    it('drops an unfinished object on abort', async () => {
      const key = newKey();
      const handle = await store.start(key);
      await store.writePart(key, handle, 1, 0, 10, body(Buffer.from('0123456789')));
      if (backend.noAbort) {
        // The stand-in answers AbortMultipartUpload with 405 (backend.noAbort says so): that the
        // store sends it shows as that refusal; the unfinished object is not readable either way.
        await assert.rejects(store.abort(key, handle), (e: any) => e?.$metadata?.httpStatusCode === 405);
        assert.equal(await store.size(key), undefined);
        await assert.rejects(store.read(key), { code: 'NOT_FOUND' });
        return;
      }
      await store.abort(key, handle);
      assert.equal(await store.size(key), undefined);
      await assert.rejects(store.read(key), { code: 'NOT_FOUND' });
      await store.abort(key, handle); // again: nothing left, no error
    });

    it('deletes a finished object; deleting a missing one is fine', async () => {
      const key = newKey();
      const handle = await store.start(key);
      const p = await store.writePart(key, handle, 1, 0, 3, body(Buffer.from('abc')));
      await store.finish(key, handle, [p]);
      assert.equal(await store.size(key), 3);
      await store.delete(key);
      assert.equal(await store.size(key), undefined);
      await assert.rejects(store.read(key), { code: 'NOT_FOUND' });
      await store.delete(key);
      assert.equal(await store.size(newKey()), undefined);
    });

    it('refuses keys that could name another path', async () => {
      for (const key of ['../../../etc/passwd', 'short', 'a/bcdefghij', '..........']) {
        await assert.rejects(store.size(key), { code: 'INVALID_ARGUMENT' }, key);
      }
    });

    it('holds an encrypted blob written in parts and reads back any range of it', async () => {
      // As the registry does: parts are whole segments of plaintext, encrypted on the way in.
      const plain = randomBytes(10 * SEGMENT_BYTES + 100);
      const total = segmentCount(plain.length);
      const objectKey = deriveObjectKey(randomBytes(32), newSalt());
      const key = newKey();
      const handle = await store.start(key);
      const parts = [];
      for (const [n, firstSeg, lastSeg] of [
        [1, 0, 5],
        [2, 5, 10],
        [3, 10, 11],
      ]) {
        const start = encryptedOffset(firstSeg);
        const end = Math.min(encryptedOffset(lastSeg), encryptedSize(plain.length));
        const source = body(plain.subarray(firstSeg * SEGMENT_BYTES, lastSeg * SEGMENT_BYTES));
        parts.push(
          await store.writePart(
            key,
            handle,
            n,
            start,
            end - start,
            source.pipe(encryptStream(objectKey, firstSeg, total)),
          ),
        );
      }
      await store.finish(key, handle, parts);
      assert.equal(await store.size(key), encryptedSize(plain.length));
      const read = (r: { start: number; end: number }) => store.read(key, r);
      assert.deepEqual(await buffer(await decryptRange(objectKey, plain.length, undefined, read)), plain);
      const range = { start: 5 * SEGMENT_BYTES - 3, end: 10 * SEGMENT_BYTES + 50 };
      assert.deepEqual(
        await buffer(await decryptRange(objectKey, plain.length, range, read)),
        plain.subarray(range.start, range.end + 1),
      );
    });

    it('streams a 64 MiB object in 3 parts without holding it in memory', async () => {
      const key = newKey();
      const mibs = [24, 24, 16];
      const sent = createHash('sha256');
      const received = createHash('sha256');
      gc();
      const base = heldBytes();
      let peak = 0;
      let chunksSeen = 0;
      // Collecting every few chunks bounds the garbage, so the peak shows what is really held.
      const sample = () => {
        if (++chunksSeen % 4 === 0) gc();
        peak = Math.max(peak, heldBytes() - base);
      };
      try {
        const handle = await store.start(key);
        const parts = [];
        let first = 0;
        for (const [i, mib] of mibs.entries()) {
          const source = Readable.from(
            generated(first, mib, (c) => {
              sent.update(c);
              sample();
            }),
          );
          parts.push(await store.writePart(key, handle, i + 1, first * MiB, mib * MiB, source));
          first += mib;
        }
        await store.finish(key, handle, parts);
        for await (const c of await store.read(key)) {
          received.update(c as Buffer);
          sample();
        }
        assert.equal(received.digest('hex'), sent.digest('hex'));
      } finally {
        gc(); // leave no 64 MiB of garbage to the tests after this one
      }
      // Buffering the object would hold 64 MiB at once; streaming holds a few chunks.
      assert.ok(peak < 24 * MiB, `memory grew by ${(peak / MiB).toFixed(1)} MiB while streaming 64 MiB`);
    });
  });
}

describe('FsBlobStore on disk', () => {
  it('keeps objects to its user: 0700 directories, 0600 files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fabrik-blobs-'));
    try {
      const store = new FsBlobStore(root);
      const key = newKey();
      const handle = await store.start(key);
      const p = await store.writePart(key, handle, 1, 0, 1, body(Buffer.from('x')));
      await store.finish(key, handle, [p]);
      assert.equal(statSync(join(root, 'objects', key.slice(0, 2), key)).mode & 0o777, 0o600);
      assert.equal(statSync(join(root, 'objects', key.slice(0, 2))).mode & 0o077, 0);
      assert.equal(statSync(join(root, 'partial')).mode & 0o077, 0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a part longer or shorter than its length', async () => {
    const { store, close } = await fsBackend();
    try {
      const key = newKey();
      await store.start(key);
      await assert.rejects(store.writePart(key, '', 1, 0, 4, body(Buffer.from('12345'))), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(store.writePart(key, '', 1, 0, 6, body(Buffer.from('12345'))), { code: 'INVALID_ARGUMENT' });
    } finally {
      await close();
    }
  });
});
