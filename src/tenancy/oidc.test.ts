import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { safeReturnTo } from './oidc.js';

describe('OIDC return_to', () => {
  it('keeps paths of this origin', () => {
    assert.equal(safeReturnTo('/workloads/w1?tab=logs'), '/workloads/w1?tab=logs');
    assert.equal(safeReturnTo('/'), '/');
  });

  it('turns anything that could leave the origin into /', () => {
    for (const bad of [
      '//evil.example/x',
      'https://evil.example',
      '/\\evil.example',
      'workloads',
      '',
      '/a\nb',
      undefined,
      42,
    ])
      assert.equal(safeReturnTo(bad), '/', String(bad));
    assert.equal(safeReturnTo(`/${'a'.repeat(2001)}`), '/');
  });
});
