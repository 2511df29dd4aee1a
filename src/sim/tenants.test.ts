import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimInputError } from './errors.js';
import { parseTenantsFile, quotasFromTrace } from './tenants.js';

const pools = new Map([
  ['b200', 8000],
  ['rtx', 2000],
]);

const err = (text: string) => {
  try {
    parseTenantsFile(text, pools, 'tenants.yaml');
  } catch (e) {
    assert.ok(e instanceof SimInputError);
    return e.message;
  }
  assert.fail('expected an error');
};

describe('tenants file', () => {
  it('reads quotas with defaults for limit and weight', () => {
    const q = parseTenantsFile(
      'projects:\n  - name: a\n    quotas:\n      b200: { guaranteed: 800, limit: 4000, weight: 2 }\n      rtx: { guaranteed: 10 }\n',
      pools,
    );
    assert.deepEqual(q, [
      { project: 'a', pool: 'b200', guaranteed: 800, limit: 4000, weight: 2 },
      { project: 'a', pool: 'rtx', guaranteed: 10, limit: 2000, weight: 1 },
    ]);
  });

  it('names the line and what is wrong', () => {
    assert.equal(
      err('projects:\n  - name: a\n    quotas:\n      b200: { guaranteed: -1 }\n'),
      'tenants.yaml:4: projects[0].quotas.b200.guaranteed: -1 is not a non-negative integer',
    );
    assert.match(
      err('projects:\n  - name: a\n    quotas:\n      h100: {}\n'),
      /^tenants\.yaml:4: projects\[0\]\.quotas: pool "h100" is not in the fleet/,
    );
    assert.equal(
      err('projects:\n  - name: a\n    quotas:\n      b200: { guaranteed: 9, limit: 5 }\n'),
      'tenants.yaml:4: projects[0].quotas.b200: guaranteed 9 is above limit 5',
    );
    assert.match(
      err('projects:\n  - name: a\n    quotas: {}\n  - name: a\n    quotas: {}\n'),
      /^tenants\.yaml:4: projects\[1\]\.name: "a" appears twice/,
    );
    assert.match(err('projects: [\n'), /^tenants\.yaml:\d+: /);
    assert.equal(err('nothing: 1\n'), 'tenants.yaml:1: projects: expected a list of projects');
    assert.match(
      err(
        'projects:\n  - name: a\n    quotas: { b200: { guaranteed: 5000 } }\n  - name: b\n    quotas: { b200: { guaranteed: 5000 } }\n',
      ),
      /sum to 10000, more than its 8000 GPUs/,
    );
  });
});

describe('quotas from the trace', () => {
  it('guarantees floor(share of GPU-hours × pool GPUs), limit = pool GPUs', () => {
    const q = quotasFromTrace(
      [
        { project: 'a', pool: 'b200', gpus: 8, durationS: 300 },
        { project: 'b', pool: 'b200', gpus: 1, durationS: 600 },
        { project: 'b', pool: 'b200', gpus: 1, durationS: 600 },
      ],
      pools,
    );
    assert.deepEqual(q, [
      { project: 'a', pool: 'b200', guaranteed: 5333, limit: 8000, weight: 1 },
      { project: 'b', pool: 'b200', guaranteed: 2666, limit: 8000, weight: 1 },
    ]);
  });
});
