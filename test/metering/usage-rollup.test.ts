// Usage from hand-made attempt histories with known answers, rolled up by the leader's loop as the
// facts arrive (preemption mid-hour and requeue, retries with a failed launch, a running attempt,
// one across a month boundary with measured power, a replica serving tokens, stored bytes), then
// recomputed from the sources: the recomputation equals what the loop stored. SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENTRY, collectRun } from '../helpers/child-server.js';
import { configureSiteEnergy, defaultEnergySite } from '../../src/metering/energy.js';
import { constantGrid } from '../../src/metering/grid.js';
import { UsageRollupLoop } from '../../src/metering/rollup-loop.js';
import type { UsageRecord } from '../../src/metering/types.js';
import { readUsage } from '../../src/metering/usage.js';
import { recompute } from '../../src/metering/usage-store.js';
import { launchingAttempt } from '../../src/workload/repository.js';
import type { WorkloadAttemptsTable } from '../../src/store/schema.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const T = (s: string) => Date.parse(s);
const D = (hm: string) => `2026-12-01T${hm}:00.000Z`;
// PUE 1.5, 50 % utilisation, 1 kW per node, 400 g/kWh: numbers that can be checked by hand.
const site = defaultEnergySite({ pue: 1.5, gpuUtilisation: 0.5, nodeWatts: 1000, grid: constantGrid(400) });

const job = (name: string, extra: Record<string, unknown> = {}) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '4h',
  run: 'python train.py',
  requeue: true,
  ...extra,
});

const placementOn = (node: string, gpus: number) => ({
  pod: 'su01',
  nodes: [{ node, gpuIndexes: Array.from({ length: gpus }, (_, i) => i) }],
  leaves: ['leaf1'],
});

/** The rows without their write time, for comparing stored with recomputed. */
const strip = (rows: readonly UsageRecord[]) => rows.map(({ updatedAt: _, ...r }) => r);

