import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compressHostNames, expandHostRange, HostRangeError } from './ranges.js';

describe('expandHostRange', () => {
  it('keeps zero padding', () => {
    assert.deepEqual(expandHostRange('b200-[0001-0003]'), ['b200-0001', 'b200-0002', 'b200-0003']);
    const all = expandHostRange('b200-[0001-1000]');
    assert.equal(all.length, 1000);
    assert.equal(all[999], 'b200-1000');
  });

  it('takes the width from the first number', () => {
    assert.deepEqual(expandHostRange('n[8-10]'), ['n8', 'n9', 'n10']);
    assert.deepEqual(expandHostRange('n[098-100]'), ['n098', 'n099', 'n100']);
  });

  it('reads lists, single names, several brackets and comma-joined expressions', () => {
    assert.deepEqual(expandHostRange('n[1-3,7]'), ['n1', 'n2', 'n3', 'n7']);
    assert.deepEqual(expandHostRange('gpu-01'), ['gpu-01']);
    assert.deepEqual(expandHostRange('r[1-2]n[1-2]'), ['r1n1', 'r1n2', 'r2n1', 'r2n2']);
    assert.deepEqual(expandHostRange('a[1-2],b7, c[09-10]-x'), ['a1', 'a2', 'b7', 'c09-x', 'c10-x']);
    assert.deepEqual(expandHostRange('n[1-2, 4]'), ['n1', 'n2', 'n4']);
  });

  it('keeps duplicates for the caller to report', () => {
    assert.deepEqual(expandHostRange('n[1-2,2]'), ['n1', 'n2', 'n2']);
  });

  it('rejects malformed and backwards ranges', () => {
    for (const bad of [
      'n[0010-0001]',
      'n[1-',
      'n1]',
      'n[[1]]',
      'n[]',
      'n[a-b]',
      'n[1-2-3]',
      'a,,b',
      '',
      'n[1234567890123456]',
    ]) {
      assert.throws(() => expandHostRange(bad), HostRangeError, bad);
    }
    assert.throws(() => expandHostRange('n[0010-0001]'), /runs backwards; write \[0001-0010\]/);
  });

  it('refuses to expand absurd sizes', () => {
    assert.throws(() => expandHostRange('n[0-999999999]'), /more than 100000 names/);
    assert.throws(() => expandHostRange('a[1-1000]b[1-1000]'), /more than 100000 names/);
    assert.equal(expandHostRange('n[1-20]', 20).length, 20);
    assert.throws(() => expandHostRange('n[1-21]', 20), HostRangeError);
  });
});

describe('compressHostNames', () => {
  it('writes Slurm-style host lists', () => {
    assert.equal(compressHostNames(['b200-0001', 'b200-0002', 'b200-0003']), 'b200-[0001-0003]');
    assert.equal(compressHostNames(['n7', 'n1', 'n3', 'n2']), 'n[1-3,7]');
    assert.equal(compressHostNames(['n1']), 'n1');
    assert.equal(compressHostNames(['login', 'n2', 'n1', 'login']), 'login,n[1-2]');
    assert.equal(compressHostNames(['b200-0001', 'rtx-001', 'b200-0002']), 'b200-[0001-0002],rtx-001');
    assert.equal(compressHostNames(['n098', 'n099', 'n100']), 'n[098-100]');
    assert.equal(compressHostNames(['n8', 'n9', 'n10']), 'n[8-10]');
    assert.equal(compressHostNames(['n1', 'n01']), 'n1,n01');
    assert.equal(compressHostNames(['r1n1', 'r1n2']), 'r1n[1-2]');
    assert.equal(compressHostNames([]), '');
  });

  it('round-trips through expandHostRange', () => {
    const name = fc
      .tuple(
        fc.constantFrom('n', 'b200-', 'rtx-', 'r1n', ''),
        fc.nat(2000),
        fc.integer({ min: 0, max: 5 }),
        fc.constantFrom('', '-ib', 'x'),
      )
      .map(([p, n, w, s]) => `${p}${String(n).padStart(w, '0')}${s}`)
      .filter((s) => s !== '');
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 60 }), (names) => {
        const back = expandHostRange(compressHostNames(names));
        assert.deepEqual([...new Set(back)].sort(), [...new Set(names)].sort());
        assert.equal(back.length, new Set(names).size);
      }),
      { numRuns: 500 },
    );
  });
});
