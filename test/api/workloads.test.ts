// Workloads through the server: submit-time validation, scheduling cycles that place, queue with
// a reason, and preempt borrowers to give an owner its guarantee, cancel, and the audit trail.
// SMALL_FLEET's b200 pool: 4 nodes × 8 GPUs in one pod on one leaf.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SYSTEM_ACTOR } from '../../src/audit/journal.js';
import { applyEvent } from '../../src/workload/repository.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

/** Stands in for the executor: attempts that should no longer run end at once (they never started). */
async function endUnwantedAttempts(t: TestApp): Promise<void> {
  const live = await t.store.db
    .selectFrom('workload_attempts')
    .innerJoin('workloads', 'workloads.id', 'workload_attempts.workload_id')
    .select(['workloads.id', 'workloads.org_id'])
    .where('workload_attempts.state', '!=', 'ended')
    .where('workload_attempts.stop_reason', '!=', '')
    .execute();
  for (const r of live) await applyEvent(t.store.db, SYSTEM_ACTOR, r, { type: 'abandoned', message: 'stopped (test)' });
}

const job = (name: string, extra: Record<string, unknown> = {}) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '2h',
  run: 'python train.py',
  requeue: true,
  ...extra,
});

for (const dialect of DIALECTS) {
  describe(`workloads on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme', { guaranteed: 8, limit: 32 });
      globex = await seedTenant(t, 'globex', { guaranteed: 16, limit: 16 });
    });
    after(async () => {
      if (!skip) await t.close();
    });

    const submit = (who: Tenant, body: unknown) =>
      t.call('POST', `/api/v1/projects/${who.ref}/workloads`, { token: who.ownerToken, body });
    const get = (who: Tenant, name: string) =>
      t.call('GET', `/api/v1/projects/${who.ref}/workloads/${name}`, { token: who.viewerToken });

    it('refuses specs that could never run, writing nothing', { skip }, async () => {
      const cases: [unknown, number, RegExp][] = [
        [job('too-wide', { resources: { gpu: 'B200:16', nodes: 1 } }), 400, /gpu/],
        [job('too-many', { resources: { gpu: 'B200:8', nodes: 64 } }), 400, /nodes/],
        [job('no-pool', { resources: { pool: 'h100', gpu: 8 } }), 400, /h100/],
        [job('bad-prio', { priority: 'urgent' }), 400, /priority/],
        [job('neg', { max_duration: '-5m' }), 400, /max_duration/],
        [job('reserved', { env: { CUDA_VISIBLE_DEVICES: '0' } }), 400, /CUDA_VISIBLE_DEVICES/],
        [{ ...job('extra'), colour: 'blue' }, 400, /colour/],
      ];
      for (const [body, status, pattern] of cases) {
        const r = await submit(acme, body);
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.match(r.body.error.message, pattern);
      }
      const rows = await t.store.db.selectFrom('workloads').select('id').execute();
      assert.equal(rows.length, 0);
    });

    it('places a whole-node job in the next cycle, with an event and an audit entry', { skip }, async () => {
      const r = await submit(acme, job('first'));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.status, 'pending');
      await t.scheduler.cycle();
      const w = await get(acme, 'first');
      assert.equal(w.body.status, 'running');
      assert.equal(w.body.placement.nodes.length, 1);
      assert.deepEqual(w.body.placement.nodes[0].gpuIndexes, [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.equal(w.body.placement.leaves.length, 1);
      assert.deepEqual(
        w.body.events.map((e: any) => e.reason),
        ['Submitted', 'Scheduled'],
      );
      const audit = await t.call('GET', `/api/v1/audit/entries?action=workload.place`);
      assert.equal(audit.body.items.length, 1);
      assert.equal(audit.body.items[0].actor.principal, 'system:scheduler');
    });

    it('queues beyond the project limit with reason QuotaLimit', { skip }, async () => {
      // globex: limit 16 → two whole nodes; the third waits.
      for (const n of ['g1', 'g2', 'g3']) assert.equal((await submit(globex, job(n))).status, 201);
      await t.scheduler.cycle();
      const states = await Promise.all(['g1', 'g2', 'g3'].map((n) => get(globex, n)));
      assert.deepEqual(
        states.map((s) => s.body.status),
        ['running', 'running', 'pending'],
      );
      assert.equal(states[2].body.reason, 'QuotaLimit');
      assert.match(states[2].body.message, /limit/i);
      const ps = await t.call('GET', `/api/v1/projects/${globex.ref}/workloads`, { token: globex.viewerToken });
      assert.equal(ps.body.items.length, 3);
    });

    it('cancels pending and running workloads; a second cancel is a conflict', { skip }, async () => {
      const c1 = await t.call('POST', `/api/v1/projects/${globex.ref}/workloads/g3/cancel`, {
        token: globex.ownerToken,
      });
      assert.equal(c1.body.status, 'cancelled');
      const c2 = await t.call('POST', `/api/v1/projects/${globex.ref}/workloads/g2/cancel`, {
        token: globex.ownerToken,
      });
      assert.equal(c2.body.status, 'cancelled');
      const again = await t.call('POST', `/api/v1/projects/${globex.ref}/workloads/g2/cancel`, {
        token: globex.ownerToken,
      });
      assert.equal(again.status, 409);
      const viewer = await t.call('POST', `/api/v1/projects/${globex.ref}/workloads/g1/cancel`, {
        token: globex.viewerToken,
      });
      assert.equal(viewer.status, 403);
      const other = await t.call('POST', `/api/v1/projects/${globex.ref}/workloads/g1/cancel`, {
        token: acme.ownerToken,
      });
      assert.equal(other.status, 404);
      // No executor runs here: the cancelled attempts end as an engine that never started them would say.
      await endUnwantedAttempts(t);
    });

    it('lets a borrower use idle GPUs and preempts it when the owner claims its guarantee', { skip }, async () => {
      // Now: acme.first (8) and globex.g1 (8) run; 16 GPUs idle. acme borrows them.
      for (const n of ['b1', 'b2']) assert.equal((await submit(acme, job(n, { priority: 'preemptible' }))).status, 201);
      await t.scheduler.cycle();
      for (const n of ['b1', 'b2']) {
        const w = await get(acme, n);
        assert.equal(w.body.status, 'running');
        assert.equal(w.body.borrowed, true);
      }
      // globex wants its second guaranteed node back.
      assert.equal((await submit(globex, job('g4'))).status, 201);
      const report = await t.scheduler.cycle();
      assert.equal(report.preempted, 1);
      // The victim's GPUs stay taken until its attempt has stopped: the claim waits for it.
      await t.scheduler.cycle();
      const waiting = await get(globex, 'g4');
      assert.equal(waiting.body.status, 'pending');
      assert.equal(waiting.body.reason, 'PreemptingVictims', waiting.body.message);
      await endUnwantedAttempts(t);
      await t.scheduler.cycle();
      const g4 = await get(globex, 'g4');
      assert.equal(g4.body.status, 'running');
      const victims = await Promise.all(['b1', 'b2'].map((n) => get(acme, n)));
      const preempted = victims.filter((v) => v.body.preemptions === 1);
      assert.equal(preempted.length, 1);
      assert.equal(preempted[0].body.status, 'pending', 'requeue: true returns it to the queue');
      assert.ok(preempted[0].body.events.some((e: any) => e.reason === 'Preempted'));
      // Nothing exceeds the capacity of a node.
      const running = (await t.call('GET', '/api/v1/workloads?status=running')).body.items;
      const used = new Map<string, number>();
      for (const w of running)
        for (const n of w.placement.nodes) used.set(n.node, (used.get(n.node) ?? 0) + n.gpuIndexes.length);
      assert.ok([...used.values()].every((g) => g <= 8));
    });
  });
}
