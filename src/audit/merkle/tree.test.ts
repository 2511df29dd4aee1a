// The Merkle core against the public RFC 6962 test vectors (the 8-leaf tree of Certificate
// Transparency's and transparency-dev/merkle's tests), against a naive recursive transcription of
// RFC 9162 §2.1 for every proof of small trees, and by property tests on trees of up to 100,000
// leaves built in random batches: every proof verifies, and any single flipped bit does not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EMPTY_ROOT, leafHash, nodeHash } from './hash.js';
import {
  appendLeaves,
  consistencyProof,
  frontierIds,
  inclusionNodes,
  inclusionProof,
  type NodeId,
  type NodeReader,
  ProofError,
  rootAt,
  rootFromFrontier,
  verifyConsistency,
  verifyInclusion,
} from './tree.js';

const hex = (h: string) => Buffer.from(h, 'hex');
const hexes = (b: readonly Buffer[]) => b.map((x) => x.toString('hex'));

// RFC 6962 test vectors (certificate-transparency-go / transparency-dev/merkle testonly).
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// Upstream numbers leaves from 1; these are 0-based leaf indexes.
const INCLUSION: [index: number, size: number, proof: string[]][] = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];
const CONSISTENCY: [size1: number, size2: number, proof: string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

// RFC 9162 §2.1, transcribed literally over an array of leaf hashes: the reference.
function splitK(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
function mth(d: Buffer[], lo = 0, hi = d.length): Buffer {
  if (hi - lo === 0) return EMPTY_ROOT;
  if (hi - lo === 1) return d[lo];
  const k = splitK(hi - lo);
  return nodeHash(mth(d, lo, lo + k), mth(d, lo + k, hi));
}
function path(m: number, d: Buffer[], lo = 0, hi = d.length): Buffer[] {
  if (hi - lo === 1) return [];
  const k = splitK(hi - lo);
  return m < k ? [...path(m, d, lo, lo + k), mth(d, lo + k, hi)] : [...path(m - k, d, lo + k, hi), mth(d, lo, lo + k)];
}
function subproof(m: number, d: Buffer[], lo: number, hi: number, b: boolean): Buffer[] {
  if (m === hi - lo) return b ? [] : [mth(d, lo, hi)];
  const k = splitK(hi - lo);
  return m <= k
    ? [...subproof(m, d, lo, lo + k, b), mth(d, lo + k, hi)]
    : [...subproof(m - k, d, lo + k, hi, false), mth(d, lo, lo + k)];
}

/** An in-memory node store filled by appendLeaves, as the sequencer will fill a table. */
class MemoryTree {
  readonly nodes = new Map<string, Buffer>();
  readonly leaves: Buffer[] = [];
  /** The root after each append, from the frontier alone (independent of the store). */
  readonly roots = new Map<number, Buffer>([[0, EMPTY_ROOT]]);
  size = 0;
  frontier: Buffer[] = [];
  reads = 0;
  readonly read: NodeReader = async (ids) => {
    this.reads += 1;
    return ids.map((id) => {
      const h = this.nodes.get(`${id.level}/${id.index}`);
      if (!h) throw new Error(`node ${id.level}/${id.index} is not stored`);
      return h;
    });
  };
  append(hashes: Buffer[]): this {
    const r = appendLeaves(this.size, this.frontier, hashes);
    for (const n of r.nodes) {
      assert.ok(!this.nodes.has(`${n.id.level}/${n.id.index}`), 'a complete node is created once');
      this.nodes.set(`${n.id.level}/${n.id.index}`, n.hash);
    }
    this.leaves.push(...hashes);
    this.size = r.size;
    this.frontier = r.frontier;
    this.roots.set(this.size, rootFromFrontier(this.frontier));
    return this;
  }
}

/** A tree of `size` pseudo-random leaves appended in pseudo-random batches of 1..maxBatch. */
function randomTree(size: number, seed: number, maxBatch: number): MemoryTree {
  const t = new MemoryTree();
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  while (t.size < size) {
    const n = Math.min(size - t.size, 1 + (next() % maxBatch));
    t.append(Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${t.size + i} ${seed}`))));
  }
  return t;
}

const vectorTree = () => new MemoryTree().append(LEAVES.map((l) => leafHash(hex(l))));

describe('RFC 6962 test vectors', () => {
  it('gives the published roots for sizes 0..8, appended one leaf at a time', async () => {
    const t = new MemoryTree();
    assert.equal(rootFromFrontier([]).toString('hex'), ROOTS[0]);
    for (const l of LEAVES) t.append([leafHash(hex(l))]);
    for (let size = 0; size <= 8; size++) {
      assert.equal(t.roots.get(size)!.toString('hex'), ROOTS[size], `size ${size}`);
      assert.equal((await rootAt(size, t.read)).toString('hex'), ROOTS[size], `rootAt(${size})`);
    }
  });

  it('produces and accepts the published inclusion proofs', async () => {
    const t = vectorTree();
    for (const [index, size, proof] of INCLUSION) {
      assert.deepEqual(hexes(await inclusionProof(index, size, t.read)), proof, `leaf ${index} of ${size}`);
      verifyInclusion(index, size, t.leaves[index], proof.map(hex), hex(ROOTS[size]));
    }
  });

  it('produces and accepts the published consistency proofs', async () => {
    const t = vectorTree();
    for (const [size1, size2, proof] of CONSISTENCY) {
      assert.deepEqual(hexes(await consistencyProof(size1, size2, t.read)), proof, `${size1} to ${size2}`);
      verifyConsistency(size1, size2, proof.map(hex), hex(ROOTS[size1]), hex(ROOTS[size2]));
    }
  });

  it('reads an ephemeral right-edge node from the complete nodes under it, in one read', async () => {
    const t = vectorTree();
    // Leaf 0 of 7: the last proof hash covers leaves 4..6, made of nodes 1/2 (leaves 4, 5) and 0/6.
    const want: NodeId[] = [
      { level: 0, index: 1 },
      { level: 1, index: 1 },
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ];
    assert.deepEqual(inclusionNodes(0, 7), want);
    t.reads = 0;
    const proof = await inclusionProof(0, 7, t.read);
    assert.equal(t.reads, 1);
    assert.deepEqual(proof[2], mth(t.leaves, 4, 7));
    assert.deepEqual(frontierIds(7), [
      { level: 2, index: 0 },
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ]);
    t.reads = 0;
    assert.deepEqual(await rootAt(0, t.read), EMPTY_ROOT);
    assert.equal(t.reads, 0, 'the empty root needs no read');
  });
});

describe('proofs equal the RFC 9162 definitions for every small tree', () => {
  it('matches MTH, PATH and PROOF for all sizes 1..48', async () => {
    const t = randomTree(48, 7, 5);
    for (let n = 1; n <= 48; n++) {
      const d = t.leaves.slice(0, n);
      assert.deepEqual(await rootAt(n, t.read), mth(d));
      for (let m = 0; m < n; m++) {
        const proof = await inclusionProof(m, n, t.read);
        assert.deepEqual(proof, path(m, d), `PATH(${m}, D[${n}])`);
        verifyInclusion(m, n, d[m], proof, mth(d));
      }
      for (let m = 1; m <= n; m++) {
        const proof = await consistencyProof(m, n, t.read);
        assert.deepEqual(proof, m === n ? [] : subproof(m, d, 0, n, true), `PROOF(${m}, D[${n}])`);
        verifyConsistency(m, n, proof, mth(d, 0, m), mth(d));
      }
    }
  });

  it('stores exactly the complete nodes, with their MTH, whatever the batching', () => {
    for (const maxBatch of [1, 3, 64]) {
      const t = randomTree(100, 1, maxBatch);
      assert.equal(t.nodes.size, 2 * 100 - 3, 'one node per complete subtree: 2n - popcount(n)');
      for (const [key, hash] of t.nodes) {
        const [level, index] = key.split('/').map(Number);
        assert.deepEqual(hash, mth(t.leaves, index * 2 ** level, (index + 1) * 2 ** level), key);
      }
    }
    assert.throws(() => appendLeaves(3, [EMPTY_ROOT], []), RangeError);
    assert.throws(() => appendLeaves(0, [], [Buffer.alloc(31)]), RangeError);
  });
});

describe('verifiers reject what upstream verifiers reject', () => {
  const t = vectorTree();
  const leaf = t.leaves;
  const root = ROOTS.map(hex);
  const p05 = INCLUSION[2][2].map(hex); // leaf 5 of 8
  const c68 = CONSISTENCY[2][2].map(hex); // 6 to 8
  const fails = (f: () => void, msg: RegExp) => assert.throws(f, (e) => e instanceof ProofError && msg.test(e.message));

  it('inclusion', () => {
    fails(() => verifyInclusion(5, 8, leaf[5], p05, leaf[0]), /not the given root/);
    fails(() => verifyInclusion(4, 8, leaf[5], p05, root[8]), /not the given root/);
    fails(() => verifyInclusion(5, 8, leaf[4], p05, root[8]), /not the given root/);
    fails(() => verifyInclusion(5, 7, leaf[5], p05, root[7]), /not the given root/);
    fails(() => verifyInclusion(8, 8, leaf[5], p05, root[8]), /not below tree size/);
    fails(() => verifyInclusion(0, 0, leaf[0], [], root[0]), /not below tree size/);
    fails(() => verifyInclusion(5, 8, leaf[5], p05.slice(0, 2), root[8]), /has 2 hashes.*needs 3/);
    fails(() => verifyInclusion(5, 8, leaf[5], [...p05, leaf[0]], root[8]), /has 4 hashes/);
    fails(() => verifyInclusion(0, 1, leaf[0], [leaf[1]], root[1]), /has 1 hashes/);
    fails(() => verifyInclusion(5, 8, leaf[5].subarray(1), p05, root[8]), /leaf hash is 31 bytes/);
    fails(() => verifyInclusion(5, 8, leaf[5], [p05[0], Buffer.alloc(33), p05[2]], root[8]), /proof\[1\] is 33/);
    fails(() => verifyInclusion(5, 8, leaf[5], p05, Buffer.alloc(0)), /root hash is 0 bytes/);
    fails(() => verifyInclusion(-1, 8, leaf[5], p05, root[8]), /leaf index must be/);
    fails(() => verifyInclusion(5, 2 ** 53, leaf[5], p05, root[8]), /tree size must be/);
    fails(() => verifyInclusion(5, 8, null as any, p05, root[8]), /not a byte string/);
    fails(() => verifyInclusion(5, 8, leaf[5], 'x' as any, root[8]), /not an array/);
  });

  it('consistency', () => {
    fails(() => verifyConsistency(6, 8, c68, root[5], root[8]), /root1/);
    fails(() => verifyConsistency(6, 8, c68, root[6], root[7]), /root2/);
    fails(() => verifyConsistency(8, 6, c68, root[8], root[6]), /smaller than size1/);
    fails(() => verifyConsistency(0, 8, c68, root[0], root[8]), /from size 0 must be empty/);
    fails(() => verifyConsistency(0, 8, [], root[1], root[8]), /empty tree/);
    fails(() => verifyConsistency(8, 8, c68, root[8], root[8]), /size1 equals size2/);
    fails(() => verifyConsistency(8, 8, [], root[8], root[7]), /different roots/);
    fails(() => verifyConsistency(6, 8, [], root[6], root[8]), /has 0 hashes/);
    fails(() => verifyConsistency(6, 8, c68.slice(1), root[6], root[8]), /has 2 hashes.*needs 3/);
    fails(() => verifyConsistency(6, 8, [...c68, root[1]], root[6], root[8]), /has 4 hashes/);
    fails(() => verifyConsistency(6, 8, c68, root[6].subarray(0, 16), root[8]), /root1 is 16 bytes/);
    fails(() => verifyConsistency(6, 8, [c68[0], c68[1], Buffer.alloc(31)], root[6], root[8]), /proof\[2\]/);
    fails(() => verifyConsistency(6, 1.5, c68, root[6], root[8]), /size2 must be/);
    // Allowed edge cases: nothing to prove from the empty tree, and a tree is consistent with itself.
    verifyConsistency(0, 8, [], root[0], root[8]);
    verifyConsistency(0, 0, [], root[0], root[0]);
    verifyConsistency(5, 5, [], root[5], root[5]);
  });
});

describe('property: trees of up to 100,000 leaves built in random batches', () => {
  it('roots equal the naive MTH and every proof verifies', async () => {
    const size = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 100_000 }));
    await fc.assert(
      fc.asyncProperty(size, fc.integer(), fc.integer({ min: 1, max: 2000 }), async (n, seed, maxBatch) => {
        const t = randomTree(n, seed, maxBatch);
        const root = mth(t.leaves);
        assert.deepEqual(t.roots.get(n), root);
        assert.deepEqual(await rootAt(n, t.read), root);
        const rnd = fc.sample(fc.integer({ min: 0, max: n - 1 }), { numRuns: 24, seed });
        for (const m of [0, n - 1, ...rnd]) {
          verifyInclusion(m, n, t.leaves[m], await inclusionProof(m, n, t.read), root);
        }
        // Consistency between trees the sequencer really had (batch boundaries, rooted from the
        // frontier) and between arbitrary sizes (rooted through rootAt).
        const sizes = [...t.roots.keys()];
        for (const r of rnd) {
          const [a, b] = [sizes[r % sizes.length], sizes[(r * 7 + 3) % sizes.length]];
          const [s1, s2] = a <= b ? [a, b] : [b, a];
          verifyConsistency(s1, s2, await consistencyProof(s1, s2, t.read), t.roots.get(s1)!, t.roots.get(s2)!);
          verifyConsistency(r + 1, n, await consistencyProof(r + 1, n, t.read), await rootAt(r + 1, t.read), root);
        }
      }),
      { numRuns: 16 },
    );
  });

  it('fails after any single bit flip in a proof hash, the leaf hash or a root', async () => {
    const t = randomTree(5000, 42, 300);
    const flip = (b: Buffer, bit: number) => {
      const c = Buffer.from(b);
      c[bit >> 3] ^= 1 << (bit & 7);
      return c;
    };
    const bit = fc.integer({ min: 0, max: 255 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5000 }), fc.nat(), fc.nat(), bit, async (n, a, which, b) => {
        const m = a % n;
        const root = t.roots.get(n) ?? (await rootAt(n, t.read));
        const proof = await inclusionProof(m, n, t.read);
        const k = which % (proof.length + 2);
        const args = [t.leaves[m], ...proof, root];
        args[k] = flip(args[k], b);
        assert.throws(() => verifyInclusion(m, n, args[0], args.slice(1, -1), args[args.length - 1]), ProofError);

        const s1 = 1 + (a % n);
        const cproof = await consistencyProof(s1, n, t.read);
        if (cproof.length === 0) return; // s1 = n: nothing but the roots to flip
        const cargs = [await rootAt(s1, t.read), root, ...cproof];
        const ck = which % cargs.length;
        cargs[ck] = flip(cargs[ck], b);
        assert.throws(() => verifyConsistency(s1, n, cargs.slice(2), cargs[0], cargs[1]), ProofError);
      }),
      { numRuns: 500 },
    );
  });
});