for (const dialect of DIALECTS) {
  describe(`usage rollups on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;
    let orgId: string;
    let projectId: string;
    const ids: Record<string, string> = {};
    let clock = 0;
    let loop: UsageRollupLoop;
    const events: number[] = [];

    const db = () => t.store.db;
    async function attempt(name: string, n: number, node: string, gpus: number, set: Partial<WorkloadAttemptsTable>) {
      const w = await db().selectFrom('workloads').selectAll().where('id', '=', ids[name]!).executeTakeFirstOrThrow();
      const row = { ...launchingAttempt(w, n, placementOn(node, gpus), D('09:00')), ...set };
      await db()
        .insertInto('workload_attempts')
        .values(row)
        .onConflict((oc) => oc.column('id').doUpdateSet(set))
        .execute();
    }
    const end = (name: string, n: number, at: string, reason: WorkloadAttemptsTable['end_reason']) =>
      db()
        .updateTable('workload_attempts')
        .set({ state: 'ended', ended_at: at, end_reason: reason })
        .where('id', '=', `${ids[name]}.${n}`)
        .execute();
    const tokens = (minute: string, tin: number, tout: number) =>
      db()
        .insertInto('token_usage')
        .values({
          minute,
          org_id: orgId,
          project_id: projectId,
          key_id: 'key_x',
          deployment_id: 'dep_chat',
          replica_id: 'rep_1',
          requests: 1,
          errors: 0,
          tokens_in: tin,
          tokens_out: tout,
          ttft_ms_sum: 10,
          duration_ms_sum: 100,
        })
        .execute();
    const run = async (at: string) => {
      clock = T(at);
      await loop.runOnce();
    };

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      // As the server does at start: the routes' per-attempt figures use the same site as the loop.
      configureSiteEnergy(site);
      acme = await seedTenant(t, 'acme', { guaranteed: 8, limit: 32 });
      globex = await seedTenant(t, 'globex', { guaranteed: 8, limit: 8 });
      for (const [name, prio] of [
        ['pre', 'preemptible'],
        ['retry', 'high'],
        ['month', 'normal'],
        ['serve', 'normal'],
      ] as const) {
        const r = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
          token: acme.ownerToken,
          body: job(name, { priority: prio }),
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        const w = await db().selectFrom('workloads').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
        ids[name] = w.id;
        orgId = w.org_id;
        projectId = w.project_id;
      }
      // The serving workload is the replica of deployment "chat" (model acme.train/tiny).
      await db()
        .insertInto('deployments')
        .values({
          id: 'dep_chat',
          org_id: orgId,
          project_id: projectId,
          name: 'chat',
          aliases: '[]',
          runtime: 'llamacpp',
          model_repo: 'acme.train/tiny',
          model_revision: 'main',
          model_commit: '',
          model_path: '',
          upstream_url: '',
          gpu_model: '',
          gpus_per_replica: 1,
          min_replicas: 1,
          max_replicas: 1,
          desired_replicas: 1,
          context_size: 2048,
          threads: 1,
          parallel: 1,
          target_inflight: 1,
          idle_timeout_s: 0,
          store_prompts: 0,
          created_at: D('09:00'),
          created_by: 'test',
          updated_at: D('09:00'),
          deleted_at: '',
        })
        .execute();
      await db()
        .insertInto('deployment_replicas')
        .values({
          id: 'rep_1',
          deployment_id: 'dep_chat',
          workload_id: ids.serve!,
          ordinal: 0,
          port: 20001,
          host: '127.0.0.1',
          node: 'b200-04',
          state: 'ready',
          message: '',
          attempt: 1,
          ready_at: D('10:00'),
          created_at: D('10:00'),
          updated_at: D('10:00'),
        })
        .execute();
      loop = new UsageRollupLoop(db(), { site, clock: () => clock });
      loop.onRollup((ev) => {
        events.push(ev.rows);
      });
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('rolls up as the facts arrive', { skip }, async () => {
      // Last month, measured: 8 GPUs from 23:30 to 00:30 drawing 6 kW in all (a sample a minute).
      await attempt('month', 1, 'b200-03', 8, {
        state: 'ended',
        started_at: '2026-11-30T23:30:00.000Z',
        ended_at: '2026-12-01T00:30:00.000Z',
        end_reason: 'succeeded',
      });
      const samples = Array.from({ length: 60 }, (_, i) => ({
        attempt_id: `${ids.month}.1`,
        at: new Date(T('2026-11-30T23:30:00Z') + i * 60_000).toISOString(),
        watts: 6000,
        gpus: 8,
      }));
      await db().insertInto('attempt_power_samples').values(samples).execute();
      await db().insertInto('project_blobs').values({ project_id: projectId, blob_id: 'b1', size: 2e9 }).execute();
      // 10:45: the preemptible one and the first try of the high one run, the replica serves.
      await attempt('pre', 1, 'b200-01', 8, { state: 'running', started_at: D('10:00') });
      await attempt('retry', 1, 'b200-02', 4, { state: 'running', started_at: D('10:30') });
      await attempt('serve', 1, 'b200-04', 1, { state: 'running', started_at: D('10:00') });
      await tokens(D('10:05'), 1000, 3000);
      await run(D('10:45'));
      // 11:20: preempted at 10:40 and requeued (attempt 2 from 11:10); the first try failed at 10:50,
      // the retry's launch failed (never started), the third try runs from 11:00. A late minute of 10h.
      await end('pre', 1, D('10:40'), 'preempted');
      await attempt('pre', 2, 'b200-01', 8, { state: 'running', started_at: D('11:10') });
      await end('retry', 1, D('10:50'), 'failed');
      await attempt('retry', 2, 'b200-02', 4, { state: 'ended', ended_at: D('10:55'), end_reason: 'launch-failed' });
      await attempt('retry', 3, 'b200-02', 4, { state: 'running', started_at: D('11:00') });
      await tokens(D('10:59'), 500, 500);
      await db().insertInto('project_blobs').values({ project_id: projectId, blob_id: 'b2', size: 1e9 }).execute();
      await run(D('11:20'));
      // 12:30: the requeued attempt and the replica ended at 12:00; blobs gone; the high one still runs.
      await end('pre', 2, D('12:00'), 'succeeded');
      await end('serve', 1, D('12:00'), 'cancelled');
      await tokens(D('11:30'), 2000, 1000);
      await db().deleteFrom('project_blobs').where('project_id', '=', projectId).execute();
      await run(D('12:30'));
      assert.equal(events.length, 3, 'listeners ran after each rollup');

      const rows = await readUsage(db(), {
        orgId,
        projectId,
        from: '2026-11-30T00:00:00Z',
        to: '2026-12-02T00:00:00Z',
      });
      const q = (metric: string, hour: string, f: Partial<UsageRecord> = {}) =>
        rows
          .filter(
            (r) =>
              r.metric === metric &&
              r.hour === hour &&
              Object.entries(f).every(([k, v]) => r[k as keyof UsageRecord] === v),
          )
          .reduce((s, r) => s + r.quantity, 0);
      const gpu = (hour: string, priority: string) => q('gpu_seconds', hour, { priority: priority as 'high' });
      // Month boundary: half in November, half in December.
      assert.equal(gpu('2026-11-30T23:00:00.000Z', 'normal'), 8 * 1800);
      assert.equal(gpu(D('00:00'), 'normal'), 8 * 1800);
      // Preemption mid-hour and requeue: 10:00–10:40 and 11:10–12:00 on 8 GPUs.
      assert.equal(gpu(D('10:00'), 'preemptible'), 8 * 2400);
      assert.equal(gpu(D('11:00'), 'preemptible'), 8 * 3000);
      assert.equal(gpu(D('12:00'), 'preemptible'), 0);
      // Retries: 10:30–10:50 failed, a launch that never started, then 11:00 until now (12:30) on 4 GPUs.
      assert.equal(gpu(D('10:00'), 'high'), 4 * 1200);
      assert.equal(gpu(D('11:00'), 'high'), 4 * 3600);
      assert.equal(gpu(D('12:00'), 'high'), 4 * 1800);
      // The replica's GPU rows carry its deployment and model.
      assert.equal(q('gpu_seconds', D('10:00'), { deploymentId: 'dep_chat', model: 'acme.train/tiny' }), 3600);
      assert.ok(
        rows.filter((r) => r.metric === 'gpu_seconds').every((r) => r.pool === 'b200' && r.gpuModel === 'B200'),
      );
      // Energy: estimated (8 × 1000 W × 0.5 + 1000 W) × 1.5 = 7.5 kW for 40 min; measured (6 + 1) kW × 1.5.
      const e = (hour: string, f: Partial<UsageRecord>) => q('energy_wh', hour, f);
      assert.ok(Math.abs(e(D('10:00'), { priority: 'preemptible' }) - 5000) < 1e-6);
      assert.ok(Math.abs(e(D('00:00'), { priority: 'normal' }) - 5250) < 1e-6);
      const flags = (metric: string, priority: string) =>
        new Set(rows.filter((r) => r.metric === metric && r.priority === priority).map((r) => r.estimated));
      assert.deepEqual(flags('energy_wh', 'normal'), new Set([false, true]), 'month measured, replica estimated');
      assert.deepEqual(flags('co2_g', 'preemptible'), new Set([true]));
      assert.ok(Math.abs(q('co2_g', D('10:00'), { priority: 'preemptible' }) - 2000) < 1e-6, '5 kWh × 400 g/kWh');
      // Tokens per hour and deployment, the late minute included.
      assert.equal(q('tokens_in', D('10:00'), { deploymentId: 'dep_chat', model: 'acme.train/tiny' }), 1500);
      assert.equal(q('tokens_out', D('10:00')), 3500);
      assert.equal(q('tokens_out', D('11:00')), 1000);
      // Stored bytes sampled at each run: 2 GB from 10:45, 3 GB from 11:20, nothing from 12:30.
      assert.equal(q('stored_byte_seconds', D('10:00')), 2e9 * 900);
      assert.equal(q('stored_byte_seconds', D('11:00')), 2e9 * 1200 + 3e9 * 2400);
      assert.equal(q('stored_byte_seconds', D('12:00')), 3e9 * 1800);
    });

    it('recomputation from the sources equals what the loop stored', { skip }, async () => {
      const range = { from: '2026-11-30T00:00:00Z', to: '2026-12-02T00:00:00Z' };
      const stored = await readUsage(db(), { orgId, ...range });
      assert.ok(stored.length > 20);
      const again = await recompute(db(), range, { site, now: T(D('12:30')) });
      assert.deepEqual(strip(again.records.filter((r) => r.orgId === orgId)), strip(stored));
      assert.deepEqual(strip(await readUsage(db(), { orgId, ...range })), strip(stored));
      // A rerun of the loop at the same time changes nothing either.
      await run(D('12:30'));
      assert.deepEqual(strip(await readUsage(db(), { orgId, ...range })), strip(stored));
    });

    it('reports usage by pool, day, model and deployment, with energy per token', { skip }, async () => {
      const get = (url: string, token = acme.viewerToken) => t.call('GET', url, { token });
      const byPool = await get(
        `/api/v1/projects/${acme.ref}/usage?from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z&by=pool`,
      );
      assert.equal(byPool.status, 200, JSON.stringify(byPool.body));
      const b200 = byPool.body.rows.find((r: { group: string }) => r.group === 'b200');
      // 14400 + 14400 + 19200 + 24000 + 4800 + 14400 + 7200 + 7200 (replica) GPU-seconds.
      assert.equal(b200.gpuHours, (8 * 3600 + 8 * 5400 + 4 * 6600 + 7200) / 3600);
      assert.equal(b200.estimated, true);
      assert.equal(byPool.body.totals.tokensIn, 3500);
      assert.ok(Math.abs(byPool.body.totals.gbMonths - (2e9 * 2100 + 3e9 * 4200) / (1e9 * 730 * 3600)) < 1e-12);
      const byDay = await get(`/api/v1/projects/${acme.ref}/usage?month=2026-12&by=day`);
      assert.deepEqual(
        byDay.body.rows.map((r: { group: string }) => r.group),
        ['2026-12-01'],
      );
      const nov = await get(`/api/v1/projects/${acme.ref}/usage?month=2026-11`);
      assert.equal(nov.body.totals.gpuHours, 4, 'November holds the half hour on 8 GPUs');
      assert.equal(nov.body.totals.estimated, false, 'measured');
      const byDep = await get(`/api/v1/projects/${acme.ref}/usage?month=2026-12&by=deployment`);
      const chat = byDep.body.rows.find((r: { group: string }) => r.group === 'chat');
      // (1000 × 0.5 + 1000 / 8) × 1.5 = 937.5 W for 2 h = 1875 Wh over 8000 tokens.
      assert.ok(Math.abs(chat.energyWhPerToken - 1875 / 8000) < 1e-9, JSON.stringify(chat));
      const byModel = await get(`/api/v1/projects/${acme.ref}/usage?month=2026-12&by=model`);
      assert.ok(byModel.body.rows.some((r: { group: string }) => r.group === 'acme.train/tiny'));
      const org = await get('/api/v1/orgs/acme/usage?month=2026-12');
      assert.equal(org.status, 200);
      assert.deepEqual(
        org.body.rows.map((r: { group: string }) => r.group),
        ['acme.train'],
      );
      const wl = await get(`/api/v1/projects/${acme.ref}/workloads/pre/usage`);
      assert.equal(wl.status, 200, JSON.stringify(wl.body));
      assert.deepEqual(
        wl.body.attempts.map((a: { number: number; gpuSeconds: number }) => [a.number, a.gpuSeconds]),
        [
          [1, 8 * 2400],
          [2, 8 * 3000],
        ],
      );
      assert.equal(wl.body.attempts[0].estimated, true);
    });

    // The CLI is a client of the API: once, on SQLite (defined only there, so CI never sees a skip).
    const cliIt = dialect === 'sqlite' ? it : () => undefined;
    cliIt('fabrik usage prints aligned tables and JSON; usage tokens still works', { skip }, async () => {
      const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
      const home = mkdtempSync(join(tmpdir(), 'fabrik-usage-cli-'));
      const fabrik = (args: string[], token = acme.viewerToken) =>
        collectRun(
          spawn(process.execPath, ['--import', import.meta.resolve('tsx'), ENTRY, ...args], {
            cwd: home,
            env: {
              ...process.env,
              FABRIK_CONFIG: join(home, 'c.json'),
              FABRIK_ENDPOINT: url,
              FABRIK_API_KEY: token,
              NO_COLOR: '1',
            },
          }),
        );
      const pool = await fabrik(['usage', '-p', acme.ref, '--month', '2026-12', '--by', 'pool']);
      assert.equal(pool.code, 0, pool.stderr);
      const lines = pool.stdout.trimEnd().split('\n');
      assert.match(lines[1]!, /^POOL\s+GPU-HOURS\s+TOKENS IN\s+TOKENS OUT\s+GB-MONTHS\s+ENERGY kWh\s+CO2 kg\s+EST\.$/);
      const col = lines[1]!.indexOf('GPU-HOURS');
      assert.ok(
        lines.slice(2).every((l) => l[col - 1] === ' ' && l[col] !== ' '),
        pool.stdout,
      );
      assert.match(pool.stdout, /\nb200\s+25\.33\s/);
      assert.match(pool.stdout, /\nTOTAL\s.*EST\.$/m);
      const model = await fabrik(['usage', '-p', acme.ref, '--month', '2026-12', '--by', 'model']);
      assert.match(model.stdout, /WH\/1K TOKENS/);
      assert.match(model.stdout, /acme\.train\/tiny\s.*\s234\.375\s+EST\./);
      const org = await fabrik(['usage', '--org', 'acme', '--month', '2026-12', '-o', 'json']);
      assert.equal(org.code, 0, org.stderr);
      assert.equal(JSON.parse(org.stdout).rows[0].group, 'acme.train');
      const theirs = await fabrik(['usage', '--org', 'acme', '--month', '2026-12'], globex.ownerToken);
      assert.equal(theirs.code, 3, 'not found');
      assert.equal((await fabrik(['usage', '-p', acme.ref, '--by', 'colour'])).code, 2);
      assert.equal((await fabrik(['usage', '-p', acme.ref, '--month', '2026-12', '--since', '1d'])).code, 2);
      const desc = await fabrik(['describe', 'pre', '-p', acme.ref]);
      assert.equal(desc.code, 0, desc.stderr);
      assert.match(desc.stdout, /GPU-H\s+ENERGY kWh\s+CO2 kg\s+EST\./);
      // Attempt 1: 40 min on 8 GPUs at 7.5 kW = 5 kWh, 2 kg; attempt 2: 50 min.
      assert.match(desc.stdout, /preempted\s+5\.33\s+5\.000\s+2\.000\s+EST\./);
      assert.match(desc.stdout, /Usage: +12\.00 GPU-hours, 11\.250 kWh, 4\.500 kg CO2 \(estimated/);
      const descJson = JSON.parse((await fabrik(['describe', 'pre', '-p', acme.ref, '-o', 'json'])).stdout);
      assert.equal(descJson.usage.attempts[1].gpuSeconds, 8 * 3000);
      const tok = await fabrik([
        'usage',
        'tokens',
        '-p',
        acme.ref,
        '--since',
        '2026-12-01T00:00:00Z',
        '--until',
        '2026-12-02T00:00:00Z',
      ]);
      assert.equal(tok.code, 0, tok.stderr);
      assert.match(tok.stdout, /TOKENS IN/);
      assert.match(tok.stdout, /chat\s+3\s+0\s+3500\s+4500/);
    });

    it("keeps usage inside its org: another org's is 404, bad input 400", { skip }, async () => {
      const other = { token: globex.ownerToken };
      assert.equal((await t.call('GET', `/api/v1/projects/${acme.ref}/usage`, other)).status, 404);
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/usage', other)).status, 404);
      assert.equal((await t.call('GET', `/api/v1/projects/${acme.ref}/workloads/pre/usage`, other)).status, 404);
      const mine = await t.call('GET', '/api/v1/orgs/globex/usage?month=2026-12', other);
      assert.equal(mine.status, 200);
      assert.equal(mine.body.totals.gpuHours, 0);
      for (const query of ['month=2026-13', 'by=colour', 'from=yesterday', 'from=2h&to=3h', 'month=2026-12&from=1h'])
        assert.equal(
          (await t.call('GET', `/api/v1/projects/${acme.ref}/usage?${query}`, { token: acme.viewerToken })).status,
          400,
          query,
        );
    });
  });
}
