// The verifiable audit log as an auditor meets it, on SQLite and PostgreSQL: a real server signs
// checkpoints over every audit entry; `fabrik audit verify` (trusting only the log's public key)
// checks a checkpoint, consistency with one saved earlier, inclusion of entries and a copy of the
// database; a modified or deleted row is reported with its seq (exit 1); receipts follow the audit
// trail's visibility; hash tiles are served; a witness cosigns and the log serves the cosignature.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  ENTRY,
  REPO_ROOT,
  type ServerProcess,
  api as apiFor,
  collectRun,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { DIALECTS, OPERATOR_TOKEN, type TestDatabase, freshDatabase, skipReason } from '../helpers/harness.js';

const cli = (args: string[], env: Record<string, string> = {}) =>
  collectRun(
    spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
    { timeoutMs: 60_000 },
  );

for (const dialect of DIALECTS) {
  const skip = await skipReason(dialect);
  describe(`the verifiable audit log (${dialect})`, { skip, timeout: 300_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-auditlog-'));
    let db: TestDatabase;
    let server: ServerProcess;
    let op: ReturnType<typeof apiFor>;
    let logKey: string;
    let witnessKey: string;
    let acmeOwner: string;
    let globexOwner: string;
    const env = () => ({ FABRIK_ENDPOINT: server.url, FABRIK_API_KEY: OPERATOR_TOKEN });
    const flush = async () => {
      const r = await op('POST', '/api/v1/audit/checkpoint');
      assert.equal(r.status, 200, r.text);
      return r.body.size as number;
    };
    /** Runs SQL on the server's database, as an operator with database access could. */
    async function firstSeqNaming(word: string): Promise<number> {
      const q = `select min(seq) as seq from audit_entries where canonical like '%${word}%'`;
      if (dialect === 'sqlite') {
        const d = new Database(db.url, { readonly: true });
        const row = d.prepare(q).get() as { seq: number };
        d.close();
        return Number(row.seq);
      }
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      const r = await c.query(q);
      await c.end();
      return Number(r.rows[0].seq);
    }
    async function tamper(statement: string): Promise<void> {
      if (dialect === 'sqlite') {
        const d = new Database(db.url);
        d.exec(statement);
        d.close();
      } else {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        await c.query(statement);
        await c.end();
      }
    }

    before(async () => {
      db = dialect === 'sqlite' ? { url: join(dir, 'fabrik.db'), drop: async () => {} } : await freshDatabase(dialect);
      const w = await cli(['witness', '--new-key', join(dir, 'witness.key'), '--name', 'auditor.example']);
      assert.equal(w.code, 0, w.stderr);
      witnessKey = /\S+\+[0-9a-f]{8}\+\S+/.exec(w.stdout)![0];
      server = await startServerProcess({
        dataDir: join(dir, 'data'),
        database: db.url,
        bootstrapToken: OPERATOR_TOKEN,
        env: { FABRIK_AUDIT_ORIGIN: 'audit.test.example/log', FABRIK_WITNESS_KEYS: witnessKey },
      });
      op = apiFor(server.url, OPERATOR_TOKEN);
      for (const org of ['acme', 'globex']) {
        assert.equal((await op('POST', '/api/v1/orgs', { name: org, residency: 'de' })).status, 201);
        await op('POST', `/api/v1/orgs/${org}/members`, { user: `${org}-owner`, role: 'owner' });
      }
      acmeOwner = (await op('POST', '/api/v1/orgs/acme/keys', { name: 'o', user: 'acme-owner' })).body.token;
      globexOwner = (await op('POST', '/api/v1/orgs/globex/keys', { name: 'o', user: 'globex-owner' })).body.token;
      logKey = (await (await fetch(`${server.url}/.well-known/fabrik/audit-log-key`)).text()).trim();
    });
    after(async () => {
      await killAllServerProcesses();
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('signs a checkpoint of every entry, and an auditor verifies it with the public key only', async () => {
      const size = await flush();
      assert.ok(size >= 6, `${size} entries`);
      const note = await (await fetch(`${server.url}/audit/checkpoint`)).text();
      assert.match(note, /^audit\.test\.example\/log\n\d+\n[A-Za-z0-9+/]{43}=\n\n— audit\.test\.example\/log /);
      const r = await cli(['audit', 'verify', '--log-key', logKey, '--save', join(dir, 'cp1.txt')], env());
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /verified/);
      const wrong = await cli(['audit', 'verify', '--log-key', witnessKey], env());
      assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      assert.match(wrong.stdout, /FAIL\s+signature/);
    });

    it('after more changes: consistent with the saved checkpoint, chosen entries and an org included, the database intact', async () => {
      await op('POST', '/api/v1/orgs/acme/projects', { name: 'vision' });
      await op('POST', '/api/v1/orgs/globex/projects', { name: 'labs' });
      await flush();
      const r = await cli(
        [
          'audit',
          'verify',
          '--log-key',
          logKey,
          '--checkpoint',
          join(dir, 'cp1.txt'),
          '--entries',
          '1,2,3',
          '--org',
          'acme',
          '--database',
          db.url,
        ],
        env(),
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /consistent/);
      assert.match(r.stdout, /entries included/);
      assert.match(r.stdout, /stored entries checked against the log; 0 differ/);
    });

    it("gives receipts as the audit trail shows entries: another org's entry is 404", async () => {
      const own = await apiFor(server.url, acmeOwner)('GET', '/api/v1/audit/entries?org=acme');
      const seq = own.body.items.at(-1).seq as number;
      const mine = await apiFor(server.url, acmeOwner)('GET', `/api/v1/audit/entries/${seq}/receipt`);
      assert.equal(mine.status, 200, mine.text);
      assert.equal(mine.body.leafIndex, seq - 1);
      assert.ok(mine.body.proof.length > 0);
      assert.equal((await apiFor(server.url, globexOwner)('GET', `/api/v1/audit/entries/${seq}/receipt`)).status, 404);
      assert.equal((await apiFor(server.url, globexOwner)('GET', '/api/v1/audit/entries/1/receipt')).status, 404);
    });

    it('serves hash tiles that add up to the signed root', async () => {
      const size = await flush();
      const tile = await fetch(`${server.url}/audit/tile/0/000.p/${size}`);
      assert.equal(tile.status, 200);
      assert.equal((await tile.arrayBuffer()).byteLength, size * 32);
      assert.equal((await fetch(`${server.url}/audit/tile/0/000.p/${size + 1}`)).status, 404);
      assert.equal((await fetch(`${server.url}/audit/tile/entries/000.p/1`)).status, 404, 'entries are not public');
    });

    it('a witness cosigns the checkpoint; the log serves it cosigned', async () => {
      const w = await cli([
        'witness',
        '--once',
        '--log',
        server.url,
        '--log-key',
        logKey,
        '--key',
        join(dir, 'witness.key'),
        '--state',
        join(dir, 'witness.json'),
      ]);
      assert.equal(w.code, 0, w.stdout + w.stderr);
      const note = await (await fetch(`${server.url}/audit/checkpoint`)).text();
      assert.match(note, /\n— auditor\.example /);
    });

    it("exports an org's evidence as a bundle that verifies offline; an edited bundle does not", async () => {
      await flush();
      const out = join(dir, 'acme.bundle.json');
      const e = await cli(['org', 'export', 'acme', '--out', out], { ...env(), FABRIK_API_KEY: acmeOwner });
      assert.equal(e.code, 0, e.stdout + e.stderr);
      const bundle = JSON.parse(readFileSync(out, 'utf8'));
      assert.ok(bundle.entries.length >= 2);
      assert.ok(bundle.entries.every((x: { entry: string }) => JSON.parse(x.entry).orgId !== ''));
      // Offline: no endpoint at all, only the pinned key.
      const offline = { FABRIK_ENDPOINT: 'http://127.0.0.1:9', FABRIK_API_KEY: '' };
      const ok = await cli(['audit', 'verify', '--log-key', logKey, '--bundle', out], offline);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      bundle.entries[0].entry = bundle.entries[0].entry.replace('"success"', '"denied"');
      writeFileSync(out, JSON.stringify(bundle));
      const bad = await cli(['audit', 'verify', '--log-key', logKey, '--bundle', out], offline);
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      assert.match(bad.stdout, new RegExp(`FAIL\\s+inclusion\\s+entry ${bundle.entries[0].seq} is not in the log`));
    });

    it('reports a modified and a deleted row with their seq, and exits 1', async () => {
      await flush();
      // The first entry that names acme, and a later one (which entries come first is not fixed:
      // the policy set's first version is installed by whoever asks for it first).
      const modified = await firstSeqNaming('acme');
      const deleted = modified + 2;
      await tamper(`update audit_entries set canonical = replace(canonical, 'acme', 'acmf') where seq = ${modified}`);
      await tamper(`delete from audit_entries where seq = ${deleted}`);
      const r = await cli(['audit', 'verify', '--log-key', logKey, '--database', db.url, '-o', 'json'], env());
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout);
      const bad = out.findings.filter((f: { ok: boolean; seq?: number }) => !f.ok && f.seq);
      assert.deepEqual(
        bad.map((f: { seq: number }) => f.seq),
        [modified, deleted],
      );
      assert.match(bad[0].message, /modified/);
      assert.match(bad[1].message, /missing|deleted/);
    });
  });
}
