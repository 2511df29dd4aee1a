// Sign-in in a real browser (Debian's Chromium through playwright-core) against a real server with
// OpenID Connect configured and a real provider (oidc-provider) on another loopback port: with an
// API key (cookie flags, nothing in Web Storage), a mutation without the CSRF header refused,
// logout ending the session server-side, and sign-in through the provider's own pages.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  type ConsoleServer,
  browserSkip,
  launchBrowser,
  screenshot,
  signInWithKey,
  startConsoleServer,
} from '../helpers/browser.js';
import { api } from '../helpers/child-server.js';
import { type TestProvider, roleMappingFile, startOidcProvider } from '../helpers/oidc-provider.js';

const skip = browserSkip();

describe('console sign-in in Chromium', { skip }, () => {
  let provider: TestProvider;
  let roles: ReturnType<typeof roleMappingFile>;
  let server: ConsoleServer;
  let browser: Browser;
  let ownerKey: string;
  const contexts: BrowserContext[] = [];

  before(async () => {
    provider = await startOidcProvider({ alice: { email: 'alice@acme.example', groups: ['acme-admins'] } });
    roles = roleMappingFile();
    server = await startConsoleServer({
      env: {
        FABRIK_OIDC_ISSUER: provider.issuer,
        FABRIK_OIDC_CLIENT_ID: provider.clientId,
        FABRIK_OIDC_CLIENT_SECRET: provider.clientSecret,
        FABRIK_OIDC_ROLES: roles.path,
      },
    });
    provider.configure([`${server.url}/auth/oidc/callback`]);
    const call = api(server.url, server.bootstrapKey);
    assert.equal((await call('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    assert.equal((await call('POST', '/api/v1/orgs/acme/members', { user: 'ada', role: 'owner' })).status, 201);
    const k = await call('POST', '/api/v1/orgs/acme/keys', { name: 'ada', user: 'ada' });
    assert.equal(k.status, 201, k.text);
    ownerKey = k.body.token;
    browser = await launchBrowser();
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
    await provider?.stop();
    roles?.remove();
  });

  async function newPage(): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(ctx);
    // Nothing leaves the machine (the provider's development pages link a web font).
    await ctx.route('**/*', (route) =>
      new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort(),
    );
    return { ctx, page: await ctx.newPage() };
  }

  it('signs in with an API key: HttpOnly SameSite=Strict cookie, no key in Web Storage', async () => {
    const { ctx, page } = await newPage();
    await signInWithKey(page, server.url, ownerKey);
    await screenshot(page, 'signin-key-done');
    const cookies = await ctx.cookies(server.url);
    const session = cookies.find((c) => c.name === 'fabrik_session');
    const csrf = cookies.find((c) => c.name === 'fabrik_csrf');
    assert.ok(session, JSON.stringify(cookies));
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.secure, false, 'plain HTTP on loopback');
    assert.ok(session.value.startsWith('fbs_') && session.value !== ownerKey);
    assert.ok(csrf && csrf.httpOnly === false && csrf.sameSite === 'Strict');
    const stored = await page.evaluate(() => ({
      local: JSON.stringify(Object.entries(localStorage)),
      session: JSON.stringify(Object.entries(sessionStorage)),
      cookie: document.cookie,
    }));
    const secret = ownerKey.split('_').at(-1)!;
    for (const [where, text] of Object.entries(stored)) assert.ok(!text.includes(secret), `the key is in ${where}`);
    assert.ok(!stored.cookie.includes('fabrik_session'), 'the session cookie is not readable by scripts');
    const me = await page.evaluate(async () => (await fetch('/api/v1/session')).json());
    assert.equal(me.method, 'api-key');
    assert.equal(me.principal.name, 'ada');
  });

  it('refuses a mutation from the page without the CSRF header, and allows it with one', async () => {
    const { page } = await newPage();
    await signInWithKey(page, server.url, ownerKey);
    // A string, not a function: tsx would wrap the inner helper's name in a function the page lacks.
    const result = await page.evaluate(`(async () => {
      const post = (headers, name) =>
        fetch('/api/v1/orgs/acme/projects', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ name }),
        }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const csrf = decodeURIComponent(/(?:^|; )fabrik_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? '');
      return {
        without: await post({}, 'browser-no-csrf'),
        forged: await post({ 'x-csrf-token': 'forged' }, 'browser-forged'),
        with: await post({ 'x-csrf-token': csrf }, 'browser-csrf'),
      };
    })()`);
    const r = result as Record<'without' | 'forged' | 'with', { status: number; body: any }>;
    assert.equal(r.without.status, 403);
    assert.equal(r.without.body.error.code, 'CSRF_FAILED');
    assert.equal(r.forged.body.error.code, 'CSRF_FAILED');
    assert.equal(r.with.status, 201, JSON.stringify(r.with.body));
  });

  it('signs out: back to sign-in, cookies gone, the old session refused by the server', async () => {
    const { ctx, page } = await newPage();
    await signInWithKey(page, server.url, ownerKey);
    const old = (await ctx.cookies(server.url)).find((c) => c.name === 'fabrik_session')!.value;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in with API key' }).waitFor();
    assert.equal((await ctx.cookies(server.url)).filter((c) => c.name.startsWith('fabrik_')).length, 0);
    const replay = await fetch(`${server.url}/api/v1/session`, { headers: { cookie: `fabrik_session=${old}` } });
    assert.equal(replay.status, 401);
    await page.goto(`${server.url}/workloads`);
    await page.getByRole('button', { name: 'Sign in with API key' }).waitFor();
    await screenshot(page, 'signin');
  });

  it('says what is wrong with a bad key', async () => {
    const { page } = await newPage();
    await page.goto(`${server.url}/signin`);
    await page.getByLabel('API key').fill('fbk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
    await page.getByRole('button', { name: 'Sign in with API key' }).click();
    await page.getByText('invalid API key').waitFor();
  });

  it('signs in through the identity provider (OpenID Connect) and lands on the page asked for', async () => {
    const { ctx, page } = await newPage();
    await page.goto(`${server.url}/workloads`);
    await page.getByRole('link', { name: 'Sign in with Company SSO' }).click();
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any-password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('navigation', { name: 'Console' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/workloads');
    await screenshot(page, 'signin-oidc-done');
    const me = await page.evaluate(async () => (await fetch('/api/v1/session')).json());
    assert.equal(me.method, 'oidc');
    assert.equal(me.principal.name, 'alice');
    assert.deepEqual(me.memberships, [{ org: 'acme', role: 'admin' }]);
    const session = (await ctx.cookies(server.url)).find((c) => c.name === 'fabrik_session');
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, 'Strict');
  });
});
