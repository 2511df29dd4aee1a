// The foundation's HTTP API, specified against both databases: tenancy, keys, quotas, fleet,
// audit entries, errors, pagination, idempotency, health and OpenAPI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import {
  DIALECTS,
  SMALL_FLEET,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';

for (const dialect of DIALECTS) {
  describe(`foundation API on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme');
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('answers health, readiness and metrics without a key', { skip }, async () => {
      assert.equal((await t.call('GET', '/healthz', { token: null })).status, 200);
      const ready = await t.call('GET', '/readyz', { token: null });
      assert.equal(ready.status, 200);
      assert.match(ready.body.detail, new RegExp(dialect));
      const metrics = await t.call('GET', '/metrics', { token: null });
      assert.match(metrics.body, /fabrik_http_requests_total\{method="POST",route="\/api\/v1\/orgs",status="201"\}/);
      assert.match(metrics.body, /fabrik_http_request_duration_seconds_bucket/);
    });

    it('publishes a valid OpenAPI 3.1 document covering the routes', { skip }, async () => {
      const doc = (await t.call('GET', '/openapi.json', { token: null })).body;
      assert.equal(doc.openapi, '3.1.0');
      const result = await new Validator().validate(doc);
      assert.equal(result.valid, true, JSON.stringify(result.errors));
      for (const path of [
        '/api/v1/orgs',
        '/api/v1/projects/{project}/quotas/{pool}',
        '/api/v1/fleet/apply',
        '/api/v1/audit/entries',
      ]) {
        assert.ok(doc.paths[path], `missing ${path}`);
      }
    });

    it('requires a valid key and says so with 401', { skip }, async () => {
      assert.equal((await t.call('GET', '/api/v1/orgs', { token: null })).body.error.code, 'UNAUTHENTICATED');
      const r = await t.call('GET', '/api/v1/orgs', {
        token: 'fbk_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.message, 'invalid API key');
    });

    it('stores keys only as hashes with a visible prefix', { skip }, async () => {
      const rows = await t.store.db.selectFrom('api_keys').selectAll().execute();
      for (const row of rows) {
        assert.match(row.secret_hash, /^[0-9a-f]{64}$/);
        assert.ok(!acme.ownerToken.includes(row.secret_hash));
      }
      const prefix = acme.ownerToken.split('_')[1];
      assert.ok(rows.some((r) => r.prefix === prefix));
    });

    it('creates orgs only for operators and rejects duplicates with 409', { skip }, async () => {
      const r = await t.call('POST', '/api/v1/orgs', {
        token: acme.ownerToken,
        body: { name: 'evil', residency: 'de' },
      });
      assert.equal(r.status, 403);
      const dup = await t.call('POST', '/api/v1/orgs', { body: { name: 'acme', residency: 'eu' } });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'ALREADY_EXISTS');
    });

    it('rejects bad input with coded errors and writes nothing', { skip }, async () => {
      const before = await t.store.db.selectFrom('orgs').select('name').execute();
      const cases: [unknown, number, string][] = [
        ['{"name": "x",', 400, 'INVALID_JSON'],
        [{ name: 'Not_A_Label', residency: 'de' }, 400, 'VALIDATION_FAILED'],
        [{ name: 'ok', residency: 'us' }, 400, 'VALIDATION_FAILED'],
        [{ name: 42, residency: 'de' }, 400, 'VALIDATION_FAILED'],
        [{ name: 'ok', residency: 'de', extra: true }, 400, 'VALIDATION_FAILED'],
        [{ name: 'x'.repeat(2_000_000), residency: 'de' }, 413, 'PAYLOAD_TOO_LARGE'],
      ];
      for (const [body, status, code] of cases) {
        const r = await t.call('POST', '/api/v1/orgs', { body });
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.equal(r.body.error.code, code);
        assert.equal(typeof r.body.error.message, 'string');
      }
      assert.deepEqual(await t.store.db.selectFrom('orgs').select('name').execute(), before);
    });

    it('refuses guaranteed quotas beyond pool capacity with 422 saying by how much', { skip }, async () => {
      // SMALL_FLEET: b200 has 32 GPUs; acme.train holds 8 guaranteed.
      await t.call('POST', '/api/v1/orgs/acme/projects', { token: acme.ownerToken, body: { name: 'big' } });
      const r = await t.call('PUT', '/api/v1/projects/acme.big/quotas/b200', { body: { guaranteed: 30, limit: 32 } });
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, 'QUOTA_EXCEEDS_CAPACITY');
      assert.equal(r.body.error.details.exceedsBy, 6);
      assert.match(r.body.error.message, /exceeds capacity by 6/);
      const g = await t.call('PUT', '/api/v1/projects/acme.big/quotas/b200', { body: { guaranteed: 9, limit: 8 } });
      assert.equal(g.status, 400);
      const ok = await t.call('PUT', '/api/v1/projects/acme.big/quotas/b200', { body: { guaranteed: 24, limit: 32 } });
      assert.equal(ok.status, 200);
      const pools = await t.call('GET', '/api/v1/fleet/pools', { token: acme.viewerToken });
      assert.equal(pools.body.items.find((p: any) => p.name === 'b200').guaranteed, 32);
    });

    it('refuses a fleet change that would leave guarantees without capacity', { skip }, async () => {
      const smaller = SMALL_FLEET.replace('b200-[01-04]', 'b200-[01-02]').replace('r[1-2]', 'r1');
      const r = await t.call('POST', '/api/v1/fleet/apply', { body: { file: smaller, prune: true } });
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'QUOTA_EXCEEDS_CAPACITY');
      const nodes = await t.call('GET', '/api/v1/fleet/nodes?pool=b200');
      assert.equal(nodes.body.items.length, 4);
    });

    it('reports fleet file errors with line and column', { skip }, async () => {
      const r = await t.call('POST', '/api/v1/fleet/apply', {
        body: { file: 'pools:\n  - name: [unclosed\n', source: 'bad.yaml' },
      });
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, 'FLEET_FILE_INVALID');
      assert.equal(typeof r.body.error.details.line, 'number');
      assert.match(r.body.error.message, /bad\.yaml:\d+:\d+/);
      const dup = SMALL_FLEET.replace('rtx-[01-02]', 'b200-[03-04]');
      const d = await t.call('POST', '/api/v1/fleet/apply', { body: { file: dup } });
      assert.equal(d.status, 422);
      assert.match(d.body.error.message, /duplicate node name/);
    });

    it('cordons, drains and uncordons nodes, with audit entries', { skip }, async () => {
      assert.equal((await t.call('POST', '/api/v1/fleet/nodes/b200-01/cordon')).body.state, 'cordoned');
      assert.equal((await t.call('POST', '/api/v1/fleet/nodes/b200-01/drain')).body.state, 'draining');
      assert.equal((await t.call('POST', '/api/v1/fleet/nodes/b200-01/uncordon')).body.state, 'ready');
      assert.equal(
        (await t.call('POST', '/api/v1/fleet/nodes/b200-01/cordon', { token: acme.ownerToken })).status,
        403,
      );
      assert.equal((await t.call('POST', '/api/v1/fleet/nodes/nope/cordon')).status, 404);
      const audit = await t.call('GET', '/api/v1/audit/entries?resource=fleet/nodes/b200-01');
      assert.deepEqual(
        audit.body.items.map((e: any) => `${e.action}:${e.outcome}`),
        ['node.cordon:success', 'node.drain:success', 'node.uncordon:success', 'node.cordon:denied'],
      );
    });

    it('writes one canonical audit entry per change, gap-free, visible per org', { skip }, async () => {
      const all = await t.call('GET', '/api/v1/audit/entries?limit=1000');
      const seqs = all.body.items.map((e: any) => e.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_: number, i: number) => i + 1),
      );
      for (const e of all.body.items) {
        const { canonical, ...entry } = e;
        assert.equal(canonical, JSON.stringify(sortKeys(entry)));
      }
      const mine = await t.call('GET', '/api/v1/audit/entries', { token: acme.viewerToken });
      assert.ok(mine.body.items.length > 0);
      const orgId = (await t.call('GET', '/api/v1/orgs/acme')).body.id;
      assert.ok(mine.body.items.every((e: any) => e.orgId === orgId));
      const denied = all.body.items.filter((e: any) => e.outcome === 'denied');
      assert.ok(denied.length >= 1, 'the refused cordon is on record');
    });

    it('pages listings with opaque cursors', { skip }, async () => {
      for (const n of ['p1', 'p2', 'p3', 'p4', 'p5']) {
        await t.call('POST', '/api/v1/orgs/acme/projects', { token: acme.ownerToken, body: { name: n } });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const r: any = await t.call('GET', `/api/v1/orgs/acme/projects?limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
          token: acme.viewerToken,
        });
        assert.ok(r.body.items.length <= 2);
        seen.push(...r.body.items.map((p: any) => p.name));
        cursor = r.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [...seen].sort());
      assert.ok(['p1', 'p2', 'p3', 'p4', 'p5', 'train'].every((n) => seen.includes(n)));
      assert.equal(
        (await t.call('GET', '/api/v1/orgs/acme/projects?cursor=garbage', { token: acme.viewerToken })).status,
        400,
      );
    });

    it('honours Idempotency-Key on creates', { skip }, async () => {
      const headers = { 'idempotency-key': 'create-proj-idem-1' };
      const a = await t.call('POST', '/api/v1/orgs/acme/projects', {
        token: acme.ownerToken,
        body: { name: 'idem' },
        headers,
      });
      const b = await t.call('POST', '/api/v1/orgs/acme/projects', {
        token: acme.ownerToken,
        body: { name: 'idem' },
        headers,
      });
      assert.equal(a.status, 201);
      assert.equal(b.status, 201);
      assert.deepEqual(b.body, a.body);
      assert.equal(b.headers['idempotent-replayed'], 'true');
      const c = await t.call('POST', '/api/v1/orgs/acme/projects', {
        token: acme.ownerToken,
        body: { name: 'other' },
        headers,
      });
      assert.equal(c.status, 422);
      assert.equal(c.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
      const entries = await t.call('GET', '/api/v1/audit/entries?resource=orgs/acme/projects/idem');
      assert.equal(entries.body.items.length, 1);
    });

    it('returns the request id in a header and in audit entries', { skip }, async () => {
      const r = await t.call('POST', '/api/v1/orgs/acme/projects', {
        token: acme.ownerToken,
        body: { name: 'rid' },
        headers: { 'x-request-id': 'req-12345' },
      });
      assert.equal(r.headers['x-request-id'], 'req-12345');
      const e = await t.call('GET', '/api/v1/audit/entries?resource=orgs/acme/projects/rid');
      assert.equal(e.body.items[0].requestId, 'req-12345');
    });

    it('expires and revokes keys (401), revocation at once on this replica', { skip }, async () => {
      const k = await t.call('POST', '/api/v1/orgs/acme/keys', { token: acme.ownerToken, body: { name: 'short' } });
      assert.equal(k.status, 201);
      assert.equal((await t.call('GET', '/api/v1/whoami', { token: k.body.token })).status, 200);
      const rev = await t.call('DELETE', `/api/v1/orgs/acme/keys/${k.body.prefix}`, { token: acme.ownerToken });
      assert.equal(rev.body.state, 'revoked');
      assert.equal((await t.call('GET', '/api/v1/whoami', { token: k.body.token })).status, 401);
      // Expiry: a key whose expiry has passed is refused.
      const e = await t.call('POST', '/api/v1/orgs/acme/keys', {
        token: acme.ownerToken,
        body: { name: 'exp', expiresAt: new Date(Date.now() + 1500).toISOString() },
      });
      assert.equal((await t.call('GET', '/api/v1/whoami', { token: e.body.token })).status, 200);
      await new Promise((r) => setTimeout(r, 1600));
      const late = await t.call('GET', '/api/v1/whoami', { token: e.body.token });
      assert.equal(late.status, 401);
      assert.equal(late.body.error.message, 'API key expired');
    });

    it('lets project-scoped keys see only their project', { skip }, async () => {
      await t.call('POST', '/api/v1/orgs/acme/serviceaccounts', {
        token: acme.ownerToken,
        body: { name: 'ci', role: 'member', project: 'train' },
      });
      const k = await t.call('POST', '/api/v1/orgs/acme/keys', {
        token: acme.ownerToken,
        body: { name: 'ci', serviceAccount: 'ci', project: 'train' },
      });
      assert.equal(k.status, 201, JSON.stringify(k.body));
      const list = await t.call('GET', '/api/v1/orgs/acme/projects', { token: k.body.token });
      assert.deepEqual(
        list.body.items.map((p: any) => p.name),
        ['train'],
      );
      assert.equal((await t.call('GET', '/api/v1/projects/acme.p1', { token: k.body.token })).status, 404);
      assert.equal((await t.call('GET', '/api/v1/projects/acme.train/quotas', { token: k.body.token })).status, 200);
      assert.equal(
        (await t.call('POST', '/api/v1/orgs/acme/projects', { token: k.body.token, body: { name: 'nope' } })).status,
        403,
      );
    });

    it('rate-limits per key with 429', { skip }, async () => {
      const limited = await startTestApp(dialect, { rateLimitPerMinute: 3 });
      try {
        const codes = [];
        for (let i = 0; i < 5; i++) codes.push((await limited.call('GET', '/api/v1/orgs')).status);
        assert.deepEqual(codes.slice(0, 3), [200, 200, 200]);
        const r = await limited.call('GET', '/api/v1/orgs');
        assert.equal(r.status, 429);
        assert.equal(r.body.error.code, 'RATE_LIMITED');
      } finally {
        await limited.close();
      }
    });
  });
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
