// The report range: a calendar month, from/to with durations, the hour of `from` taken whole, and
// the refusals (each a 400 with the parameter named).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reportRange } from './usage-report.js';

const NOW = Date.parse('2026-12-15T10:20:00Z');

describe('reportRange', () => {
  it('reads a month, a range and the default (this month until now)', () => {
    assert.deepEqual(reportRange({ month: '2026-12' }, NOW), {
      from: Date.parse('2026-12-01T00:00:00Z'),
      to: Date.parse('2027-01-01T00:00:00Z'),
    });
    assert.deepEqual(reportRange({}, NOW), { from: Date.parse('2026-12-01T00:00:00Z'), to: NOW });
    assert.deepEqual(reportRange({ from: '90m' }, NOW), { from: Date.parse('2026-12-15T08:00:00Z'), to: NOW });
  });

  it('refuses bad ranges with the parameter named', () => {
    const bad: [object, RegExp][] = [
      [{ month: '2026-13' }, /^month: must be YYYY-MM/],
      [{ month: '2026-12', from: '1d' }, /^month: give either/],
      [{ from: 'yesterday' }, /^from: must be an RFC 3339 time/],
      [{ from: '1h', to: '2h' }, /^from: must be before to/],
      [{ from: '2020-01-01' }, /^from: the range is at most 400 days/],
    ];
    for (const [q, re] of bad)
      assert.throws(
        () => reportRange(q, NOW),
        (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && re.test(e.message),
      );
  });
});
