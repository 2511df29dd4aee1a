// The registry's REST routes (/api/v1) on content pushed with the official Hub client
// (@huggingface/hub against <server>/hub), on both dialects: listing and creating models and
// datasets, describing them (refs, card, formats, storage), versions newest first and paged, a
// version's manifest and DSSE envelope with the server's verdict (and its failure once the stored
// envelope is tampered with), the signing key, tags, countersignatures, lineage, storage quotas
// (an upload over the quota answers 507), deletion, and what viewers and other tenants get.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import { keyIdOf, pae, verifyEnvelope } from '../../src/registry/signing.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A valid safetensors file: one U8 tensor of `n` random bytes. */
function safetensors(n: number): Buffer {
  const json = JSON.stringify({ weight: { dtype: 'U8', shape: [n], data_offsets: [0, n] } });
  const header = Buffer.from(json.padEnd((json.length + 7) & ~7, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, randomBytes(n)]);
}

const CARD = `---
license: apache-2.0
base_model: acme/base
datasets: [acme/corpus]
pipeline_tag: text-generation
model-index:
  - name: tiny
    results:
      - task: { type: text-generation }
        dataset: { type: acme/corpus, name: corpus }
        metrics:
          - { type: accuracy, value: 0.75 }
---
# Tiny

A tiny model for the REST tests.
`;

