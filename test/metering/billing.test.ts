// Prices, statements and budgets end to end through the API, on SQLite and PostgreSQL: a
// hand-made attempt history (one attempt across a month boundary and a price change, a preemptible
// one, tokens served) is rolled up from the sources, priced into statements whose totals reconcile
// exactly with the usage records, and budgets alert once per threshold and gate new submissions
// (block, preemptible, notify). Bad input and the other tenant's side are checked too.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { checkBudgets } from '../../src/metering/budgets.js';
import { defaultEnergySite } from '../../src/metering/energy.js';
import { constantGrid } from '../../src/metering/grid.js';
import { chromiumPath, pdfText } from '../../src/metering/pdf.js';
import { readUsage } from '../../src/metering/usage.js';
import { recompute } from '../../src/metering/usage-store.js';
import { launchingAttempt } from '../../src/workload/repository.js';
import { ENTRY, collectRun } from '../helpers/child-server.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';

const site = defaultEnergySite({ pue: 1.5, gpuUtilisation: 0.5, nodeWatts: 1000, grid: constantGrid(400) });
const NOW = Date.parse('2026-12-01T19:00:00Z');
// The PDF checks need Debian's Chromium: required in CI (.ci/run installs it), a loud skip elsewhere.
function chromiumMissing(): boolean {
  if (existsSync(chromiumPath())) return false;
  if (process.env.CI === 'true') throw new Error(`Chromium is required in CI: none at ${chromiumPath()}`);
  console.warn(`\n*** SKIPPING the statement PDF check: no Chromium at ${chromiumPath()} ***\n`);
  return true;
}

const job = (name: string, priority = 'normal') => ({
  kind: 'training',
  name,
  priority,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '4h',
  run: 'python train.py',
});

