import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXIT, exitCodeForStatus } from './output.js';

describe('exitCodeForStatus', () => {
  it('maps each refusal to the exit code the README lists', () => {
    const cases: [number, number][] = [
      [400, EXIT.usage],
      [413, EXIT.usage],
      [415, EXIT.usage],
      [401, EXIT.auth],
      [403, EXIT.auth],
      [404, EXIT.notFound],
      // BUDGET_EXCEEDED: a policy refusal, like a quota's, not an internal error.
      [402, EXIT.conflict],
      [409, EXIT.conflict],
      [422, EXIT.conflict],
      [429, EXIT.conflict],
      [500, EXIT.internal],
      [503, EXIT.internal],
    ];
    assert.deepEqual(
      cases.map(([status]) => [status, exitCodeForStatus(status)]),
      cases,
    );
  });
});
