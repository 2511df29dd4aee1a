// The Merkle tree of the audit log (RFC 6962, updated by RFC 9162 §2.1): appending leaves,
// roots, inclusion and consistency proofs, and their verifiers. It is pure and keeps no state:
// the caller stores nodes (through `appendLeaves`' output) and reads them back through a
// `NodeReader`, so the same code works over a Map in tests and over a database table.
//
// Only COMPLETE nodes are ever stored: node (level, index) is the root of the perfect subtree over
// leaves [index·2^level, (index+1)·2^level), and once written it never changes. The right edge of
// a tree whose size is not a power of two consists of "ephemeral" nodes that change as leaves are
// added; those are never stored but recomputed from the complete nodes under them (the rehash
// step of transparency-dev/merkle's proof package).
//
// Sizes and indexes are plain numbers up to 2^53 − 1. Arithmetic is done with * / % instead of
// bit shifts, which JavaScript truncates to 32 bits.
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash.js';

/** A complete node: level 0 = the leaves; covers leaves [index·2^level, (index+1)·2^level). */
export interface NodeId {
  level: number;
  index: number;
}

/** Reads stored complete nodes, returning their hashes in the order asked (one call per proof). */
export type NodeReader = (ids: readonly NodeId[]) => Promise<Buffer[]>;

/** Why a proof (or the data given with it) does not verify. The verifiers throw nothing else. */
export class ProofError extends Error {
  override name = 'ProofError';
}

// ---------------------------------------------------------------------------------------------
// Appending

/**
 * Appends leaf hashes to a tree of `size` leaves described by its `frontier` (the roots of its
 * perfect subtrees, largest/leftmost first: one per set bit of `size`). Returns the new size and
 * frontier and every complete node the append created, leaves included, for the caller to store.
 * Each leaf costs one hash per merge it causes: two hashes per leaf on average.
 */
export function appendLeaves(
  size: number,
  frontier: readonly Buffer[],
  leafHashes: readonly Buffer[],
): { size: number; frontier: Buffer[]; nodes: { id: NodeId; hash: Buffer }[] } {
  checkCount('size', size);
  if (frontier.length !== frontierIds(size).length)
    throw new RangeError(
      `a tree of ${size} leaves has ${frontierIds(size).length} frontier hashes, not ${frontier.length}`,
    );
  if (size + leafHashes.length > Number.MAX_SAFE_INTEGER) throw new RangeError('tree size would exceed 2^53 - 1');
  const next = [...frontier];
  const nodes: { id: NodeId; hash: Buffer }[] = [];
  for (const leaf of leafHashes) {
    if (!isHash(leaf)) throw new RangeError(`leaf hash #${nodes.length} is not ${HASH_SIZE} bytes`);
    let hash: Buffer = Buffer.from(leaf);
    let level = 0;
    let index = size;
    nodes.push({ id: { level, index }, hash });
    // Like a binary counter's carry: every trailing 1 bit of `size` is a perfect subtree of the
    // same height as the one just completed, on its left; the two merge into one a level up.
    for (let carry = size; carry % 2 === 1; carry = (carry - 1) / 2) {
      hash = nodeHash(next.pop()!, hash);
      level += 1;
      index = Math.floor(index / 2);
      nodes.push({ id: { level, index }, hash });
    }
    next.push(hash);
    size += 1;
  }
  return { size, frontier: next, nodes };
}

/** The root of the tree a frontier describes: MTH of RFC 9162, folding from the right edge. */
export function rootFromFrontier(frontier: readonly Buffer[]): Buffer {
  if (frontier.length === 0) return EMPTY_ROOT;
  let root = frontier[frontier.length - 1];
  for (let i = frontier.length - 2; i >= 0; i--) root = nodeHash(frontier[i], root);
  return root;
}

/** The complete nodes that make up a tree of `size` leaves, largest (leftmost) first. */
export function frontierIds(size: number): NodeId[] {
  checkCount('size', size);
  return rangeNodes({ begin: 0, end: size });
}

// ---------------------------------------------------------------------------------------------
// Proofs from stored nodes

/** A run of consecutive leaves [begin, end); each proof hash is MTH(D[begin:end]) of one. */
interface LeafRange {
  begin: number;
  end: number;
}

/** The largest power of two strictly below n (n ≥ 2): the split point k of RFC 9162 §2.1.1. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The perfect subtrees making up a range, largest first. Every range used here starts at a
 * multiple of a power of two at least as large as the range, so the binary decomposition of its
 * length gives aligned, i.e. complete and stored, nodes.
 */
