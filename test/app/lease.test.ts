// The lease among replicas, on both databases: one holder at a time, the epoch grows with every
// takeover, a lost or unrenewable lease stops the loops, and the fence refuses the writes of a
// replica that lost it (nothing written, the audit sequence unchanged). Also the lock that keeps
// a SQLite file to one server process.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { FencedError, Lease, type LeaseOptions, lockSqliteDatabase } from '../../src/app/lease.js';
import { SYSTEM_ACTOR, mutate } from '../../src/audit/journal.js';
import { type Store, openStore } from '../../src/store/db.js';
import { SchedulerLoop } from '../../src/workload/scheduler-loop.js';
import { loadUsage, saveUsage } from '../../src/workload/usage-store.js';
import { DIALECTS, type TestDatabase, freshDatabase, skipReason } from '../helpers/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A lease whose loops are a log of starts and stops. */
function leaseOn(store: Store, opts: Partial<LeaseOptions> = {}) {
  const events: string[] = [];
  const lease = new Lease(store.db, store.dialect, {
    ttlMs: 1200,
    renewMs: 300,
    onAcquired: (epoch) => {
      events.push(`start ${epoch}`);
    },
    onLost: (reason) => {
      events.push(`stop: ${reason}`);
    },
    log: () => undefined,
    ...opts,
  });
  return { lease, events };
}

async function takeAway(store: Store): Promise<void> {
  await store.db
    .updateTable('leases')
    .set({ holder: 'intruder', epoch: sql<number>`epoch + 1`, expires_at: Date.now() + 3_600_000 })
    .where('name', '=', 'control-loops')
    .execute();
}

async function auditSeq(store: Store): Promise<number> {
  const head = await store.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow();
  return Number(head.seq);
}

