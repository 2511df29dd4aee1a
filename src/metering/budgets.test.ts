import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../domain/errors.js';
import { gateDecision } from './budget-gate.js';
import { checkBudgetInput, isExceeded, newThresholds, percentOf } from './budgets.js';

const invalid = (input: object) =>
  assert.throws(
    () => checkBudgetInput({ unit: 'EUR', amount: 10, ...input }),
    (e: unknown) => e instanceof AppError && e.code === 'BUDGET_INVALID' && e.status === 400,
  );

describe('budgets', () => {
  it('checks input: units, amounts, thresholds, actions', () => {
    assert.deepEqual(checkBudgetInput({ unit: 'gpu-hours', amount: 100, thresholds: [100, 50, 50] }), {
      unit: 'gpu-hours',
      amount: 100,
      thresholds: [50, 100],
      action: 'notify',
    });
    invalid({ amount: -1 });
    invalid({ unit: 'USD' });
    invalid({ amount: 1.005 });
    invalid({ thresholds: [0] });
    invalid({ thresholds: [] });
    invalid({ thresholds: [50.5] });
    invalid({ action: 'shutdown' });
  });

  it('thresholds fire once each; a zero budget is used up by any spend', () => {
    assert.deepEqual(newThresholds([50, 80, 100], percentOf(85, 100), [50]), [80]);
    assert.deepEqual(newThresholds([50, 80, 100], percentOf(85, 100), [50, 80]), []);
    assert.deepEqual(newThresholds([50, 100], percentOf(0, 0), []), []);
    assert.deepEqual(newThresholds([50, 100], percentOf(0.01, 0), []), [50, 100]);
    assert.equal(isExceeded(99.99, 100), false);
    assert.equal(isExceeded(100, 100), true);
  });

  it('the gate: block refuses, preemptible lowers, notify admits', () => {
    const b = { project: 'acme.a', unit: 'EUR' as const, amount: 50 };
    assert.equal(gateDecision({ ...b, action: 'block' }, 49, 'normal').kind, 'admit');
    assert.equal(gateDecision({ ...b, action: 'block' }, 50, 'normal').kind, 'block');
    assert.equal(gateDecision({ ...b, action: 'preemptible' }, 60, 'high').kind, 'lower');
    assert.equal(gateDecision({ ...b, action: 'preemptible' }, 60, 'preemptible').kind, 'admit');
    assert.equal(gateDecision({ ...b, action: 'notify' }, 600, 'normal').kind, 'admit');
    const d = gateDecision({ ...b, action: 'preemptible' }, 60.9, 'normal');
    assert.ok(d.kind === 'lower' && d.message.includes('from normal to preemptible'), JSON.stringify(d));
  });
});
