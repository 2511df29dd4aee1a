// Site metrics on /metrics and current use in quota listings, on both dialects: three tenants fill
// the b200 pool (32 GPUs; each project guaranteed 8, limit 16), one claim within its guarantee
// reclaims borrowed GPUs, and the scrape is checked series by series against what the API says.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import type { ExecHandle, Executor, LaunchRequest, Observation } from '../../src/exec/types.js';
import { GatewayMetrics } from '../../src/inference/gateway/metrics.js';
import { SiteMetrics } from '../../src/metering/site-metrics.js';
import { Reconciler } from '../../src/workload/reconciler.js';
import { SchedulerLoop } from '../../src/workload/scheduler-loop.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

/** Test double for an engine: every launch is accepted, every attempt observed running. */
class AcceptingExecutor implements Executor {
  readonly name = 'local' as const;
  async launch(req: LaunchRequest): Promise<ExecHandle> {
    return { job: `${req.workloadId}.${req.attempt}` };
  }
  async adopt(): Promise<ExecHandle | undefined> {
    return undefined;
  }
  async signal(): Promise<void> {}
  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    return new Map([...handles.keys()].map((id) => [id, { state: 'running', message: 'running' } as Observation]));
  }
  logPath(): string | undefined {
    return undefined;
  }
}

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Prometheus text format → samples (enough of it for these series: no escapes in label values). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hit.length ? hit.reduce((sum, s) => sum + s.value, 0) : undefined;
}

