// The console's in-browser audit verification, run here under Node: the JS SHA-256 that stands in
// for node:crypto in the browser build, and verifyReceipt (WebCrypto Ed25519 over the checkpoint,
// then the CLI's checkReceipt) on receipts of a real signed checkpoint, intact and tampered.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { leafHash, nodeHash } from '../../src/audit/merkle/hash.js';
import { generateSigner } from '../../src/audit/note.js';
import { parseLogKey, verifyReceipt } from '../../web/src/audit/verify-proof.js';
import { createHash as shimHash } from '../../web/src/shims/node-crypto.js';

/** RFC 6962 §2.1, written out recursively (independent of src/audit/merkle/tree.ts). */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0]!;
  const k = 2 ** Math.floor(Math.log2(leaves.length - 1));
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
function path(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length === 1) return [];
  const k = 2 ** Math.floor(Math.log2(leaves.length - 1));
  return m < k
    ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

function logOf(n: number) {
  const entries = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ seq: i + 1, action: 'org.create', resource: `orgs/o${i}` }),
  );
  const leaves = entries.map((e) => leafHash(Buffer.from(e, 'utf8')));
  const { signerKey, verifierKey } = generateSigner('localhost/fabrik-audit');
  const checkpoint = signCheckpoint({ origin: 'localhost/fabrik-audit', size: n, rootHash: mth(leaves) }, signerKey);
  const receipt = (seq: number) => ({
    seq,
    entry: entries[seq - 1]!,
    leafIndex: seq - 1,
    treeSize: n,
    proof: path(seq - 1, leaves).map((h) => h.toString('hex')),
    checkpoint,
  });
  return { receipt, verifierKey };
}

describe('console audit verification', () => {
  it('hashes as node:crypto does (the node:crypto shim over @noble/hashes)', () => {
    for (const len of [0, 1, 55, 56, 63, 64, 65, 119, 1000, 4096]) {
      const data = randomBytes(len);
      const want = createHash('sha256').update(data).digest('hex');
      assert.equal(
        shimHash('sha256').update(data.subarray(0, 7)).update(data.subarray(7)).digest().toString('hex'),
        want,
      );
    }
    assert.throws(() => shimHash('md5'), /not available/);
  });

  it('verifies every entry of logs of several sizes', async () => {
    for (const n of [1, 2, 3, 7, 8, 13]) {
      const { receipt, verifierKey } = logOf(n);
      for (let seq = 1; seq <= n; seq++) {
        const v = await verifyReceipt(receipt(seq), verifierKey);
        assert.equal(v.ok, true, `${seq} of ${n}: ${JSON.stringify(v.findings)}`);
        assert.deepEqual(
          v.findings.map((f) => [f.check, f.ok]),
          [
            ['signature', true],
            ['inclusion', true],
          ],
        );
        assert.equal(v.treeSize, n);
      }
    }
  });

  it('refuses a changed entry, a wrong proof, another key and a forged signature', async () => {
    const { receipt, verifierKey } = logOf(5);
    const r = receipt(3);
    const changed = await verifyReceipt({ ...r, entry: r.entry.replace('o2', 'o9') }, verifierKey);
    assert.equal(changed.ok, false);
    assert.match(changed.findings[1]!.message, /entry 3 is not in the log as it is/);
    const swapped = await verifyReceipt({ ...r, proof: [...r.proof].reverse() }, verifierKey);
    assert.equal(swapped.ok, false);
    const moved = await verifyReceipt({ ...r, leafIndex: 3 }, verifierKey);
    assert.match(moved.findings[1]!.message, /reordered/);
    const other = await verifyReceipt(r, generateSigner('localhost/fabrik-audit').verifierKey);
    assert.equal(other.ok, false);
    assert.equal(other.findings[0]!.check, 'signature');
    // Same key, signature bytes flipped.
    const lines = r.checkpoint.split('\n');
    const sig = lines.at(-2)!;
    const b64 = sig.slice(sig.lastIndexOf(' ') + 1);
    const bytes = Buffer.from(b64, 'base64');
    bytes[10] = bytes[10]! ^ 0xff;
    const forged = r.checkpoint.replace(b64, bytes.toString('base64'));
    const f = await verifyReceipt({ ...r, checkpoint: forged }, verifierKey);
    assert.equal(f.ok, false);
    assert.match(f.findings[0]!.message, /invalid signature/);
  });

  it('checks the log key as note.ts does', () => {
    const { verifierKey } = logOf(1);
    assert.equal(parseLogKey(verifierKey).name, 'localhost/fabrik-audit');
    const [name, id] = verifierKey.split('+');
    const b64 = verifierKey.slice(name!.length + id!.length + 2);
    assert.throws(() => parseLogKey(`${name}+00000000+${b64}`), /key id mismatch/);
    assert.throws(() => parseLogKey(`${name}+${id}`), /malformed/);
    // Keys whose base64 holds '+' (about half of them) parse too.
    for (let i = 0; i < 20; i++) assert.equal(parseLogKey(logOf(1).verifierKey).keyId.length, 8);
  });
});