for (const dialect of DIALECTS) {
  describe(`billing on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;
    let orgId = '';
    let projectId = '';
    const db = () => t.store.db;

    async function history(name: string, priority: string, from: string, to: string) {
      const r = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job(name, priority),
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const w = await db().selectFrom('workloads').selectAll().where('id', '=', r.body.id).executeTakeFirstOrThrow();
      orgId = w.org_id;
      projectId = w.project_id;
      const placement = { pod: 'su01', nodes: [{ node: 'b200-01', gpuIndexes: [0, 1, 2, 3, 4, 5, 6, 7] }], leaves: [] };
      await db()
        .insertInto('workload_attempts')
        .values({
          ...launchingAttempt(w, 1, placement, from),
          state: 'ended',
          started_at: from,
          ended_at: to,
          end_reason: 'succeeded',
        })
        .execute();
      await db().updateTable('workloads').set({ status: 'succeeded' }).where('id', '=', w.id).execute();
    }
    const price = (body: object, token?: string) => t.call('POST', '/api/v1/prices', { body, token });

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme', { guaranteed: 8, limit: 32 });
      globex = await seedTenant(t, 'globex', { guaranteed: 8, limit: 8 });
      // 8 GPUs from 23:30 on the last day of November to 02:30 on December 1st; a preemptible hour.
      await history('month', 'normal', '2026-11-30T23:30:00.000Z', '2026-12-01T02:30:00.000Z');
      await history('cheap', 'preemptible', '2026-12-01T10:00:00.000Z', '2026-12-01T11:00:00.000Z');
      await db()
        .insertInto('token_usage')
        .values({
          minute: '2026-12-01T12:05:00.000Z',
          org_id: orgId,
          project_id: projectId,
          key_id: 'key_x',
          deployment_id: 'dep_x',
          replica_id: 'rep_x',
          requests: 3,
          errors: 0,
          tokens_in: 2_000_000,
          tokens_out: 1_000_000,
          ttft_ms_sum: 10,
          duration_ms_sum: 100,
        })
        .execute();
      await recompute(db(), { from: '2026-11-30T00:00:00Z', to: '2026-12-01T19:00:00Z' }, { site, now: NOW });
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('operators keep a versioned catalogue; overlaps are 409; tenants read it', { skip }, async () => {
      const base = { item: 'gpu-hour', pool: 'b200', priority: 'normal' };
      let r = await price({ ...base, unitPrice: '2.00', validFrom: '2026-11-01T00:00:00Z' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.unitPriceMicros, 2_000_000);
      const first = r.body.id;
      r = await price({ ...base, unitPrice: '3.00', validFrom: '2026-12-01T01:00:00Z' });
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'PRICE_OVERLAP');
      assert.equal(r.body.error.details.conflictsWith, first);
      r = await price({ ...base, unitPrice: '3.00', validFrom: '2026-12-01T01:00:00Z', supersede: true });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      r = await price({ ...base, unitPrice: '9', validFrom: '2026-12-05T00:00:00Z', validTo: '2026-12-06T00:00:00Z' });
      assert.equal(r.body.error?.code, 'PRICE_OVERLAP');
      for (const body of [
        {
          item: 'gpu-hour',
          pool: 'b200',
          priority: 'preemptible',
          unitPrice: '0.80',
          validFrom: '2026-11-01T00:00:00Z',
        },
        { item: 'tokens-in', unitPrice: '0.50', validFrom: '2026-11-01T00:00:00Z' },
        { item: 'tokens-out', unitPrice: '1.50', validFrom: '2026-11-01T00:00:00Z' },
      ])
        assert.equal((await price(body)).status, 201);
      for (const [body, code, status] of [
        [{ item: 'cpu-hour', unitPrice: '1', validFrom: '2026-11-01T00:00:00Z' }, 'PRICE_INVALID', 400],
        [{ item: 'gb-month', unitPrice: '-1', validFrom: '2026-11-01T00:00:00Z' }, 'PRICE_INVALID', 400],
        [{ item: 'gb-month', unitPrice: '1', validFrom: '2026-11-01T00:30:00Z' }, 'PRICE_INVALID', 400],
        [{ item: 'gb-month', unitPrice: '1', validFrom: '2026-11-01T00:00:00Z', extra: 1 }, 'VALIDATION_FAILED', 400],
      ] as const) {
        const bad = await price(body);
        assert.equal(bad.status, status, JSON.stringify(bad.body));
        assert.equal(bad.body.error.code, code);
      }
      const denied = await price(
        { item: 'gb-month', unitPrice: '1', validFrom: '2026-11-01T00:00:00Z' },
        acme.ownerToken,
      );
      assert.equal(denied.status, 403);
      const list = await t.call('GET', '/api/v1/prices?item=gpu-hour', { token: globex.viewerToken });
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.items.map((p: any) => [p.priority, p.unitPrice, p.validFrom, p.validTo]),
        [
          ['normal', '2', '2026-11-01T00:00:00.000Z', '2026-12-01T01:00:00.000Z'],
          ['normal', '3', '2026-12-01T01:00:00.000Z', null],
          ['preemptible', '0.8', '2026-11-01T00:00:00.000Z', null],
        ],
      );
      // Each version is on the audit record.
      const audit = await db()
        .selectFrom('audit_entries')
        .select('action')
        .where('action', 'like', 'price.%')
        .execute();
      assert.equal(audit.length, 6);
    });

    it('a statement prices each hour at its version; totals reconcile exactly with the usage', { skip }, async () => {
      const r = await t.call('GET', '/api/v1/orgs/acme/statements/2026-12', { token: acme.viewerToken });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const s = r.body;
      assert.equal(s.provisional, true);
      assert.deepEqual(
        s.lines.map((l: any) => [l.item, l.priority, l.quantity, l.unitPrice, l.amount]),
        [
          ['gpu-hour', 'normal', 8, '2', '16.00'],
          ['gpu-hour', 'normal', 12, '3', '36.00'],
          ['gpu-hour', 'preemptible', 8, '0.8', '6.40'],
          ['tokens-in', '', 2, '0.5', '1.00'],
          ['tokens-out', '', 1, '1.5', '1.50'],
        ],
      );
      assert.equal(s.totals.amount, '60.90');
      assert.equal(s.totals.amountCents, 6090);
      // Reconciliation: the lines hold every rollup row of the month, and their amounts sum exactly.
      const usage = await readUsage(db(), { orgId, from: '2026-12-01T00:00:00Z', to: '2027-01-01T00:00:00Z' });
      const billed = usage.filter((u) => ['gpu_seconds', 'tokens_in', 'tokens_out'].includes(u.metric));
      assert.equal(
        s.lines.reduce((n: number, l: any) => n + l.records, 0),
        billed.length,
      );
      for (const metric of ['gpu_seconds', 'tokens_in', 'tokens_out'])
        assert.equal(
          s.lines.filter((l: any) => l.usageMetric === metric).reduce((n: number, l: any) => n + l.usageQuantity, 0),
          billed.filter((u) => u.metric === metric).reduce((n, u) => n + u.quantity, 0),
        );
      assert.equal(
        s.lines.reduce((n: number, l: any) => n + l.amountCents, 0),
        s.totals.amountCents,
      );
      assert.equal(s.projects[0].amount, '60.90');
      // Energy and CO2 from the same rollups, estimated (no power samples).
      const energy = usage.filter((u) => u.metric === 'energy_wh').reduce((n, u) => n + u.quantity, 0);
      assert.ok(energy > 0);
      assert.ok(Math.abs(s.totals.energyKWh - energy / 1000) < 1e-9);
      assert.equal(s.footprint[0].estimated, true);
      // November holds the half hour before midnight, at November's price, and is final.
      const nov = await t.call('GET', '/api/v1/orgs/acme/statements/2026-11', { token: acme.ownerToken });
      assert.equal(nov.body.provisional, false);
      assert.deepEqual(
        nov.body.lines.map((l: any) => [l.quantity, l.amount]),
        [[4, '8.00']],
      );
    });

    it('CSV and PDF say what the JSON says', { skip }, async () => {
      const csv = await t.call('GET', '/api/v1/orgs/acme/statements/2026-12?format=csv', { token: acme.ownerToken });
      assert.equal(csv.status, 200);
      assert.match(String(csv.headers['content-type']), /^text\/csv/);
      const rows = String(csv.body).trim().split('\r\n');
      assert.equal(rows[0], 'project,item,description,quantity,unit,unit_price_eur,amount_eur,from,to,price_id');
      assert.ok(
        rows.some((l) => l.startsWith(',total,provisional,,EUR,,60.90,')),
        rows.join('\n'),
      );
      assert.equal(rows.filter((l) => l.startsWith(`${acme.ref},gpu-hour,`)).length, 3);
      if (chromiumMissing()) return;
      const pdf = await t.app.inject({
        method: 'GET',
        url: '/api/v1/orgs/acme/statements/2026-12?format=pdf',
        headers: { authorization: `Bearer ${acme.ownerToken}` },
      });
      assert.equal(pdf.statusCode, 200);
      assert.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-');
      const text = pdfText(pdf.rawPayload);
      for (const want of [
        'Statement acme 2026-12',
        'Provisional',
        '60.90',
        'GPU-hours b200 (preemptible)',
        'estimated',
      ])
        assert.ok(text.includes(want), `${want} not in ${text}`);
    });

    it('the routes are in a valid /openapi.json', { skip }, async () => {
      const doc = (await t.call('GET', '/openapi.json', { token: null })).body;
      const result = await new Validator().validate(doc);
      assert.equal(result.valid, true, JSON.stringify(result.errors));
      assert.ok(doc.paths['/api/v1/prices'].post && doc.paths['/api/v1/prices'].get);
      assert.ok(doc.paths['/api/v1/prices/{id}/end'].post);
      assert.ok(doc.paths['/api/v1/orgs/{org}/statements/{month}'].get);
      assert.ok(doc.paths['/api/v1/projects/{project}/budget'].put.requestBody);
    });

    it('statements: other orgs 404, operators any, future month 400', { skip }, async () => {
      assert.equal(
        (await t.call('GET', '/api/v1/orgs/acme/statements/2026-12', { token: globex.ownerToken })).status,
        404,
      );
      assert.equal((await t.call('GET', '/api/v1/orgs/acme/statements/2026-12')).status, 200);
      const future = await t.call('GET', '/api/v1/orgs/acme/statements/2027-01', { token: acme.ownerToken });
      assert.equal(future.status, 400);
      assert.equal(future.body.error.code, 'MONTH_IN_FUTURE');
      const bad = await t.call('GET', '/api/v1/orgs/acme/statements/2026-13', { token: acme.ownerToken });
      assert.equal(bad.status, 400);
      const fmt = await t.call('GET', '/api/v1/orgs/acme/statements/2026-12?format=xls', { token: acme.ownerToken });
      assert.equal(fmt.status, 400);
    });

    it('budgets: bad input 400, viewers 403, other orgs 404', { skip }, async () => {
      const put = (body: object, token = acme.ownerToken) =>
        t.call('PUT', `/api/v1/projects/${acme.ref}/budget`, { body, token });
      for (const body of [
        { unit: 'EUR', amount: -1 },
        { unit: 'USD', amount: 10 },
        { unit: 'EUR', amount: 10, action: 'shutdown' },
        { unit: 'EUR', amount: 10, thresholds: [0, 50] },
      ]) {
        const r = await put(body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body.error.code, 'BUDGET_INVALID');
      }
      assert.equal((await put({ unit: 'EUR', amount: 10 }, acme.viewerToken)).status, 403);
      assert.equal((await put({ unit: 'EUR', amount: 10 }, globex.ownerToken)).status, 404);
      assert.equal(
        (await t.call('GET', `/api/v1/projects/${acme.ref}/budget`, { token: acme.ownerToken })).status,
        404,
      );
    });

    it('budget actions: alerts once per threshold, then block, preemptible, notify', { skip }, async () => {
      const put = (body: object) =>
        t.call('PUT', `/api/v1/projects/${acme.ref}/budget`, { body, token: acme.ownerToken });
      let r = await put({ unit: 'EUR', amount: 50, thresholds: [50, 80, 100, 200], action: 'block' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.spent, 60.9);
      assert.equal(r.body.exceeded, true);
      const alerts = await checkBudgets(db(), { now: NOW });
      assert.deepEqual(
        alerts.map((a) => a.threshold),
        [50, 80, 100],
      );
      assert.deepEqual(await checkBudgets(db(), { now: NOW }), []);
      const events = await t.call('GET', '/api/v1/events?types=budget.threshold.reached', { token: acme.ownerToken });
      assert.equal(events.status, 200, JSON.stringify(events.body));
      assert.deepEqual(
        events.body.items.map((e: any) => [e.data.threshold, e.fabrikproject !== undefined]),
        [
          [50, true],
          [80, true],
          [100, true],
        ],
      );
      assert.match(events.body.items[2].data.message, /refused/);
      const hidden = await t.call('GET', '/api/v1/events?types=budget.threshold.reached', { token: globex.ownerToken });
      assert.equal(hidden.body.items.length, 0);
      // block: a clear code and status, nothing written.
      const blocked = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('after-block'),
      });
      assert.equal(blocked.status, 402, JSON.stringify(blocked.body));
      assert.equal(blocked.body.error.code, 'BUDGET_EXCEEDED');
      assert.equal(
        await db().selectFrom('workloads').select('id').where('name', '=', 'after-block').executeTakeFirst(),
        undefined,
      );
      // preemptible: admitted, lowered, and it says so (response, audited state, workload events).
      r = await put({ unit: 'EUR', amount: 50, action: 'preemptible' });
      const lowered = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('lowered', 'high'),
      });
      assert.equal(lowered.status, 201, JSON.stringify(lowered.body));
      assert.equal(lowered.body.priority, 'preemptible');
      assert.ok(lowered.body.warnings.some((w: string) => w.includes('from high to preemptible')));
      const detail = await t.call('GET', `/api/v1/projects/${acme.ref}/workloads/lowered`, { token: acme.ownerToken });
      assert.ok(
        detail.body.events.some((e: any) => e.reason === 'BudgetExceeded'),
        JSON.stringify(detail.body.events),
      );
      const row = await db()
        .selectFrom('workloads')
        .selectAll()
        .where('name', '=', 'lowered')
        .executeTakeFirstOrThrow();
      assert.equal(row.priority, 'preemptible');
      assert.equal(JSON.parse(row.spec).priority, 'preemptible');
      const entry = await db()
        .selectFrom('audit_entries')
        .selectAll()
        .where('action', '=', 'workload.submit')
        .where('resource', 'like', '%/lowered')
        .executeTakeFirstOrThrow();
      assert.equal(entry.outcome, 'success');
      // notify: admitted as submitted; a GPU-hour budget not reached admits too.
      await put({ unit: 'EUR', amount: 50, action: 'notify' });
      const noted = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('noted', 'high'),
      });
      assert.equal(noted.body.priority, 'high');
      r = await put({ unit: 'gpu-hours', amount: 100, action: 'block' });
      assert.equal(r.body.spent, 28);
      const ok = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('within'),
      });
      assert.equal(ok.status, 201);
      const del = await t.call('DELETE', `/api/v1/projects/${acme.ref}/budget`, { token: acme.ownerToken });
      assert.equal(del.status, 204);
    });

    // The CLI is the same over either dialect: it runs once, on SQLite.
    if (dialect === 'sqlite')
      it('the CLI: fabrik bill (table, -o json, --csv, --pdf), prices, budget, exit codes', { skip }, async () => {
        const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
        const home = mkdtempSync(join(tmpdir(), 'fabrik-bill-cli-'));
        const fabrik = (args: string[], token = acme.ownerToken) =>
          collectRun(
            spawn(process.execPath, ['--import', import.meta.resolve('tsx'), ENTRY, ...args], {
              cwd: home,
              env: { ...process.env, FABRIK_CONFIG: join(home, 'c.json'), FABRIK_ENDPOINT: url, FABRIK_API_KEY: token },
            }),
          );
        const bill = await fabrik(['bill', '--org', 'acme', '--month', '2026-12']);
        assert.equal(bill.code, 0, bill.stderr);
        const lines = bill.stdout.trimEnd().split('\n');
        assert.match(lines[0]!, /^Statement acme 2026-12 .*PROVISIONAL/);
        assert.match(lines[1]!, /^PROJECT\s+ITEM\s+QUANTITY\s+UNIT\s+UNIT PRICE\s+AMOUNT EUR$/);
        const col = lines[1]!.indexOf('AMOUNT EUR');
        for (const l of lines.slice(2, lines.indexOf('')))
          assert.ok(l[col - 1] === ' ' && l[col] !== ' ', `not aligned: ${l}`);
        assert.match(bill.stdout, /GPU-hours b200 \(normal\)\s+12\s+GPU-hour\s+3\s+36\.00/);
        assert.match(bill.stdout, /\nTOTAL\s[-\s]+60\.90\n/);
        assert.match(bill.stdout, /ENERGY kWh\s+CO2 kg\s+EST\./);
        const json = await fabrik(['bill', '--org', 'acme', '--month', '2026-12', '-o', 'json']);
        assert.equal(JSON.parse(json.stdout).totals.amount, '60.90');
        const csv = await fabrik(['bill', '--org', 'acme', '--month', '2026-12', '--csv']);
        assert.match(
          csv.stdout,
          /^project,item,description,quantity,unit,unit_price_eur,amount_eur,from,to,price_id\r\n/,
        );
        const future = await fabrik(['bill', '--org', 'acme', '--month', '2027-01']);
        assert.equal(future.code, 2);
        assert.match(future.stderr, /MONTH_IN_FUTURE/);
        assert.equal((await fabrik(['bill', '--org', 'acme', '--month', '2026-12'], globex.ownerToken)).code, 3);
        if (!chromiumMissing()) {
          const file = join(home, 'acme.pdf');
          const pdf = await fabrik(['bill', '--org', 'acme', '--month', '2026-12', '--pdf', file]);
          assert.equal(pdf.code, 0, pdf.stderr);
          assert.ok(pdfText(readFileSync(file)).includes('60.90'));
        }
        const list = await fabrik(['prices', 'list', '--item', 'gpu-hour'], acme.viewerToken);
        assert.equal(list.code, 0, list.stderr);
        assert.match(
          list.stdout,
          /^ID\s+ITEM\s+POOL\s+PRIORITY\s+DEPLOYMENT\s+MODEL\s+EUR\s+PER\s+VALID FROM\s+VALID TO\n/,
        );
        assert.equal(list.stdout.trimEnd().split('\n').length, 4);
        const overlap = await fabrik(
          [
            'prices',
            'set',
            'gpu-hour',
            '2',
            '--from',
            '2026-11-01T00:00:00Z',
            '--pool',
            'b200',
            '--priority',
            'normal',
          ],
          OPERATOR_TOKEN,
        );
        assert.equal(overlap.code, 5);
        assert.match(overlap.stderr, /PRICE_OVERLAP/);
        const bad = await fabrik(['budget', 'set', '-p', acme.ref, '--eur', '-5']);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /BUDGET_INVALID/);
        const set = await fabrik(['budget', 'set', '-p', acme.ref, '--eur', '100', '--action', 'block']);
        assert.equal(set.code, 0, set.stderr);
        assert.match(set.stdout, /100 EUR\s+60\.90 EUR\s+60\.9 %\s+50,80,100\s+/);
        assert.equal((await fabrik(['budget', 'delete', '-p', acme.ref])).code, 0);
        assert.equal((await fabrik(['budget', 'get', '-p', acme.ref])).code, 3);
      });
  });
}