for (const dialect of DIALECTS) {
  describe(`site metrics and quota use (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let app: FastifyInstance;
    let acme: Tenant;
    let beta: Tenant;
    let gamma: Tenant;
    let scheduler: SchedulerLoop;
    let reconciler: Reconciler;
    const site = { metrics: undefined as unknown as SiteMetrics };
    const gateway = new GatewayMetrics(() => []);

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      site.metrics = new SiteMetrics(t.store.db);
      // As src/server.ts wires them: the loops feed the counters of the app's /metrics.
      app = await buildApp({
        store: t.store,
        siteMetrics: site.metrics,
        gateway: { handle: () => undefined, metrics: gateway.registry },
      });
      await app.ready();
      scheduler = new SchedulerLoop(t.store.db, { onCycle: site.metrics.cycle });
      reconciler = new Reconciler(t.store.db, new AcceptingExecutor(), {
        workdirRoot: process.cwd(),
        onPass: site.metrics.reconciled,
      });
      acme = await seedTenant(t, 'acme');
      beta = await seedTenant(t, 'beta');
      gamma = await seedTenant(t, 'gamma');
    });
    after(async () => {
      if (skip) return;
      await app.close();
      await t.close();
    });

    const submit = async (who: Tenant, name: string) => {
      const r = await t.call('POST', `/api/v1/projects/${who.ref}/workloads`, {
        token: who.ownerToken,
        body: { kind: 'batch', name, resources: { gpu: 'B200:8' }, max_duration: '1h', run: 'true' },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      await scheduler.cycle();
    };
    const get = async (who: Tenant, name: string) =>
      (await t.call('GET', `/api/v1/projects/${who.ref}/workloads/${name}`, { token: who.ownerToken })).body;
    const scrape = async () => {
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 200);
      return parseMetrics(res.body);
    };

    it('reports pending, admitted, allocated, guaranteed, preempted, cycles and lag as the records say', {
      skip,
    }, async () => {
      await submit(acme, 'a1'); // within the guarantee
      await submit(acme, 'a2'); // borrows
      await submit(acme, 'a3'); // over the limit: waits
      await submit(beta, 'b1');
      await submit(beta, 'b2'); // borrows the last 8 GPUs of the pool
      reconciler.start(); // one pass now; stop() waits for it
      await reconciler.stop();
      await submit(gamma, 'g1'); // within its guarantee: reclaims a borrowed workload
      const a3 = await get(acme, 'a3');
      assert.equal(a3.status, 'pending');
      const g1 = await get(gamma, 'g1');
      assert.equal(g1.status, 'pending');
      const placed = [await get(acme, 'a1'), await get(acme, 'a2'), await get(beta, 'b1'), await get(beta, 'b2')];
      const victims = placed.filter((w) => w.preemptions > 0);
      assert.equal(victims.length, 1, 'one workload of a borrowing project is preempted for the guarantee');
      // The victim's attempt is still stopping (the engine has not confirmed), so its GPUs stay held.
      await new Promise((r) => setTimeout(r, 20));

      const m = await scrape();
      assert.equal(
        value(m, 'fabrik_pending_workloads', { pool: 'b200', reason: a3.reason }),
        a3.reason === g1.reason ? 2 : 1,
      );
      assert.equal(value(m, 'fabrik_pending_workloads', { pool: 'b200' }), 2);
      // a1, b1 and the victim that was not chosen run; the victim is back in the queue (requeued) or preempted.
      const running = (await t.call('GET', '/api/v1/workloads?status=running')).body;
      assert.equal(value(m, 'fabrik_admitted_active_workloads', { pool: 'b200' }), running.items?.length ?? 3);
      const use = (project: string) => ({ project, pool: 'b200', resource: 'gpu' });
      assert.equal(value(m, 'fabrik_project_resource_usage', use('acme.train')), 16);
      assert.equal(value(m, 'fabrik_project_resource_usage', use('beta.train')), 16);
      assert.equal(value(m, 'fabrik_project_resource_usage', use('gamma.train')), undefined);
      // Borrowing is use above the guarantee; the victim's stopping attempt still holds its GPUs.
      assert.equal(value(m, 'fabrik_project_borrowed_resources', use('acme.train')), 8);
      assert.equal(value(m, 'fabrik_project_borrowed_resources', use('beta.train')), 8);
      assert.equal(value(m, 'fabrik_project_nominal_quota', use('gamma.train')), 8);
      assert.equal(value(m, 'fabrik_project_borrowing_limit', use('gamma.train')), 8);
      assert.equal(value(m, 'fabrik_pool_resource_usage', { pool: 'b200', resource: 'gpu' }), 32);
      assert.equal(value(m, 'fabrik_pool_capacity', { pool: 'b200', resource: 'gpu' }), 32);
      assert.equal(value(m, 'fabrik_pool_capacity', { pool: 'rtxpro6000', resource: 'gpu' }), 16);
      assert.equal(value(m, 'fabrik_preempted_workloads_total', { pool: 'b200', reason: 'Reclamation' }), 1);
      assert.equal(value(m, 'fabrik_admission_attempts_total'), 6, 'one per cycle');
      assert.equal(
        value(m, 'fabrik_admission_attempts_total', { result: 'inadmissible' }),
        2,
        'a3 and g1 placed nothing',
      );
      assert.equal(value(m, 'fabrik_admission_attempt_duration_seconds_count'), 6);
      assert.ok(value(m, 'fabrik_admission_attempt_duration_seconds_sum')! > 0);
      assert.equal(value(m, 'fabrik_reconcile_duration_seconds_count'), 1);
      assert.equal(value(m, 'fabrik_reconcile_lag_seconds', { phase: 'launch' }), 0, 'every launch was confirmed');
      assert.ok(value(m, 'fabrik_reconcile_lag_seconds', { phase: 'stop' })! > 0, 'the victim waits for its stop');
      // The gateway's series join the same text.
      gateway.tokens({ project: 'acme.train', deployment: 'acme.train/chat', replica: 'r1' }, 12, 30);
      gateway.timing('acme.train/chat', 'chat', 80, 400, 75);
      const g = await scrape();
      assert.equal(value(g, 'fabrik_gateway_prompt_tokens_total', { deployment: 'acme.train/chat' }), 12);
      assert.equal(value(g, 'fabrik_gateway_completion_tokens_total', { deployment: 'acme.train/chat' }), 30);
      assert.equal(value(g, 'fabrik_gateway_time_to_first_token_seconds_count', { deployment: 'acme.train/chat' }), 1);
    });

    it('quota listings show current use and borrowing beside guaranteed and limit, per tenant', { skip }, async () => {
      const all = (await t.call('GET', '/api/v1/quotas')).body.items as any[];
      const of = (ref: string) => all.find((q) => q.project === ref && q.pool === 'b200');
      const used = (await scrape()).filter((s) => s.name === 'fabrik_project_resource_usage');
      for (const ref of ['acme.train', 'beta.train', 'gamma.train']) {
        const q = of(ref);
        assert.equal(q.guaranteed, 8);
        assert.equal(q.limit, 16);
        assert.equal(q.used, used.find((s) => s.labels.project === ref)?.value ?? 0, ref);
        assert.equal(q.borrowed, Math.max(0, q.used - 8));
      }
      assert.equal(of('acme.train').used + of('beta.train').used + of('gamma.train').used, 32);
      const own = (await t.call('GET', `/api/v1/projects/${acme.ref}/quotas`, { token: acme.viewerToken })).body.items;
      assert.deepEqual(
        own.map((q: any) => [q.pool, q.guaranteed, q.limit, q.used, q.borrowed]),
        [['b200', 8, 16, of('acme.train').used, of('acme.train').borrowed]],
      );
      // Another tenant sees only its own quotas, and not acme's project at all.
      const theirs = (await t.call('GET', '/api/v1/quotas', { token: beta.ownerToken })).body.items as any[];
      assert.deepEqual(
        theirs.map((q) => q.project),
        ['beta.train'],
      );
      const cross = await t.call('GET', `/api/v1/projects/${acme.ref}/quotas`, { token: beta.ownerToken });
      assert.equal(cross.status, 404);
      const set = await t.call('PUT', `/api/v1/projects/${acme.ref}/quotas/b200`, {
        body: { guaranteed: 8, limit: 24 },
      });
      assert.equal(set.status, 200);
      assert.equal(set.body.used, of('acme.train').used);
    });
  });
}
