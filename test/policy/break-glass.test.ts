// Break-glass: a platform operator reaches a tenant's logs, artifact content and secrets only under
// a grant with a reason and an expiry, decided by the sovereignty policy; each access is an audit
// entry the tenant reads (`audit list --break-glass`), the tenant's owner revokes, expiry ends it,
// other tenants never see any of it, and bad input is refused with a stable code.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import { ENTRY, collectRun } from '../helpers/child-server.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';

const job = (name: string) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '1h',
  run: 'python train.py',
});
const REASON = 'INC-4711: job hangs at NCCL init, tenant asked for help';
const LOG_TEXT = 'step 1 loss 2.31\nstep 2 loss 2.07\n';
const FILE_TEXT = 'the tenant weights, not for operators';

for (const dialect of DIALECTS) {
  describe(`break-glass (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;
    let memberToken: string;
    let adminToken: string;
    let address: string;
    let dir: string;

    const logs = () => t.call('GET', '/api/v1/projects/acme.train/workloads/hang/logs');
    const download = () => t.call('GET', '/hub/acme.train/tiny/resolve/main/data.txt');
    const secrets = () => t.call('GET', '/api/v1/orgs/acme/secrets');
    const projectSecrets = () => t.call('GET', '/api/v1/projects/acme.train/secrets');
    const open = (body: unknown, token = OPERATOR_TOKEN) =>
      t.call('POST', '/api/v1/orgs/acme/break-glass', { body, token });
    const breakGlassView = async (token: string, org = 'acme') => {
      const r = await t.call('GET', `/api/v1/audit/entries?org=${org}&breakGlass=true&limit=1000`, { token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.items as any[];
    };
    const refused = (r: { status: number; body: any }, code = 'BREAK_GLASS_REQUIRED') => {
      assert.equal(r.status, 403, JSON.stringify(r.body));
      const got = r.body.error?.code ?? r.body.code;
      assert.equal(got, code);
    };

    before(async () => {
      if (skip) return;
      dir = mkdtempSync(join(tmpdir(), 'fabrik-break-glass-'));
      const logFile = join(dir, 'task-0.log');
      writeFileSync(logFile, LOG_TEXT);
      t = await startTestApp(dialect, { logs: () => logFile, registry: {} });
      acme = await seedTenant(t, 'acme');
      globex = await seedTenant(t, 'globex');
      const must = async (method: string, url: string, body?: unknown, token = OPERATOR_TOKEN) => {
        const r = await t.call(method, url, { body, token });
        if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      };
      await must('POST', '/api/v1/orgs/acme/members', { user: 'acme-dev', role: 'member' });
      await must('POST', '/api/v1/orgs/acme/members', { user: 'acme-admin', role: 'admin' });
      memberToken = (await must('POST', '/api/v1/orgs/acme/keys', { name: 'dev', user: 'acme-dev' })).token;
      adminToken = (await must('POST', '/api/v1/orgs/acme/keys', { name: 'adm', user: 'acme-admin' })).token;
      await must('POST', '/api/v1/projects/acme.train/workloads', job('hang'), acme.ownerToken);
      await must('PUT', '/api/v1/orgs/acme/secrets/wandb', { value: 's3cr3t' }, acme.ownerToken);
      await must('PUT', '/api/v1/projects/acme.train/secrets/hf-token', { value: 's3cr3t' }, acme.ownerToken);
      address = await t.app.listen({ host: '127.0.0.1', port: 0 });
      await must('POST', '/api/v1/projects/acme.train/models', { name: 'tiny' }, acme.ownerToken);
      await hub.uploadFiles({
        repo: { type: 'model', name: 'acme.train/tiny' },
        accessToken: `hf_${acme.ownerToken}`,
        hubUrl: `${address}/hub`,
        files: [{ path: 'data.txt', content: new Blob([FILE_TEXT]) }],
      });
    });
    after(async () => {
      if (skip) return;
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('the tenant reads its own data as before', { skip }, async () => {
      const l = await t.call('GET', '/api/v1/projects/acme.train/workloads/hang/logs', { token: acme.ownerToken });
      assert.equal(l.status, 200);
      assert.equal(l.body, LOG_TEXT);
      const d = await t.call('GET', '/hub/acme.train/tiny/resolve/main/data.txt', { token: acme.ownerToken });
      assert.equal(d.status, 200);
      assert.equal(d.body, FILE_TEXT);
      const s = await t.call('GET', '/api/v1/orgs/acme/secrets', { token: memberToken });
      assert.deepEqual(
        s.body.items.map((x: any) => x.name),
        ['wandb'],
      );
      // No break-glass entries for the tenant's own reads.
      assert.deepEqual(await breakGlassView(acme.ownerToken), []);
    });

    it('an operator without a grant gets 403 BREAK_GLASS_REQUIRED, with a denied entry', { skip }, async () => {
      const l = await logs();
      refused(l);
      assert.match(l.body.error.message, /fabrik break-glass open --org acme/);
      refused(await download());
      refused(await secrets());
      refused(await projectSecrets());
      // Metadata stays readable: the repo, its files, HEAD of a file.
      assert.equal((await t.call('GET', '/api/v1/projects/acme.train/models/tiny')).status, 200);
      assert.equal((await t.call('HEAD', '/hub/acme.train/tiny/resolve/main/data.txt')).status, 200);
      const view = await breakGlassView(acme.ownerToken);
      assert.ok(view.length >= 4);
      assert.ok(view.every((e) => e.action === 'break-glass.access' && e.outcome === 'denied'));
      assert.ok(view.some((e) => e.resource === 'projects/acme.train/workloads/hang/logs'));
    });

    it('refuses bad input with 400 and a stable code', { skip }, async () => {
      const cases: [unknown, string][] = [
        [{ expiresIn: '1h' }, 'VALIDATION_FAILED'],
        [{ reason: 'too short', expiresIn: '1h' }, 'VALIDATION_FAILED'],
        [{ reason: 'x'.repeat(501), expiresIn: '1h' }, 'VALIDATION_FAILED'],
        [{ reason: REASON }, 'VALIDATION_FAILED'],
        [{ reason: REASON, expiresIn: '48h' }, 'INVALID_ARGUMENT'],
        [{ reason: REASON, expiresIn: '24h1s' }, 'INVALID_ARGUMENT'],
        [{ reason: REASON, expiresIn: 'soon' }, 'INVALID_ARGUMENT'],
        [{ reason: REASON, expiresIn: '-1h' }, 'INVALID_ARGUMENT'],
        [{ reason: REASON, expiresIn: '0s' }, 'INVALID_ARGUMENT'],
        [{ reason: REASON, expiresIn: 2 }, 'VALIDATION_FAILED'],
        [{ reason: REASON, expiresIn: '1h', extra: true }, 'VALIDATION_FAILED'],
        [{ reason: 'line one\nline two', expiresIn: '1h' }, 'INVALID_ARGUMENT'],
        ['garbage', 'INVALID_JSON'],
        [[1, 2], 'VALIDATION_FAILED'],
      ];
      for (const [body, code] of cases) {
        const r = await open(body);
        assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, code, JSON.stringify(body));
      }
      const bad = await t.call('POST', '/api/v1/orgs/acme/break-glass', {
        body: '{"reason":',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(bad.status, 400);
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/break-glass?cursor=zzz')).status, 400);
      // Nothing was opened.
      assert.deepEqual((await t.call('GET', '/api/v1/orgs/acme/break-glass')).body.items, []);
    });

    it('only operators open grants; owners and admins list them, members and viewers do not', { skip }, async () => {
      for (const token of [acme.ownerToken, adminToken, memberToken]) {
        const r = await open({ reason: REASON, expiresIn: '1h' }, token);
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'FORBIDDEN');
      }
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: acme.ownerToken })).status, 200);
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: adminToken })).status, 200);
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: memberToken })).status, 403);
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: acme.viewerToken })).status, 403);
    });

    it('under a grant the access works, and the tenant sees each one with the reason', { skip }, async () => {
      const o = await open({ reason: REASON, expiresIn: '2h' });
      assert.equal(o.status, 201, JSON.stringify(o.body));
      const g = o.body;
      assert.match(g.id, /^bg_/);
      assert.equal(g.org, 'acme');
      assert.equal(g.state, 'active');
      assert.equal(g.reason, REASON);
      assert.equal(g.revokedAt, null);
      const lasts = Date.parse(g.expiresAt) - Date.parse(g.createdAt);
      assert.equal(lasts, 2 * 3_600_000);

      const l = await logs();
      assert.equal(l.status, 200, JSON.stringify(l.body));
      assert.match(String(l.body), /step 2 loss/);
      const d = await download();
      assert.equal(d.status, 200);
      assert.equal(d.body, FILE_TEXT);
      const s = await secrets();
      assert.equal(s.status, 200);
      assert.deepEqual(
        s.body.items.map((x: any) => x.name),
        ['wandb'],
      );

      const me = (await t.call('GET', '/api/v1/whoami')).body.principal;
      const list = await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: acme.ownerToken });
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.items.map((x: any) => [x.id, x.state, x.principal, x.reason]),
        [[g.id, 'active', me, REASON]],
      );

      const view = (await breakGlassView(acme.ownerToken)).filter((e) => e.outcome === 'success');
      const opened = view.find((e) => e.action === 'break-glass.open');
      assert.ok(opened, 'the opening is in the tenant view');
      assert.deepEqual(opened.breakGlass, { grant: g.id, reason: REASON });
      const accesses = view.filter((e) => e.action === 'break-glass.access');
      const commit = (await t.call('GET', '/api/v1/projects/acme.train/models/tiny/versions/main')).body.version.id;
      assert.deepEqual(accesses.map((e) => e.resource).sort(), [
        'orgs/acme/secrets',
        `projects/acme.train/models/tiny/files/data.txt@${commit}`,
        'projects/acme.train/workloads/hang/logs',
      ]);
      for (const e of accesses) {
        assert.deepEqual(e.breakGlass, { grant: g.id, reason: REASON });
        assert.match(e.policy.hash, /^[0-9a-f]{64}$/);
        assert.deepEqual(e.policy.ids, ['operator-break-glass']);
        assert.match(e.canonical, /"breakGlass"/);
      }
    });

    it('another tenant never sees the grants nor the accesses', { skip }, async () => {
      const r = await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: globex.ownerToken });
      assert.equal(r.status, 404);
      const o = await t.call('POST', '/api/v1/orgs/acme/break-glass', {
        body: { reason: REASON, expiresIn: '1h' },
        token: globex.ownerToken,
      });
      assert.equal(o.status, 404);
      const { id } = (await t.call('GET', '/api/v1/orgs/acme/break-glass')).body.items[0];
      assert.equal(
        (await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${id}`, { token: globex.ownerToken })).status,
        404,
      );
      assert.equal(
        (await t.call('DELETE', `/api/v1/orgs/globex/break-glass/${id}`, { token: globex.ownerToken })).status,
        404,
      );
      assert.deepEqual(
        (await t.call('GET', '/api/v1/orgs/globex/break-glass', { token: globex.ownerToken })).body.items,
        [],
      );
      const all = await t.call('GET', '/api/v1/audit/entries?breakGlass=true&limit=1000', { token: globex.ownerToken });
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.items, []);
      assert.equal(
        (await t.call('GET', '/api/v1/audit/entries?org=acme&breakGlass=true', { token: globex.ownerToken })).status,
        404,
      );
      // The grant on acme does not reach globex's data.
      refused(await t.call('GET', '/api/v1/orgs/globex/secrets'));
    });

    it('a member cannot revoke; the owner revokes and access ends', { skip }, async () => {
      const { id } = (await t.call('GET', '/api/v1/orgs/acme/break-glass')).body.items[0];
      const m = await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${id}`, { token: memberToken });
      assert.equal(m.status, 403);
      assert.equal(m.body.error.code, 'FORBIDDEN');
      const a = await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${id}`, { token: adminToken });
      assert.equal(a.status, 403);
      assert.equal((await logs()).status, 200, 'still in force');
      const r = await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${id}`, { token: acme.ownerToken });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.state, 'revoked');
      assert.equal(r.body.revokedBy, 'user:acme-owner');
      refused(await logs());
      refused(await download());
      refused(await secrets());
      const again = await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${id}`, { token: acme.ownerToken });
      assert.equal(again.status, 409);
      const view = await breakGlassView(acme.ownerToken);
      const revoked = view.find((e) => e.action === 'break-glass.revoke' && e.outcome === 'success');
      assert.ok(revoked);
      assert.equal(revoked.actor.principal, 'user:acme-owner');
      assert.deepEqual(revoked.breakGlass, { grant: id, reason: REASON });
      assert.ok(view.some((e) => e.action === 'break-glass.revoke' && e.outcome === 'denied'));
      const listed = (await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: acme.ownerToken })).body.items;
      assert.equal(listed.find((x: any) => x.id === id).state, 'revoked');
    });

    it('the operator who opened a grant may revoke it', { skip }, async () => {
      const g = (await open({ reason: REASON, expiresIn: '30m' })).body;
      assert.equal((await secrets()).status, 200);
      const r = await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${g.id}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.state, 'revoked');
      refused(await secrets());
      assert.equal((await t.call('DELETE', '/api/v1/orgs/acme/break-glass/bg_nonexistent')).status, 404);
    });

    it('a grant ends at its expiry', { skip }, async () => {
      const g = (await open({ reason: REASON, expiresIn: '2s' })).body;
      assert.equal((await logs()).status, 200);
      await new Promise((r) => setTimeout(r, Date.parse(g.expiresAt) - Date.now() + 50));
      refused(await logs());
      refused(await download());
      const listed = (await t.call('GET', '/api/v1/orgs/acme/break-glass', { token: adminToken })).body.items;
      assert.equal(listed.find((x: any) => x.id === g.id).state, 'expired');
      const r = await t.call('DELETE', `/api/v1/orgs/acme/break-glass/${g.id}`, { token: acme.ownerToken });
      assert.equal(r.status, 409);
    });

    it('pages the listing, newest first', { skip }, async () => {
      const all = (await t.call('GET', '/api/v1/orgs/acme/break-glass')).body.items;
      assert.ok(all.length >= 3);
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const url = `/api/v1/orgs/acme/break-glass?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const r = await t.call('GET', url);
        assert.equal(r.status, 200);
        ids.push(...r.body.items.map((x: any) => x.id));
        cursor = r.body.nextCursor;
      } while (cursor);
      assert.deepEqual(
        ids,
        all.map((x: any) => x.id),
      );
      const times = all.map((x: any) => x.createdAt);
      assert.deepEqual(times, [...times].sort().reverse());
    });

    it('the CLI: break-glass open, get break-glass, audit list --break-glass, revoke', { skip }, async () => {
      const cfg = join(dir, 'cli-config.json');
      const cli = async (token: string, ...args: string[]) =>
        collectRun(
          spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
            env: { ...process.env, FABRIK_ENDPOINT: address, FABRIK_API_KEY: token, FABRIK_CONFIG: cfg },
          }),
          { timeoutMs: 30_000 },
        );
      const opened = await cli(
        OPERATOR_TOKEN,
        'break-glass',
        'open',
        '--org',
        'acme',
        '--reason',
        REASON,
        '--for',
        '1h',
        '-o',
        'json',
      );
      assert.equal(opened.code, 0, opened.stderr);
      const g = JSON.parse(opened.stdout);
      assert.equal(g.state, 'active');
      const tooLong = await cli(
        OPERATOR_TOKEN,
        'break-glass',
        'open',
        '--org',
        'acme',
        '--reason',
        REASON,
        '--for',
        '48h',
      );
      assert.equal(tooLong.code, 2, tooLong.stderr);
      assert.match(tooLong.stderr, /INVALID_ARGUMENT/);
      const table = await cli(acme.ownerToken, 'get', 'break-glass', '--org', 'acme');
      assert.equal(table.code, 0, table.stderr);
      const [header, first] = table.stdout.trimEnd().split('\n');
      assert.match(header!, /^ID\s+OPERATOR\s+STATE\s+AGE\s+LEFT\s+REASON$/);
      assert.ok(first!.startsWith(g.id));
      assert.match(first!, /active/);
      assert.equal(header!.indexOf('STATE'), first!.indexOf('active'));
      const json = await cli(acme.ownerToken, 'get', 'break-glass', '--org', 'acme', '-o', 'json');
      assert.equal(JSON.parse(json.stdout).items[0].id, g.id);
      assert.equal((await secrets()).status, 200);
      const view = await cli(acme.ownerToken, 'audit', 'list', '--org', 'acme', '--break-glass');
      assert.equal(view.code, 0, view.stderr);
      assert.match(view.stdout.split('\n')[0]!, /GRANT\s+REASON/);
      assert.ok(
        view.stdout
          .split('\n')
          .some((line) => line.includes('break-glass.access') && line.includes(g.id) && line.includes(REASON)),
      );
      assert.ok(!/secret\.put/.test(view.stdout));
      const member = await cli(memberToken, 'break-glass', 'revoke', g.id, '--org', 'acme');
      assert.equal(member.code, 4, member.stderr);
      const other = await cli(globex.ownerToken, 'break-glass', 'list', '--org', 'acme');
      assert.equal(other.code, 3, other.stderr);
      const revoked = await cli(acme.ownerToken, 'break-glass', 'revoke', g.id, '--org', 'acme');
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.match(revoked.stdout, new RegExp(`break-glass/${g.id} revoked`));
      refused(await secrets());
    });
  });
}
