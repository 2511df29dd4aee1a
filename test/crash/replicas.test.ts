// Several replicas on PostgreSQL: two real `fabrik server` processes share one database and both
// serve the API; the control loops run on the one holding the lease. A burst of submits goes to
// both while work runs, and the leader is killed with SIGKILL in the middle of it: every
// acknowledged submit is there, every workload runs exactly once (one attempt, one Started event),
// the audit trail has no gaps, and the other replica places work again within 10 s of the kill.
// And on SQLite, which serves one process: a second server on the same file refuses to start,
// while a restart after a kill -9 of the first is not blocked by a stale lock.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LEASE_TTL_MS } from '../../src/app/lease.js';
import { type Store, openStore } from '../../src/store/db.js';
import {
  type ServerProcess,
  api,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { OPERATOR_TOKEN, type TestDatabase, freshDatabase, skipReason } from '../helpers/harness.js';

const TOTAL = 48;
const SUBMITTERS = 4;
/** Acknowledged submits after which the leader is killed (once work runs), while submits go on. */
const KILL_AFTER_ACKS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readyz(url: string): Promise<{ leader?: boolean; epoch?: number }> {
  return (await fetch(`${url}/readyz`)).json() as Promise<{ leader?: boolean; epoch?: number }>;
}

describe('two replicas on PostgreSQL, the leader killed with SIGKILL in a burst of submits', async () => {
  const skip = await skipReason('postgres');
  let db: TestDatabase | undefined;
  let store: Store | undefined;
  after(async () => {
    await killAllServerProcesses();
    await store?.close();
    await db?.drop();
  });

  it('keeps every acknowledged submit, runs each workload once, and fails over within 10 s', {
    skip,
    timeout: 180_000,
  }, async (t) => {
    db = await freshDatabase('postgres');
    // Replicas share the master key (tenant secrets open on either) and register the same local node.
    const env = { FABRIK_MASTER_KEY: randomBytes(32).toString('hex'), FABRIK_RATE_LIMIT: '1000000' };
    const start = () => startServerProcess({ database: db!.url, bootstrapToken: OPERATOR_TOKEN, devGpus: 8, env });
    const a: ServerProcess = await start();
    assert.equal((await readyz(a.url)).leader, true, 'the first replica leads');
    const b: ServerProcess = await start();
    assert.equal((await readyz(b.url)).leader, false, 'the second replica follows');
    store = await openStore(db.url, { migrate: false });
    const st = store;
    const node = await st.db.selectFrom('nodes').select(['pool', 'gpu_count']).executeTakeFirstOrThrow();

    const callA = api(a.url, OPERATOR_TOKEN);
    assert.equal((await callA('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    assert.equal((await callA('POST', '/api/v1/orgs/acme/projects', { name: 'batch' })).status, 201);
    const q = await api(b.url, OPERATOR_TOKEN)('PUT', `/api/v1/projects/acme.batch/quotas/${node.pool}`, {
      guaranteed: node.gpu_count,
      limit: node.gpu_count,
    });
    assert.equal(q.status, 200, q.text);

    // The burst: submitters alternate between the replicas; once the leader is gone, to the other.
    const acked: string[] = [];
    const refused: string[] = [];
    let next = 0;
    let killed = false;
    let cut = 0;
    const submit = async (url: string, i: number) => {
      try {
        const r = await api(url, OPERATOR_TOKEN)('POST', '/api/v1/projects/acme.batch/workloads', {
          kind: 'batch',
          name: `job-${i}`,
          resources: { pool: node.pool, gpu: 1 },
          max_duration: '5m',
          run: 'sleep 0.4',
        });
        if (r.status === 201) acked.push(r.body.id);
        else refused.push(`job-${i}: ${r.status} ${r.text}`);
      } catch {
        cut++; // the connection died with the leader: not acknowledged (it may or may not exist)
      }
    };
    const submitter = async () => {
      while (next < TOTAL) {
        const i = next++;
        await submit(i % 2 === 0 && !killed ? a.url : b.url, i);
        await sleep(60);
      }
    };
    let tKill = 0;
    let tGone = 0;
    let runningAtKill = 0;
    const killer = (async () => {
      const until = Date.now() + 60_000;
      for (;;) {
        const started = await st.db
          .selectFrom('workload_events')
          .select('id')
          .where('reason', '=', 'Started')
          .limit(1)
          .execute();
        if ((acked.length >= KILL_AFTER_ACKS && started.length > 0) || Date.now() > until) break;
        await sleep(20);
      }
      runningAtKill = (await st.db.selectFrom('workloads').select('id').where('status', '=', 'running').execute())
        .length;
      tKill = Date.now();
      killed = true;
      await a.kill9();
      tGone = Date.now();
    })();
    await Promise.all([killer, ...Array.from({ length: SUBMITTERS }, () => submitter())]);
    assert.deepEqual(refused, [], 'no submit was refused');
    assert.ok(runningAtKill > 0, 'work was running when the leader was killed');
    assert.ok(acked.length >= TOTAL - 4, `only ${acked.length} of ${TOTAL} submits were acknowledged`);

    // The other replica takes over and places work again.
    const firstAfter = await eventually(
      async () => {
        const e = await st.db
          .selectFrom('workload_events')
          .select('time')
          .where('reason', '=', 'Scheduled')
          .where('time', '>', new Date(tGone).toISOString())
          .orderBy('time')
          .limit(1)
          .executeTakeFirst();
        return e ? Date.parse(e.time) : undefined;
      },
      30_000,
      'a placement after the kill',
    );
    const failoverMs = firstAfter - tKill;
    const after = await readyz(b.url);
    assert.equal(after.leader, true, 'the other replica leads');
    assert.equal(after.epoch, 2, 'with the next epoch');
    assert.match(
      b.stderr(),
      /leadership gained: this replica runs the control loops \(lease "control-loops", epoch 2\)/,
    );

    // Everything finishes, each workload once.
    const rows = await eventually(
      async () => {
        const all = await st.db.selectFrom('workloads').selectAll().execute();
        return all.length >= acked.length && all.every((w) => w.status === 'succeeded') ? all : undefined;
      },
      90_000,
      'every workload to succeed',
    );
    const ids = new Set(rows.map((w) => w.id));
    for (const id of acked) assert.ok(ids.has(id), `acknowledged workload ${id} is missing`);
    const events = await st.db
      .selectFrom('workload_events')
      .select(['workload_id', 'reason'])
      .where('reason', 'in', ['Scheduled', 'Started'])
      .execute();
    const count = (id: string, reason: string) =>
      events.filter((e) => e.workload_id === id && e.reason === reason).length;
    const attempts = await st.db.selectFrom('workload_attempts').select('workload_id').execute();
    for (const w of rows) {
      assert.equal(w.attempts, 1 + w.preemptions, `${w.name}: attempts`);
      assert.equal(count(w.id, 'Scheduled'), w.attempts, `${w.name}: one Scheduled event per attempt`);
      assert.equal(count(w.id, 'Started'), w.attempts, `${w.name}: one Started event per attempt`);
      assert.equal(attempts.filter((x) => x.workload_id === w.id).length, w.attempts, `${w.name}: attempt rows`);
    }

    // The audit trail is gap-free across both replicas.
    const seqs = (await st.db.selectFrom('audit_entries').select('seq').orderBy('seq').execute()).map((e) =>
      Number(e.seq),
    );
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, k) => k + 1),
    );

    t.diagnostic(
      `${acked.length} submits acknowledged (${cut} cut by the kill), ${runningAtKill} running at the kill; ` +
        `first placement by the other replica ${failoverMs} ms after the kill (lease TTL ${LEASE_TTL_MS} ms)`,
    );
    assert.ok(failoverMs < 10_000, `scheduling resumed ${failoverMs} ms after the kill (want < 10 s)`);
    await b.stop();
  });
});

describe('SQLite serves one server process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-sqlite-one-'));
  after(async () => {
    await killAllServerProcesses();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second server on the same file, and is not blocked by a killed one', {
    timeout: 90_000,
  }, async () => {
    const database = join(dir, 'fabrik.db');
    const first = await startServerProcess({ database, bootstrapToken: OPERATOR_TOKEN });
    assert.equal((await readyz(first.url)).leader, true);
    await assert.rejects(
      startServerProcess({ database, bootstrapToken: OPERATOR_TOKEN }),
      new RegExp(
        `another fabrik server \\(pid ${first.child.pid}\\) is already using the SQLite database ${database.replace(/[.]/g, '\\.')}.*SQLite serves one replica only`,
      ),
    );
    await first.kill9();
    const again = await startServerProcess({ database, dataDir: first.dataDir, bootstrapToken: OPERATOR_TOKEN });
    assert.equal((await readyz(again.url)).leader, true);
    await again.stop();
  });
});
