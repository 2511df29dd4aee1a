import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ScaleInput, decideReplicas } from './autoscale.js';

const NOW = 1_800_000_000_000;
const base: ScaleInput = {
  min: 0,
  max: 8,
  desired: 1,
  targetInflight: 4,
  idleTimeoutS: 300,
  inflight: 0,
  queued: 0,
  lastRequestAt: NOW - 1000,
  recentNeeds: [],
  now: NOW,
};

describe('autoscaling', () => {
  it('asks for a replica at once when a request is held at zero', () => {
    const d = decideReplicas({ ...base, desired: 0, queued: 1 });
    assert.deepEqual([d.desired, d.reason], [1, 'scale-from-zero']);
  });

  it('scales up to what in-flight plus held requests need at the target concurrency, capped at max', () => {
    assert.equal(decideReplicas({ ...base, inflight: 9 }).desired, 3);
    assert.equal(decideReplicas({ ...base, inflight: 100 }).desired, 8);
  });

  it('keeps the peak of the stabilization window instead of dropping warm replicas in a lull', () => {
    const d = decideReplicas({ ...base, desired: 4, inflight: 1, recentNeeds: [4, 3, 1] });
    assert.equal(d.desired, 4);
    const later = decideReplicas({ ...base, desired: 4, inflight: 1, recentNeeds: [1, 1] });
    assert.deepEqual([later.desired, later.reason], [1, 'stabilized']);
  });

  it('goes to the minimum (zero) only after the idle period without any request', () => {
    assert.equal(decideReplicas({ ...base, lastRequestAt: NOW - 299_000 }).desired, 1);
    const idle = decideReplicas({ ...base, lastRequestAt: NOW - 300_000 });
    assert.deepEqual([idle.desired, idle.reason], [0, 'idle']);
    assert.equal(decideReplicas({ ...base, min: 2, desired: 3, lastRequestAt: 0 }).desired, 2);
  });

  it('always stays within min..max, and never leaves a held request without a replica', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 16 }),
        fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 5 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (min, span, desired, inflight, queued, target, recentNeeds, idleFor) => {
          const max = min + span;
          const d = decideReplicas({
            ...base,
            min,
            max,
            desired,
            inflight,
            queued,
            targetInflight: target,
            recentNeeds,
            lastRequestAt: NOW - idleFor,
          });
          const inBounds = desired >= min && desired <= max;
          assert.ok(d.desired >= min && d.desired <= max, `${d.desired} outside ${min}..${max}`);
          if (inBounds && queued > 0) assert.ok(d.desired >= 1);
          if (inBounds && inflight + queued > 0)
            assert.ok(d.desired >= Math.min(max, Math.ceil((inflight + queued) / target)) || d.desired >= desired);
        },
      ),
    );
  });
});
