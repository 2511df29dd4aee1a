// `fabrik audit proof-check` as a child process (stdin in, one verdict line per check out, exit
// code), with the RFC 6962 8-leaf vectors as the valid proofs; then the same logic called directly
// on every kind of garbage, including random JSON, which must never make it throw.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkProof, runProofCheck } from '../../src/audit/merkle/proof-check.js';
import { collectRun, ENTRY, REPO_ROOT } from '../helpers/child-server.js';

const ROOT5 = '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4';
const ROOT6 = '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef';
const ROOT8 = '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328';
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Leaf 5 (data 40414243) of the 8-leaf tree. */
const inclusion = {
  type: 'inclusion',
  leafIndex: 5,
  treeSize: 8,
  leafHash: '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
  rootHash: ROOT8,
  proof: [
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  ],
};
const consistency = {
  type: 'consistency',
  size1: 6,
  size2: 8,
  root1: ROOT6,
  root2: ROOT8,
  proof: [
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  ],
};

function proofCheck(input: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'audit', 'proof-check'], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return collectRun(child, { input });
}

const lines = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

describe('fabrik audit proof-check', () => {
  it('prints {"valid":true} per valid check and exits 0', async () => {
    const checks = [
      inclusion,
      consistency,
      { ...consistency, size1: 0, root1: EMPTY, proof: [] },
      { ...consistency, size1: 8, root1: ROOT8, proof: [] },
      { ...inclusion, leafHash: inclusion.leafHash.toUpperCase() },
    ];
    const r = await proofCheck(JSON.stringify(checks));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      lines(r.stdout),
      checks.map(() => ({ valid: true })),
    );
  });

  it('prints a reason per invalid check, in order, and exits 1', async () => {
    const checks: unknown[] = [
      inclusion,
      { ...inclusion, rootHash: ROOT5 }, // wrong root
      { ...inclusion, leafIndex: 4 }, // wrong leaf position
      { ...inclusion, proof: inclusion.proof.slice(1) }, // truncated
      { ...consistency, size2: 5 }, // size2 < size1
      consistency,
      null,
      { ...inclusion, leafHash: 'zz'.repeat(32) },
      { ...inclusion, treeSize: 1e30 },
      { ...consistency, proof: null },
    ];
    const r = await proofCheck(JSON.stringify(checks));
    assert.equal(r.code, 1, r.stderr);
    const out = lines(r.stdout);
    assert.equal(out.length, checks.length);
    assert.deepEqual(
      out.map((v) => v.valid),
      [true, false, false, false, false, true, false, false, false, false],
    );
    assert.match(out[1].error, /not the given root/);
    assert.match(out[3].error, /has 2 hashes/);
    assert.match(out[4].error, /smaller than size1/);
    assert.match(out[6].error, /JSON object/);
    assert.match(out[7].error, /not hex/);
    assert.match(out[8].error, /treeSize must be a non-negative integer/);
    assert.match(out[9].error, /proof must be an array/);
  });

  it('answers input that is not a JSON array with one invalid line and exit code 2', async () => {
    for (const input of ['', 'not json', '{"type":"inclusion"}']) {
      const r = await proofCheck(input);
      assert.equal(r.code, 2, `${JSON.stringify(input)}: ${r.stderr}`);
      const out = lines(r.stdout);
      assert.equal(out.length, 1);
      assert.equal(out[0].valid, false);
      assert.equal(typeof out[0].error, 'string');
    }
  });

  it('prints nothing and exits 0 for an empty array', async () => {
    const r = await proofCheck('[]');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });
});

describe('proof checks on garbage', () => {
  it('gives each malformed check valid:false with a reason', () => {
    const bad: [unknown, RegExp][] = [
      [42, /JSON object/],
      ['inclusion', /JSON object/],
      [[inclusion], /JSON object/],
      [{}, /type is missing/],
      [{ ...inclusion, type: 'INCLUSION' }, /type must be/],
      [{ ...inclusion, leafIndex: undefined }, /leafIndex is missing/],
      [{ ...inclusion, leafIndex: null }, /leafIndex must be/],
      [{ ...inclusion, leafIndex: '5' }, /leafIndex must be/],
      [{ ...inclusion, leafIndex: -1 }, /leafIndex must be/],
      [{ ...inclusion, leafIndex: 5.5 }, /leafIndex must be/],
      [{ ...inclusion, treeSize: 2 ** 53 }, /treeSize must be/],
      [{ ...inclusion, leafIndex: 8 }, /not below tree size/],
      [{ ...inclusion, leafHash: null }, /leafHash must be a hex string/],
      [{ ...inclusion, leafHash: 'abc' }, /not hex/],
      [{ ...inclusion, leafHash: 'ab' }, /leaf hash is 1 bytes, not 32/],
      [{ ...inclusion, rootHash: `${ROOT8}00` }, /root hash is 33 bytes/],
      [{ ...inclusion, proof: 'bc1a' }, /proof must be an array/],
      [{ ...inclusion, proof: [...inclusion.proof, ROOT8] }, /has 4 hashes/],
      [{ ...inclusion, proof: [inclusion.proof[0], 7, inclusion.proof[2]] }, /proof\[1\] must be a hex string/],
      [{ ...consistency, root2: undefined }, /root2 is missing/],
      [{ ...consistency, size1: 0, root1: EMPTY }, /from size 0 must be empty/],
      [{ ...consistency, size1: 8, root1: ROOT8 }, /size1 equals size2/],
      [{ ...consistency, proof: [] }, /has 0 hashes/],
    ];
    for (const [check, reason] of bad) {
      const v = checkProof(check);
      assert.equal(v.valid, false, JSON.stringify(check));
      if (!v.valid) assert.match(v.error, reason, JSON.stringify(check));
    }
    assert.equal(runProofCheck('{"a":1}').exitCode, 2);
    assert.equal(runProofCheck('null').exitCode, 2);
    assert.equal(runProofCheck('[1e999]').exitCode, 1);
  });

  it('never throws, whatever JSON it is given', () => {
    const field = fc.oneof(fc.jsonValue(), fc.constant(inclusion.proof), fc.constant(ROOT8), fc.nat(10));
    const check = fc.record(
      {
        type: fc.constantFrom('inclusion', 'consistency', 'other'),
        leafIndex: field,
        treeSize: field,
        leafHash: field,
        rootHash: field,
        size1: field,
        size2: field,
        root1: field,
        root2: field,
        proof: field,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.array(fc.oneof(check, fc.jsonValue()))), (input) => {
        const { lines: out, exitCode } = runProofCheck(JSON.stringify(input) ?? '');
        assert.ok([0, 1, 2].includes(exitCode));
        for (const l of out) assert.equal(typeof JSON.parse(l).valid, 'boolean');
      }),
      { numRuns: 500 },
    );
  });
});
