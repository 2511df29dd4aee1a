import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../domain/errors.js';
import { type Price, PriceBook } from './prices.js';
import { assembleStatement, centsOf, checkMonth, priceSegments, priceUsage, rowMicros } from './statement.js';
import type { UsageRecord } from './types.js';

const gpuPrice = (id: string, micros: number, validFrom: string, validTo: string | null = null): Price => ({
  id,
  item: 'gpu-hour',
  pool: 'b200',
  priority: '',
  deployment: '',
  deploymentId: '',
  model: '',
  unit: 'GPU-hour',
  unitPrice: String(micros / 1e6),
  unitPriceMicros: micros,
  currency: 'EUR',
  validFrom,
  validTo,
  createdAt: '',
  createdBy: '',
});
const row = (
  hour: string,
  metric: UsageRecord['metric'],
  quantity: number,
  over: Partial<UsageRecord> = {},
): UsageRecord => ({
  hour,
  orgId: 'org_a',
  projectId: 'prj_a',
  metric,
  pool: metric === 'gpu_seconds' ? 'b200' : '',
  gpuModel: metric === 'gpu_seconds' ? 'B200' : '',
  priority: metric === 'gpu_seconds' ? 'normal' : '',
  deploymentId: '',
  model: '',
  quantity,
  estimated: false,
  updatedAt: '',
  ...over,
});

describe('statements', () => {
  it('splits work spanning a price change at the hour, and totals are the exact sum of lines', () => {
    const prices = new PriceBook([
      gpuPrice('old', 2_000_000, '2026-11-01T00:00:00.000Z', '2026-12-01T01:00:00.000Z'),
      gpuPrice('new', 3_333_333, '2026-12-01T01:00:00.000Z'),
    ]);
    const usage = [
      row('2026-12-01T00:00:00.000Z', 'gpu_seconds', 28_800),
      row('2026-12-01T01:00:00.000Z', 'gpu_seconds', 28_800),
      row('2026-12-01T02:00:00.000Z', 'gpu_seconds', 1_000.5),
      row('2026-12-01T02:00:00.000Z', 'energy_wh', 9_000, { estimated: true }),
      row('2026-12-01T02:00:00.000Z', 'co2_g', 3_600, { estimated: true }),
      row('2026-12-01T02:00:00.000Z', 'gpu_seconds', 99, { projectId: 'prj_hidden' }),
    ];
    const priced = priceUsage({ usage, prices, projects: new Map([['prj_a', 'acme.a']]) });
    assert.deepEqual(
      priced.lines.map((l) => [l.priceId, l.quantity, l.records, l.amountMicros, l.amount]),
      [
        ['old', 8, 1, 16_000_000, '16.00'],
        ['new', 8 + 1000.5 / 3600, 2, rowMicros(28_800 + 1000.5, 3600, 3_333_333), '27.59'],
      ],
    );
    assert.equal(priced.lines[1]!.from, '2026-12-01T01:00:00.000Z');
    assert.equal(priced.lines[1]!.to, '2026-12-01T03:00:00.000Z');
    const s = assembleStatement(
      { org: 'acme', month: '2026-12', from: 0, to: 1, provisional: true, generatedAt: '' },
      priced,
    );
    assert.equal(s.totals.amountCents, 1600 + 2759);
    assert.equal(s.totals.amount, '43.59');
    assert.deepEqual(s.footprint, [{ project: 'acme.a', energyKWh: 9, co2Kg: 3.6, estimated: true }]);
    assert.equal(s.unpriced, 0);
  });

  it('usage without a valid price is listed, not charged', () => {
    const priced = priceUsage({
      usage: [row('2026-10-01T00:00:00.000Z', 'gpu_seconds', 3600)],
      prices: new PriceBook([gpuPrice('p', 1_000_000, '2026-11-01T00:00:00.000Z')]),
      projects: new Map([['prj_a', 'acme.a']]),
    });
    assert.equal(priced.lines[0]!.priceId, null);
    assert.equal(priced.lines[0]!.amountCents, 0);
  });

  it('rounds cents half up once per line; months are checked', () => {
    assert.equal(centsOf(5_000), 1);
    assert.equal(centsOf(4_999), 0);
    assert.equal(centsOf(-5_000), -1);
    const now = Date.parse('2026-12-01T19:00:00Z');
    assert.equal(checkMonth('2026-12', now).provisional, true);
    assert.equal(checkMonth('2026-11', now).provisional, false);
    assert.throws(
      () => checkMonth('2027-01', now),
      (e: unknown) => e instanceof AppError && e.code === 'MONTH_IN_FUTURE',
    );
    assert.throws(
      () => checkMonth('2026-13', now),
      (e: unknown) => e instanceof AppError && e.status === 400,
    );
  });

  it('reads a month in segments between price changes', () => {
    const from = Date.parse('2026-12-01T00:00:00Z');
    const to = Date.parse('2027-01-01T00:00:00Z');
    const cut = Date.parse('2026-12-16T00:00:00Z');
    assert.deepEqual(priceSegments({ from, to }, []), [[from, to]]);
    assert.deepEqual(
      priceSegments({ from, to }, [
        gpuPrice('a', 1, '2026-11-01T00:00:00.000Z', '2026-12-16T00:00:00.000Z'),
        gpuPrice('b', 2, '2026-12-16T00:00:00.000Z'),
        gpuPrice('c', 3, '2027-02-01T00:00:00.000Z'),
      ]),
      [
        [from, cut],
        [cut, to],
      ],
    );
  });
});
