// The GPU power sampler on a node with nvidia-smi (the recorded B200 sample stands in for it):
// live attempts wholly on this node get one sample each, others none; the attempt's energy is then
// measured, not estimated. localPowerSampler stays off on development GPUs. SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { attemptUsage } from '../../src/metering/attempt-usage.js';
import { defaultEnergySite } from '../../src/metering/energy.js';
import { PowerSampler, localPowerSampler } from '../../src/metering/power-sample.js';
import { launchingAttempt } from '../../src/workload/repository.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const SAMPLE = readFileSync('test/fixtures/metering/nvidia-smi-power-b200.txt', 'utf8');
const SUM = 742.31 + 751.08 + 738.9 + 760.12 + 729.47 + 744.66 + 118.25 + 117.93;

for (const dialect of DIALECTS) {
  describe(`GPU power sampling on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme', { guaranteed: 16, limit: 32 });
      for (const name of ['one', 'two']) {
        const r = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
          token: acme.ownerToken,
          body: {
            kind: 'training',
            name,
            resources: { gpu: 'B200:8', nodes: name === 'one' ? 1 : 2 },
            max_duration: '1h',
            run: 'true',
          },
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      const rows = await t.store.db.selectFrom('workloads').selectAll().orderBy('name').execute();
      const gpus = [0, 1, 2, 3, 4, 5, 6, 7];
      const [one, two] = rows;
      const started = { state: 'running' as const, started_at: '2026-12-01T10:00:00.000Z' };
      await t.store.db
        .insertInto('workload_attempts')
        .values([
          {
            ...launchingAttempt(
              one!,
              1,
              { pod: 'su01', leaves: ['leaf1'], nodes: [{ node: 'b200-01', gpuIndexes: gpus }] },
              '2026-12-01T10:00:00.000Z',
            ),
            ...started,
          },
          {
            ...launchingAttempt(
              two!,
              1,
              {
                pod: 'su01',
                leaves: ['leaf1'],
                nodes: [
                  { node: 'b200-01', gpuIndexes: gpus },
                  { node: 'b200-02', gpuIndexes: gpus },
                ],
              },
              '2026-12-01T10:00:00.000Z',
            ),
            ...started,
          },
        ])
        .execute();
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('records one sample per live attempt wholly on this node', { skip }, async () => {
      let clock = Date.parse('2026-12-01T10:00:00Z');
      const sampler = new PowerSampler(t.store.db, { node: 'b200-01', query: async () => SAMPLE, clock: () => clock });
      for (let i = 0; i < 12; i++, clock += 10_000) await sampler.sampleOnce();
      const rows = await t.store.db.selectFrom('attempt_power_samples').selectAll().orderBy('at').execute();
      assert.equal(rows.length, 12, 'the two-node attempt is not sampled here');
      assert.ok(rows.every((r) => Math.abs(Number(r.watts) - SUM) < 1e-9 && Number(r.gpus) === 8));
      // Measured over its first two minutes: (SUM W + 2 kW node) × 1.2 PUE, not estimated.
      const site = defaultEnergySite();
      const u = attemptUsage(
        {
          startedAt: Date.parse('2026-12-01T10:00:00Z'),
          endedAt: Date.parse('2026-12-01T10:02:00Z'),
          gpuModel: 'B200',
          nodes: [{ node: 'b200-01', gpus: 8, nodeGpus: 8 }],
          samples: rows.map((r) => ({ at: Date.parse(r.at), watts: Number(r.watts) })),
        },
        site,
      );
      assert.equal(u.estimated, false);
      assert.ok(Math.abs(u.energyWh - ((SUM + 2000) * 1.2 * 120) / 3600) < 1e-9);
    });

    it('stays off where the node has development GPUs or nvidia-smi fails', { skip }, async () => {
      assert.equal(await localPowerSampler(t.store.db, 'no-such-node', { query: async () => SAMPLE }), undefined);
      await t.store.db.updateTable('nodes').set({ dev_gpus: 1 }).where('name', '=', 'b200-03').execute();
      assert.equal(await localPowerSampler(t.store.db, 'b200-03', { query: async () => SAMPLE }), undefined);
      const broken = async () => {
        throw new Error('nvidia-smi: not found');
      };
      assert.equal(await localPowerSampler(t.store.db, 'b200-04', { query: broken }), undefined);
      assert.ok(await localPowerSampler(t.store.db, 'b200-04', { query: async () => SAMPLE }));
    });
  });
}
