import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decayUsage, fairShareFactor } from './fair-share.js';

describe('decayUsage', () => {
  it('halves old usage every half-life and adds GPU-seconds of the interval', () => {
    const u = decayUsage({ a: 1000 }, 3600, { b: 8 }, 3600);
    assert.ok(Math.abs(u.a - 500) < 1e-9);
    // 8 GPUs for an hour, decayed continuously: 8 × 3600 × (1 − 1/2) / ln 2.
    assert.ok(Math.abs(u.b - (8 * 3600 * 0.5) / Math.LN2) < 1e-6);
  });

  it('without a half-life it just accumulates; nothing goes negative or stays as dust', () => {
    assert.deepEqual(decayUsage({ a: 10 }, 5, { a: 2, b: 0 }, 0), { a: 20 });
    assert.deepEqual(decayUsage({ a: 1e-12 }, 1, {}, 1), {});
  });
});

describe('fairShareFactor', () => {
  it('is 1 without usage, 0.5 at the fair share, and falls with overuse', () => {
    assert.equal(fairShareFactor(0, 0.25), 1);
    assert.equal(fairShareFactor(0.25, 0.25), 0.5);
    assert.ok(fairShareFactor(0.75, 0.25) < 0.2);
  });
});
