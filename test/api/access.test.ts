// Access findings from the hostile tenant's side: keys that outrank their minter, tokens kept in
// idempotency records, work done for callers before they are authorised, audit-log flooding and
// forged text, bad encodings, unauthenticated floods and what pool listings give away.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../../src/api/app.js';
import { MAX_AUDIT_TEXT, sanitiseAuditText } from '../../src/audit/entry.js';
import { limitDenials } from '../../src/audit/journal.js';
import { openStore } from '../../src/store/db.js';
import { bootstrapOperator } from '../../src/tenancy/bootstrap.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  type TestApp,
  type Tenant,
  freshDatabase,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';
import { snapshotState } from '../helpers/state.js';

const API = '/api/v1';

it('keeps audit text on one line, without bidi controls, and bounded', () => {
  const s = sanitiseAuditText('fleet/nodes/a\nb\r\u202egnp.exe\u2066\u0000\u0085');
  assert.equal(s, 'fleet/nodes/a\\u000ab\\u000d\\u202egnp.exe\\u2066\\u0000\\u0085');
  const long = sanitiseAuditText(`x${'😀'.repeat(600)}`);
  assert.ok(long.length <= MAX_AUDIT_TEXT && long.endsWith('…'));
  assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(long), 'no half of a surrogate pair');
  assert.equal(sanitiseAuditText('orgs/acme/keys/ci-ünïcode'), 'orgs/acme/keys/ci-ünïcode');
});