for (const dialect of DIALECTS) {
  describe(`the control-loops lease on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let db: TestDatabase;
    let store: Store;
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
    const resetLease = () => store.db.deleteFrom('leases').execute();

    it('has one holder at a time; a release hands over at once, with a new epoch', { skip }, async () => {
      await resetLease();
      const a = leaseOn(store);
      const b = leaseOn(store);
      await a.lease.step();
      await b.lease.step();
      assert.deepEqual([a.lease.leader, b.lease.leader], [true, false]);
      assert.equal(a.lease.status().epoch, 1);
      assert.deepEqual(a.events, ['start 1']);
      await a.lease.step(); // a renewal keeps the epoch
      assert.equal(a.lease.status().epoch, 1);
      await a.lease.stop();
      assert.deepEqual(a.events, ['start 1', 'stop: this replica is shutting down']);
      await b.lease.step();
      assert.equal(b.lease.leader, true);
      assert.equal(b.lease.status().epoch, 2);
      await b.lease.stop();
    });

    it('is taken over after expiry; the old holder stops its loops before it expires', { skip }, async () => {
      await resetLease();
      const a = leaseOn(store, { ttlMs: 800, renewMs: 200 });
      const b = leaseOn(store, { ttlMs: 800, renewMs: 200 });
      const t0 = Date.now();
      await a.lease.step(); // acquired, never renewed (as if the process hung or died)
      await b.lease.step();
      assert.equal(b.lease.leader, false, 'not before expiry');
      await sleep(900);
      assert.equal(a.lease.leader, false, 'a gave up by its own deadline');
      assert.match(a.events.at(-1)!, /^stop: not renewed within 800 ms/);
      await b.lease.step();
      assert.equal(b.lease.leader, true);
      assert.equal(b.lease.status().epoch, 2);
      assert.ok(Date.now() - t0 < 2000);
      await b.lease.stop();
    });

    it('stops the loops when the lease is lost to another replica', { skip }, async () => {
      await resetLease();
      const a = leaseOn(store);
      await a.lease.step();
      assert.equal(a.lease.leader, true);
      await takeAway(store);
      await a.lease.step();
      assert.equal(a.lease.leader, false);
      assert.match(a.events.at(-1)!, /^stop: another replica holds it/);
      await a.lease.step(); // tries again, and does not get it
      assert.equal(a.lease.leader, false);
      await a.lease.stop();
    });

    it('stops the loops when the database cannot be reached to renew', { skip }, async () => {
      await resetLease();
      const own = await openStore(db.url, { migrate: false });
      const a = leaseOn(own);
      await a.lease.step();
      assert.equal(a.lease.leader, true);
      await own.close();
      await a.lease.step();
      assert.equal(a.lease.leader, false);
      assert.match(a.events.at(-1)!, /^stop: renewal failed/);
      await a.lease.stop();
    });

    it('fences the writes of a replica that lost the lease: FencedError, nothing written', { skip }, async () => {
      await resetLease();
      const a = leaseOn(store);
      await a.lease.step();
      const actor = { ...SYSTEM_ACTOR, fence: a.lease.fence };
      const spec = { action: 'test.write', resource: 'meta/fenced', orgId: '' };
      const write = (value: string) =>
        mutate(store.db, actor, spec, async (trx) => {
          await trx
            .insertInto('fabrik_meta')
            .values({ key: `fenced-${value}`, value })
            .execute();
          return { result: undefined };
        });
      // While held, the fenced write goes through.
      await write('ok');
      const seq = await auditSeq(store);
      const entries = await store.db.selectFrom('audit_entries').select('seq').execute();

      await takeAway(store);
      assert.equal(a.lease.leader, true, 'the replica has not noticed yet');
      await assert.rejects(write('late'), (err: unknown) => {
        assert.ok(err instanceof FencedError, String(err));
        assert.match((err as Error).message, /no longer holds the lease "control-loops" \(epoch 1\)/);
        return true;
      });
      assert.equal(await auditSeq(store), seq, 'the audit sequence is unchanged');
      assert.equal((await store.db.selectFrom('audit_entries').select('seq').execute()).length, entries.length);
      const rows = await store.db.selectFrom('fabrik_meta').select('key').where('key', 'like', 'fenced-%').execute();
      assert.deepEqual(
        rows.map((r) => r.key),
        ['fenced-ok'],
        'the fenced write left nothing',
      );

      // Expired (no renewal) is fenced too, even while nobody else holds it.
      await resetLease();
      const c = leaseOn(store);
      await c.lease.step();
      await store.db.updateTable('leases').set({ expires_at: 0 }).execute();
      await assert.rejects(
        mutate(store.db, { ...SYSTEM_ACTOR, fence: c.lease.fence }, spec, async () => ({ result: undefined })),
        FencedError,
      );
      await c.lease.stop();
      await a.lease.stop();
      // Not the leader at all: refused without asking the database.
      await assert.rejects(a.lease.fence(undefined as never), FencedError);
    });

    it('stores the fair-share usage for the next leader, fenced', { skip }, async () => {
      assert.equal(await loadUsage(store.db), undefined);
      await saveUsage(store.db, { 'acme.train': 1234.5 }, 1_700_000_000.25);
      await saveUsage(store.db, { 'acme.train': 2000, 'globex.sim': 10 }, 1_700_000_100.5);
      assert.deepEqual(await loadUsage(store.db), {
        usage: { 'acme.train': 2000, 'globex.sim': 10 },
        at: 1_700_000_100.5,
      });

      // A new scheduler (a restarted server, a new leader) continues from what is stored: decayed
      // by the time since, not from zero.
      const t = Date.now() / 1000 - 60;
      await saveUsage(store.db, { 'acme.train': 5000 }, t);
      await new SchedulerLoop(store.db).cycle();
      const now = await loadUsage(store.db);
      assert.ok(now && now.at > t + 59, 'stored again after the cycle');
      const u = now.usage['acme.train'];
      assert.ok(u < 5000 && u > 4990, `decayed over a minute: ${u}`);

      // A scheduler whose replica does not lead writes nothing, not even its usage.
      const follower = leaseOn(store);
      await takeAway(store);
      await follower.lease.step();
      assert.equal(follower.lease.leader, false);
      await assert.rejects(new SchedulerLoop(store.db, { fence: follower.lease.fence }).cycle(), FencedError);
      assert.equal((await loadUsage(store.db))?.at, now.at);
    });
  });
}

describe('a SQLite database serves one server process', () => {
  it('refuses a second holder of <db>.lock, naming the holder, until the first releases it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-lock-'));
    try {
      const file = join(dir, 'fabrik.db');
      const first = lockSqliteDatabase(file);
      assert.ok(first);
      assert.throws(
        () => lockSqliteDatabase(`sqlite:${file}`),
        new RegExp(`another fabrik server \\(pid ${process.pid}\\) is already using the SQLite database .*fabrik\\.db`),
      );
      first.release();
      const again = lockSqliteDatabase(file);
      assert.ok(again);
      again.release();
      assert.equal(lockSqliteDatabase(':memory:'), undefined);
      assert.equal(lockSqliteDatabase('postgres://x@127.0.0.1/y'), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
