// Sign-in with OpenID Connect against a real provider (oidc-provider v9 on a loopback port), without
// a browser: fabrik's redirect, the provider's login and consent pages walked with a cookie jar,
// the callback with code and state. Groups map to org roles; memberships are reconciled at each
// sign-in; identities with no role are refused; state is single use. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, OPERATOR_TOKEN, skipReason } from '../helpers/harness.js';
import {
  type ConsoleApp,
  CookieJar,
  type TestProvider,
  roleMappingFile,
  startConsoleApp,
  startOidcProvider,
  walkProvider,
} from '../helpers/oidc-provider.js';

const PUBLIC_URL = 'http://fabrik.test';

for (const dialect of DIALECTS) {
  describe(`OpenID Connect sign-in (${dialect})`, { skip: await skipReason(dialect) }, () => {
    let provider: TestProvider;
    let c: ConsoleApp;
    let roles: ReturnType<typeof roleMappingFile>;

    before(async () => {
      provider = await startOidcProvider({
        alice: { email: 'alice@acme.example', groups: ['acme-admins'] },
        bob: { groups: ['acme-staff', 'globex-ml', 'unrelated'] },
        carol: { groups: ['nobody-maps-this'] },
        olga: { groups: ['platform-ops'] },
      });
      provider.configure([`${PUBLIC_URL}/auth/oidc/callback`]);
      roles = roleMappingFile();
      c = await startConsoleApp(dialect, { provider, rolesFile: roles.path, publicUrl: PUBLIC_URL });
      const op = { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' };
      for (const [url, body] of [
        ['/api/v1/orgs', { name: 'acme', residency: 'de' }],
        ['/api/v1/orgs', { name: 'globex', residency: 'eu' }],
        ['/api/v1/orgs/globex/projects', { name: 'train' }],
      ] as const) {
        const res = await c.app.inject({ method: 'POST', url, headers: op, payload: JSON.stringify(body) });
        assert.equal(res.statusCode, 201, res.body);
      }
    });
    after(async () => {
      await c?.close();
      await provider?.stop();
      roles?.remove();
    });

    function get(url: string, jar?: CookieJar, headers: Record<string, string> = {}) {
      return c.app.inject({ method: 'GET', url, headers: { ...(jar ? { cookie: jar.header() } : {}), ...headers } });
    }

    /** fabrik's login redirect → the provider's pages → fabrik's callback URL (not yet visited). */
    async function toCallback(login: string, returnTo = '/workloads'): Promise<URL> {
      const start = await get(`/auth/oidc/login?return_to=${encodeURIComponent(returnTo)}`);
      assert.equal(start.statusCode, 302, start.body);
      const authorize = new URL(start.headers.location as string);
      assert.equal(authorize.origin, provider.issuer);
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.match(authorize.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.ok(authorize.searchParams.get('state'));
      assert.ok(authorize.searchParams.get('nonce'));
      assert.equal(authorize.searchParams.get('redirect_uri'), `${PUBLIC_URL}/auth/oidc/callback`);
      const back = await walkProvider(authorize.href, login);
      assert.equal(back.origin, PUBLIC_URL);
      assert.ok(back.searchParams.get('code'), back.href);
      return back;
    }

    async function signIn(login: string, returnTo?: string) {
      const back = await toCallback(login, returnTo);
      const res = await get(`${back.pathname}${back.search}`);
      const jar = new CookieJar();
      jar.take(res.headers['set-cookie']);
      return { res, jar };
    }

    it('announces the provider', async () => {
      const res = await get('/api/v1/session/methods');
      assert.deepEqual(JSON.parse(res.body), { apiKey: true, oidc: { enabled: true, name: 'Company SSO' } });
    });

    it('signs a mapped user in: session cookie, redirect to return_to, roles from groups', async () => {
      const { res, jar } = await signIn('alice', '/workloads?org=acme');
      assert.equal(res.statusCode, 302, res.body);
      assert.equal(res.headers.location, '/workloads?org=acme');
      const cookie = (res.headers['set-cookie'] as string[]).find((l) => l.startsWith('fabrik_session='))!;
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const me = JSON.parse((await get('/api/v1/session', jar)).body);
      assert.equal(me.method, 'oidc');
      assert.equal(me.principal.name, 'alice');
      assert.equal(me.operator, false);
      assert.deepEqual(me.memberships, [{ org: 'acme', role: 'admin' }]);
      // The admin role works, through the cookie and its CSRF token.
      const create = await c.app.inject({
        method: 'POST',
        url: '/api/v1/orgs/acme/projects',
        headers: { cookie: jar.header(), 'x-csrf-token': me.csrfToken, 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'from-sso' }),
      });
      assert.equal(create.statusCode, 201, create.body);
      const noCsrf = await c.app.inject({
        method: 'POST',
        url: '/api/v1/orgs/acme/projects',
        headers: { cookie: jar.header(), 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'from-sso-2' }),
      });
      assert.equal(noCsrf.statusCode, 403);
      assert.equal(JSON.parse(noCsrf.body).error.code, 'CSRF_FAILED');
      assert.equal((await get('/api/v1/orgs/globex', jar)).statusCode, 404, 'another tenant stays invisible');
    });

    it('reconciles memberships at every sign-in, for the same user (audited)', async () => {
      const first = await get('/api/v1/users', undefined, { authorization: `Bearer ${OPERATOR_TOKEN}` });
      const aliceId = JSON.parse(first.body).items.find((u: { name: string }) => u.name === 'alice').id;
      provider.users.set('alice', { email: 'alice@acme.example', groups: ['acme-staff', 'globex-ml'] });
      const { jar } = await signIn('alice');
      const me = JSON.parse((await get('/api/v1/session', jar)).body);
      assert.equal(me.principal.id, aliceId, 'matched by issuer and subject, not created again');
      assert.deepEqual(me.memberships, [
        { org: 'acme', role: 'viewer' },
        { org: 'globex', project: 'train', role: 'member' },
      ]);
      const entries = await c.store.db
        .selectFrom('audit_entries')
        .select(['action', 'resource', 'actor_principal'])
        .where('action', 'in', ['user.oidc-sync', 'session.create'])
        .execute();
      assert.ok(entries.filter((e) => e.action === 'user.oidc-sync' && e.resource === 'users/alice').length >= 2);
      assert.ok(entries.some((e) => e.action === 'session.create' && e.actor_principal === 'user:alice'));
    });

    it('maps a project-scoped group and an operator group', async () => {
      const bob = JSON.parse((await get('/api/v1/session', (await signIn('bob')).jar)).body);
      assert.deepEqual(bob.memberships, [
        { org: 'acme', role: 'viewer' },
        { org: 'globex', project: 'train', role: 'member' },
      ]);
      const olga = JSON.parse((await get('/api/v1/session', (await signIn('olga')).jar)).body);
      assert.equal(olga.operator, true);
      assert.deepEqual(olga.memberships, []);
    });

    it('refuses an identity no rule maps, with a page a person can read, and creates no user', async () => {
      const back = await toCallback('carol');
      const res = await get(`${back.pathname}${back.search}`, undefined, { accept: 'text/html' });
      assert.equal(res.statusCode, 401);
      assert.match(res.headers['content-type'] as string, /text\/html/);
      assert.match(res.body, /OIDC_NO_ROLE/);
      assert.match(res.body, /maps to no role/);
      assert.equal(res.headers['set-cookie'], undefined);
      const users = await c.store.db.selectFrom('principals').select('name').where('name', '=', 'carol').execute();
      assert.deepEqual(users, []);
    });

    it('refuses a replayed, forged or missing state', async () => {
      const back = await toCallback('alice');
      const ok = await get(`${back.pathname}${back.search}`);
      assert.equal(ok.statusCode, 302);
      const replay = await get(`${back.pathname}${back.search}`);
      assert.equal(replay.statusCode, 401);
      assert.equal(JSON.parse(replay.body).error.code, 'OIDC_FAILED');
      const forged = new URL(back);
      forged.searchParams.set('state', 'forged-state');
      assert.equal(JSON.parse((await get(`${forged.pathname}${forged.search}`)).body).error.code, 'OIDC_FAILED');
      const none = await get('/auth/oidc/callback?code=abc');
      assert.equal(JSON.parse(none.body).error.code, 'OIDC_FAILED');
    });

    it('refuses a code exchanged with the wrong PKCE verifier', async () => {
      const back = await toCallback('alice');
      const state = back.searchParams.get('state')!;
      const { createHash } = await import('node:crypto');
      const hash = createHash('sha256').update(state).digest('hex');
      await c.store.db
        .updateTable('oidc_logins')
        .set({ code_verifier: 'x'.repeat(43) })
        .where('state_hash', '=', hash)
        .execute();
      const res = await get(`${back.pathname}${back.search}`);
      assert.equal(res.statusCode, 401);
      assert.equal(JSON.parse(res.body).error.code, 'OIDC_FAILED');
      assert.match(JSON.parse(res.body).error.message, /invalid_grant/);
    });

    it('passes on an error from the provider', async () => {
      const start = await get('/auth/oidc/login');
      const state = new URL(start.headers.location as string).searchParams.get('state')!;
      const res = await get(`/auth/oidc/callback?error=access_denied&error_description=nope&state=${state}`);
      assert.equal(res.statusCode, 401);
      assert.match(JSON.parse(res.body).error.message, /access_denied \(nope\)/);
    });

    it('never redirects off this origin', async () => {
      const { res } = await signIn('alice', '//evil.example/steal');
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers.location, '/');
    });
  });
}

