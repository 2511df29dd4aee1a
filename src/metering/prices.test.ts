import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../domain/errors.js';
import { type Price, PriceBook, checkPriceInput, formatMicros, overlaps, parseEur, wholeHour } from './prices.js';

const price = (over: Partial<Price>): Price => ({
  id: 'p',
  item: 'gpu-hour',
  pool: '',
  priority: '',
  deployment: '',
  deploymentId: '',
  model: '',
  unit: 'GPU-hour',
  unitPrice: '1',
  unitPriceMicros: 1_000_000,
  currency: 'EUR',
  validFrom: '2026-11-01T00:00:00.000Z',
  validTo: null,
  createdAt: '',
  createdBy: '',
  ...over,
});
const dims = { pool: 'b200', priority: 'normal', deploymentId: '', model: '' };

describe('prices', () => {
  it('reads and prints EUR exactly in micro-EUR', () => {
    assert.equal(parseEur('2.10'), 2_100_000);
    assert.equal(parseEur('0.000001'), 1);
    assert.equal(parseEur('12'), 12_000_000);
    for (const bad of ['-1', '1.0000001', '1e3', '', 'abc', '1,5']) assert.equal(parseEur(bad), undefined, bad);
    assert.equal(formatMicros(2_100_000), '2.1');
    assert.equal(formatMicros(2_100_000, 2), '2.10');
    assert.equal(formatMicros(-1_230_000, 2), '-1.23');
    assert.equal(formatMicros(5), '0.000005');
  });

  it('validity is half-open: a version ending when the next starts does not overlap it', () => {
    const a = '2026-11-01T00:00:00.000Z';
    const b = '2026-12-01T00:00:00.000Z';
    const c = '2027-01-01T00:00:00.000Z';
    assert.equal(overlaps(a, b, b, null), false);
    assert.equal(overlaps(a, null, b, c), true);
    assert.equal(overlaps(b, c, a, b), false);
    assert.equal(overlaps(a, c, b, b.replace('12-01', '12-02')), true);
    assert.equal(wholeHour('2026-12-01T13:30:00Z'), undefined);
    assert.equal(wholeHour('2026-12-01T13:00:00+01:00'), '2026-12-01T12:00:00.000Z');
  });

  it('the version valid at the hour wins, and the most specific selector', () => {
    const book = new PriceBook([
      price({ id: 'any', unitPriceMicros: 3_000_000 }),
      price({ id: 'pool', pool: 'b200', unitPriceMicros: 2_000_000, validTo: '2026-12-01T01:00:00.000Z' }),
      price({ id: 'pool2', pool: 'b200', unitPriceMicros: 2_500_000, validFrom: '2026-12-01T01:00:00.000Z' }),
      price({ id: 'pre', pool: 'b200', priority: 'preemptible', unitPriceMicros: 800_000 }),
      price({ id: 'tok', item: 'tokens-in', model: 'llama', unitPriceMicros: 100_000 }),
    ]);
    const h = (s: string) => Date.parse(`2026-12-01T${s}:00:00.000Z`);
    assert.equal(book.at('gpu-hour', dims, h('00'))?.id, 'pool');
    assert.equal(book.at('gpu-hour', dims, h('01'))?.id, 'pool2');
    assert.equal(book.at('gpu-hour', { ...dims, priority: 'preemptible' }, h('01'))?.id, 'pre');
    assert.equal(book.at('gpu-hour', { ...dims, pool: 'rtxpro6000' }, h('01'))?.id, 'any');
    assert.equal(book.at('gpu-hour', dims, Date.parse('2026-10-31T23:00:00Z')), undefined);
    assert.equal(book.at('tokens-in', { ...dims, model: 'llama' }, h('05'))?.id, 'tok');
    assert.equal(book.at('tokens-in', { ...dims, model: 'other' }, h('05')), undefined);
  });

  it('bad input is PRICE_INVALID with the field', () => {
    const ok = { item: 'gpu-hour', unitPrice: '2', validFrom: '2026-12-01T00:00:00Z' };
    assert.equal(checkPriceInput(ok).micros, 2_000_000);
    const field = (input: object) => {
      try {
        checkPriceInput({ ...ok, ...input });
      } catch (e) {
        assert.ok(e instanceof AppError && e.code === 'PRICE_INVALID', String(e));
        return e.details.field;
      }
      return 'accepted';
    };
    assert.equal(field({ item: 'cpu-hour' }), 'item');
    assert.equal(field({ unitPrice: '-2' }), 'unitPrice');
    assert.equal(field({ validFrom: '2026-12-01T00:30:00Z' }), 'validFrom');
    assert.equal(field({ validTo: '2026-11-01T00:00:00Z' }), 'validTo');
    assert.equal(field({ priority: 'urgent' }), 'priority');
    assert.equal(field({ item: 'gb-month', pool: 'b200' }), 'pool');
    assert.equal(field({ model: 'llama' }), 'model');
    assert.equal(field({ item: 'tokens-out', model: 'llama', deployment: 'a.b/c' }), 'model');
  });
});
