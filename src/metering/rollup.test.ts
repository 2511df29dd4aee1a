// HourlyRollup: sums per (hour, metric, dimensions), the estimated flag, merge, order, speed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HourlyRollup } from './rollup.js';

const H = Date.parse('2026-12-01T13:00:00Z');

describe('HourlyRollup', () => {
  it('sums records of one hour and dimensions into one row', () => {
    const r = new HourlyRollup();
    r.add({ at: H + 5, orgId: 'o', projectId: 'p', metric: 'tokens_in', deploymentId: 'd', model: 'm', quantity: 10 });
    r.add({
      at: H + 3599_999,
      orgId: 'o',
      projectId: 'p',
      metric: 'tokens_in',
      deploymentId: 'd',
      model: 'm',
      quantity: 5,
    });
    r.add({
      at: H + 3600_000,
      orgId: 'o',
      projectId: 'p',
      metric: 'tokens_in',
      deploymentId: 'd',
      model: 'm',
      quantity: 1,
    });
    r.add({ at: H, orgId: 'o', projectId: 'p', metric: 'energy_wh', pool: 'b200', quantity: 2, estimated: true });
    r.add({ at: H, orgId: 'o', projectId: 'p', metric: 'energy_wh', pool: 'b200', quantity: 3 });
    r.add({ at: H, orgId: 'o', projectId: 'p', metric: 'gpu_seconds', pool: 'b200', quantity: 0 });
    const rows = r.rows('t');
    assert.deepEqual(
      rows.map((x) => [x.hour, x.metric, x.pool, x.deploymentId, x.quantity, x.estimated]),
      [
        ['2026-12-01T13:00:00.000Z', 'energy_wh', 'b200', '', 5, true],
        ['2026-12-01T13:00:00.000Z', 'tokens_in', '', 'd', 15, false],
        ['2026-12-01T14:00:00.000Z', 'tokens_in', '', 'd', 1, false],
      ],
    );
    assert.equal(rows[0]!.updatedAt, 't');
  });

  it('merges rollups built apart into the same rows', () => {
    const a = new HourlyRollup();
    const b = new HourlyRollup();
    const all = new HourlyRollup();
    for (let i = 0; i < 1000; i++) {
      const rec = {
        at: H + i * 60_000,
        orgId: 'o',
        projectId: `p${i % 3}`,
        metric: 'gpu_seconds' as const,
        pool: i % 2 ? 'b200' : 'rtxpro6000',
        priority: 'normal' as const,
        quantity: i,
      };
      (i % 2 ? a : b).add(rec);
      all.add(rec);
    }
    a.merge(b);
    assert.deepEqual(a.rows(), all.rows());
  });

  it('aggregates a million records in well under a second', () => {
    const r = new HourlyRollup();
    const ids = Array.from({ length: 100 }, (_, i) => r.dimsId('org', `p${i}`, '', '', '', `d${i % 7}`, 'm'));
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++)
      r.addAt(H + (Math.floor(i / 100) % 720) * 3600_000, 'tokens_out', ids[i % 100]!, 3);
    const ms = performance.now() - t0;
    assert.equal(r.size, 720 * 100);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });
});
