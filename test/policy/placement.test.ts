// Sovereignty policies at placement, through the server: a mixed-region fleet (Germany, France,
// Switzerland), a `de` org and an `eu` org. Work lands only where its org's residency allows, a
// pending workload names the policy that keeps it waiting, restricted work takes only dedicated
// (exclusive) nodes, submit refuses what no allowed node can take, and loading policies is
// validated (line:column), versioned in the log, checked against running work and fails closed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_POLICIES } from '../../src/policy/default-policies.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const group = (names: string, region: string, pod: string, extra = '') => `
  - names: ${names}
    pool: b200
    gpus: 8
    cpu: 112
    ramGiB: 2048
    region: ${region}
    pod: ${pod}
    rack: ${pod}-r1
    ibLeaf: ${pod}-leaf
    ibSpine: spine1${extra}`;

/** Two German nodes plus one dedicated German node (another pod), three French nodes, one Swiss node; rtx only in France. */
const MIXED_FLEET = `
pools:
  - { name: b200, gpuModel: B200, gpuMemoryGiB: 180 }
  - { name: rtx, gpuModel: RTX PRO 6000, gpuMemoryGiB: 96 }
nodeGroups:${group('de-[01-02]', 'eu-de-muc1', 'de1')}${group('dx-01', 'eu-de-muc1', 'de2', '\n    labels: { exclusive: "true" }')}${group('fr-[01-03]', 'eu-fr-par1', 'fr1')}${group('ch-01', 'ch-zrh1', 'ch1')}
  - names: rfr-01
    pool: rtx
    gpus: 8
    cpu: 64
    ramGiB: 512
    region: eu-fr-par1
    pod: fr2
    rack: fr2-r1
    ibLeaf: fr2-leaf
    ibSpine: spine1