function rangeNodes({ begin, end }: LeafRange): NodeId[] {
  const ids: NodeId[] = [];
  let start = begin;
  let top = 0;
  while (2 ** (top + 1) <= end - begin) top += 1;
  for (let level = top; level >= 0; level--) {
    const width = 2 ** level;
    if (end - start >= width) {
      ids.push({ level, index: start / width });
      start += width;
    }
  }
  return ids;
}

/** PATH(index, D[0:size]) of RFC 9162 §2.1.3.1 as leaf ranges, the leaf's sibling first. */
function inclusionRanges(index: number, size: number): LeafRange[] {
  const path: LeafRange[] = [];
  // Walk down from the root; [lo, hi) is the subtree that still holds the leaf. The RFC's
  // recursion appends each sibling after the deeper part of the path, hence the final reverse.
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const mid = lo + splitPoint(hi - lo);
    if (index < mid) {
      path.push({ begin: mid, end: hi });
      hi = mid;
    } else {
      path.push({ begin: lo, end: mid });
      lo = mid;
    }
  }
  return path.reverse();
}

/** PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true) of RFC 9162 §2.1.4.1. */
function consistencyRanges(size1: number, size2: number): LeafRange[] {
  if (size1 === 0 || size1 === size2) return [];
  const proof: LeafRange[] = [];
  let lo = 0;
  let hi = size2;
  let m = size1; // leaves of the old tree inside [lo, hi)
  // Whether D[lo:lo+m] is still the whole old tree, whose root the verifier already has.
  let oldRootKnown = true;
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      proof.push({ begin: lo + k, end: hi });
      hi = lo + k;
    } else {
      proof.push({ begin: lo, end: lo + k });
      lo += k;
      m -= k;
      oldRootKnown = false;
    }
  }
  if (!oldRootKnown) proof.push({ begin: lo, end: hi });
  return proof.reverse();
}

/** The complete nodes `inclusionProof(index, size)` reads, in the order it reads them. */
export function inclusionNodes(index: number, size: number): NodeId[] {
  checkInclusionArgs(index, size);
  return inclusionRanges(index, size).flatMap(rangeNodes);
}

/** The complete nodes `consistencyProof(size1, size2)` reads, in the order it reads them. */
export function consistencyNodes(size1: number, size2: number): NodeId[] {
  checkConsistencyArgs(size1, size2);
  return consistencyRanges(size1, size2).flatMap(rangeNodes);
}

/** Reads the nodes of all ranges in one call and folds each range's nodes into its hash. */
async function hashRanges(ranges: LeafRange[], read: NodeReader): Promise<Buffer[]> {
  const groups = ranges.map(rangeNodes);
  const ids = groups.flat();
  if (ids.length === 0) return [];
  const hashes = await read(ids);
  if (hashes.length !== ids.length)
    throw new Error(`node reader returned ${hashes.length} hashes for ${ids.length} nodes`);
  hashes.forEach((h, i) => {
    if (!isHash(h))
      throw new Error(`node reader returned a hash of the wrong size for ${ids[i].level}/${ids[i].index}`);
  });
  // A range's nodes are exactly the frontier of a tree over that range, so its hash is that
  // tree's root; for an ephemeral node this is the rehash of the complete nodes under it.
  let at = 0;
  return groups.map((g) => {
    const part = hashes.slice(at, at + g.length);
    at += g.length;
    return rootFromFrontier(part);
  });
}

/** The root of the tree of the first `size` leaves (EMPTY_ROOT for 0, without reading). */
export async function rootAt(size: number, read: NodeReader): Promise<Buffer> {
  checkCount('size', size);
  if (size === 0) return EMPTY_ROOT;
  return (await hashRanges([{ begin: 0, end: size }], read))[0];
}

/** The RFC 9162 inclusion proof of leaf `index` in the tree of the first `size` leaves. */
export async function inclusionProof(index: number, size: number, read: NodeReader): Promise<Buffer[]> {
  checkInclusionArgs(index, size);
  return hashRanges(inclusionRanges(index, size), read);
}

/** The RFC 9162 consistency proof between the trees of the first `size1` and `size2` leaves. */
export async function consistencyProof(size1: number, size2: number, read: NodeReader): Promise<Buffer[]> {
  checkConsistencyArgs(size1, size2);
  return hashRanges(consistencyRanges(size1, size2), read);
}

// ---------------------------------------------------------------------------------------------
// Verifiers: written after the RFC 9162 algorithms (§2.1.3.2, §2.1.4.2), which need no tree.
// They take untrusted input, so every argument is checked and any failure is a ProofError.

