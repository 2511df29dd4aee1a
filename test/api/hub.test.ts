// The official Hugging Face JS client (@huggingface/hub) against fabrik's registry, with hubUrl
// pointed at <server>/hub: create, upload (small inline, basic LFS and multipart LFS), list,
// download, ranged download, snapshotDownload, and the errors clients rely on. Both dialects.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

for (const dialect of DIALECTS) {
  describe(`Hugging Face Hub protocol with @huggingface/hub (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let a: Tenant;
    let b: Tenant;
    let hubUrl: string;
    const weights = randomBytes(5 * MiB + 12345);
    const small = randomBytes(300 * 1024);
    const card = `---\nlicense: apache-2.0\nbase_model: acme/base\npipeline_tag: text-generation\ntags: [fabrik, test]\n---\n# Tiny model\n\nA model for the test suite.\n`;
    const repo = () => ({ type: 'model' as const, name: `${a.ref}/tiny` });
    const token = () => `hf_${a.ownerToken}`;

    before(async () => {
      if (skip) return;
      // Parts of 2 MiB, so that a 5 MiB file goes up in three parts.
      t = await startTestApp(dialect, { registry: { limits: { chunkBytes: 2 * MiB, basicMaxBytes: 2 * MiB } } });
      a = await seedTenant(t, 'hubco');
      b = await seedTenant(t, 'rival');
      const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
      hubUrl = `${address}/hub`;
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('creates a repo, and a second create answers 409 with its url', { skip }, async () => {
      const out = await hub.createRepo({ repo: repo(), accessToken: token(), hubUrl });
      assert.equal(out.repoUrl, `${hubUrl}/${a.ref}/tiny`);
      await assert.rejects(
        hub.createRepo({ repo: repo(), accessToken: token(), hubUrl }),
        (e: any) => e.statusCode === 409,
      );
    });

    it('uploads a card inline, a file by basic LFS and one in multipart LFS parts', { skip }, async () => {
      const out = await hub.uploadFiles({
        repo: repo(),
        accessToken: token(),
        hubUrl,
        commitTitle: 'first weights',
        files: [
          { path: 'README.md', content: new Blob([card]) },
          { path: 'tokenizer/vocab.bin', content: new Blob([small]) },
          { path: 'model.bin', content: new Blob([weights]) },
        ],
      });
      assert.match(out?.commit.oid ?? '', /^[0-9a-f]{40}$/);
      const info = await hub.modelInfo({
        name: `${a.ref}/tiny`,
        accessToken: token(),
        hubUrl,
        additionalFields: ['sha', 'siblings'] as any,
      });
      assert.equal((info as any).sha, out?.commit.oid);
      assert.deepEqual(((info as any).siblings as { rfilename: string }[]).map((s) => s.rfilename).sort(), [
        'README.md',
        'model.bin',
        'tokenizer/vocab.bin',
      ]);
    });

    it('lists files recursively with sizes and LFS digests', { skip }, async () => {
      const files: any[] = [];
      for await (const f of hub.listFiles({ repo: repo(), accessToken: token(), hubUrl, recursive: true }))
        files.push(f);
      const byPath = new Map(files.map((f) => [f.path, f]));
      assert.equal(byPath.get('model.bin').size, weights.length);
      assert.equal(byPath.get('model.bin').lfs.oid, sha(weights));
      assert.equal(byPath.get('tokenizer').type, 'directory');
      const top: any[] = [];
      for await (const f of hub.listFiles({ repo: repo(), accessToken: token(), hubUrl })) top.push(f.path);
      assert.deepEqual(top.sort(), ['README.md', 'model.bin', 'tokenizer']);
    });

    it('downloads byte for byte, and a range of a file', { skip }, async () => {
      const blob = await hub.downloadFile({ repo: repo(), path: 'model.bin', accessToken: token(), hubUrl });
      assert.ok(blob);
      assert.ok(Buffer.from(await blob.arrayBuffer()).equals(weights));
      const part = await blob.slice(3 * MiB - 7, 3 * MiB + 100).arrayBuffer();
      assert.ok(Buffer.from(part).equals(weights.subarray(3 * MiB - 7, 3 * MiB + 100)));
      const res = await fetch(`${hubUrl}/${a.ref}/tiny/resolve/main/model.bin`, {
        headers: { authorization: `Bearer ${token()}`, range: 'bytes=10-19' },
      });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), `bytes 10-19/${weights.length}`);
      assert.match(res.headers.get('x-repo-commit') ?? '', /^[0-9a-f]{40}$/);
      assert.equal(res.headers.get('x-linked-etag'), `"${sha(weights)}"`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(weights.subarray(10, 20)));
    });

    it('snapshotDownload brings the whole version into a cache directory', { skip }, async () => {
      const cacheDir = mkdtempSync(join(tmpdir(), 'fabrik-hf-cache-'));
      try {
        const dir = await hub.snapshotDownload({ repo: repo(), accessToken: token(), hubUrl, cacheDir });
        assert.ok(readFileSync(join(dir, 'model.bin')).equals(weights));
        assert.ok(readFileSync(join(dir, 'tokenizer/vocab.bin')).equals(small));
        assert.equal(readFileSync(join(dir, 'README.md'), 'utf8'), card);
      } finally {
        rmSync(cacheDir, { recursive: true, force: true });
      }
    });

    it('a second upload of the same content sends nothing and keeps one blob', { skip }, async () => {
      const before = filesUnder(join(t.registryDir!, 'registry')).length;
      await hub.createRepo({ repo: { type: 'model', name: `${a.ref}/copy` }, accessToken: token(), hubUrl });
      await hub.uploadFiles({
        repo: { type: 'model', name: `${a.ref}/copy` },
        accessToken: token(),
        hubUrl,
        files: [{ path: 'w.bin', content: new Blob([weights]) }],
      });
      assert.equal(filesUnder(join(t.registryDir!, 'registry')).length, before);
    });

    it('stores no plaintext: raw blob files hold none of the content', { skip }, async () => {
      const needle = weights.subarray(MiB, MiB + 64);
      const cardNeedle = Buffer.from('A model for the test suite');
      for (const f of filesUnder(join(t.registryDir!, 'registry'))) {
        if (statSync(f).size === 0) continue;
        const raw = readFileSync(f);
        assert.equal(raw.includes(needle), false, `${f} holds plaintext of model.bin`);
        assert.equal(raw.includes(cardNeedle), false, `${f} holds plaintext of the card`);
      }
    });

    it('answers a missing file with EntryNotFound and a missing repo with 404', { skip }, async () => {
      assert.equal(await hub.downloadFile({ repo: repo(), path: 'nope.bin', accessToken: token(), hubUrl }), null);
      assert.equal(await hub.fileExists({ repo: repo(), path: 'nope.bin', accessToken: token(), hubUrl }), false);
      await assert.rejects(
        hub.downloadFile({
          repo: { type: 'model', name: `${a.ref}/missing` },
          path: 'x',
          accessToken: token(),
          hubUrl,
        }),
        (e: any) => e.statusCode === 404,
      );
      const res = await fetch(`${hubUrl}/${a.ref}/tiny/resolve/nobranch/model.bin`, {
        headers: { authorization: `Bearer ${token()}` },
      });
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('x-error-code'), 'RevisionNotFound');
    });

    it("another tenant's key finds nothing: info, tree, resolve, upload, commit all 404", { skip }, async () => {
      const other = `hf_${b.ownerToken}`;
      await assert.rejects(
        hub.modelInfo({ name: `${a.ref}/tiny`, accessToken: other, hubUrl }),
        (e: any) => e.statusCode === 404,
      );
      await assert.rejects(
        hub.downloadFile({ repo: repo(), path: 'model.bin', accessToken: other, hubUrl }),
        (e: any) => e.statusCode === 404,
      );
      await assert.rejects(
        hub.uploadFiles({
          repo: repo(),
          accessToken: other,
          hubUrl,
          files: [{ path: 'evil.bin', content: new Blob([randomBytes(3 * MiB)]) }],
        }),
        (e: any) => e.statusCode === 404,
      );
      await assert.rejects(
        hub.createRepo({ repo: { type: 'model', name: `${a.ref}/planted` }, accessToken: other, hubUrl }),
        (e: any) => e.statusCode === 404,
      );
      const tree = await fetch(`${hubUrl}/api/models/${a.ref}/tiny/tree/main?recursive=true`, {
        headers: { authorization: `Bearer ${other}` },
      });
      assert.equal(tree.status, 404);
      assert.equal(tree.headers.get('x-error-code'), 'RepoNotFound');
    });

    it('a viewer reads but cannot push; a bad key is refused with the Hub message', { skip }, async () => {
      const viewer = `hf_${a.viewerToken}`;
      const blob = await hub.downloadFile({ repo: repo(), path: 'tokenizer/vocab.bin', accessToken: viewer, hubUrl });
      assert.ok(blob && Buffer.from(await blob.arrayBuffer()).equals(small));
      await assert.rejects(
        hub.uploadFiles({
          repo: repo(),
          accessToken: viewer,
          hubUrl,
          files: [{ path: 'x.bin', content: new Blob([randomBytes(3 * MiB)]) }],
        }),
        (e: any) => e.statusCode === 403,
      );
      const res = await fetch(`${hubUrl}/api/models/${a.ref}/tiny`, {
        headers: { authorization: 'Bearer hf_fbk_notakey' },
      });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('x-error-message'), 'Invalid credentials in Authorization header');
    });
  });
}
