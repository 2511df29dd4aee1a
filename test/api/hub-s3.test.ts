// The Hub protocol flow of hub.test.ts with the registry's blobs in S3-compatible object storage:
// s3rver in a child process stands in for a production store (Ceph RGW, MinIO). The official
// client creates a repo, uploads a small file, a basic LFS file and a multipart one, lists,
// downloads whole and by range, and takes a snapshot; the objects s3rver holds contain no
// plaintext. s3rver is a dev dependency: in CI (CI=true) this suite never skips.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import * as hub from '@huggingface/hub';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const S3RVER_MAIN = `
import S3rver from 's3rver';
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: process.argv[1], silent: true });
const { port } = await server.run();
console.log(JSON.stringify({ port }));
`;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** s3rver on a temp directory, with the bucket made; the environment points the registry at it. */
async function startS3rver(): Promise<{ dir: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-hub-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', S3RVER_MAIN, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  await client.send(new CreateBucketCommand({ Bucket: 'fabrik-test' }));
  client.destroy();
  const saved = Object.fromEntries(
    ['FABRIK_S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'].map((k) => [k, process.env[k]]),
  );
  Object.assign(process.env, {
    FABRIK_S3_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  });
  return {
    dir,
    async close() {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`Hugging Face Hub protocol with blobs on S3 (s3rver) (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let s3: Awaited<ReturnType<typeof startS3rver>>;
    let t: TestApp;
    let a: Tenant;
    let hubUrl: string;
    // S3 takes parts of 5 MiB and more (but the last): parts of 5 MiB, and 11 MiB go up in three.
    const weights = randomBytes(11 * MiB + 12345);
    const small = randomBytes(300 * 1024);
    const card = `---\nlicense: apache-2.0\ntags: [fabrik, s3]\n---\n# Model on S3\n\nKept in object storage, encrypted.\n`;
    const repo = () => ({ type: 'model' as const, name: `${a.ref}/ons3` });
    const token = () => `hf_${a.ownerToken}`;

    before(async () => {
      if (skip) return;
      s3 = await startS3rver();
      t = await startTestApp(dialect, {
        registry: { blobStore: 's3://fabrik-test/blobs', limits: { chunkBytes: 5 * MiB, basicMaxBytes: 5 * MiB } },
      });
      assert.equal(t.registry?.store.kind, 's3');
      a = await seedTenant(t, 'hubs3');
      hubUrl = `${await t.app.listen({ host: '127.0.0.1', port: 0 })}/hub`;
    });
    after(async () => {
      if (skip) return;
      await t?.close();
      await s3?.close();
    });

    it('creates a repo and uploads inline, basic LFS and multipart LFS files', { skip }, async () => {
      await hub.createRepo({ repo: repo(), accessToken: token(), hubUrl });
      const out = await hub.uploadFiles({
        repo: repo(),
        accessToken: token(),
        hubUrl,
        commitTitle: 'weights on s3',
        files: [
          { path: 'README.md', content: new Blob([card]) },
          { path: 'tokenizer/vocab.bin', content: new Blob([small]) },
          { path: 'model.bin', content: new Blob([weights]) },
        ],
      });
      assert.match(out?.commit.oid ?? '', /^[0-9a-f]{40}$/);
      const info = await hub.modelInfo({
        name: `${a.ref}/ons3`,
        accessToken: token(),
        hubUrl,
        additionalFields: ['sha'] as any,
      });
      assert.equal((info as any).sha, out?.commit.oid);
    });

    it('lists files with sizes and digests', { skip }, async () => {
      const files: any[] = [];
      for await (const f of hub.listFiles({ repo: repo(), accessToken: token(), hubUrl, recursive: true }))
        files.push(f);
      const byPath = new Map(files.map((f) => [f.path, f]));
      assert.equal(byPath.get('model.bin').size, weights.length);
      assert.equal(byPath.get('model.bin').lfs.oid, sha(weights));
      assert.equal(byPath.get('tokenizer/vocab.bin').lfs.oid, sha(small));
      assert.equal(byPath.get('tokenizer').type, 'directory');
    });

    it('downloads byte for byte, and ranges across part and segment boundaries', { skip }, async () => {
      const blob = await hub.downloadFile({ repo: repo(), path: 'model.bin', accessToken: token(), hubUrl });
      assert.ok(blob && Buffer.from(await blob.arrayBuffer()).equals(weights));
      for (const [start, end] of [
        [0, 0],
        [10, 19],
        [5 * MiB - 7, 5 * MiB + 100],
        [MiB - 1, MiB],
        [weights.length - 5, weights.length - 1],
      ]) {
        const res = await fetch(`${hubUrl}/${a.ref}/ons3/resolve/main/model.bin`, {
          headers: { authorization: `Bearer ${token()}`, range: `bytes=${start}-${end}` },
        });
        assert.equal(res.status, 206);
        assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${weights.length}`);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(weights.subarray(start!, end! + 1)), `${start}-${end}`);
      }
    });

    it('snapshotDownload brings the whole version into a cache directory', { skip }, async () => {
      const cacheDir = mkdtempSync(join(tmpdir(), 'fabrik-hf-s3-cache-'));
      try {
        const dir = await hub.snapshotDownload({ repo: repo(), accessToken: token(), hubUrl, cacheDir });
        assert.ok(readFileSync(join(dir, 'model.bin')).equals(weights));
        assert.ok(readFileSync(join(dir, 'tokenizer/vocab.bin')).equals(small));
        assert.equal(readFileSync(join(dir, 'README.md'), 'utf8'), card);
      } finally {
        rmSync(cacheDir, { recursive: true, force: true });
      }
    });

    it('keeps nothing on the local disk, and s3rver holds no plaintext', { skip }, async () => {
      const local = join(t.registryDir!, 'registry');
      assert.deepEqual(statSync(local, { throwIfNoEntry: false }) ? filesUnder(local) : [], []);
      const stored = filesUnder(s3.dir).filter((f) => statSync(f).size > 0);
      const total = stored.reduce((n, f) => n + statSync(f).size, 0);
      assert.ok(total >= weights.length + small.length, `s3rver holds ${total} bytes in ${stored.length} files`);
      const needles = [
        weights.subarray(MiB, MiB + 64),
        weights.subarray(6 * MiB, 6 * MiB + 64),
        small.subarray(1000, 1064),
        Buffer.from('Kept in object storage'),
      ];
      for (const f of stored) {
        const raw = readFileSync(f);
        for (const n of needles) assert.equal(raw.includes(n), false, `${f} holds plaintext`);
      }
    });
  });
}