/** The root that an inclusion proof leads to; throws ProofError if the proof cannot be right. */
export function rootFromInclusionProof(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer {
  checkProofCount('leaf index', leafIndex);
  checkProofCount('tree size', treeSize);
  if (leafIndex >= treeSize) throw new ProofError(`leaf index ${leafIndex} is not below tree size ${treeSize}`);
  checkProofHash('leaf hash', leafHash);
  checkProofPath(proof);
  const want = inclusionRanges(leafIndex, treeSize).length;
  if (proof.length !== want)
    throw new ProofError(
      `inclusion proof has ${proof.length} hashes; leaf ${leafIndex} of a tree of ${treeSize} needs ${want}`,
    );
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) throw new ProofError('inclusion proof is longer than the path to the root');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // On the right edge: skip the levels where this node has no right sibling.
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError('inclusion proof is shorter than the path to the root');
  return r;
}

/** Checks that `leafHash` is leaf `leafIndex` of the tree of `treeSize` leaves with `root`. */
export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkProofHash('root hash', root);
  const computed = rootFromInclusionProof(leafIndex, treeSize, leafHash, proof);
  if (!computed.equals(root))
    throw new ProofError(`inclusion proof leads to root ${computed.toString('hex')}, not the given root`);
}

/** Checks that the tree of `size2` leaves with `root2` extends the one of `size1` with `root1`. */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkProofCount('size1', size1);
  checkProofCount('size2', size2);
  checkProofHash('root1', root1);
  checkProofHash('root2', root2);
  checkProofPath(proof);
  if (size2 < size1) throw new ProofError(`size2 ${size2} is smaller than size1 ${size1}`);
  if (size1 === 0) {
    // Every tree extends the empty one, so there is nothing to prove (the proof is empty); the
    // old root can still be checked, since the empty tree has only one.
    if (proof.length > 0)
      throw new ProofError(`consistency proof from size 0 must be empty, got ${proof.length} hashes`);
    if (!EMPTY_ROOT.equals(root1)) throw new ProofError('root1 of the empty tree must be SHA-256 of the empty string');
    if (size2 === 0 && !EMPTY_ROOT.equals(root2))
      throw new ProofError('root2 of the empty tree must be SHA-256 of the empty string');
    return;
  }
  if (size1 === size2) {
    if (proof.length > 0) throw new ProofError(`size1 equals size2 but the proof has ${proof.length} hashes`);
    if (!Buffer.from(root1).equals(root2)) throw new ProofError(`trees of the same size ${size1} have different roots`);
    return;
  }
  const want = consistencyRanges(size1, size2).length;
  if (proof.length !== want)
    throw new ProofError(`consistency proof has ${proof.length} hashes; ${size1} to ${size2} needs ${want}`);

  // If the old tree is a perfect subtree of the new one, the proof omits its root (the verifier
  // has it), so it is put back in front.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0]);
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError('consistency proof is longer than the path to the root');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError('consistency proof is shorter than the path to the root');
  if (!fr.equals(root1))
    throw new ProofError(`consistency proof leads to root1 ${fr.toString('hex')}, not the given one`);
  if (!sr.equals(root2))
    throw new ProofError(`consistency proof leads to root2 ${sr.toString('hex')}, not the given one`);
}

// ---------------------------------------------------------------------------------------------
// Argument checks

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

function isPowerOfTwo(n: number): boolean {
  let p = 1;
  while (p < n) p *= 2;
  return p === n;
}

/** For the tree builder's callers (programming errors): a RangeError. */
function checkCount(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative safe integer, not ${n}`);
}

function checkInclusionArgs(index: number, size: number): void {
  checkCount('size', size);
  checkCount('index', index);
  if (index >= size) throw new RangeError(`leaf index ${index} is not below tree size ${size}`);
}

function checkConsistencyArgs(size1: number, size2: number): void {
  checkCount('size1', size1);
  checkCount('size2', size2);
  if (size1 > size2) throw new RangeError(`size1 ${size1} is larger than size2 ${size2}`);
}

/** For the verifiers (untrusted input): a ProofError. */
function checkProofCount(name: string, n: unknown): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new ProofError(`${name} must be a non-negative integer below 2^53, not ${String(n)}`);
}

function checkProofHash(name: string, h: unknown): void {
  if (!(h instanceof Uint8Array)) throw new ProofError(`${name} is not a byte string`);
  if (h.length !== HASH_SIZE) throw new ProofError(`${name} is ${h.length} bytes, not ${HASH_SIZE}`);
}

function checkProofPath(proof: unknown): void {
  if (!Array.isArray(proof)) throw new ProofError('proof is not an array of hashes');
  for (const [i, p] of proof.entries()) checkProofHash(`proof[${i}]`, p);
}