`;

const job = (name: string, extra: Record<string, unknown> = {}) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '2h',
  run: 'python train.py',
  ...extra,
});

for (const dialect of DIALECTS) {
  describe(`sovereignty policies at placement on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let euro: Tenant;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      const fleet = await t.call('POST', '/api/v1/fleet/apply', { body: { file: MIXED_FLEET } });
      assert.equal(fleet.status, 200, JSON.stringify(fleet.body));
      acme = await seedTenant(t, 'acme', { guaranteed: 0, limit: 56 });
      euro = await seedTenant(t, 'euro', { guaranteed: 0, limit: 56 });
      const patched = await t.call('PATCH', '/api/v1/orgs/euro', { body: { residency: 'eu' } });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      for (const who of [acme, euro]) {
        const q = await t.call('PUT', `/api/v1/projects/${who.ref}/quotas/rtx`, { body: { guaranteed: 0, limit: 8 } });
        assert.equal(q.status, 200, JSON.stringify(q.body));
      }
    });
    after(async () => {
      if (!skip) await t.close();
    });

    const submit = (who: Tenant, body: unknown) =>
      t.call('POST', `/api/v1/projects/${who.ref}/workloads`, { token: who.ownerToken, body });
    const get = async (who: Tenant, name: string) =>
      (await t.call('GET', `/api/v1/projects/${who.ref}/workloads/${name}`, { token: who.ownerToken })).body;
    const nodesOf = (w: { placement?: { nodes: { node: string }[] } }) => (w.placement?.nodes ?? []).map((n) => n.node);
    const cancelAll = async (who: Tenant, names: string[]) => {
      for (const n of names)
        await t.call('POST', `/api/v1/projects/${who.ref}/workloads/${n}/cancel`, { token: who.ownerToken });
      await t.store.db
        .updateTable('workload_attempts')
        .set({ state: 'ended', ended_at: new Date().toISOString() })
        .execute();
    };

    it('starts with the default policies as version 1, readable by tenants', { skip }, async () => {
      const v = await t.call('GET', '/api/v1/policies/latest', { token: acme.viewerToken });
      assert.equal(v.status, 200, JSON.stringify(v.body));
      assert.equal(v.body.version, 1);
      assert.equal(v.body.policies, DEFAULT_POLICIES);
      assert.match(v.body.hash, /^[0-9a-f]{64}$/);
      assert.ok(v.body.policyIds.includes('residency-de'));
      const loaded = await t.call('GET', '/api/v1/audit/entries?limit=500&action=policy.load');
      assert.equal(loaded.status, 200);
      const entry = loaded.body.items.find((e: { action: string }) => e.action === 'policy.load');
      assert.ok(entry, 'the first version is in the log');
      assert.equal(entry.policy.hash, v.body.hash);
    });

    it('never places a de org outside Germany; the waiting one names residency-de', { skip }, async () => {
      const names = ['de-a', 'de-b', 'de-c', 'de-d'];
      for (const n of names) assert.equal((await submit(acme, job(n))).status, 201);
      await t.scheduler.cycle();
      const placed: string[] = [];
      let waiting: { reason: string; message: string } | undefined;
      for (const n of names) {
        const w = await get(acme, n);
        if (w.status === 'running') placed.push(...nodesOf(w));
        else waiting = w;
      }
      // Three German nodes (the dedicated one too, for internal work); the French and Swiss ones stay free.
      assert.deepEqual(placed.sort(), ['de-01', 'de-02', 'dx-01']);
      assert.ok(waiting);
      assert.equal(waiting.reason, 'PolicyConstraint');
      assert.match(waiting.message, /residency-de/);
      assert.match(waiting.message, /free capacity is on nodes it forbids/);
      // Every placement records the policy set that allowed it.
      const latest = (await t.call('GET', '/api/v1/policies/latest')).body;
      const audit = await t.call('GET', '/api/v1/audit/entries?limit=500&action=workload.place', {
        token: acme.ownerToken,
      });
      const places = audit.body.items.filter((e: { action: string }) => e.action === 'workload.place');
      assert.ok(places.length >= 3);
      for (const e of places) assert.equal(e.policy?.hash, latest.hash);
      await cancelAll(acme, names);
    });

    it('lets an eu org use France but never Switzerland', { skip }, async () => {
      const names = ['eu-a', 'eu-b', 'eu-c', 'eu-d', 'eu-e', 'eu-f', 'eu-g'];
      for (const n of names) assert.equal((await submit(euro, job(n))).status, 201);
      await t.scheduler.cycle();
      const placed: string[] = [];
      for (const n of names) placed.push(...nodesOf(await get(euro, n)));
      assert.deepEqual(placed.sort(), ['de-01', 'de-02', 'dx-01', 'fr-01', 'fr-02', 'fr-03']);
      const last = (await Promise.all(names.map((n) => get(euro, n)))).find((w) => w.status === 'pending');
      assert.equal(last.reason, 'PolicyConstraint');
      assert.match(last.message, /residency-eu/);
      await cancelAll(euro, names);
    });

    it('runs restricted work only on dedicated nodes, holding them whole', { skip }, async () => {
      const r = await submit(
        acme,
        job('secret', { classification: 'restricted', resources: { gpu: 'B200:2', nodes: 1 } }),
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      await t.scheduler.cycle();
      const w = await get(acme, 'secret');
      assert.equal(w.status, 'running');
      assert.deepEqual(nodesOf(w), ['dx-01']);
      // Nobody else shares the dedicated node, not even the same tenant's internal work.
      assert.equal((await submit(acme, job('next', { resources: { gpu: 'B200:2', nodes: 1 } }))).status, 201);
      assert.equal(
        (
          await submit(
            acme,
            job('second-secret', { classification: 'restricted', resources: { gpu: 'B200:2', nodes: 1 } }),
          )
        ).status,
        201,
      );
      await t.scheduler.cycle();
      const next = await get(acme, 'next');
      assert.equal(next.status, 'running');
      assert.notDeepEqual(nodesOf(next), ['dx-01']);
      const second = await get(acme, 'second-secret');
      assert.equal(second.status, 'pending');
      assert.equal(second.reason, 'PolicyConstraint');
      assert.match(second.message, /restricted-exclusive/);
      await cancelAll(acme, ['secret', 'next', 'second-secret']);
    });

    it('refuses at submit what no allowed node can take, naming the policy', { skip }, async () => {
      const r = await submit(acme, job('rtx-job', { resources: { pool: 'rtx', gpu: 8, nodes: 1 } }));
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'WORKLOAD_INFEASIBLE');
      assert.equal(r.body.error.details.reason, 'POLICY_CONSTRAINT');
      assert.match(r.body.error.message, /residency-de/);
      // The eu org may use the French rtx node.
      assert.equal((await submit(euro, job('rtx-ok', { resources: { pool: 'rtx', gpu: 8, nodes: 1 } }))).status, 201);
      const gang = await submit(acme, job('too-big', { resources: { gpu: 'B200:8', nodes: 3 } }));
      assert.equal(gang.status, 422);
      assert.match(gang.body.error.message, /residency-de/);
      await cancelAll(euro, ['rtx-ok']);
    });

    it('refuses a broken policy file with line and column, keeping the version in force', { skip }, async () => {
      const before = (await t.call('GET', '/api/v1/policies/latest')).body;
      const broken = DEFAULT_POLICIES.replace('resource.exclusive', 'resource.exclusiv');
      const r = await t.call('POST', '/api/v1/policies', { body: { policies: broken } });
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'POLICY_INVALID');
      const line = broken.split('\n').findIndex((l) => l.includes('exclusiv ')) + 1;
      const p = r.body.error.details.problems[0];
      assert.ok(p.line > 0 && p.column > 0);
      assert.equal(p.policyId, 'restricted-exclusive');
      assert.ok(line === 0 || Math.abs(p.line - line) <= 1, `${p.line} vs ${line}`);
      const syntax = await t.call('POST', '/api/v1/policies', { body: { policies: 'permit (principal, action,' } });
      assert.equal(syntax.status, 422);
      assert.equal(syntax.body.error.details.problems[0].line, 1);
      const noId = await t.call('POST', '/api/v1/policies', {
        body: { policies: 'permit (principal, action, resource);' },
      });
      assert.equal(noId.status, 422);
      assert.match(noId.body.error.message, /@id/);
      const tenant = await t.call('POST', '/api/v1/policies', {
        token: acme.ownerToken,
        body: { policies: DEFAULT_POLICIES },
      });
      assert.equal(tenant.status, 403);
      const now = (await t.call('GET', '/api/v1/policies/latest')).body;
      assert.equal(now.version, before.version);
      assert.equal(now.hash, before.hash);
    });

    it('reports running work a new version would breach, and applies it only when accepted', { skip }, async () => {
      assert.equal((await submit(acme, job('long'))).status, 201);
      await t.scheduler.cycle();
      const running = await get(acme, 'long');
      assert.equal(running.status, 'running');
      const node = nodesOf(running)[0];
      const stricter = `${DEFAULT_POLICIES}
@id("no-muc1")
forbid (principal is Workload, action == Action::"place", resource is Node)
when { resource.region == "eu-de-muc1" };
`;
      const dry = await t.call('POST', '/api/v1/policies', { body: { policies: stricter, dryRun: true } });
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.equal(dry.body.applied, false);
      assert.deepEqual(
        dry.body.breaches.map((b: { workload: string; node: string }) => [b.workload, b.node]),
        [[`${acme.ref}/long`, node]],
      );
      assert.match(dry.body.breaches[0].policy, /no-muc1/);
      const refused = await t.call('POST', '/api/v1/policies', { body: { policies: stricter } });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'POLICY_BREACH');
      assert.equal((await t.call('GET', '/api/v1/policies/latest')).body.policies, DEFAULT_POLICIES);
      const accepted = await t.call('POST', '/api/v1/policies', { body: { policies: stricter, acceptBreaches: true } });
      assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
      assert.equal(accepted.body.version.version, 2);
      const history = await t.call('GET', '/api/v1/policies', { token: acme.viewerToken });
      assert.deepEqual(
        history.body.items.map((v: { version: number }) => v.version),
        [2, 1],
      );
      // Under version 2 a new German job waits, naming the new policy.
      assert.equal((await submit(acme, job('after'))).status, 422);
      // Back to the defaults (nothing runs in breach of them).
      await cancelAll(acme, ['long']);
      const back = await t.call('POST', '/api/v1/policies', { body: { policies: DEFAULT_POLICIES } });
      assert.equal(back.status, 201, JSON.stringify(back.body));
      assert.equal(back.body.version.version, 3);
      // The same text again is the version in force: no new version.
      const again = await t.call('POST', '/api/v1/policies', { body: { policies: DEFAULT_POLICIES } });
      assert.equal(again.body.version.version, 3);
    });

    it('fails closed: with no readable policy set nothing is placed or admitted', { skip }, async () => {
      // A version no server wrote (by hand in the database): it does not compile, so nothing is allowed.
      const head = (await t.call('GET', '/api/v1/policies/latest')).body;
      await t.store.db
        .insertInto('policy_versions')
        .values({
          version: head.version + 1,
          hash: 'x',
          policies: 'not cedar at all',
          policy_ids: '[]',
          created_at: new Date().toISOString(),
          created_by: 'hand',
        })
        .execute();
      // The cache refreshes within a second.
      await new Promise((r) => setTimeout(r, 1100));
      const r = await submit(acme, job('closed'));
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.details.reason, 'POLICY_CONSTRAINT');
      assert.match(r.body.error.message, /none in force/);
    });
  });
}
