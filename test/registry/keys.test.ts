// The registry keys of orgs, on both databases: blob ids differ across orgs for the same content,
// a rotation keeps old data keys readable, replicas racing for an org's first key end with one,
// and a master key rotation rewraps every key.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { blobIdOf, localKms } from '../../src/registry/crypto.js';
import { OrgKeys } from '../../src/registry/keys.js';
import { type Store, openStore } from '../../src/store/db.js';
import { DIALECTS, type TestDatabase, freshDatabase, skipReason } from '../helpers/harness.js';

const SHA = 'c0ffee'.padEnd(64, '0');

for (const dialect of DIALECTS) {
  describe(`registry keys (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let db: TestDatabase;
    let store: Store;
    const master = randomBytes(32);
    before(async () => {
      if (skip) return;
      db = await freshDatabase(dialect);
      store = await openStore(db.url);
    });
    after(async () => {
      if (skip) return;
      await store.close();
      await db.drop();
    });

    it('gives two orgs different blob ids for the same sha256, stable across replicas', { skip }, async () => {
      const keys = new OrgKeys(store.db, localKms(master));
      const a = blobIdOf(await keys.blobIdKey('org_a'), SHA);
      const b = blobIdOf(await keys.blobIdKey('org_b'), SHA);
      assert.notEqual(a, b);
      // Another replica (nothing cached) reads the same key.
      const other = new OrgKeys(store.db, localKms(master));
      assert.equal(blobIdOf(await other.blobIdKey('org_a'), SHA), a);
    });

    it('stores keys only wrapped', { skip }, async () => {
      const keys = new OrgKeys(store.db, localKms(master));
      const { keyId, key } = await keys.current('org_w');
      const row = await store.db
        .selectFrom('registry_keys')
        .selectAll()
        .where('org_id', '=', 'org_w')
        .where('key_id', '=', keyId)
        .executeTakeFirstOrThrow();
      assert.equal(row.purpose, 'data');
      assert.equal(row.retired_at, '');
      for (const enc of ['hex', 'base64', 'base64url'] as const) assert.ok(!row.wrapped.includes(key.toString(enc)));
    });

    it('rotates the data key: new blobs use the new one, old ones still open', { skip }, async () => {
      const keys = new OrgKeys(store.db, localKms(master));
      const old = await keys.current('org_r');
      const blobIdKey = await keys.blobIdKey('org_r');
      const next = await keys.rotate('org_r');
      assert.notEqual(next, old.keyId);
      const now = await keys.current('org_r');
      assert.equal(now.keyId, next);
      assert.notDeepEqual(now.key, old.key);
      // A fresh replica opens the retired key too, and blob ids did not change.
      const other = new OrgKeys(store.db, localKms(master));
      assert.deepEqual(await other.byId('org_r', old.keyId), old.key);
      assert.deepEqual(await other.blobIdKey('org_r'), blobIdKey);
      const rows = await store.db
        .selectFrom('registry_keys')
        .select(['key_id', 'retired_at'])
        .where('org_id', '=', 'org_r')
        .where('purpose', '=', 'data')
        .execute();
      assert.equal(rows.filter((r) => r.retired_at === '').length, 1);
      // Rotation within a caller's transaction, as an audited change does it.
      const third = await store.db.transaction().execute((trx) => keys.rotate('org_r', trx));
      assert.equal((await other.current('org_r')).keyId, third);
      await assert.rejects(other.byId('org_r', 'dk99'), { code: 'INTERNAL' });
    });

    it('ends concurrent first calls of replicas with one current key', { skip }, async () => {
      const replicas = Array.from({ length: 4 }, () => new OrgKeys(store.db, localKms(master)));
      const got = await Promise.all(replicas.flatMap((r) => [r.current('org_c'), r.current('org_c')]));
      assert.equal(new Set(got.map((k) => k.keyId)).size, 1);
      assert.equal(new Set(got.map((k) => k.key.toString('hex'))).size, 1);
      const ids = await Promise.all(replicas.map((r) => r.blobIdKey('org_c')));
      assert.equal(new Set(ids.map((k) => k.toString('hex'))).size, 1);
      const rows = await store.db.selectFrom('registry_keys').select('key_id').where('org_id', '=', 'org_c').execute();
      assert.equal(rows.length, 2); // one data key, one blob-id key
    });

    it('rewraps every key for a new master key', { skip }, async () => {
      const keys = new OrgKeys(store.db, localKms(master));
      const data = await keys.current('org_m');
      const bid = await keys.blobIdKey('org_m');
      const newMaster = randomBytes(32);
      const migrating = new OrgKeys(store.db, localKms(newMaster, [master]));
      const total = await store.db.selectFrom('registry_keys').select('key_id').execute();
      assert.equal(await migrating.rewrapAll(localKms(newMaster)), total.length);
      // Only the new master key is needed from now on; the old one no longer opens anything.
      const fresh = new OrgKeys(store.db, localKms(newMaster));
      assert.deepEqual(await fresh.byId('org_m', data.keyId), data.key);
      assert.deepEqual(await fresh.blobIdKey('org_m'), bid);
      await assert.rejects(new OrgKeys(store.db, localKms(master)).blobIdKey('org_m'), { name: 'KmsError' });
    });
  });
}