for (const dialect of DIALECTS) {
  describe(`registry REST routes (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let a: Tenant;
    let b: Tenant;
    let hubUrl: string;
    const weights = safetensors(3 * MiB);
    const MODEL = 'llama-3.1-8b';
    let first: string;
    let second: string;
    let datasetCommit: string;
    let rivalCommit: string;
    const api = (ref: string, rest = '') => `/api/v1/projects/${ref}${rest}`;
    const model = (rest = '') => api(a.ref, `/models/${MODEL}${rest}`);
    const upload = (token: string, repo: hub.RepoDesignation, files: { path: string; content: Buffer }[]) =>
      hub.uploadFiles({
        repo,
        accessToken: `hf_${token}`,
        hubUrl,
        files: files.map((f) => ({ path: f.path, content: new Blob([new Uint8Array(f.content)]) })),
      });

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect, { registry: { limits: { chunkBytes: 2 * MiB, basicMaxBytes: 2 * MiB } } });
      a = await seedTenant(t, 'regco');
      b = await seedTenant(t, 'rival');
      hubUrl = `${await t.app.listen({ host: '127.0.0.1', port: 0 })}/hub`;
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('creates models and datasets; a second create is 409; bad names are 400', { skip }, async () => {
      const created = await t.call('POST', api(a.ref, '/models'), { token: a.ownerToken, body: { name: MODEL } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.id, `${a.ref}/${MODEL}`);
      assert.equal(created.body.kind, 'model');
      const entries = async () =>
        (await t.store.db.selectFrom('audit_entries').select('seq').where('action', '=', 'model.create').execute())
          .length;
      const before = await entries();
      const again = await t.call('POST', api(a.ref, '/models'), { token: a.ownerToken, body: { name: MODEL } });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'ALREADY_EXISTS');
      assert.equal(await entries(), before, 'a refused create writes no audit entry');
      // An Idempotency-Key replays the same 201 body.
      const idem = { 'idempotency-key': 'create-replay-1' };
      const first = await t.call('POST', api(a.ref, '/models'), {
        token: a.ownerToken,
        body: { name: 'replayed' },
        headers: idem,
      });
      const replay = await t.call('POST', api(a.ref, '/models'), {
        token: a.ownerToken,
        body: { name: 'replayed' },
        headers: idem,
      });
      assert.equal(first.status, 201);
      assert.equal(replay.status, 201);
      assert.deepEqual(replay.body, first.body);
      assert.equal((await t.call('DELETE', api(a.ref, '/models/replayed'), { token: a.ownerToken })).status, 204);
      const ds = await t.call('POST', api(a.ref, '/datasets'), { token: a.ownerToken, body: { name: 'corpus' } });
      assert.equal(ds.status, 201);
      assert.equal(ds.body.kind, 'dataset');
      for (const name of ['-x', 'a..b', 'x.git', 'a/b']) {
        const r = await t.call('POST', api(a.ref, '/models'), { token: a.ownerToken, body: { name } });
        assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      }
      const viewer = await t.call('POST', api(a.ref, '/models'), { token: a.viewerToken, body: { name: 'nope' } });
      assert.equal(viewer.status, 403);
    });

    it('pushes two versions with the Hub client and lists them with the latest', { skip }, async () => {
      const repo = { type: 'model' as const, name: `${a.ref}/${MODEL}` };
      first = (await upload(a.ownerToken, repo, [{ path: 'README.md', content: Buffer.from(CARD) }]))!.commit.oid;
      second = (await upload(a.ownerToken, repo, [{ path: 'model.safetensors', content: weights }]))!.commit.oid;
      datasetCommit = (await upload(a.ownerToken, { type: 'dataset', name: `${a.ref}/corpus` }, [
        { path: 'train.jsonl', content: Buffer.from('{"text": "hello"}\n') },
      ]))!.commit.oid;
      await hub.createRepo({
        repo: { type: 'model', name: `${b.ref}/theirs` },
        accessToken: `hf_${b.ownerToken}`,
        hubUrl,
      });
      rivalCommit = (await upload(b.ownerToken, { type: 'model', name: `${b.ref}/theirs` }, [
        { path: 'x.txt', content: Buffer.from('rival') },
      ]))!.commit.oid;

      const list = await t.call('GET', api(a.ref, '/models'), { token: a.viewerToken });
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.items.map((m: any) => [m.name, m.latest?.id, m.latest?.files]),
        [[MODEL, second, 2]],
      );
      const datasets = await t.call('GET', api(a.ref, '/datasets'), { token: a.viewerToken });
      assert.deepEqual(
        datasets.body.items.map((d: any) => [d.name, d.latest?.id]),
        [['corpus', datasetCommit]],
      );
    });

    it('describes a model: refs, latest version, card, formats and storage', { skip }, async () => {
      const r = await t.call('GET', model(), { token: a.viewerToken });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.id, `${a.ref}/${MODEL}`);
      assert.deepEqual(
        r.body.refs.map((x: any) => [x.name, x.kind, x.commit]),
        [['main', 'branch', second]],
      );
      assert.equal(r.body.latest.id, second);
      assert.equal(r.body.latest.parent, first);
      assert.equal(r.body.card.license, 'apache-2.0');
      assert.deepEqual(r.body.card.baseModel, ['acme/base']);
      assert.equal(r.body.card.pipelineTag, 'text-generation');
      assert.equal(r.body.card.evalResults[0].metric, 'accuracy');
      assert.deepEqual(r.body.formats, {
        parameters: 3 * MiB,
        formats: ['safetensors'],
        dtypes: { U8: 3 * MiB },
        quantization: [],
      });
      assert.equal(r.body.storage.versions, 2);
      assert.equal(r.body.storage.latestBytes, weights.length + Buffer.byteLength(CARD));
      assert.equal(r.body.storage.storedBytes, weights.length + Buffer.byteLength(CARD));
    });

    it('lists versions newest first, a page at a time', { skip }, async () => {
      const p1 = await t.call('GET', model('/versions?limit=1'), { token: a.viewerToken });
      assert.equal(p1.status, 200);
      assert.deepEqual(
        p1.body.items.map((v: any) => [v.id, v.seq, v.files]),
        [[second, 2, 2]],
      );
      assert.ok(p1.body.nextCursor);
      const p2 = await t.call('GET', model(`/versions?limit=1&cursor=${p1.body.nextCursor}`), { token: a.viewerToken });
      assert.deepEqual(
        p2.body.items.map((v: any) => [v.id, v.seq, v.parent]),
        [[first, 1, null]],
      );
      assert.equal(p2.body.nextCursor, null);
    });

    it("shows a version's manifest (never blob ids), envelope and a verdict", { skip }, async () => {
      for (const rev of ['main', second]) {
        const r = await t.call('GET', model(`/versions/${rev}`), { token: a.viewerToken });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.version.id, second);
        assert.deepEqual(r.body.files, [
          { path: 'README.md', size: Buffer.byteLength(CARD), sha256: sha(Buffer.from(CARD)) },
          { path: 'model.safetensors', size: weights.length, sha256: sha(weights) },
        ]);
        assert.equal(JSON.stringify(r.body).includes('blobId'), false);
        assert.equal(r.body.formats['model.safetensors'].format, 'safetensors');
        assert.equal(r.body.envelope.payloadType, 'application/vnd.in-toto+json');
        assert.deepEqual(r.body.verification, { ok: true, signers: [t.registry!.signer.keyid], reason: null });
        assert.deepEqual(r.body.signatures, [{ keyid: t.registry!.signer.keyid, platform: true }]);
      }
      const missing = await t.call('GET', model('/versions/nosuch'), { token: a.viewerToken });
      assert.equal(missing.status, 404);
    });

    it('serves the signing key without a key; the envelope verifies with it locally', { skip }, async () => {
      const key = await t.call('GET', '/api/v1/registry/signing-key', { token: null });
      assert.equal(key.status, 200);
      assert.equal(key.body.algorithm, 'ed25519');
      assert.equal(key.body.format, 'DSSE in-toto model-signing v1.0');
      assert.equal(key.body.keyid, keyIdOf(key.body.publicKeyPem));
      const detail = (await t.call('GET', model(`/versions/${second}`), { token: a.viewerToken })).body;
      const v = verifyEnvelope(detail.envelope, [{ keyid: key.body.keyid, publicKey: key.body.publicKeyPem }], {
        files: detail.files,
        commit: second,
      });
      assert.deepEqual(v, { ok: true, signers: [key.body.keyid] });
    });

    it('tags versions: members tag, viewers cannot, main is not a tag', { skip }, async () => {
      const put = await t.call('PUT', model('/refs/v1'), { token: a.ownerToken, body: { revision: first } });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.deepEqual([put.body.name, put.body.kind, put.body.commit], ['v1', 'tag', first]);
      const byTag = await t.call('GET', model('/versions/v1'), { token: a.viewerToken });
      assert.equal(byTag.body.version.id, first);
      const moved = await t.call('PUT', model('/refs/v1'), { token: a.ownerToken, body: { revision: 'main' } });
      assert.equal(moved.body.commit, second);

      const viewerPut = await t.call('PUT', model('/refs/v2'), { token: a.viewerToken, body: { revision: 'main' } });
      assert.equal(viewerPut.status, 403);
      const viewerDel = await t.call('DELETE', model('/refs/v1'), { token: a.viewerToken });
      assert.equal(viewerDel.status, 403);
      const main = await t.call('PUT', model('/refs/main'), { token: a.ownerToken, body: { revision: first } });
      assert.equal(main.status, 409);
      const bad = await t.call('PUT', model('/refs/v3'), { token: a.ownerToken, body: { revision: 'nosuch' } });
      assert.equal(bad.status, 404);

      const del = await t.call('DELETE', model('/refs/v1'), { token: a.ownerToken });
      assert.equal(del.status, 204);
      const gone = await t.call('DELETE', model('/refs/v1'), { token: a.ownerToken });
      assert.equal(gone.status, 404);
      await t.call('PUT', model('/refs/prod'), { token: a.ownerToken, body: { revision: second } });
    });

    it('countersigns a version with an uploader key', { skip }, async () => {
      const detail = (await t.call('GET', model('/versions/main'), { token: a.viewerToken })).body;
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const keyid = keyIdOf(publicKeyPem);
      const message = pae(detail.envelope.payloadType, Buffer.from(detail.envelope.payload, 'base64'));
      const sig = sign(null, message, privateKey).toString('base64');
      const url = model('/versions/main/signatures');

      const viewer = await t.call('POST', url, { token: a.viewerToken, body: { keyid, sig, publicKeyPem } });
      assert.equal(viewer.status, 403);
      const wrongSig = sign(null, Buffer.from('something else'), privateKey).toString('base64');
      const bad = await t.call('POST', url, { token: a.ownerToken, body: { keyid, sig: wrongSig, publicKeyPem } });
      assert.equal(bad.status, 422);
      assert.equal(bad.body.error.code, 'SIGNATURE_INVALID');
      const wrongId = await t.call('POST', url, {
        token: a.ownerToken,
        body: { keyid: 'a'.repeat(64), sig, publicKeyPem },
      });
      assert.equal(wrongId.status, 400);

      const ok = await t.call('POST', url, { token: a.ownerToken, body: { keyid, sig, publicKeyPem } });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.ok, true);
      assert.deepEqual(
        ok.body.signatures.map((s: any) => [s.keyid, s.platform]),
        [
          [t.registry!.signer.keyid, true],
          [keyid, false],
        ],
      );
      const twice = await t.call('POST', url, { token: a.ownerToken, body: { keyid, sig, publicKeyPem } });
      assert.equal(twice.status, 409);

      const after = (await t.call('GET', model('/versions/main'), { token: a.viewerToken })).body;
      assert.equal(after.envelope.signatures.length, 2);
      const both = verifyEnvelope(
        after.envelope,
        [
          { keyid: t.registry!.signer.keyid, publicKey: t.registry!.signer.publicKeyPem },
          { keyid, publicKey: publicKeyPem },
        ],
        { files: after.files, commit: second },
      );
      assert.deepEqual(both, { ok: true, signers: [t.registry!.signer.keyid, keyid] });
      const audit = await t.store.db
        .selectFrom('audit_entries')
        .select(['action', 'resource'])
        .where('action', '=', 'model.countersign')
        .where('outcome', '=', 'success')
        .execute();
      assert.equal(audit.length, 1);
      assert.equal(audit[0].resource, `projects/${a.ref}/models/${MODEL}/versions/${second}`);
    });

    it('walks lineage up and down, and never shows another tenant', { skip }, async () => {
      const wl = await t.call('POST', api(a.ref, '/workloads'), {
        token: a.ownerToken,
        body: {
          kind: 'training',
          name: 'finetune',
          resources: { gpu: 'B200:8', nodes: 1 },
          max_duration: '2h',
          run: 'python train.py',
        },
      });
      assert.equal(wl.status, 201, JSON.stringify(wl.body));
      const attempt = `${wl.body.id}:1`;
      const org = (name: string) =>
        t.store.db.selectFrom('orgs').select('id').where('name', '=', name).executeTakeFirstOrThrow();
      const aOrg = (await org(a.org)).id;
      const bOrg = (await org(b.org)).id;
      const edge = (id: string, orgId: string, fromKind: any, fromId: string, toKind: any, toId: string) => ({
        id,
        org_id: orgId,
        from_kind: fromKind,
        from_id: fromId,
        to_kind: toKind,
        to_id: toId,
        created_at: new Date().toISOString(),
      });
      await t.store.db
        .insertInto('lineage_edges')
        .values([
          edge('lin_1', aOrg, 'commit', datasetCommit, 'attempt', attempt),
          edge('lin_2', aOrg, 'attempt', attempt, 'commit', second),
          edge('lin_3', aOrg, 'commit', second, 'deployment', 'dep_chat'),
          // Another tenant's model planted downstream of A's dataset: never shown to A.
          edge('lin_4', bOrg, 'commit', datasetCommit, 'commit', rivalCommit),
        ])
        .execute();

      const up = await t.call('GET', model('/versions/main/lineage?direction=up'), { token: a.viewerToken });
      assert.equal(up.status, 200, JSON.stringify(up.body));
      assert.equal(up.body.root, `commit:${second}`);
      assert.deepEqual(
        up.body.nodes.map((n: any) => [n.label, n.depth]),
        [
          [`${a.ref}/${MODEL}@${second}`, 0],
          [`finetune#1 (${a.ref})`, 1],
          [`datasets/${a.ref}/corpus@${datasetCommit}`, 2],
        ],
      );
      const att = up.body.nodes[1];
      assert.deepEqual(att.workload, { id: wl.body.id, name: 'finetune', project: a.ref, status: 'pending' });
      assert.deepEqual(up.body.edges, [
        { from: `attempt:${attempt}`, to: `commit:${second}` },
        { from: `commit:${datasetCommit}`, to: `attempt:${attempt}` },
      ]);
      const shallow = await t.call('GET', model('/versions/main/lineage?direction=up&depth=1'), {
        token: a.viewerToken,
      });
      assert.equal(shallow.body.nodes.length, 2);

      const down = await t.call('GET', api(a.ref, `/datasets/corpus/versions/main/lineage?direction=down`), {
        token: a.viewerToken,
      });
      assert.deepEqual(
        down.body.nodes.map((n: any) => n.key),
        [`commit:${datasetCommit}`, `attempt:${attempt}`, `commit:${second}`, 'deployment:dep_chat'],
      );
      assert.equal(JSON.stringify(down.body).includes(rivalCommit), false);
      const both = await t.call('GET', model('/versions/main/lineage'), { token: a.viewerToken });
      assert.equal(both.body.nodes.length, 4);

      // The rival sees its own model, and nothing of A's upstream.
      const rival = await t.call('GET', api(b.ref, '/models/theirs/versions/main/lineage'), { token: b.ownerToken });
      assert.equal(rival.status, 200);
      assert.deepEqual(
        rival.body.nodes.map((n: any) => n.key),
        [`commit:${rivalCommit}`],
      );
      const bad = await t.call('GET', model('/versions/main/lineage?direction=sideways'), { token: a.viewerToken });
      assert.equal(bad.status, 400);
    });

    it("answers another tenant's key with 404 on every route", { skip }, async () => {
      const other = b.ownerToken;
      const gets = [
        api(a.ref, '/models'),
        api(a.ref, '/datasets'),
        model(),
        model('/versions'),
        model('/versions/main'),
        model(`/versions/${second}`),
        model('/versions/main/lineage'),
        api(a.ref, '/datasets/corpus'),
        api(a.ref, '/storage-quota'),
      ];
      for (const url of gets) {
        const r = await t.call('GET', url, { token: other });
        assert.equal(r.status, 404, `GET ${url}: ${JSON.stringify(r.body)}`);
      }
      const writes: [string, string, unknown?][] = [
        ['POST', api(a.ref, '/models'), { name: 'planted' }],
        ['DELETE', model()],
        ['PUT', model('/refs/evil'), { revision: 'main' }],
        ['DELETE', model('/refs/prod')],
        ['POST', model('/versions/main/signatures'), { keyid: 'a'.repeat(64), sig: 'AAAA', publicKeyPem: 'x' }],
      ];
      for (const [method, url, body] of writes) {
        const r = await t.call(method, url, { token: other, body });
        assert.equal(r.status, 404, `${method} ${url}: ${JSON.stringify(r.body)}`);
      }
      const quota = await t.call('PUT', api(a.ref, '/storage-quota'), { token: other, body: { limitBytes: 1 } });
      assert.ok(quota.status === 404 || quota.status === 403, `PUT storage-quota: ${quota.status}`);
      const tags = (await t.call('GET', model(), { token: a.viewerToken })).body.refs.map((x: any) => x.name);
      assert.deepEqual(tags, ['main', 'prod']);
    });

    it('shows a failed verdict once the stored envelope is tampered with', { skip }, async () => {
      const repo = { type: 'model' as const, name: `${a.ref}/tampered` };
      await hub.createRepo({ repo, accessToken: `hf_${a.ownerToken}`, hubUrl });
      const oid = (await upload(a.ownerToken, repo, [{ path: 'a.txt', content: Buffer.from('original') }]))!.commit.oid;
      const row = await t.store.db
        .selectFrom('commits')
        .select('envelope')
        .where('id', '=', oid)
        .executeTakeFirstOrThrow();
      const env = JSON.parse(row.envelope);
      const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
      statement.predicate.resources[0].digest = sha(Buffer.from('evil'));
      env.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
      await t.store.db
        .updateTable('commits')
        .set({ envelope: JSON.stringify(env) })
        .where('id', '=', oid)
        .execute();

      const r = await t.call('GET', api(a.ref, '/models/tampered/versions/main'), { token: a.viewerToken });
      assert.equal(r.status, 200);
      assert.equal(r.body.verification.ok, false);
      assert.match(r.body.verification.reason, /does not verify/);

      // A swapped signature from another version fails too.
      const good = JSON.parse(
        (await t.store.db.selectFrom('commits').select('envelope').where('id', '=', second).executeTakeFirstOrThrow())
          .envelope,
      );
      await t.store.db
        .updateTable('commits')
        .set({ envelope: JSON.stringify({ ...good, signatures: good.signatures.slice(0, 1) }) })
        .where('id', '=', oid)
        .execute();
      const swapped = await t.call('GET', api(a.ref, '/models/tampered/versions/main'), { token: a.viewerToken });
      assert.equal(swapped.body.verification.ok, false);
      assert.match(swapped.body.verification.reason, /signed but missing|not covered|commit/);
    });

    it('storage quotas: operators set them; an upload over the quota answers 507', { skip }, async () => {
      const created = await t.call('POST', `/api/v1/orgs/${a.org}/projects`, {
        token: a.ownerToken,
        body: { name: 'small' },
      });
      assert.equal(created.status, 201);
      const ref = `${a.org}.small`;
      const usage = await t.call('GET', api(ref, '/storage-quota'), { token: a.viewerToken });
      assert.deepEqual(usage.body, { project: ref, limitBytes: null, usedBytes: 0, uploadingBytes: 0 });
      const owner = await t.call('PUT', api(ref, '/storage-quota'), { token: a.ownerToken, body: { limitBytes: MiB } });
      assert.equal(owner.status, 403);
      const set = await t.call('PUT', api(ref, '/storage-quota'), { body: { limitBytes: MiB } });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.equal(set.body.limitBytes, MiB);

      const repo = { type: 'model' as const, name: `${ref}/big` };
      await hub.createRepo({ repo, accessToken: `hf_${a.ownerToken}`, hubUrl });
      await assert.rejects(
        upload(a.ownerToken, repo, [{ path: 'big.bin', content: randomBytes(3 * MiB) }]),
        (e: any) => {
          assert.equal(e.statusCode, 507, String(e));
          assert.match(String(e.message), /storage quota/);
          return true;
        },
      );
      const raw = await fetch(`${hubUrl}/${ref}/big.git/info/lfs/objects/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.ownerToken}`, 'content-type': 'application/vnd.git-lfs+json' },
        body: JSON.stringify({
          operation: 'upload',
          transfers: ['basic'],
          objects: [{ oid: 'a'.repeat(64), size: 3 * MiB }],
        }),
      });
      assert.equal(raw.status, 507);
      assert.equal(raw.headers.get('x-error-code'), 'STORAGE_QUOTA_EXCEEDED');

      const cleared = await t.call('PUT', api(ref, '/storage-quota'), { body: { limitBytes: null } });
      assert.equal(cleared.body.limitBytes, null);
      const bad = await t.call('PUT', api(ref, '/storage-quota'), { body: { limitBytes: -1 } });
      assert.equal(bad.status, 400);
    });

    it('deletes a repo: admins only; then gone for REST and Hub clients', { skip }, async () => {
      const viewer = await t.call('DELETE', api(a.ref, '/models/tampered'), { token: a.viewerToken });
      assert.equal(viewer.status, 403);
      const del = await t.call('DELETE', api(a.ref, '/models/tampered'), { token: a.ownerToken });
      assert.equal(del.status, 204);
      assert.equal((await t.call('GET', api(a.ref, '/models/tampered'), { token: a.ownerToken })).status, 404);
      await assert.rejects(
        hub.modelInfo({ name: `${a.ref}/tampered`, accessToken: `hf_${a.ownerToken}`, hubUrl }),
        (e: any) => e.statusCode === 404,
      );
      const row = await t.store.db
        .selectFrom('repos')
        .select(['deleted_at', 'purge_after'])
        .where('name', '=', 'tampered')
        .executeTakeFirstOrThrow();
      assert.ok(row.purge_after > row.deleted_at, 'kept for the retention');
    });

    it('lists every registry route in /openapi.json', { skip }, async () => {
      const doc = (await t.call('GET', '/openapi.json', { token: null })).body;
      const paths = Object.keys(doc.paths);
      for (const p of [
        '/api/v1/projects/{project}/models',
        '/api/v1/projects/{project}/datasets/{name}/versions/{rev}/lineage',
        '/api/v1/projects/{project}/models/{name}/versions/{rev}/signatures',
        '/api/v1/projects/{project}/models/{name}/refs/{ref}',
        '/api/v1/registry/signing-key',
        '/api/v1/projects/{project}/storage-quota',
      ])
        assert.ok(paths.includes(p), `${p} is in /openapi.json`);
    });
  });
}

describe('registry REST routes without a registry', () => {
  it('answer 503 UNAVAILABLE', async () => {
    const t = await startTestApp('sqlite');
    try {
      const key = await t.call('GET', '/api/v1/registry/signing-key', { token: null });
      assert.equal(key.status, 503);
      assert.equal(key.body.error.code, 'UNAVAILABLE');
      const a = await seedTenant(t, 'noreg');
      const list = await t.call('GET', `/api/v1/projects/${a.ref}/models`, { token: a.ownerToken });
      assert.equal(list.status, 503);
    } finally {
      await t.close();
    }
  });
});