describe('OpenID Connect configuration', () => {
  it('answers OIDC_NOT_CONFIGURED without a provider, and OIDC_UNAVAILABLE when it is down', async () => {
    const plain = await startConsoleApp('sqlite');
    try {
      const res = await plain.app.inject({ method: 'GET', url: '/auth/oidc/login' });
      assert.equal(res.statusCode, 404);
      assert.equal(JSON.parse(res.body).error.code, 'OIDC_NOT_CONFIGURED');
    } finally {
      await plain.close();
    }
    const provider = await startOidcProvider({});
    const roles = roleMappingFile();
    await provider.stop();
    const down = await startConsoleApp('sqlite', { provider, rolesFile: roles.path });
    try {
      const res = await down.app.inject({ method: 'GET', url: '/auth/oidc/login' });
      assert.equal(res.statusCode, 503);
      assert.equal(JSON.parse(res.body).error.code, 'OIDC_UNAVAILABLE');
    } finally {
      await down.close();
      roles.remove();
    }
  });

  it('stops at start on a bad role mapping, naming line and column', async () => {
    const provider = await startOidcProvider({});
    const roles = roleMappingFile('- { claim: groups, value: x, org: acme, role: superuser }\n');
    try {
      await assert.rejects(startConsoleApp('sqlite', { provider, rolesFile: roles.path }), (e: Error) => {
        assert.match(e.message, /roles\.yaml:1:\d+: \[0\]\.role: must be one of/);
        return true;
      });
    } finally {
      await provider.stop();
      roles.remove();
    }
  });
});