for (const dialect of DIALECTS) {
  describe(`access on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let adminToken: string;

    const must = async (method: string, url: string, body?: unknown, token?: string) => {
      const r = await t.call(method, `${API}${url}`, { body, token });
      if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const entries = (where: { keyId?: string; action?: string }) => {
      let q = t.store.db.selectFrom('audit_entries').selectAll().orderBy('seq');
      if (where.keyId) q = q.where('actor_key_id', '=', where.keyId);
      if (where.action) q = q.where('action', '=', where.action);
      return q.execute();
    };

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      // Stale idempotency records from long ago, purged by the first idempotent request.
      const old = new Date(Date.now() - 48 * 3600_000).toISOString();
      await t.store.db
        .insertInto('idempotency_keys')
        .values(
          ['stale-1', 'stale-2'].map((k) => ({
            key_id: 'key_gone',
            idem_key: k,
            method: 'POST',
            path: '/api/v1/orgs',
            body_hash: 'x',
            status: 201,
            response: '{}',
            created_at: old,
          })),
        )
        .execute();
      acme = await seedTenant(t, 'acme');
      await seedTenant(t, 'globex', { guaranteed: 16, limit: 16 });
      await must('POST', '/orgs/acme/members', { user: 'acme-admin', role: 'admin' }, acme.ownerToken);
      adminToken = (await must('POST', '/orgs/acme/keys', { name: 'admin', user: 'acme-admin' }, acme.ownerToken))
        .token;
    });
    after(async () => {
      if (!skip) await t.close();
    });

    describe('finding 8: idempotency records', () => {
      const idem = (k: string) => ({ 'idempotency-key': k });

      it('purges expired records on the way to a new one', { skip }, async () => {
        const r = await t.call('POST', `${API}/orgs/acme/projects`, {
          token: acme.ownerToken,
          body: { name: 'idem-purge' },
          headers: idem('purge-1'),
        });
        assert.equal(r.status, 201);
        const stale = await t.store.db
          .selectFrom('idempotency_keys')
          .selectAll()
          .where('key_id', '=', 'key_gone')
          .execute();
        assert.deepEqual(stale, []);
      });

      it('replays a key creation without its token, and never stores the token', { skip }, async () => {
        const body = { name: 'ci-idem', user: 'acme-viewer' };
        const first = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: acme.ownerToken,
          body,
          headers: idem('key-1'),
        });
        assert.equal(first.status, 201);
        assert.match(first.body.token, /^fbk_/);
        assert.equal(first.body.tokenShownOnce, undefined);
        const again = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: acme.ownerToken,
          body,
          headers: idem('key-1'),
        });
        assert.equal(again.status, 201);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(again.body.token, null);
        assert.equal(again.body.tokenShownOnce, true);
        const { token: _a, ...firstView } = first.body;
        const { token: _b, tokenShownOnce: _c, ...replayView } = again.body;
        assert.deepEqual(replayView, firstView);
        // The secret is base64url: it may itself hold underscores.
        const secret = first.body.token.split('_').slice(2).join('_');
        const rows = await t.store.db.selectFrom('idempotency_keys').select('response').execute();
        assert.ok(rows.length > 0);
        for (const row of rows) assert.ok(!row.response.includes(secret), 'a stored response holds the secret');
        // The token still works: it was shown, just not kept.
        assert.equal((await t.call('GET', `${API}/whoami`, { token: first.body.token })).status, 200);
      });

      it('replays a platform key creation without its token', { skip }, async () => {
        const body = { name: 'ops-idem', user: 'admin', ttlDays: 1 };
        const first = await t.call('POST', `${API}/keys`, { body, headers: idem('pkey-1') });
        const again = await t.call('POST', `${API}/keys`, { body, headers: idem('pkey-1') });
        assert.equal(first.status, 201);
        assert.match(first.body.token, /^fbk_/);
        assert.equal(again.body.token, null);
        assert.equal(again.body.prefix, first.body.prefix);
      });

      it('treats an expired record as a new request and replaces it', { skip }, async () => {
        const body = { name: 'ci-expiring', user: 'acme-viewer' };
        const call = () =>
          t.call('POST', `${API}/orgs/acme/keys`, { token: acme.ownerToken, body, headers: idem('key-exp') });
        const first = await call();
        assert.equal(first.status, 201);
        const longAgo = new Date(Date.now() - 25 * 3600_000).toISOString();
        await t.store.db
          .updateTable('idempotency_keys')
          .set({ created_at: longAgo })
          .where('idem_key', '=', 'key-exp')
          .execute();
        const later = await call();
        assert.equal(later.status, 201);
        assert.equal(later.headers['idempotent-replayed'], undefined);
        assert.match(later.body.token, /^fbk_/);
        assert.notEqual(later.body.prefix, first.body.prefix);
        const rows = await t.store.db
          .selectFrom('idempotency_keys')
          .selectAll()
          .where('idem_key', '=', 'key-exp')
          .execute();
        assert.equal(rows.length, 1);
        assert.ok(rows[0].created_at > longAgo);
        // And the replacement replays again.
        assert.equal((await call()).headers['idempotent-replayed'], 'true');
      });
    });

    describe('finding 7: keys never outrank the key that mints them', () => {
      it("refuses an admin's key for an owner with 403 and a denied entry", { skip }, async () => {
        const r = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: adminToken,
          body: { name: 'takeover', user: 'acme-owner' },
        });
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'FORBIDDEN');
        assert.match(r.body.error.message, /user:acme-owner.*"owner".*"admin"/);
        const keys = await t.store.db.selectFrom('api_keys').select('name').where('name', '=', 'takeover').execute();
        assert.deepEqual(keys, []);
        const denied = await t.store.db
          .selectFrom('audit_entries')
          .selectAll()
          .where('action', '=', 'apikey.create')
          .where('outcome', '=', 'denied')
          .where('actor_principal', '=', 'user:acme-admin')
          .execute();
        assert.equal(denied.length, 1);
      });

      it('refuses keys for service accounts and project grants above the admin', { skip }, async () => {
        await must('POST', '/orgs/acme/serviceaccounts', { name: 'deployer', role: 'owner' }, acme.ownerToken);
        await must(
          'POST',
          '/orgs/acme/members',
          { user: 'acme-lead', role: 'owner', project: 'train' },
          acme.ownerToken,
        );
        for (const body of [
          { name: 'sa', serviceAccount: 'deployer' },
          { name: 'lead', user: 'acme-lead', project: 'train' },
          // An org-wide key carries the project grant too.
          { name: 'lead-org', user: 'acme-lead' },
        ]) {
          const r = await t.call('POST', `${API}/orgs/acme/keys`, { token: adminToken, body });
          assert.equal(r.status, 403, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
        }
        // The owner may: an owner's grants reach that far.
        const ok = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: acme.ownerToken,
          body: { name: 'lead', user: 'acme-lead', project: 'train' },
        });
        assert.equal(ok.status, 201, JSON.stringify(ok.body));
      });

      it('names the creator and the principal in the entry of a key created for another', { skip }, async () => {
        const k = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: adminToken,
          body: { name: 'viewer-ci', user: 'acme-viewer' },
        });
        assert.equal(k.status, 201, JSON.stringify(k.body));
        assert.equal(k.body.createdBy, 'user:acme-admin');
        const list = await t.call('GET', `${API}/audit/entries?org=acme&action=apikey.create&limit=1000`, {
          token: acme.ownerToken,
        });
        const e = list.body.items.find((x: { resource: string }) => x.resource === `orgs/acme/keys/${k.body.prefix}`);
        assert.equal(e.actor.principal, 'user:acme-admin');
        assert.equal(e.subject, 'user:acme-viewer');
        assert.equal(JSON.parse(e.canonical).subject, 'user:acme-viewer');
      });

      it('mints keys only for members of the org or its service accounts', { skip }, async () => {
        // globex-owner is a platform user, but no member of acme.
        const r = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: acme.ownerToken,
          body: { name: 'stranger', user: 'globex-owner' },
        });
        assert.equal(r.status, 404);
        const sa = await t.call('POST', `${API}/orgs/acme/keys`, {
          token: acme.ownerToken,
          body: { name: 'foreign-sa', serviceAccount: 'nope' },
        });
        assert.equal(sa.status, 404);
      });

      it('lets operators mint any key', { skip }, async () => {
        const r = await t.call('POST', `${API}/orgs/acme/keys`, { body: { name: 'ops-owner', user: 'acme-owner' } });
        assert.equal(r.status, 201);
      });
    });

    describe('finding 9: authorisation before parsing', () => {
      it('answers a viewer 403 for a malformed or huge fleet file, never 422', { skip }, async () => {
        const bad = await t.call('POST', `${API}/fleet/apply`, {
          token: acme.viewerToken,
          body: { file: 'pools:\n  - name: [unclosed\n' },
        });
        assert.equal(bad.status, 403, JSON.stringify(bad.body));
        assert.equal(bad.body.error.code, 'FORBIDDEN');
        // Not even the JSON is read: a broken body is refused the same.
        const broken = await t.call('POST', `${API}/fleet/apply`, { token: acme.viewerToken, body: '{"file": "x' });
        assert.equal(broken.status, 403);
        const huge = `region: x\npools:\n${'  - { name: p, gpuModel: [[[[ }\n'.repeat(120_000)}`.slice(0, 3_900_000);
        const started = Date.now();
        const many = await Promise.all(
          [1, 2, 3, 4].map(() =>
            t.call('POST', `${API}/fleet/apply`, { token: acme.viewerToken, body: { file: huge } }),
          ),
        );
        assert.deepEqual(
          many.map((r) => r.status),
          [403, 403, 403, 403],
        );
        assert.ok(Date.now() - started < 1500, `four refusals took ${Date.now() - started} ms`);
        const applied = await entries({ action: 'fleet.apply' });
        const denied = applied.filter((e) => e.outcome === 'denied');
        assert.equal(denied.length, 6);
        assert.ok(denied.every((e) => e.actor_principal === 'user:acme-viewer'));
      });

      it('answers a request without a valid key 401 before reading its body', { skip }, async () => {
        const r = await t.call('POST', `${API}/fleet/apply`, { token: null, body: '{"file": ' });
        assert.equal(r.status, 401);
        const bad = await t.call('POST', `${API}/orgs/acme/projects`, {
          token: 'fbk_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
          body: '{"name": ',
        });
        assert.equal(bad.status, 401);
      });

      it('still tells an operator where a fleet file is wrong', { skip }, async () => {
        const r = await t.call('POST', `${API}/fleet/apply`, { body: { file: 'pools:\n  - name: [unclosed\n' } });
        assert.equal(r.status, 422);
        assert.equal(r.body.error.code, 'FLEET_FILE_INVALID');
      });
    });

    describe('finding 10: denied entries', () => {
      it('writes at most 10 denied entries per key and window, then one summary', { skip }, async () => {
        const key = await must('POST', '/orgs/acme/keys', { name: 'flood', user: 'acme-viewer' }, acme.ownerToken);
        limitDenials(t.store.db, { windowMs: 2000 });
        try {
          for (let i = 0; i < 25; i++) {
            const r = await t.call('POST', `${API}/fleet/nodes/b200-01/cordon`, { token: key.token });
            assert.equal(r.status, 403);
          }
          const burst = await entries({ keyId: key.id });
          assert.equal(burst.length, 10);
          assert.ok(burst.every((e) => e.outcome === 'denied' && e.action === 'node.cordon'));
          // The window ends: its summary says how many were not written one by one.
          let summary: Awaited<ReturnType<typeof entries>> = [];
          for (let i = 0; i < 60 && summary.length === 0; i++) {
            await new Promise((r) => setTimeout(r, 100));
            summary = await entries({ keyId: key.id, action: 'audit.denials-suppressed' });
          }
          assert.equal(summary.length, 1);
          assert.equal(summary[0].outcome, 'denied');
          assert.equal(JSON.parse(summary[0].canonical).suppressed.count, 15);
          const listed = await t.call('GET', `${API}/audit/entries?action=audit.denials-suppressed`);
          assert.equal(listed.body.items.at(-1).suppressed.count, 15);
          // A new window records again.
          await t.call('POST', `${API}/fleet/nodes/b200-01/cordon`, { token: key.token });
          assert.equal((await entries({ keyId: key.id })).length, 12);
        } finally {
          limitDenials(t.store.db, { windowMs: 60_000 });
        }
      });

      it('stores no newlines or bidi overrides from a path', { skip }, async () => {
        const node = 'x\n2025 admin granted\u202eowner';
        const r = await t.call('POST', `${API}/fleet/nodes/${encodeURIComponent(node)}/cordon`, {
          token: acme.ownerToken,
        });
        assert.equal(r.status, 403);
        const [e] = (await entries({ action: 'node.cordon' })).filter((x) => x.resource.includes('admin granted'));
        assert.equal(e.resource, 'fleet/nodes/x\\u000a2025 admin granted\\u202eowner');
        assert.ok(!e.canonical.includes('\n') && !e.canonical.includes('\u202e'));
      });
    });

    describe('finding 11: encodings, HTTP limits, unauthenticated floods, pools', () => {
      it('refuses invalid UTF-8 and NUL in bodies with INVALID_ENCODING, writing nothing', { skip }, async () => {
        const before = await snapshotState(t);
        const send = (payload: string | Buffer) =>
          t.app.inject({
            method: 'POST',
            url: `${API}/orgs/acme/projects`,
            headers: { authorization: `Bearer ${acme.ownerToken}`, 'content-type': 'application/json' },
            payload,
          });
        for (const payload of [
          Buffer.concat([Buffer.from('{"name":"ab'), Buffer.from([0xff, 0xfe]), Buffer.from('c"}')]),
          Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3]), Buffer.from('"}')]),
          '{"name":"a\\u0000b"}',
          '{"name":"ok","displayName":"x\\u0000"}',
          '{"na\\u0000me":"ok"}',
        ]) {
          const r = await send(payload);
          assert.equal(r.statusCode, 400, `${payload.toString()}: ${r.body}`);
          assert.equal(JSON.parse(r.body).error.code, 'INVALID_ENCODING');
        }
        const text = await t.app.inject({
          method: 'POST',
          url: `${API}/orgs/acme/projects`,
          headers: { authorization: `Bearer ${acme.ownerToken}`, 'content-type': 'text/plain' },
          payload: Buffer.from([0x61, 0xff]),
        });
        assert.equal(JSON.parse(text.body).error.code, 'INVALID_ENCODING');
        assert.deepEqual(await snapshotState(t), before);
      });

      it('refuses NUL and invalid UTF-8 in paths and queries', { skip }, async () => {
        for (const url of [
          '/projects/acme.tr%00ain',
          '/orgs/acme/projects?cursor=%00',
          '/orgs/acme/projects?cursor=%ff',
          '/projects/%C3%28',
          '/audit/entries?resource=orgs%2Facme%E2%82',
        ]) {
          const r = await t.call('GET', `${API}${url}`, { token: acme.ownerToken });
          assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.error.code, 'INVALID_ENCODING', url);
        }
        // Encoded text that is fine stays fine: "%2500" is the text "%00".
        const ok = await t.call('GET', `${API}/audit/entries?resource=%2500&org=acme`, { token: acme.ownerToken });
        assert.equal(ok.status, 200);
        const umlaut = await t.call('GET', `${API}/projects/acme.%C3%BC`, { token: acme.ownerToken });
        assert.equal(umlaut.status, 404);
      });

      it('answers oversized headers and URLs 431 in the error envelope', { skip }, async () => {
        await t.app.listen({ port: 0, host: '127.0.0.1' });
        const { port } = t.app.server.address() as { port: number };
        for (const request of [
          `GET ${API}/orgs HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
          `GET ${API}/orgs/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        ]) {
          const res = await rawHttp(port, request);
          assert.match(res, /^HTTP\/1\.1 431 /);
          const body = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4));
          assert.equal(body.error.code, 'HEADERS_TOO_LARGE');
          assert.equal(typeof body.error.message, 'string');
          assert.deepEqual(body.error.details, {});
        }
      });

      it('shows a tenant only its own guarantees in pool listings', { skip }, async () => {
        const pool = async (token?: string) =>
          (await must('GET', '/fleet/pools', undefined, token)).items.find((p: { name: string }) => p.name === 'b200');
        // acme.train holds 8 guaranteed B200 GPUs, globex.train 16.
        assert.equal((await pool()).guaranteed, 24);
        assert.equal((await pool(acme.viewerToken)).guaranteed, 8);
        await must('POST', '/orgs/acme/projects', { name: 'eval' }, acme.ownerToken);
        await must('PUT', '/projects/acme.eval/quotas/b200', { guaranteed: 2, limit: 4 });
        assert.equal((await pool(acme.ownerToken)).guaranteed, 10);
        const scoped = await must(
          'POST',
          '/orgs/acme/keys',
          { name: 'eval-only', user: 'acme-viewer', project: 'eval' },
          acme.ownerToken,
        );
        assert.equal((await pool(scoped.token)).guaranteed, 2);
        assert.equal((await pool()).guaranteed, 26);
      });
    });
  });

  describe(`rate limits without a valid key on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    it('counts missing and failed keys per address, with their own budget', { skip }, async () => {
      const db = await freshDatabase(dialect);
      const store = await openStore(db.url);
      await bootstrapOperator(store, OPERATOR_TOKEN);
      const app = await buildApp({ store, rateLimitPerMinute: 1000, unauthenticatedRateLimitPerMinute: 5 });
      try {
        const get = (authorization?: string) =>
          app.inject({ method: 'GET', url: `${API}/orgs`, headers: authorization ? { authorization } : {} });
        const statuses: number[] = [];
        for (let i = 0; i < 6; i++) {
          // Each attempt a different made-up key: they must not get a bucket each.
          const made = `fbk_${String(i).padStart(12, 'a')}_${'A'.repeat(43)}`;
          statuses.push((await get(i % 2 ? undefined : `Bearer ${made}`)).statusCode);
        }
        assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
        const limited = await get('Bearer not-a-key');
        assert.equal(limited.statusCode, 429);
        assert.equal(JSON.parse(limited.body).error.code, 'RATE_LIMITED');
        // A valid key from the same address has its own, larger budget; probes need no key at all.
        for (let i = 0; i < 10; i++) assert.equal((await get(`Bearer ${OPERATOR_TOKEN}`)).statusCode, 200);
        for (let i = 0; i < 10; i++) assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
      } finally {
        await app.close();
        await store.close();
        await db.drop();
      }
    });
  });
}

/** Sends raw bytes over HTTP/1.1 and returns whatever comes back before the server closes. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const sock = connect(port, '127.0.0.1', () => sock.write(request));
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      data += d;
    });
    // The server closes after answering, possibly while the request is still being written.
    sock.on('error', () => (data ? resolve(data) : reject(new Error('no answer'))));
    sock.on('close', () => resolve(data));
  });
}
