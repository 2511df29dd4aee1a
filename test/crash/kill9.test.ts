// Crash safety, specified against both databases: a real server process is killed with SIGKILL in
// the middle of a burst of concurrent writes and restarted on the same database. Every write the
// server acknowledged is still there, every change has exactly one audit entry, the audit trail
// has no gaps, and no write is half done.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { canonicalJson } from '../../src/audit/entry.js';
import { openStore } from '../../src/store/db.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  SMALL_FLEET,
  type TestDatabase,
  freshDatabase,
  skipReason,
} from '../helpers/harness.js';
import { type ServerProcess, killAllServerProcesses, startServerProcess } from '../helpers/child-server.js';

const LOOPS = 8;
/** Acknowledged writes after which the server is killed, while the loops keep firing. */
const KILL_AFTER_ACKS = 150;

interface Acked {
  projects: string[];
  serviceAccounts: string[];
  quotas: string[];
}

/** Outcome of one write: acknowledged (2xx), refused (other status), or cut off by the crash. */
type Outcome = { kind: 'ack' } | { kind: 'refused'; status: number; body: string } | { kind: 'cut' };

async function write(url: string, method: string, path: string, body: unknown): Promise<Outcome> {
  try {
    const r = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    return r.ok ? { kind: 'ack' } : { kind: 'refused', status: r.status, body: text };
  } catch {
    return { kind: 'cut' };
  }
}

async function mustWrite(url: string, method: string, path: string, body: unknown): Promise<void> {
  const o = await write(url, method, path, body);
  assert.equal(o.kind, 'ack', `${method} ${path}: ${JSON.stringify(o)}`);
}

