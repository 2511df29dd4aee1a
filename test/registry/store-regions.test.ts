// Blob stores carry a region, and an org's bytes go only to a store its sovereignty policy allows:
// the first configured store (the default one first) that the policy in force allows for the org.
// The default store here is in Switzerland (ch-zrh1, outside the EU), so that no org may use it
// and the named stores decide: `fr` (eu-fr-par1) configured first, then `de` (eu-de-fra1). Both
// dialects; one upload goes through the real @huggingface/hub client.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import { findBlob, findBlobByDigest, openBlob } from '../../src/registry/content.js';
import { ingestFile } from '../../src/registry/ingest.js';
import { createRegistry } from '../../src/registry/registry.js';
import { openBlobStores } from '../../src/registry/setup.js';
import { parseBlobStoreSpec } from '../../src/registry/store-spec.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const STORES = ['fr=fs@eu-fr-par1', 'de=fs@eu-de-fra1'];

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** Finished objects of the fs store at `root` (not its partial/ directory). */
const objectsIn = (root: string) => filesUnder(join(root, 'objects'));

async function orgRow(t: TestApp, name: string) {
  return t.store.db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
}

async function commitEntries(t: TestApp, orgId: string) {
  const rows = await t.store.db
    .selectFrom('audit_entries')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('action', '=', 'model.commit')
    .orderBy('seq')
    .execute();
  return rows.map((r) => JSON.parse(r.canonical) as Record<string, any>);
}

async function policyHash(t: TestApp): Promise<string> {
  const v = await t.store.db
    .selectFrom('policy_versions')
    .select('hash')
    .orderBy('version', 'desc')
    .executeTakeFirstOrThrow();
  return v.hash;
}

describe('blob store specs (--blob-store-at, FABRIK_BLOB_STORES)', () => {
  it('reads name, location and region, and refuses bad specs naming the flag', () => {
    assert.deepEqual(parseBlobStoreSpec('fra=fs:/srv/blobs@eu-de-fra1'), {
      name: 'fra',
      kind: 'fs',
      location: '/srv/blobs',
      region: 'eu-de-fra1',
    });
    assert.deepEqual(parseBlobStoreSpec('par=s3://fabrik-par/a/b@eu-fr-par1'), {
      name: 'par',
      kind: 's3',
      location: 's3://fabrik-par/a/b',
      region: 'eu-fr-par1',
    });
    for (const bad of ['fs@eu-de-fra1', 'Fra=fs@eu-de-fra1', 'fra=fs', 'fra=nfs:/x@eu-de-fra1', 'default=fs@eu-de-x'])
      assert.throws(() => parseBlobStoreSpec(bad), /--blob-store-at/);
    assert.throws(() => parseBlobStoreSpec('x=fs@', 'FABRIK_BLOB_STORES'), /FABRIK_BLOB_STORES .*region/);
  });

  it('resolves fs stores under the data directory and refuses a name or a place given twice', () => {
    const stores = openBlobStores({ dataDir: '/data', blobStores: ['a=fs@eu-de-a', 'b=fs:blobs-b@eu-de-b'] });
    assert.deepEqual(
      stores.map((s) => [s.name, s.where, s.region]),
      [
        ['', '/data/registry', 'eu-de-local'],
        ['a', '/data/registry-a', 'eu-de-a'],
        ['b', '/data/blobs-b', 'eu-de-b'],
      ],
    );
    assert.throws(
      () => openBlobStores({ dataDir: '/data', blobStores: ['a=fs@eu-de-a', 'a=fs:x@eu-de-a'] }),
      /given twice/,
    );
    assert.throws(() => openBlobStores({ dataDir: '/data', blobStores: ['a=fs:registry@eu-de-a'] }), /already/);
  });
});

