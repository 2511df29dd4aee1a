// Console sessions over HTTP (no browser): sign-in with an API key, the cookie's flags, CSRF on
// cookie mutations, bearer keys unchanged, logout and key revocation ending sessions, audit entries,
// the rate limit of the sign-in route. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';
import { CookieJar, startConsoleApp } from '../helpers/oidc-provider.js';

type Headers = Record<string, unknown>;

function cookieLine(headers: Headers, name: string): string {
  const all = headers['set-cookie'];
  const lines = typeof all === 'string' ? [all] : ((all as string[] | undefined) ?? []);
  const line = lines.find((l) => l.startsWith(`${name}=`));
  assert.ok(line, `no Set-Cookie for ${name} in ${JSON.stringify(lines)}`);
  return line;
}

for (const dialect of DIALECTS) {
  describe(`console sessions (${dialect})`, { skip: await skipReason(dialect) }, () => {
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;

    before(async () => {
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme');
      globex = await seedTenant(t, 'globex');
    });
    after(async () => t?.close());

    /** Signs in with a key; returns the jar holding both cookies and the response. */
    async function signIn(key: string) {
      const res = await t.call('POST', '/api/v1/session', { token: null, body: { apiKey: key } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const jar = new CookieJar();
      jar.take(res.headers['set-cookie'] as string[]);
      return { res, jar };
    }

    /** A request with the session cookie (and, when given, the CSRF header), no bearer key. */
    function withCookie(jar: CookieJar, method: string, url: string, o: { body?: unknown; csrf?: string } = {}) {
      return t.call(method, url, {
        token: null,
        body: o.body,
        headers: { cookie: jar.header(), ...(o.csrf === undefined ? {} : { 'x-csrf-token': o.csrf }) },
      });
    }

    it('says how one may sign in', async () => {
      const res = await t.call('GET', '/api/v1/session/methods', { token: null });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { apiKey: true, oidc: { enabled: false, name: '' } });
    });

    it('refuses a bad key without setting a cookie', async () => {
      for (const apiKey of ['fbk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'nonsense']) {
        const res = await t.call('POST', '/api/v1/session', { token: null, body: { apiKey } });
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'UNAUTHENTICATED');
        assert.equal(res.headers['set-cookie'], undefined);
      }
      const bad = await t.call('POST', '/api/v1/session', { token: null, body: { key: acme.ownerToken } });
      assert.equal(bad.status, 400);
    });

    it('opens a session with an API key: HttpOnly, SameSite=Strict cookie; CSRF cookie readable', async () => {
      const { res, jar } = await signIn(acme.ownerToken);
      const session = cookieLine(res.headers, 'fabrik_session');
      assert.match(session, /; HttpOnly/);
      assert.match(session, /; SameSite=Strict/);
      assert.match(session, /; Path=\//);
      assert.doesNotMatch(session, /; Secure/, 'no TLS here, so no Secure flag');
      const csrf = cookieLine(res.headers, 'fabrik_csrf');
      assert.doesNotMatch(csrf, /HttpOnly/);
      assert.match(csrf, /; SameSite=Strict/);
      assert.equal(jar.cookies.get('fabrik_csrf'), res.body.csrfToken);
      assert.equal(res.body.method, 'api-key');
      assert.deepEqual(res.body.principal.name, 'acme-owner');
      assert.equal(res.body.principal.kind, 'user');
      assert.equal(res.body.operator, false);
      assert.deepEqual(res.body.memberships, [{ org: 'acme', role: 'owner' }]);
      const ttl = Date.parse(res.body.expiresAt) - Date.now();
      assert.ok(ttl > 11.9 * 3600_000 && ttl <= 12 * 3600_000, `expires in ${ttl} ms`);
      // The cookie is not the key, and only its hash is stored.
      const token = jar.cookies.get('fabrik_session')!;
      assert.match(token, /^fbs_/);
      const rows = await t.store.db.selectFrom('console_sessions').selectAll().execute();
      assert.ok(rows.some((r) => r.token_hash === createHash('sha256').update(token).digest('hex')));
      assert.ok(!JSON.stringify(rows).includes(token));

      const me = await withCookie(jar, 'GET', '/api/v1/session');
      assert.equal(me.status, 200);
      assert.equal(me.body.csrfToken, res.body.csrfToken);
      assert.equal((await withCookie(jar, 'GET', '/api/v1/orgs/acme/projects')).status, 200);
    });

    it('refuses cookie mutations without the CSRF header; allows them with it', async () => {
      const { res, jar } = await signIn(acme.ownerToken);
      const body = { name: 'csrf-probe' };
      const none = await withCookie(jar, 'POST', '/api/v1/orgs/acme/projects', { body });
      assert.equal(none.status, 403);
      assert.equal(none.body.error.code, 'CSRF_FAILED');
      const wrong = await withCookie(jar, 'POST', '/api/v1/orgs/acme/projects', { body, csrf: 'x'.repeat(43) });
      assert.equal(wrong.body.error.code, 'CSRF_FAILED');
      const del = await withCookie(jar, 'DELETE', '/api/v1/session');
      assert.equal(del.body.error.code, 'CSRF_FAILED');
      const list = await t.call('GET', '/api/v1/orgs/acme/projects');
      assert.ok(!list.body.items.some((p: { name: string }) => p.name === 'csrf-probe'), 'nothing was created');
      const ok = await withCookie(jar, 'POST', '/api/v1/orgs/acme/projects', { body, csrf: res.body.csrfToken });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
    });

    it('keeps bearer keys as they were: no CSRF header needed, and the key wins over a cookie', async () => {
      const { jar } = await signIn(globex.ownerToken);
      const res = await t.call('POST', '/api/v1/orgs/acme/projects', {
        token: acme.ownerToken,
        body: { name: 'bearer-probe' },
        headers: { cookie: jar.header() },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const who = await t.call('GET', '/api/v1/whoami', { token: acme.viewerToken, headers: { cookie: jar.header() } });
      assert.equal(who.body.principal, 'user:acme-viewer');
      const noKey = await t.call('GET', '/api/v1/orgs', { token: null });
      assert.equal(noKey.status, 401);
      assert.match(noKey.body.error.message, /missing API key/);
      const noSession = await t.call('GET', '/api/v1/session');
      assert.equal(noSession.status, 401, 'a bearer key is no console session');
    });

    it('keeps tenants apart and roles in force through the cookie', async () => {
      const { res, jar } = await signIn(globex.viewerToken);
      assert.equal((await withCookie(jar, 'GET', '/api/v1/orgs/acme')).status, 404);
      assert.equal((await withCookie(jar, 'GET', '/api/v1/projects/acme.train')).status, 404);
      const orgs = await withCookie(jar, 'GET', '/api/v1/orgs');
      assert.deepEqual(
        orgs.body.items.map((o: { name: string }) => o.name),
        ['globex'],
      );
      const denied = await withCookie(jar, 'POST', '/api/v1/orgs/globex/projects', {
        body: { name: 'viewer-probe' },
        csrf: res.body.csrfToken,
      });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'FORBIDDEN');
    });

    it('logs out: 204, cookies cleared, the session ended server-side (audited)', async () => {
      const { res, jar } = await signIn(acme.viewerToken);
      const old = new CookieJar();
      old.take([`fabrik_session=${jar.cookies.get('fabrik_session')}`]);
      const out = await withCookie(jar, 'DELETE', '/api/v1/session', { csrf: res.body.csrfToken });
      assert.equal(out.status, 204);
      jar.take(out.headers['set-cookie'] as string[]);
      assert.equal(jar.cookies.size, 0, 'both cookies cleared');
      const again = await withCookie(old, 'GET', '/api/v1/session');
      assert.equal(again.status, 401);
      assert.match(again.body.error.message, /ended/);
      const entries = await t.store.db
        .selectFrom('audit_entries')
        .select(['action', 'actor_principal as principal'])
        .where('action', 'in', ['session.create', 'session.end'])
        .execute();
      assert.ok(entries.some((e) => e.action === 'session.create' && e.principal === 'user:acme-viewer'));
      assert.ok(entries.some((e) => e.action === 'session.end' && e.principal === 'user:acme-viewer'));
    });

    it("ends a key's sessions when the key is revoked", async () => {
      const key = await t.call('POST', '/api/v1/orgs/acme/keys', { token: acme.ownerToken, body: { name: 'console' } });
      assert.equal(key.status, 201);
      const { jar } = await signIn(key.body.token);
      assert.equal((await withCookie(jar, 'GET', '/api/v1/session')).status, 200);
      const revoked = await t.call('DELETE', `/api/v1/orgs/acme/keys/${key.body.prefix}`, { token: acme.ownerToken });
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      const after = await withCookie(jar, 'GET', '/api/v1/orgs/acme/projects');
      assert.equal(after.status, 401);
      assert.match(after.body.error.message, /revoked or expired/);
    });

    it('refuses an expired session', async () => {
      const { jar } = await signIn(acme.viewerToken);
      const hash = createHash('sha256').update(jar.cookies.get('fabrik_session')!).digest('hex');
      await t.store.db
        .updateTable('console_sessions')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('token_hash', '=', hash)
        .execute();
      await new Promise((r) => setTimeout(r, 1100)); // past the 1 s session cache
      const res = await withCookie(jar, 'GET', '/api/v1/session');
      assert.equal(res.status, 401);
      assert.match(res.body.error.message, /expired/);
    });

    it('refuses made-up and malformed cookies', async () => {
      for (const value of [`fbs_${'A'.repeat(43)}`, 'garbage']) {
        const jar = new CookieJar();
        jar.take([`fabrik_session=${value}`]);
        const res = await withCookie(jar, 'GET', '/api/v1/orgs');
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'UNAUTHENTICATED');
      }
    });

    it('an operator session is an operator', async () => {
      const { res } = await signIn(OPERATOR_TOKEN);
      assert.equal(res.body.operator, true);
    });
  });

  describe(`console session options (${dialect})`, { skip: await skipReason(dialect) }, () => {
    it('sets Secure cookies when the public URL is https', async () => {
      const c = await startConsoleApp(dialect, { publicUrl: 'https://fabrik.example.eu' });
      try {
        const res = await c.app.inject({
          method: 'POST',
          url: '/api/v1/session',
          payload: { apiKey: OPERATOR_TOKEN },
        });
        assert.equal(res.statusCode, 200);
        assert.match(cookieLine(res.headers, 'fabrik_session'), /; Secure/);
        assert.match(cookieLine(res.headers, 'fabrik_csrf'), /; Secure/);
      } finally {
        await c.close();
      }
    });

    it('rate limits the sign-in route per address like other unauthenticated requests', async () => {
      const c = await startConsoleApp(dialect, { rateLimitPerMinute: 5 });
      try {
        const codes: number[] = [];
        for (let i = 0; i < 7; i++) {
          const res = await c.app.inject({ method: 'POST', url: '/api/v1/session', payload: { apiKey: `bad-${i}` } });
          codes.push(res.statusCode);
        }
        assert.deepEqual(codes, [401, 401, 401, 401, 401, 429, 429]);
      } finally {
        await c.close();
      }
    });
  });
}
