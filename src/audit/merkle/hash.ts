// The two hash functions of an RFC 6962 / RFC 9162 Merkle tree (SHA-256). Leaves and interior
// nodes get different one-byte prefixes so that a leaf can never be passed off as a node (the
// second-preimage attack that the prefixes exist to prevent).
import { createHash } from 'node:crypto';

/** Every hash in the tree is a SHA-256 digest of this many bytes. */
export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/** SHA-256(0x00 ‖ data): the hash of one log entry. */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

/** SHA-256(0x01 ‖ left ‖ right): the hash of an interior node from its two children. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}
