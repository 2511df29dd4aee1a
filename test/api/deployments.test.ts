// Deployments, inference limits and token usage through the REST API, on both dialects: deploying a
// local GGUF, a registry model (pushed with the Hub client) and an external upstream; what is
// refused (status and code) and that a refusal writes nothing; list, describe, scale and undeploy
// with their audit entries and events; Idempotency-Key on deploy; what another org's key and a
// viewer get; limits set, shown and removed; token usage grouped every way. No controller runs
// here, so replicas never appear: these tests are about the control plane's records.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import { Validator } from '@seriousme/openapi-schema-validator';
import { eventRuleOf } from '../../src/audit/outbox.js';
import { locateReplicaRuntime } from '../../src/inference/replica-spec.js';
import { writeTinyModel } from '../../src/inference/runtime/tiny-model.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const prefixOf = (token: string) => token.slice(4, 16);

for (const dialect of DIALECTS) {
  describe(`deployments, inference limits and token usage (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let a: Tenant;
    let b: Tenant;
    let dir: string;
    let gguf: string;
    let hubUrl: string;
    const deps = (who: Tenant, rest = '') => `/api/v1/projects/${who.ref}/deployments${rest}`;
    const deploy = (who: Tenant, body: unknown, token = who.ownerToken, headers?: Record<string, string>) =>
      t.call('POST', deps(who), { token, body, headers });
    const count = async (table: 'deployments' | 'audit_entries') =>
      (await t.store.db.selectFrom(table).select(t.store.db.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect, {
        registry: {},
        deployments: { runtime: locateReplicaRuntime(), allowModelPaths: true },
      });
      a = await seedTenant(t, 'acme');
      b = await seedTenant(t, 'globex');
      hubUrl = `${await t.app.listen({ host: '127.0.0.1', port: 0 })}/hub`;
      dir = await mkdtemp(join(tmpdir(), 'fabrik-deploy-'));
      gguf = join(dir, 'tiny.gguf');
      await writeTinyModel(gguf);
      writeFileSync(join(dir, 'not.gguf'), 'this is not a model', { mode: 0o644 });
      writeFileSync(join(dir, 'secret.gguf'), 'GGUF....', { mode: 0o600 });
    });
    after(async () => {
      if (skip) return;
      await t.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('deploys a local GGUF: 201 with the view, an audit entry and an event', { skip }, async () => {
      // SMALL_FLEET has two GPU models, so a replica names one (a bare count would be ambiguous).
      const r = await deploy(a, {
        name: 'tiny',
        modelPath: gguf,
        gpu: 'B200',
        replicas: '0..3',
        aliases: ['tiny-chat'],
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.name, 'tiny');
      assert.equal(r.body.project, 'acme.train');
      assert.equal(r.body.runtime, 'llamacpp');
      assert.equal(r.body.modelPath, gguf);
      assert.equal(r.body.model, null);
      assert.deepEqual(r.body.aliases, ['tiny-chat']);
      assert.deepEqual(r.body.replicas, { min: 0, max: 3, desired: 1, ready: 0, total: 0 });
      assert.deepEqual(r.body.gpu, { model: 'B200', perReplica: 1 });
      assert.equal(r.body.contextSize, 2048);
      assert.equal(r.body.storePrompts, false);
      assert.deepEqual(r.body.replicaList, []);
      assert.equal(r.body.createdBy, 'user:acme-owner');
      const audit = await t.store.db
        .selectFrom('audit_entries')
        .selectAll()
        .where('action', '=', 'deployment.create')
        .execute();
      assert.deepEqual(
        audit.map((e) => [e.resource, e.outcome]),
        [['projects/acme.train/deployments/tiny', 'success']],
      );
      if (eventRuleOf('deployment.create')) {
        const ev = await t.store.db.selectFrom('events').selectAll().where('type', '=', 'deployment.created').execute();
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.subject, 'projects/acme.train/deployments/tiny');
      }
    });

    it('deploys an external upstream and a registry model pinned to its commit', { skip }, async () => {
      const ext = await deploy(a, { name: 'gpt-proxy', upstreamUrl: 'https://api.example.com/v1', gpu: 'B200:2' });
      assert.equal(ext.status, 201, JSON.stringify(ext.body));
      assert.equal(ext.body.runtime, 'external');
      assert.equal(ext.body.upstreamUrl, 'https://api.example.com/v1');
      assert.deepEqual(ext.body.gpu, { model: null, perReplica: 0 }, 'an external upstream takes no GPU');
      assert.deepEqual(ext.body.replicas, { min: 1, max: 1, desired: 1, ready: 1, total: 1 });

      assert.equal(
        (await t.call('POST', `/api/v1/projects/${a.ref}/models`, { token: a.ownerToken, body: { name: 'llama-ft' } }))
          .status,
        201,
      );
      const pushed = await hub.uploadFiles({
        repo: { type: 'model', name: `${a.ref}/llama-ft` },
        accessToken: `hf_${a.ownerToken}`,
        hubUrl,
        files: [{ path: 'model.gguf', content: new Blob([new Uint8Array(await readFile(gguf))]) }],
      });
      const commit = pushed!.commit.oid;
      const reg = await deploy(a, { name: 'llama-ft', model: `${a.ref}/llama-ft:main`, gpu: 'B200', replicas: '2' });
      assert.equal(reg.status, 201, JSON.stringify(reg.body));
      assert.deepEqual(reg.body.model, { repo: `${a.ref}/llama-ft`, revision: 'main', commit });
      assert.deepEqual(reg.body.gpu, { model: 'B200', perReplica: 1 });
      assert.deepEqual(reg.body.replicas, { min: 2, max: 2, desired: 2, ready: 0, total: 0 });
      // Another org's model is refused as any workload input of another org is (by its name alone).
      const foreign = await deploy(b, { name: 'stolen', model: `${a.ref}/llama-ft:main`, gpu: 'B200' });
      assert.equal(foreign.status, 400, JSON.stringify(foreign.body));
      assert.equal(foreign.body.error.code, 'SPEC_INVALID');
      const missing = await deploy(a, { name: 'nope', model: `${a.ref}/llama-ft:v9`, gpu: 'B200' });
      assert.equal(missing.status, 422, JSON.stringify(missing.body));
      assert.equal(missing.body.error.code, 'UNPROCESSABLE');
      assert.match(missing.body.error.message, /v9/);
    });

    it('refuses bad deployments with stable codes, writing nothing', { skip }, async () => {
      const cases: [string, unknown, number, string, RegExp?][] = [
        ['bad name', { name: 'Bad_Name', modelPath: gguf }, 400, 'VALIDATION_FAILED', /name/],
        ['model and path', { name: 'x1', modelPath: gguf, model: 'acme.train/llama-ft' }, 400, 'INVALID_ARGUMENT'],
        ['no source', { name: 'x2' }, 400, 'INVALID_ARGUMENT', /model/],
        ['range upside down', { name: 'x3', modelPath: gguf, replicas: '5..2' }, 400, 'INVALID_ARGUMENT', /replicas/],
        ['zero replicas', { name: 'x4', modelPath: gguf, replicas: '0' }, 400, 'INVALID_ARGUMENT', /replicas/],
        ['not a range', { name: 'x5', modelPath: gguf, replicas: 'many' }, 400, 'INVALID_ARGUMENT', /replicas/],
        ['not a GGUF', { name: 'x6', modelPath: join(dir, 'not.gguf') }, 400, 'INVALID_ARGUMENT', /GGUF/],
        ['unreadable', { name: 'x7', modelPath: join(dir, 'secret.gguf') }, 400, 'INVALID_ARGUMENT', /readable/],
        ['missing file', { name: 'x8', modelPath: join(dir, 'gone.gguf') }, 400, 'INVALID_ARGUMENT', /exist/],
        ['relative path', { name: 'x9', modelPath: 'tiny.gguf' }, 400, 'INVALID_ARGUMENT', /absolute/],
        ['unknown field', { name: 'x10', modelPath: gguf, colour: 'blue' }, 400, 'VALIDATION_FAILED', /colour/],
        ['external, no URL', { name: 'x11', runtime: 'external' }, 400, 'INVALID_ARGUMENT', /upstream/i],
        ['bad URL', { name: 'x12', upstreamUrl: 'ftp://x/v1' }, 400, 'INVALID_ARGUMENT', /http/],
        ['URL credentials', { name: 'x13', upstreamUrl: 'https://u:p@x/v1' }, 400, 'INVALID_ARGUMENT'],
        ['bad runtime', { name: 'x14', modelPath: gguf, runtime: 'onnx' }, 400, 'VALIDATION_FAILED'],
        ['bad gpu', { name: 'x15', modelPath: gguf, gpu: 'B200:x' }, 400, 'INVALID_ARGUMENT', /gpu/],
        ['no such GPU', { name: 'x16', modelPath: gguf, gpu: 'H100' }, 400, 'SPEC_INVALID', /H100/],
        ['bad model ref', { name: 'x17', model: 'not a ref' }, 400, 'INVALID_ARGUMENT', /model/],
        ['bad alias', { name: 'x18', modelPath: gguf, aliases: ['has space'] }, 400, 'INVALID_ARGUMENT', /aliases/],
        ['wrong type', { name: 'x19', modelPath: gguf, contextSize: '2048' }, 400, 'VALIDATION_FAILED'],
        ['not JSON', '{"name":', 400, 'INVALID_JSON'],
      ];
      const rows = await count('deployments');
      const entries = await count('audit_entries');
      for (const [what, body, status, code, message] of cases) {
        const r = await deploy(a, body);
        assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, code, `${what}: ${JSON.stringify(r.body)}`);
        if (message) assert.match(r.body.error.message, message, what);
      }
      assert.equal(await count('deployments'), rows);
      assert.equal(await count('audit_entries'), entries, 'a refused deploy writes no audit entry');
      const dup = await deploy(a, { name: 'tiny', modelPath: gguf, gpu: 'B200' });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'ALREADY_EXISTS');
      // The same name in another project is fine.
      const other = await deploy(b, { name: 'tiny', upstreamUrl: 'http://127.0.0.1:9/v1' });
      assert.equal(other.status, 201, JSON.stringify(other.body));
    });

    it('replays a deploy with the same Idempotency-Key, refuses another body with it', { skip }, async () => {
      const idem = { 'idempotency-key': 'deploy-once-1' };
      const body = { name: 'replayed', upstreamUrl: 'http://127.0.0.1:9/v1' };
      const first = await deploy(a, body, a.ownerToken, idem);
      const again = await deploy(a, body, a.ownerToken, idem);
      assert.equal(first.status, 201, JSON.stringify(first.body));
      assert.equal(again.status, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.deepEqual(again.body, first.body);
      const changed = await deploy(a, { ...body, name: 'replayed-2' }, a.ownerToken, idem);
      assert.equal(changed.status, 422);
      assert.equal(changed.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
      assert.equal((await t.call('DELETE', deps(a, '/replayed'), { token: a.ownerToken })).status, 200);
    });

    it('lists, describes, scales and undeploys, each change audited', { skip }, async () => {
      const list = await t.call('GET', deps(a), { token: a.viewerToken });
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.items.map((d: any) => d.name).sort(), ['gpt-proxy', 'llama-ft', 'tiny']);
      const all = await t.call('GET', '/api/v1/deployments');
      assert.deepEqual(all.body.items.map((d: any) => `${d.project}/${d.name}`).sort(), [
        'acme.train/gpt-proxy',
        'acme.train/llama-ft',
        'acme.train/tiny',
        'globex.train/tiny',
      ]);
      const one = await t.call('GET', deps(a, '/tiny'), { token: a.viewerToken });
      assert.equal(one.status, 200);
      // describe is the listing's view plus the load the gateways report (none here).
      const { load, ...described } = one.body;
      assert.deepEqual(load, { inflight: 0, queued: 0, lastRequestAt: null });
      assert.deepEqual(
        described,
        list.body.items.find((d: any) => d.name === 'tiny'),
      );
      assert.equal((await t.call('GET', deps(a, '/nope'))).status, 404);

      const scaled = await t.call('PATCH', deps(a, '/tiny'), { token: a.ownerToken, body: { replicas: '2..8' } });
      assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
      assert.deepEqual(scaled.body.replicas, { min: 2, max: 8, desired: 2, ready: 0, total: 0 });
      const down = await t.call('PATCH', deps(a, '/tiny'), { token: a.ownerToken, body: { replicas: '1' } });
      assert.deepEqual(down.body.replicas, { min: 1, max: 1, desired: 1, ready: 0, total: 0 });
      for (const [body, code] of [
        [{ replicas: '5..2' }, 'INVALID_ARGUMENT'],
        [{ replicas: 3 }, 'VALIDATION_FAILED'],
        [{ replicas: '2', extra: true }, 'VALIDATION_FAILED'],
        [{}, 'VALIDATION_FAILED'],
      ] as const) {
        const r = await t.call('PATCH', deps(a, '/tiny'), { token: a.ownerToken, body });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.error.code, code);
      }
      const ext = await t.call('PATCH', deps(a, '/gpt-proxy'), { token: a.ownerToken, body: { replicas: '2' } });
      assert.equal(ext.status, 400);

      const gone = await t.call('DELETE', deps(a, '/tiny'), { token: a.ownerToken });
      assert.equal(gone.status, 200, JSON.stringify(gone.body));
      assert.equal(gone.body.name, 'tiny');
      assert.ok(gone.body.deletedAt);
      assert.equal((await t.call('GET', deps(a, '/tiny'))).status, 404);
      assert.equal((await t.call('DELETE', deps(a, '/tiny'), { token: a.ownerToken })).status, 404);
      // The name is free again at once.
      const redeploy = await deploy(a, { name: 'tiny', modelPath: gguf, gpu: 'B200' });
      assert.equal(redeploy.status, 201, JSON.stringify(redeploy.body));
      assert.notEqual(redeploy.body.id, gone.body.id);

      const actions = await t.store.db
        .selectFrom('audit_entries')
        .select(['action', 'outcome'])
        .where('resource', '=', 'projects/acme.train/deployments/tiny')
        .orderBy('seq')
        .execute();
      assert.deepEqual(
        actions.filter((e) => e.outcome === 'success').map((e) => e.action),
        ['deployment.create', 'deployment.scale', 'deployment.scale', 'deployment.delete', 'deployment.create'],
      );
      if (eventRuleOf('deployment.scale') && eventRuleOf('deployment.delete')) {
        const types = await t.store.db
          .selectFrom('events')
          .select('type')
          .where('subject', '=', 'projects/acme.train/deployments/tiny')
          .orderBy('seq')
          .execute();
        assert.deepEqual(
          types.map((e) => e.type),
          ['deployment.created', 'deployment.scaled', 'deployment.scaled', 'deployment.deleted', 'deployment.created'],
        );
      }
    });

    it("keeps tenants apart: another org's key sees none of it, a viewer cannot change it", { skip }, async () => {
      const theirs = await t.call('GET', '/api/v1/deployments', { token: b.ownerToken });
      assert.deepEqual(
        theirs.body.items.map((d: any) => d.project),
        ['globex.train'],
      );
      for (const [method, path, body] of [
        ['GET', deps(a), undefined],
        ['GET', deps(a, '/tiny'), undefined],
        ['PATCH', deps(a, '/tiny'), { replicas: '4' }],
        ['DELETE', deps(a, '/tiny'), undefined],
        ['POST', deps(a), { name: 'intruder', upstreamUrl: 'http://127.0.0.1:9/v1' }],
        ['GET', `/api/v1/projects/${a.ref}/usage/tokens`, undefined],
        ['GET', `/api/v1/projects/${a.ref}/inference-limits`, undefined],
        ['PUT', `/api/v1/projects/${a.ref}/inference-limits`, { rpm: 1 }],
        ['DELETE', `/api/v1/projects/${a.ref}/inference-limits`, undefined],
      ] as const) {
        const r = await t.call(method, path, { token: b.ownerToken, body });
        assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'NOT_FOUND');
      }
      const entries = await count('audit_entries');
      const viewer = await deploy(a, { name: 'by-viewer', upstreamUrl: 'http://127.0.0.1:9/v1' }, a.viewerToken);
      assert.equal(viewer.status, 403, JSON.stringify(viewer.body));
      assert.equal(viewer.body.error.code, 'FORBIDDEN');
      for (const [method, rest, body] of [
        ['PATCH', '/tiny', { replicas: '3' }],
        ['DELETE', '/tiny', undefined],
      ] as const) {
        const r = await t.call(method, deps(a, rest), { token: a.viewerToken, body });
        assert.equal(r.status, 403, `${method}: ${JSON.stringify(r.body)}`);
      }
      const denied = await t.store.db
        .selectFrom('audit_entries')
        .select('action')
        .where('outcome', '=', 'denied')
        .where('seq', '>', entries)
        .execute();
      assert.ok(denied.length >= 1, 'refusals are on the audit record');
      const still = await t.call('GET', deps(a, '/tiny'));
      assert.deepEqual(still.body.replicas.min, 1, 'nothing changed');
    });

    it('sets, shows and removes project and key limits', { skip }, async () => {
      const path = `/api/v1/projects/${a.ref}/inference-limits`;
      const empty = await t.call('GET', path, { token: a.viewerToken });
      assert.equal(empty.status, 200, JSON.stringify(empty.body));
      assert.equal(empty.body.limits, null);
      assert.deepEqual(empty.body.keys, []);
      assert.equal(empty.body.project, 'acme.train');

      const set = await t.call('PUT', path, { token: a.ownerToken, body: { rpm: 60, tpm: 10000, monthlyTokens: 5e6 } });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.deepEqual(
        { rpm: set.body.limits.rpm, tpm: set.body.limits.tpm, monthlyTokens: set.body.limits.monthlyTokens },
        { rpm: 60, tpm: 10000, monthlyTokens: 5e6 },
      );
      // Absent fields keep their value, 0 removes one.
      const partial = await t.call('PUT', path, { token: a.ownerToken, body: { tpm: 0 } });
      assert.deepEqual(
        [partial.body.limits.rpm, partial.body.limits.tpm, partial.body.limits.monthlyTokens],
        [60, null, 5e6],
      );
      const keyPrefix = prefixOf(a.viewerToken);
      const keyed = await t.call('PUT', path, { token: a.ownerToken, body: { key: keyPrefix, rpm: 10, tpm: 500 } });
      assert.equal(keyed.status, 200, JSON.stringify(keyed.body));
      assert.equal(keyed.body.keys.length, 1);
      assert.equal(keyed.body.keys[0].keyPrefix, keyPrefix);
      assert.equal(keyed.body.keys[0].principal, 'user:acme-viewer');
      assert.equal(keyed.body.keys[0].rpm, 10);
      assert.equal(keyed.body.keys[0].monthlyTokens, null);
      // By id too.
      const row = await t.store.db
        .selectFrom('api_keys')
        .select('id')
        .where('prefix', '=', keyPrefix)
        .executeTakeFirstOrThrow();
      const byId = await t.call('PUT', path, { token: a.ownerToken, body: { key: row.id, tpm: 600 } });
      assert.equal(byId.body.keys[0].tpm, 600);

      const refusals: [unknown, number, string, string?][] = [
        [{ key: keyPrefix, monthlyTokens: 5 }, 400, 'INVALID_ARGUMENT'],
        [{}, 400, 'INVALID_ARGUMENT'],
        [{ rpm: -1 }, 400, 'VALIDATION_FAILED'],
        [{ rpm: 1.5 }, 400, 'VALIDATION_FAILED'],
        [{ rpm: 1, burst: 2 }, 400, 'VALIDATION_FAILED'],
        [{ key: prefixOf(b.ownerToken), rpm: 1 }, 404, 'NOT_FOUND'],
        [{ key: 'nosuchkey', rpm: 1 }, 404, 'NOT_FOUND'],
        [{ rpm: 1 }, 403, 'FORBIDDEN', a.viewerToken],
      ];
      for (const [body, status, code, token] of refusals) {
        const r = await t.call('PUT', path, { token: token ?? a.ownerToken, body });
        assert.equal(r.status, status, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, code);
      }
      const audit = await t.store.db
        .selectFrom('audit_entries')
        .select(['resource', 'outcome'])
        .where('action', '=', 'inference-limits.set')
        .orderBy('seq')
        .execute();
      assert.deepEqual(
        audit.filter((e) => e.outcome === 'success').map((e) => e.resource),
        [
          'projects/acme.train/inference-limits',
          'projects/acme.train/inference-limits',
          `projects/acme.train/inference-limits/keys/${keyPrefix}`,
          `projects/acme.train/inference-limits/keys/${keyPrefix}`,
        ],
      );
      const stored = await t.store.db.selectFrom('inference_limits').selectAll().orderBy('scope').execute();
      assert.deepEqual(
        stored.map((r) => [r.scope, r.rpm, r.tpm, Number(r.monthly_tokens)]),
        [
          ['key', 10, 600, 0],
          ['project', 60, 0, 5e6],
        ],
      );

      assert.equal((await t.call('DELETE', `${path}?key=${keyPrefix}`, { token: a.viewerToken })).status, 403);
      assert.equal((await t.call('DELETE', `${path}?key=${keyPrefix}`, { token: a.ownerToken })).status, 204);
      assert.equal((await t.call('DELETE', `${path}?key=${keyPrefix}`, { token: a.ownerToken })).status, 404);
      const after = await t.call('GET', path, { token: a.viewerToken });
      assert.deepEqual(after.body.keys, []);
      assert.equal(after.body.limits.rpm, 60);
      assert.equal((await t.call('DELETE', path, { token: a.ownerToken })).status, 204);
      assert.equal((await t.call('GET', path)).body.limits, null);
      assert.equal((await t.call('DELETE', path, { token: a.ownerToken })).status, 404);
    });

    it('sums token usage by deployment, key, replica, minute, hour and day', { skip }, async () => {
      const project = await t.store.db
        .selectFrom('projects')
        .innerJoin('orgs', 'orgs.id', 'projects.org_id')
        .select(['projects.id', 'projects.org_id'])
        .where('orgs.name', '=', 'acme')
        .executeTakeFirstOrThrow();
      const depId = async (name: string) =>
        (
          await t.store.db
            .selectFrom('deployments')
            .select('id')
            .where('project_id', '=', project.id)
            .where('name', '=', name)
            .where('deleted_at', '=', '')
            .executeTakeFirstOrThrow()
        ).id;
      const tiny = await depId('tiny');
      const llama = await depId('llama-ft');
      const keyId = async (token: string) =>
        (
          await t.store.db
            .selectFrom('api_keys')
            .select('id')
            .where('prefix', '=', prefixOf(token))
            .executeTakeFirstOrThrow()
        ).id;
      const owner = await keyId(a.ownerToken);
      const viewer = await keyId(a.viewerToken);
      await t.store.db
        .insertInto('deployment_replicas')
        .values({
          id: 'rep_test0',
          deployment_id: llama,
          workload_id: '',
          ordinal: 0,
          port: 29001,
          host: '',
          node: '',
          state: 'pending',
          message: '',
          attempt: 0,
          ready_at: '',
          created_at: new Date().toISOString(),
          updated_at: new Date().toISOString(),
        })
        .execute();
      const base = Date.now() - 3 * 3_600_000;
      const old = new Date(Math.floor((base - 2 * 86_400_000) / 60_000) * 60_000).toISOString();
      const minute = (offsetMin: number) =>
        new Date(Math.floor(base / 3_600_000) * 3_600_000 + offsetMin * 60_000).toISOString();
      const row = (m: number, dep: string, key: string, rep: string, n: number) => ({
        minute: minute(m),
        org_id: project.org_id,
        project_id: project.id,
        key_id: key,
        deployment_id: dep,
        replica_id: rep,
        requests: n,
        errors: n > 2 ? 1 : 0,
        tokens_in: 10 * n,
        tokens_out: 20 * n,
        ttft_ms_sum: 50 * n,
        duration_ms_sum: 1000 * n,
      });
      await t.store.db
        .insertInto('token_usage')
        .values([
          row(0, tiny, owner, 'rep_gone', 1),
          row(1, tiny, viewer, 'rep_gone', 2),
          row(1, llama, owner, 'rep_test0', 3),
          row(61, llama, owner, 'rep_test0', 4),
          row(61, llama, viewer, '', 5),
          // Outside the range, and another project's: never counted.
          { ...row(0, tiny, owner, 'rep_gone', 100), minute: old },
          { ...row(0, tiny, owner, 'rep_gone', 1000), project_id: 'prj_other', org_id: 'org_other' },
        ])
        .execute();
      const usage = async (query: string, token = a.viewerToken) => {
        const r = await t.call('GET', `/api/v1/projects/${a.ref}/usage/tokens?${query}`, { token });
        assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.body)}`);
        return r.body;
      };
      const byDep = await usage('since=24h');
      assert.equal(byDep.by, 'deployment');
      assert.deepEqual(byDep.totals, {
        requests: 15,
        errors: 3,
        tokensIn: 150,
        tokensOut: 300,
        meanTtftMs: 50,
        tokensPerSec: 20,
      });
      assert.deepEqual(
        byDep.rows.map((r: any) => [r.group, r.id, r.requests, r.tokensIn, r.tokensOut]),
        [
          ['llama-ft', llama, 12, 120, 240],
          ['tiny', tiny, 3, 30, 60],
        ],
      );
      const byKey = await usage('since=24h&by=key');
      assert.deepEqual(
        byKey.rows.map((r: any) => [r.group, r.requests]),
        [
          [prefixOf(a.ownerToken), 8],
          [prefixOf(a.viewerToken), 7],
        ],
      );
      const byReplica = await usage('since=24h&by=replica');
      assert.deepEqual(
        byReplica.rows.map((r: any) => [r.group, r.id, r.deployment, r.requests]),
        [
          ['llama-ft-r0', 'rep_test0', 'llama-ft', 7],
          ['llama-ft (no replica)', null, 'llama-ft', 5],
          ['tiny/rep_gone', 'rep_gone', 'tiny', 3],
        ],
      );
      const byMinute = await usage('since=24h&by=minute');
      assert.deepEqual(
        byMinute.rows.map((r: any) => [r.group, r.requests]),
        [
          [minute(0), 1],
          [minute(1), 5],
          [minute(61), 9],
        ],
      );
      const byHour = await usage('since=24h&by=hour');
      assert.deepEqual(
        byHour.rows.map((r: any) => [r.group, r.requests]),
        [
          [minute(0), 6],
          [minute(60), 9],
        ],
      );
      const byDay = await usage('since=30d&by=day');
      assert.equal(
        byDay.rows.reduce((n: number, r: any) => n + r.requests, 0),
        115,
        'the older row counts over 30 days',
      );
      for (const r of byDay.rows) assert.match(r.group, /^\d{4}-\d{2}-\d{2}T00:00:00\.000Z$/);
      // An explicit window: only the second hour.
      const window = await usage(`since=${encodeURIComponent(minute(60))}&until=${encodeURIComponent(minute(120))}`);
      assert.equal(window.totals.requests, 9);
      assert.equal(window.since, minute(60));
      const empty = await usage('since=1m');
      assert.deepEqual(empty.rows, []);
      assert.equal(empty.totals.meanTtftMs, null);
      assert.equal(empty.totals.tokensPerSec, null);
      // Another project's usage is not counted; the month so far is on the limits view.
      const limits = await t.call('GET', `/api/v1/projects/${a.ref}/inference-limits`, { token: a.viewerToken });
      const month = limits.body.monthStart;
      const expected =
        [0, 1, 1, 61, 61].map((m, i) => (minute(m) >= month ? 30 * [1, 2, 3, 4, 5][i]! : 0)).reduce((x, y) => x + y) +
        (old >= month ? 3000 : 0);
      assert.equal(limits.body.monthTokens, expected);
      // One deployment's usage, by name or id (a deleted one by id); another project's or an
      // unknown one is a 404, as on the deployment routes.
      const llamaOnly = await usage('since=24h&by=minute&deployment=llama-ft');
      assert.deepEqual(llamaOnly.deployment, { id: llama, name: 'llama-ft' });
      assert.deepEqual(
        llamaOnly.rows.map((r: any) => [r.group, r.requests]),
        [
          [minute(1), 3],
          [minute(61), 9],
        ],
      );
      assert.equal(llamaOnly.totals.requests, 12);
      const tinyByKey = await usage(`since=24h&by=key&deployment=${tiny}`);
      assert.deepEqual(
        tinyByKey.rows.map((r: any) => [r.group, r.requests]),
        [
          [prefixOf(a.viewerToken), 2],
          [prefixOf(a.ownerToken), 1],
        ],
      );
      assert.deepEqual((await usage('since=24h&by=key&deployment=tiny')).rows, tinyByKey.rows);
      const theirs = await t.call('POST', `/api/v1/projects/${b.ref}/deployments`, {
        token: b.ownerToken,
        body: { name: 'theirs', runtime: 'external', upstreamUrl: 'https://api.example.com/v1' },
      });
      assert.equal(theirs.status, 201, JSON.stringify(theirs.body));
      for (const [ref, who, token] of [
        [a.ref, 'nope', a.viewerToken],
        [a.ref, 'dep_unknown', a.viewerToken],
        [a.ref, 'theirs', a.viewerToken],
        [a.ref, theirs.body.id, a.viewerToken],
        [b.ref, llama, b.ownerToken],
        [a.ref, 'llama-ft', b.ownerToken],
      ]) {
        const r = await t.call('GET', `/api/v1/projects/${ref}/usage/tokens?deployment=${who}`, { token });
        assert.equal(r.status, 404, `${ref} ${who}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'NOT_FOUND');
        assert.doesNotMatch(JSON.stringify(r.body), /llama-ft.*requests|tokensIn/);
      }
      for (const [query, code] of [
        ['deployment=', 'VALIDATION_FAILED'],
        ['by=week', 'VALIDATION_FAILED'],
        ['since=yesterday', 'INVALID_ARGUMENT'],
        ['since=1h&until=2h', 'INVALID_ARGUMENT'],
        ['since=500d', 'INVALID_ARGUMENT'],
        ['colour=blue', 'VALIDATION_FAILED'],
      ]) {
        const r = await t.call('GET', `/api/v1/projects/${a.ref}/usage/tokens?${query}`, { token: a.viewerToken });
        assert.equal(r.status, 400, `${query}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, code, query);
      }
    });

    it('refuses to delete a project that still serves a deployment; once undeployed it goes, limits with it', {
      skip,
    }, async () => {
      assert.equal(
        (await t.call('POST', `/api/v1/orgs/${a.org}/projects`, { token: a.ownerToken, body: { name: 'doomed' } }))
          .status,
        201,
      );
      const ref = `${a.org}.doomed`;
      const d = await t.call('POST', `/api/v1/projects/${ref}/deployments`, {
        token: a.ownerToken,
        body: { name: 'up', runtime: 'external', upstreamUrl: 'https://api.example.com/v1' },
      });
      assert.equal(d.status, 201, JSON.stringify(d.body));
      assert.equal(
        (await t.call('PUT', `/api/v1/projects/${ref}/inference-limits`, { token: a.ownerToken, body: { rpm: 5 } }))
          .status,
        200,
      );
      const refused = await t.call('DELETE', `/api/v1/projects/${ref}`, { token: a.ownerToken });
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.match(refused.body.error.message, /deployments \(e\.g\. "up"\); undeploy them first/);
      assert.equal(
        (await t.call('DELETE', `/api/v1/projects/${ref}/deployments/up`, { token: a.ownerToken })).status,
        200,
      );
      assert.equal((await t.call('DELETE', `/api/v1/projects/${ref}`, { token: a.ownerToken })).status, 204);
      const left = await t.store.db.selectFrom('deployments').select('id').where('id', '=', d.body.id).execute();
      assert.equal(left.length, 0);
      const limits = await t.store.db
        .selectFrom('inference_limits')
        .select('scope_id')
        .where('scope_id', '=', d.body.id)
        .execute();
      assert.equal(limits.length, 0);
    });

    it('documents every route in a valid /openapi.json', { skip }, async () => {
      const doc = await t.call('GET', '/openapi.json', { token: null });
      const result = await new Validator().validate(doc.body);
      assert.equal(result.valid, true, JSON.stringify(result.errors));
      const paths = Object.keys(doc.body.paths);
      for (const p of [
        '/api/v1/projects/{project}/deployments',
        '/api/v1/projects/{project}/deployments/{name}',
        '/api/v1/deployments',
        '/api/v1/projects/{project}/inference-limits',
        '/api/v1/projects/{project}/usage/tokens',
      ])
        assert.ok(paths.includes(p), p);
    });
  });
}
