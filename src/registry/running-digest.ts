// The sha256 of a multipart upload, computed while its parts stream in, as far as they arrive in
// order: a part that starts when all parts before it are hashed is hashed on the way to the store,
// so completion reads back only what came out of order (or nothing). Kept in this process's memory:
// after a restart, or with parts spread over replicas, completion reads back from the first part
// not hashed here. A part sent again after it was hashed drops the state (its bytes may differ).
import { type Hash, createHash } from 'node:crypto';

interface RunningDigest {
  readonly hash: Hash;
  /** The first part not hashed yet. */
  next: number;
  /** A part is being hashed now. */
  busy: boolean;
}

const byUpload = new Map<string, RunningDigest>();
/** Uploads whose parts all went astray should not keep state forever. */
const MAX_TRACKED = 10_000;

/** The hash to feed part `n` into, when it is the next one in order; undefined otherwise. */
export function claimPart(uploadId: string, n: number): Hash | undefined {
  let d = byUpload.get(uploadId);
  if (!d && n === 1) {
    if (byUpload.size >= MAX_TRACKED) byUpload.delete(byUpload.keys().next().value!);
    d = { hash: createHash('sha256'), next: 1, busy: false };
    byUpload.set(uploadId, d);
  }
  if (d && n < d.next) {
    byUpload.delete(uploadId);
    return undefined;
  }
  if (!d || d.busy || d.next !== n) return undefined;
  d.busy = true;
  return d.hash;
}

/** Part `n` was stored whole after being fed in. */
export function partHashed(uploadId: string, n: number): void {
  const d = byUpload.get(uploadId);
  if (d?.busy && d.next === n) {
    d.next = n + 1;
    d.busy = false;
  }
}

/** A part that was being fed in failed: the state no longer describes a prefix. */
export function dropDigest(uploadId: string): void {
  byUpload.delete(uploadId);
}

/** At completion: the hash and the first part it lacks, or undefined (read everything back). */
export function takeDigest(uploadId: string): { hash: Hash; next: number } | undefined {
  const d = byUpload.get(uploadId);
  byUpload.delete(uploadId);
  return d && !d.busy ? { hash: d.hash, next: d.next } : undefined;
}
