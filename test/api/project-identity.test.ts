// Per-project identities and the removal of a deleted project's files: every project gets its own
// uid from the range, uids are not reused while a deleted project's files wait, and the purge
// after the retention period removes the directory and is on the audit record.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProjectPurger } from '../../src/tenancy/purge.js';
import { DIALECTS, type TestApp, skipReason, startTestApp } from '../helpers/harness.js';

for (const dialect of DIALECTS) {
  describe(`project identities on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    const workloadsDir = mkdtempSync(join(tmpdir(), 'fabrik-purge-'));

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      assert.equal((await t.call('POST', '/api/v1/orgs', { body: { name: 'acme', residency: 'de' } })).status, 201);
    });
    after(async () => {
      if (!skip) await t.close();
      rmSync(workloadsDir, { recursive: true, force: true });
    });

    it('allocates distinct uids from the range, never reusing one whose files are retained', { skip }, async () => {
      const uids: number[] = [];
      for (const name of ['one', 'two', 'three']) {
        const r = await t.call('POST', '/api/v1/orgs/acme/projects', { body: { name } });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        uids.push(r.body.uid);
      }
      assert.ok(uids.every((u) => u >= 200_000));
      assert.equal(new Set(uids).size, 3);
      const three = await t.call('GET', '/api/v1/projects/acme.three');
      assert.equal((await t.call('DELETE', '/api/v1/projects/acme.three')).status, 204);
      const four = await t.call('POST', '/api/v1/orgs/acme/projects', { body: { name: 'four' } });
      assert.ok(four.body.uid > three.body.uid, 'the deleted project uid is still held by its tombstone');
    });

    it('removes a deleted project directory after the retention period, audited', { skip }, async () => {
      const p = (await t.call('POST', '/api/v1/orgs/acme/projects', { body: { name: 'gone' } })).body;
      const dir = join(workloadsDir, p.id, 'wl_x', 'work');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'model.json'), '{}');
      assert.equal((await t.call('DELETE', '/api/v1/projects/acme.gone')).status, 204);
      const removed: number[] = [];
      const purger = new ProjectPurger(t.store.db, {
        workloadsDir,
        removeIdentity: async (identity) => {
          removed.push(identity.uid);
        },
      });
      assert.deepEqual(await purger.purgeDue(new Date().toISOString()), [], 'kept during the retention period');
      assert.ok(existsSync(dir));
      const later = new Date(Date.now() + 8 * 24 * 3600 * 1000).toISOString();
      const purged = await purger.purgeDue(later);
      assert.ok(purged.includes(p.id));
      assert.ok(!existsSync(join(workloadsDir, p.id)));
      assert.ok(removed.includes(p.uid), "the project's account goes with its files");
      assert.deepEqual(await purger.purgeDue(later), [], 'purged once');
      const audit = await t.call('GET', `/api/v1/audit/entries?action=project.purge`);
      assert.equal(audit.status, 200);
      assert.ok(
        audit.body.items.some((e: any) => e.resource === `projects/${p.id}`),
        JSON.stringify(audit.body),
      );
    });
  });
}
