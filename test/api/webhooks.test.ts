// Webhooks end to end, on both dialects, against a real HTTP receiver on 127.0.0.1: the secret
// shown once at creation verifies every signature (Standard Webhooks: HMAC-SHA256 of
// "id.timestamp.body"), events arrive in order and only of the types asked for, a 500 is retried
// until it succeeds while later events wait, an event is given up after N failures and the
// subscription goes on, and B's subscription never receives A's events.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebhookDeliverer } from '../../src/app/webhook-delivery.js';
import { secretBoxFor } from '../../src/app/secret-box.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const API = '/api/v1';

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly event: { id: string; type: string; fabrikorg?: string; data: Record<string, any> };
  readonly answered: number;
}

/** A receiver: records every request; `answer` decides the status per request. */
async function startReceiver(): Promise<{
  url: string;
  got: Received[];
  answer: (r: Omit<Received, 'answered'>) => number;
  setAnswer(f: (r: Omit<Received, 'answered'>) => number): void;
  close(): Promise<void>;
}> {
  const state = {
    got: [] as Received[],
    answer: (_r: Omit<Received, 'answered'>) => 200,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r = { path: req.url ?? '', headers: req.headers, body, event: JSON.parse(body) };
      const status = state.answer(r);
      state.got.push({ ...r, answered: status });
      res.writeHead(status).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get got() {
      return state.got;
    },
    get answer() {
      return state.answer;
    },
    setAnswer(f) {
      state.answer = f;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Verifies a request as a receiver would, with nothing but the secret shown at creation. */
function verify(secret: string, r: Received): boolean {
  const id = String(r.headers['webhook-id']);
  const ts = String(r.headers['webhook-timestamp']);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${r.body}`).digest();
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((sig) => {
      const [version, value] = sig.split(',');
      const got = Buffer.from(value ?? '', 'base64');
      return version === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
    });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of DIALECTS) {
  describe(`webhooks on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;
    let rx: Awaited<ReturnType<typeof startReceiver>>;
    let deliverer: WebhookDeliverer;
    let hook: { id: string; secret: string };
    let acmeId: string;

    /** Runs the deliverer until `done` holds (retries wait their short backoff). */
    async function deliverUntil(done: () => boolean, what: string): Promise<void> {
      for (let i = 0; i < 200 && !done(); i++) {
        await deliverer.drain();
        if (!done()) await sleep(20);
      }
      assert.ok(done(), what);
    }

    const project = (name: string) =>
      t.call('POST', `${API}/orgs/acme/projects`, { body: { name }, token: acme.ownerToken });

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme');
      globex = await seedTenant(t, 'globex');
      acmeId = (await t.call('GET', `${API}/orgs/acme`)).body.id;
      rx = await startReceiver();
      deliverer = new WebhookDeliverer(t.store.db, secretBoxFor(t.store.db), {
        backoffBaseMs: 30,
        backoffMaxMs: 100,
        maxAttempts: 3,
        timeoutMs: 2000,
      });
    });
    after(async () => {
      if (skip) return;
      await deliverer.stop();
      await rx.close();
      await t.close();
    });

    it('creates a subscription: the secret once, http(s) targets only, admins only', { skip }, async () => {
      const body = { url: `${rx.url}/acme`, types: ['project.created', 'workload.finished'], description: 'ci' };
      const created = await t.call('POST', `${API}/orgs/acme/webhooks`, {
        body,
        token: acme.ownerToken,
        headers: { 'idempotency-key': 'hook-1' },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.deepEqual(created.body.types, body.types);
      assert.deepEqual(created.body.deliveries, { pending: 0, delivered: 0, failed: 0 });
      hook = { id: created.body.id, secret: created.body.secret };

      const replay = await t.call('POST', `${API}/orgs/acme/webhooks`, {
        body,
        token: acme.ownerToken,
        headers: { 'idempotency-key': 'hook-1' },
      });
      assert.equal(replay.status, 201);
      assert.equal(replay.body.id, hook.id);
      assert.equal(replay.body.secret, null, 'a replay does not show the secret again');
      const shown = await t.call('GET', `${API}/orgs/acme/webhooks/${hook.id}`, { token: acme.ownerToken });
      assert.equal(shown.status, 200);
      assert.equal(shown.body.secret, undefined);
      const stored = JSON.stringify(await t.store.db.selectFrom('webhooks').selectAll().execute());
      assert.ok(!stored.includes(hook.secret.slice(6)), 'stored sealed, not in plain text');
      const idem = JSON.stringify(await t.store.db.selectFrom('idempotency_keys').selectAll().execute());
      assert.ok(!idem.includes(hook.secret.slice(6)), 'nor in the stored replay');

      for (const url of [
        'file:///etc/passwd',
        'http+unix://%2Fvar%2Frun%2Fdocker.sock/x',
        'unix:/var/run/docker.sock',
        'ftp://example.com/x',
        'javascript:alert(1)',
        'not a url',
        'https://user:pw@example.com/x',
      ]) {
        const r = await t.call('POST', `${API}/orgs/acme/webhooks`, { body: { url }, token: acme.ownerToken });
        assert.equal(r.status, 400, url);
        assert.match(r.body.error.message, /^url: /, url);
      }
      const badType = await t.call('POST', `${API}/orgs/acme/webhooks`, {
        body: { url: `${rx.url}/x`, types: ['workload.done'] },
        token: acme.ownerToken,
      });
      assert.equal(badType.status, 400);
      assert.match(badType.body.error.message, /unknown event type "workload\.done"/);
      const viewer = await t.call('POST', `${API}/orgs/acme/webhooks`, {
        body: { url: `${rx.url}/v` },
        token: acme.viewerToken,
      });
      assert.equal(viewer.status, 403);
      assert.equal((await t.call('GET', `${API}/orgs/acme/webhooks`, { token: acme.viewerToken })).status, 403);
      const foreign = await t.call('GET', `${API}/orgs/acme/webhooks/${hook.id}`, { token: globex.ownerToken });
      assert.equal(foreign.status, 404);
      const under = await t.call('GET', `${API}/orgs/globex/webhooks/${hook.id}`, { token: globex.ownerToken });
      assert.equal(under.status, 404, "A's subscription under B's org");
    });

    it('delivers matching events in order, signed with the secret shown at creation', { skip }, async () => {
      for (const n of ['p1', 'p2', 'p3']) assert.equal((await project(n)).status, 201);
      // Not asked for: a member and a quota change.
      await t.call('POST', `${API}/orgs/acme/members`, {
        body: { user: 'dave', role: 'viewer' },
        token: acme.ownerToken,
      });
      await deliverUntil(() => rx.got.length >= 3, 'three deliveries');
      await deliverer.drain();
      assert.deepEqual(
        rx.got.map((r) => [r.path, r.event.type, r.event.data.name]),
        [
          ['/acme', 'project.created', 'p1'],
          ['/acme', 'project.created', 'p2'],
          ['/acme', 'project.created', 'p3'],
        ],
      );
      for (const r of rx.got) {
        assert.ok(verify(hook.secret, r), 'the signature verifies');
        assert.ok(!verify(`whsec_${Buffer.alloc(32).toString('base64')}`, r), 'and not with another secret');
        assert.equal(r.headers['webhook-id'], r.event.id);
        assert.ok(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
        assert.match(String(r.headers['content-type']), /^application\/cloudevents\+json/);
        assert.equal(r.event.fabrikorg, acmeId);
      }
      const seqs = rx.got.map((r) => Number(r.event.id.slice(4)));
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      const d = await t.call('GET', `${API}/orgs/acme/webhooks/${hook.id}/deliveries`, { token: acme.ownerToken });
      assert.equal(d.status, 200);
      assert.deepEqual(
        d.body.items.map((x: any) => [x.event.id, x.status, x.attempts, x.lastStatusCode, x.nextAttemptAt]),
        rx.got.map((r) => [r.event.id, 'delivered', 1, 200, null]).reverse(),
      );
    });

    it('retries after a 500 with backoff; later events wait for the earlier one', { skip }, async () => {
      rx.got.length = 0;
      let failures = 0;
      rx.setAnswer((r) => (r.event.data.name === 'flaky' && failures++ < 1 ? 500 : 200));
      await project('flaky');
      await project('after-flaky');
      await deliverUntil(() => rx.got.length >= 3, 'a retry and the next event');
      assert.deepEqual(
        rx.got.map((r) => [r.event.data.name, r.answered]),
        [
          ['flaky', 500],
          ['flaky', 200],
          ['after-flaky', 200],
        ],
      );
      assert.equal(rx.got[0]!.headers['webhook-id'], rx.got[1]!.headers['webhook-id'], 'a retry keeps its id');
      const d = await t.call('GET', `${API}/orgs/acme/webhooks/${hook.id}/deliveries?limit=2`, {
        token: acme.ownerToken,
      });
      const flaky = d.body.items.find((x: any) => x.event.id === rx.got[0]!.event.id);
      assert.deepEqual([flaky.status, flaky.attempts, flaky.lastStatusCode], ['delivered', 2, 200]);
    });

    it('gives up after N failed attempts and goes on with the next event', { skip }, async () => {
      rx.got.length = 0;
      rx.setAnswer((r) => (r.event.data.name === 'doomed' ? 500 : 200));
      await project('doomed');
      await project('survivor');
      await deliverUntil(() => rx.got.some((r) => r.event.data.name === 'survivor'), 'the next event');
      assert.deepEqual(
        rx.got.map((r) => [r.event.data.name, r.answered]),
        [
          ['doomed', 500],
          ['doomed', 500],
          ['doomed', 500],
          ['survivor', 200],
        ],
      );
      const failed = await t.call('GET', `${API}/orgs/acme/webhooks/${hook.id}/deliveries?status=failed`, {
        token: acme.ownerToken,
      });
      assert.deepEqual(
        failed.body.items.map((x: any) => [x.event.id, x.attempts, x.lastStatusCode, x.lastError, x.nextAttemptAt]),
        [[rx.got[0]!.event.id, 3, 500, 'HTTP 500', null]],
      );
      const bad = await t.call('GET', `${API}/orgs/acme/webhooks/${hook.id}/deliveries?status=lost`, {
        token: acme.ownerToken,
      });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /valid: pending, delivered, failed/);
      const view = await t.call('GET', `${API}/orgs/acme/webhooks`, { token: acme.ownerToken });
      assert.deepEqual(view.body.items[0].deliveries, { pending: 0, delivered: 6, failed: 1 });
    });

    it("keeps tenants apart: B's subscription never receives A's events", { skip }, async () => {
      rx.got.length = 0;
      rx.setAnswer(() => 200);
      const b = await t.call('POST', `${API}/orgs/globex/webhooks`, {
        body: { url: `${rx.url}/globex` },
        token: globex.ownerToken,
      });
      assert.equal(b.status, 201);
      await project('only-acme');
      await t.call('PUT', `${API}/projects/acme.train/quotas/b200`, { body: { guaranteed: 8, limit: 24 } });
      const g = await t.call('POST', `${API}/orgs/globex/projects`, { body: { name: 'gp' }, token: globex.ownerToken });
      assert.equal(g.status, 201);
      await deliverUntil(
        () => rx.got.some((r) => r.path === '/globex' && r.event.type === 'project.created'),
        "globex's own event",
      );
      await deliverer.drain();
      const toGlobex = rx.got.filter((r) => r.path === '/globex');
      const globexId = (await t.call('GET', `${API}/orgs/globex`)).body.id;
      assert.ok(toGlobex.length >= 2, 'its own creation and its project');
      assert.ok(
        toGlobex.every((r) => r.event.fabrikorg === globexId && !r.body.includes('acme')),
        JSON.stringify(toGlobex.map((r) => r.event.type)),
      );
      assert.ok(
        toGlobex.some((r) => r.event.type === 'webhook.created'),
        'all types when none are named',
      );
      assert.ok(!verify(hook.secret, toGlobex[0]!), "B's deliveries are not signed with A's secret");
      const toAcme = rx.got.filter((r) => r.path === '/acme');
      assert.deepEqual(
        toAcme.map((r) => r.event.data.name),
        ['only-acme'],
      );
    });

    it('deletes a subscription with its deliveries; nothing more is sent', { skip }, async () => {
      const del = await t.call('DELETE', `${API}/orgs/acme/webhooks/${hook.id}`, { token: acme.viewerToken });
      assert.equal(del.status, 403);
      assert.equal(
        (await t.call('DELETE', `${API}/orgs/acme/webhooks/${hook.id}`, { token: globex.ownerToken })).status,
        404,
      );
      assert.equal(
        (await t.call('DELETE', `${API}/orgs/acme/webhooks/${hook.id}`, { token: acme.ownerToken })).status,
        204,
      );
      rx.got.length = 0;
      await project('after-delete');
      await deliverer.drain();
      assert.deepEqual(
        rx.got.filter((r) => r.path === '/acme'),
        [],
      );
      const left = await t.store.db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('webhook_id', '=', hook.id)
        .execute();
      assert.deepEqual(left, []);
    });
  });
}
