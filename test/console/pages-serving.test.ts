// Serving the console: index.html for console paths with the CSP, files under /assets, API and
// server paths untouched (404 in the error envelope); and the generated API client cannot drift
// from /openapi.json.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { CONSOLE_CSP, CONSOLE_PAGES, consoleRoutes } from '../../src/api/console.js';
import { REPO_ROOT } from '../helpers/child-server.js';

describe('console serving', () => {
  let app: FastifyInstance;
  const dist = mkdtempSync(join(tmpdir(), 'fabrik-console-dist-'));
  before(async () => {
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(join(dist, 'assets/index-abc.js'), 'console.log(1)');
    app = Fastify();
    // As src/api/app.ts: the envelope for what no route answers, and the Hub's own 404 under /hub.
    app.setNotFoundHandler((req, reply) => {
      reply
        .status(404)
        .send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, details: {} } });
    });
    await app.register(
      async (hub) => {
        hub.setNotFoundHandler((_req, reply) =>
          reply.status(404).header('x-error-code', 'NOT_FOUND').send({ code: 'NOT_FOUND' }),
        );
        hub.get('/api/models/:id', async () => ({ hub: true }));
      },
      { prefix: '/hub' },
    );
    app.get('/api/v1/whoami', async () => ({ ok: true }));
    app.get('/audit/checkpoint', async () => 'cp');
    await consoleRoutes(app, dist);
    await app.ready();
  });
  after(async () => {
    await app.close();
    rmSync(dist, { recursive: true, force: true });
  });

  it('answers console paths with index.html and a CSP of this origin only', async () => {
    for (const url of [
      '/',
      '/workloads',
      '/workloads/acme.train/x',
      '/workloads/new',
      '/audit',
      '/signin?return_to=%2Fqueue',
    ]) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 200, url);
      assert.match(r.body, /<div id="root">/);
      assert.equal(r.headers['content-security-policy'], CONSOLE_CSP);
      assert.match(CONSOLE_CSP, /^default-src 'self'/);
    }
  });

  it('serves assets with long caching; a missing asset is a 404', async () => {
    const r = await app.inject({ url: '/assets/index-abc.js' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['cache-control']), /immutable/);
    const m = await app.inject({ url: '/assets/gone.js' });
    assert.equal(m.statusCode, 404);
    assert.equal(m.json().error.code, 'NOT_FOUND');
  });

  it('leaves the API and server routes alone', async () => {
    assert.equal((await app.inject({ url: '/api/v1/whoami' })).json().ok, true);
    assert.equal((await app.inject({ url: '/audit/checkpoint' })).body, 'cp');
    for (const url of ['/api/v1/nope', '/v1/models', '/auth/oidc/nope', '/audit/nope', '/healthz/x', '/favicon.ico']) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 404, url);
      assert.equal(r.json().error.code, 'NOT_FOUND', url);
    }
    assert.equal((await app.inject({ url: '/hub/api/models/x' })).json().hub, true);
    const hub404 = await app.inject({ url: '/hub/nope' });
    assert.equal(hub404.statusCode, 404);
    assert.equal(hub404.headers['x-error-code'], 'NOT_FOUND');
    // Every page of the console's navigation is served.
    for (const p of ['/queue', '/deployments', '/registry', '/usage', '/operators', '/simulator'])
      assert.ok((CONSOLE_PAGES as readonly string[]).includes(p), p);
  });

  it('without a build, says how to build at /', async () => {
    const bare = Fastify();
    await consoleRoutes(bare, join(dist, 'missing'));
    const r = await bare.inject({ url: '/' });
    assert.equal(r.statusCode, 404);
    assert.match(r.json().error.message, /npm run build:web/);
    await bare.close();
  });

  it('web/src/api/generated.ts is what /openapi.json generates now', () => {
    // Exits 1 with a message when it drifted: regenerate with `npm run gen:console-client`.
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'scripts/gen-console-client.mjs', '--check'], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 120_000,
      });
    } catch (e) {
      assert.fail(String((e as { stderr?: Buffer }).stderr ?? e));
    }
  });
});