async function listAll(url: string, path: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const r: Response = await fetch(
      `${url}${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      {
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
      },
    );
    assert.equal(r.status, 200, `GET ${path}`);
    const page = (await r.json()) as { items: any[]; nextCursor: string | null };
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

for (const dialect of DIALECTS) {
  describe(`kill -9 of the server in a burst of writes on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let db: TestDatabase | undefined;

    after(async () => {
      await killAllServerProcesses();
      await db?.drop();
    });

    it('keeps every acknowledged write, one audit entry per change, and nothing half-written', {
      skip,
      timeout: 60_000,
    }, async (t) => {
      db = await freshDatabase(dialect);
      const first: ServerProcess = await startServerProcess({ database: db.url, bootstrapToken: OPERATOR_TOKEN });
      await mustWrite(first.url, 'POST', '/api/v1/orgs', { name: 'acme', residency: 'de' });
      await mustWrite(first.url, 'POST', '/api/v1/fleet/apply', { file: SMALL_FLEET });

      // The burst: concurrent loops, each creating a project, a service account and a quota for
      // that project, over and over, until the server is gone.
      const acked: Acked = { projects: [], serviceAccounts: [], quotas: [] };
      const refused: string[] = [];
      let ackCount = 0;
      let inFlight = 0;
      let inFlightAtKill = -1;
      const track = async (p: Promise<Outcome>, what: string): Promise<Outcome> => {
        inFlight++;
        const o = await p;
        inFlight--;
        if (o.kind === 'ack') ackCount++;
        if (o.kind === 'refused') refused.push(`${what}: ${o.status} ${o.body}`);
        return o;
      };
      const loop = async (i: number) => {
        for (let j = 0; ; j++) {
          const project = `p-${i}-${j}`;
          const sa = `sa-${i}-${j}`;
          const p = await track(
            write(first.url, 'POST', '/api/v1/orgs/acme/projects', { name: project }),
            `project ${project}`,
          );
          if (p.kind === 'cut') return;
          if (p.kind === 'ack') acked.projects.push(project);
          const s = await track(
            write(first.url, 'POST', '/api/v1/orgs/acme/serviceaccounts', { name: sa, role: 'member', project }),
            `sa ${sa}`,
          );
          if (s.kind === 'cut') return;
          if (s.kind === 'ack') acked.serviceAccounts.push(sa);
          const q = await track(
            write(first.url, 'PUT', `/api/v1/projects/acme.${project}/quotas/b200`, { guaranteed: 0, limit: 8 }),
            `quota ${project}`,
          );
          if (q.kind === 'cut') return;
          if (q.kind === 'ack') acked.quotas.push(`acme.${project}`);
        }
      };
      const killer = (async () => {
        const until = Date.now() + 30_000;
        while (ackCount < KILL_AFTER_ACKS && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
        inFlightAtKill = inFlight;
        await first.kill9();
      })();
      await Promise.all([killer, ...Array.from({ length: LOOPS }, (_, i) => loop(i))]);

      assert.deepEqual(refused, [], 'no write was refused before the crash');
      assert.ok(ackCount >= KILL_AFTER_ACKS, `only ${ackCount} writes were acknowledged before the kill`);
      assert.ok(inFlightAtKill > 0, 'the server was killed while writes were in flight');

      // Restart on the same database.
      const second = await startServerProcess({
        database: db.url,
        dataDir: first.dataDir,
        bootstrapToken: OPERATOR_TOKEN,
      });

      // Every acknowledged write is there.
      const projects = new Set((await listAll(second.url, '/api/v1/orgs/acme/projects')).map((p) => p.name as string));
      const sas = new Set(
        (await listAll(second.url, '/api/v1/orgs/acme/serviceaccounts')).map((s) => s.name as string),
      );
      const quotas = new Set(
        (await listAll(second.url, '/api/v1/quotas?org=acme'))
          .filter((x) => x.pool === 'b200')
          .map((x) => x.project as string),
      );
      t.diagnostic(
        `${ackCount} writes acknowledged, ${inFlightAtKill} in flight at the kill; after restart: ` +
          `${projects.size}/${acked.projects.length} projects, ${sas.size}/${acked.serviceAccounts.length} service accounts, ${quotas.size}/${acked.quotas.length} quotas (found/acknowledged)`,
      );
      for (const p of acked.projects) assert.ok(projects.has(p), `acknowledged project ${p} is missing`);
      for (const s of acked.serviceAccounts) assert.ok(sas.has(s), `acknowledged service account ${s} is missing`);
      for (const q of acked.quotas) assert.ok(quotas.has(q), `acknowledged quota ${q} is missing`);

      // And the restarted server takes writes again.
      await mustWrite(second.url, 'POST', '/api/v1/orgs/acme/projects', { name: 'after-restart' });

      const store = await openStore(db.url, { migrate: false });
      try {
        const entries = await store.db.selectFrom('audit_entries').selectAll().orderBy('seq').execute();
        const head = await store.db
          .selectFrom('audit_head')
          .select('seq')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow();

        // The audit trail is gap-free 1..N, its head agrees, and every entry is canonical JSON that
        // says what its columns say.
        assert.deepEqual(
          entries.map((e) => Number(e.seq)),
          Array.from({ length: entries.length }, (_, k) => k + 1),
        );
        assert.equal(Number(head.seq), entries.length);
        for (const e of entries) {
          const parsed = JSON.parse(e.canonical);
          assert.equal(canonicalJson(parsed), e.canonical, `entry ${e.seq} is not in canonical form`);
          assert.equal(parsed.seq, Number(e.seq));
          assert.equal(parsed.action, e.action);
          assert.equal(parsed.resource, e.resource);
          assert.equal(parsed.outcome, e.outcome);
        }

        // Each created resource has exactly one audit entry, and each create entry its resource.
        const byKey = new Map<string, number>();
        for (const e of entries)
          byKey.set(`${e.action} ${e.resource}`, (byKey.get(`${e.action} ${e.resource}`) ?? 0) + 1);
        const countOf = (action: string) =>
          entries.filter((e) => e.action === action && e.outcome === 'success').length;

        const projectRows = await store.db
          .selectFrom('projects')
          .innerJoin('orgs', 'orgs.id', 'projects.org_id')
          .select('projects.name')
          .where('orgs.name', '=', 'acme')
          .execute();
        for (const p of projectRows)
          assert.equal(
            byKey.get(`project.create orgs/acme/projects/${p.name}`),
            1,
            `audit entries of project ${p.name}`,
          );
        assert.equal(countOf('project.create'), projectRows.length, 'project.create entries = projects');

        const saRows = await store.db
          .selectFrom('principals')
          .select(['id', 'name'])
          .where('kind', '=', 'service_account')
          .execute();
        const saMemberships = await store.db
          .selectFrom('memberships')
          .innerJoin('principals', 'principals.id', 'memberships.principal_id')
          .select(['principals.name', 'memberships.project_id'])
          .where('principals.kind', '=', 'service_account')
          .execute();
        for (const s of saRows) {
          assert.equal(
            byKey.get(`serviceaccount.create orgs/acme/serviceaccounts/${s.name}`),
            1,
            `audit entries of service account ${s.name}`,
          );
          const ms = saMemberships.filter((m) => m.name === s.name);
          assert.equal(ms.length, 1, `service account ${s.name} has exactly one membership`);
          assert.notEqual(ms[0].project_id, '', `service account ${s.name} is scoped to its project`);
        }
        assert.equal(
          countOf('serviceaccount.create'),
          saRows.length,
          'serviceaccount.create entries = service accounts',
        );
        assert.equal(saMemberships.length, saRows.length, 'no membership without its service account');

        const quotaRows = await store.db
          .selectFrom('quotas')
          .innerJoin('projects', 'projects.id', 'quotas.project_id')
          .select(['projects.name', 'quotas.pool'])
          .execute();
        for (const x of quotaRows)
          assert.equal(
            byKey.get(`quota.set projects/acme.${x.name}/quotas/${x.pool}`),
            1,
            `audit entries of quota acme.${x.name}`,
          );
        assert.equal(countOf('quota.set'), quotaRows.length, 'quota.set entries = quotas');
      } finally {
        await store.close();
        await second.stop();
      }
    });
  });
}