for (const dialect of DIALECTS) {
  describe(`blob stores in regions, chosen by sovereignty policy (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let de: Tenant;
    let eu: Tenant;
    let hubUrl: string;
    const weights = randomBytes(2 * MiB + 4321);
    const euBytes = randomBytes(200 * 1024);
    const dirOf = (name: string) => join(t.registryDir!, name ? `registry-${name}` : 'registry');

    before(async () => {
      if (skip) return;
      // Parts of 1 MiB: the weights go up multipart.
      t = await startTestApp(dialect, {
        registry: { region: 'ch-zrh1', blobStores: STORES, limits: { chunkBytes: MiB, basicMaxBytes: MiB } },
      });
      de = await seedTenant(t, 'deco');
      eu = await seedTenant(t, 'euco');
      const patched = await t.call('PATCH', '/api/v1/orgs/euco', { body: { residency: 'eu' } });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
      hubUrl = `${address}/hub`;
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('a de org uploads through @huggingface/hub: its bytes land in the de store only', { skip }, async () => {
      const repo = { type: 'model' as const, name: `${de.ref}/tiny` };
      const accessToken = `hf_${de.ownerToken}`;
      await hub.createRepo({ repo, accessToken, hubUrl });
      const out = await hub.uploadFiles({
        repo,
        accessToken,
        hubUrl,
        commitTitle: 'weights',
        files: [
          { path: 'README.md', content: new Blob(['# tiny\n']) },
          { path: 'model.bin', content: new Blob([weights]) },
        ],
      });
      assert.match(out?.commit.oid ?? '', /^[0-9a-f]{40}$/);
      const org = await orgRow(t, 'deco');
      const blob = await findBlobByDigest(t.store.db, t.registry!, org.id, sha(weights));
      assert.equal(blob?.store, 'de');
      const readme = await findBlobByDigest(t.store.db, t.registry!, org.id, sha(Buffer.from('# tiny\n')));
      assert.equal(readme?.store, 'de', 'the inline README went to the de store too');
      assert.equal(objectsIn(dirOf('de')).length, 2);
      assert.deepEqual(objectsIn(dirOf('fr')), []);
      assert.deepEqual(objectsIn(dirOf('')), []);
      const uploads = await t.store.db.selectFrom('uploads').select('store').where('org_id', '=', org.id).execute();
      assert.ok(uploads.length >= 2 && uploads.every((u) => u.store === 'de'));
      const got = await hub.downloadFile({ repo, path: 'model.bin', accessToken, hubUrl });
      assert.ok(Buffer.from(await got!.arrayBuffer()).equals(weights));
    });

    it("the commit's audit entry records where the bytes are and the policy set's hash", { skip }, async () => {
      const org = await orgRow(t, 'deco');
      const [entry] = await commitEntries(t, org.id);
      assert.ok(entry, 'a model.commit entry');
      assert.deepEqual(entry.location, { store: 'de', region: 'eu-de-fra1' });
      assert.equal(entry.policy.hash, await policyHash(t));
      assert.deepEqual(entry.policy.ids, ['storage']);
    });

    it('an eu org may land in the fr store, the first configured that its policy allows', { skip }, async () => {
      const repo = { type: 'model' as const, name: `${eu.ref}/data` };
      const accessToken = `hf_${eu.ownerToken}`;
      await hub.createRepo({ repo, accessToken, hubUrl });
      const before = objectsIn(dirOf('de')).length;
      await hub.uploadFiles({ repo, accessToken, hubUrl, files: [{ path: 'x.bin', content: new Blob([euBytes]) }] });
      const org = await orgRow(t, 'euco');
      const blob = await findBlobByDigest(t.store.db, t.registry!, org.id, sha(euBytes));
      assert.equal(blob?.store, 'fr');
      assert.equal(objectsIn(dirOf('fr')).length, 1);
      assert.equal(objectsIn(dirOf('de')).length, before);
      const [entry] = await commitEntries(t, org.id);
      assert.deepEqual(entry?.location, { store: 'fr', region: 'eu-fr-par1' });
    });

    it('in-process ingestion chooses the store the same way', { skip }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fabrik-ingest-'));
      try {
        const path = join(dir, 'out.bin');
        const content = randomBytes(3000);
        writeFileSync(path, content);
        const org = await orgRow(t, 'deco');
        const project = await t.store.db
          .selectFrom('projects')
          .selectAll()
          .where('org_id', '=', org.id)
          .executeTakeFirstOrThrow();
        const got = await ingestFile(t.store.db, t.registry!, org.id, project.id, path, 'test');
        assert.equal((await findBlob(t.store.db, org.id, got.blobId))?.store, 'de');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a blob written before stays readable after the policy and the store list change', { skip }, async () => {
      const org = await orgRow(t, 'euco');
      const blob = (await findBlobByDigest(t.store.db, t.registry!, org.id, sha(euBytes)))!;
      // The org becomes de-resident: fr is no longer allowed for new bytes, old ones are read as they are.
      const patched = await t.call('PATCH', '/api/v1/orgs/euco', { body: { residency: 'de' } });
      assert.equal(patched.status, 200);
      const res = await fetch(`${hubUrl}/${eu.ref}/data/resolve/main/x.bin`, {
        headers: { authorization: `Bearer ${eu.ownerToken}` },
      });
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(euBytes));
      // New bytes of the same org now go to de; content it holds in fr already is not sent again.
      const fresh = randomBytes(5000);
      await hub.uploadFiles({
        repo: { type: 'model', name: `${eu.ref}/data` },
        accessToken: `hf_${eu.ownerToken}`,
        hubUrl,
        files: [
          { path: 'y.bin', content: new Blob([fresh]) },
          { path: 'copy-of-x.bin', content: new Blob([euBytes]) },
        ],
      });
      assert.equal((await findBlobByDigest(t.store.db, t.registry!, org.id, sha(fresh)))?.store, 'de');
      assert.equal(objectsIn(dirOf('fr')).length, 1);
      // That commit's files are in two stores: the first in configured order, the other under `also`;
      // the policy ids say fr is forbidden for new bytes of the org now.
      const entries = await commitEntries(t, org.id);
      const last = entries[entries.length - 1]!;
      assert.deepEqual(last.location, {
        store: 'fr',
        region: 'eu-fr-par1',
        also: [{ store: 'de', region: 'eu-de-fra1' }],
      });
      assert.deepEqual([...last.policy.ids].sort(), ['storage', 'storage-residency-de']);
      // The same stores listed the other way round (and one more): the blob is found by its store's name.
      const reordered = createRegistry({
        ...t.registry!,
        stores: openBlobStores({
          dataDir: t.registryDir!,
          region: 'ch-zrh1',
          blobStores: ['extra=fs@eu-de-muc1', STORES[1]!, STORES[0]!],
        }),
      });
      assert.ok((await buffer(await openBlob(reordered, blob))).equals(euBytes));
      // Without the fr store configured at all, reading it is refused clearly, not answered wrongly.
      const withoutFr = createRegistry({
        ...t.registry!,
        stores: openBlobStores({ dataDir: t.registryDir!, region: 'ch-zrh1', blobStores: [STORES[1]!] }),
      });
      await assert.rejects(openBlob(withoutFr, blob), (e: any) => e.code === 'UNAVAILABLE' && /"fr"/.test(e.message));
    });

    it('operators list the stores in the order uploads try them; others may not', { skip }, async () => {
      const r = await t.call('GET', '/api/v1/blob-stores');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(
        r.body.items.map((s: any) => [s.name, s.kind, s.region, s.country, s.inEU, s.default]),
        [
          ['default', 'fs', 'ch-zrh1', 'ch', false, true],
          ['fr', 'fs', 'eu-fr-par1', 'fr', true, false],
          ['de', 'fs', 'eu-de-fra1', 'de', true, false],
        ],
      );
      const denied = await t.call('GET', '/api/v1/blob-stores', { token: de.ownerToken });
      assert.equal(denied.status, 403);
    });
  });

  describe(`a de org with no store in Germany is refused (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let de: Tenant;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect, { registry: { region: 'ch-zrh1', blobStores: [STORES[0]!] } });
      de = await seedTenant(t, 'deonly');
      const created = await t.call('POST', `/api/v1/projects/${de.ref}/models`, {
        body: { name: 'm' },
        token: de.ownerToken,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('LFS batch: 403 POLICY_DENIED naming storage-residency-de, nothing written', { skip }, async () => {
      const content = randomBytes(1000);
      const r = await t.call('POST', `/hub/${de.ref}/m.git/info/lfs/objects/batch`, {
        token: de.ownerToken,
        body: { operation: 'upload', transfers: ['basic'], objects: [{ oid: sha(content), size: content.length }] },
      });
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.code, 'POLICY_DENIED');
      assert.match(r.body.error, /residency "de"/);
      assert.match(r.body.error, /storage-residency-de/);
      assert.match(r.body.error, /fr \(eu-fr-par1\)/);
      assert.match(r.body.error, /default \(ch-zrh1\)/);
      assert.equal(objectsIn(join(t.registryDir!, 'registry-fr')).length, 0);
      assert.equal(filesUnder(join(t.registryDir!, 'registry-fr')).length, 0);
      const org = await orgRow(t, 'deonly');
      assert.equal(
        (await t.store.db.selectFrom('uploads').select('id').where('org_id', '=', org.id).execute()).length,
        0,
      );
      const denied = await t.store.db
        .selectFrom('audit_entries')
        .selectAll()
        .where('org_id', '=', org.id)
        .where('outcome', '=', 'denied')
        .where('action', '=', 'model.upload')
        .execute();
      assert.equal(denied.length, 1);
    });

    it('an inline commit is refused too; the error names policies and hash', { skip }, async () => {
      const ndjson = [
        { key: 'header', value: { summary: 'inline' } },
        { key: 'file', value: { path: 'a.txt', content: Buffer.from('hello').toString('base64'), encoding: 'base64' } },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n');
      const r = await t.app.inject({
        method: 'POST',
        url: `/hub/api/models/${de.ref}/m/commit/main`,
        headers: { authorization: `Bearer ${de.ownerToken}`, 'content-type': 'application/x-ndjson' },
        payload: ndjson,
      });
      assert.equal(r.statusCode, 403, r.body);
      assert.equal(JSON.parse(r.body).code, 'POLICY_DENIED');
      assert.equal(r.headers['x-error-code'], 'POLICY_DENIED');
      assert.equal(filesUnder(join(t.registryDir!, 'registry-fr')).length, 0);
      // The service's error itself: details name the policies and the set's hash.
      const { chooseStore } = await import('../../src/registry/store-choice.js');
      const org = await orgRow(t, 'deonly');
      await assert.rejects(chooseStore(t.store.db, t.registry!, org.id), (e: any) => {
        assert.equal(e.code, 'POLICY_DENIED');
        assert.ok(e.details.policyIds.includes('storage-residency-de'));
        assert.match(e.details.policyHash, /^[0-9a-f]{64}$/);
        return true;
      });
    });
  });
}
