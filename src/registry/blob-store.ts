// Where encrypted blob objects live: the filesystem under the data directory (the embedded
// default) or S3-compatible object storage. A store holds opaque bytes (already encrypted, see
// crypto.ts) under keys fabrik chooses; it knows nothing of tenants, digests or plaintext.
//
// Objects are written in parts, so an upload can be resumed part by part and parts can arrive in
// any order and in parallel: part n (1-based) begins at a byte offset the caller computes, and
// writing a part again replaces it. Nothing is readable under the key before finish().
import type { Readable } from 'node:stream';

export interface StoredPart {
  readonly part: number;
  /** What the store answered for the part (S3 ETag; a digest of the bytes on the filesystem). */
  readonly etag: string;
}

/** An inclusive byte range of the stored object, as in HTTP. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface BlobStore {
  readonly kind: 'fs' | 's3';
  /** Starts an object; returns the store's handle for it (S3 UploadId), kept with the upload. */
  start(key: string): Promise<string>;
  /** Writes part `part` (1-based) of `length` bytes at byte `offset` of the object, from `body`. */
  writePart(
    key: string,
    handle: string,
    part: number,
    offset: number,
    length: number,
    body: Readable,
  ): Promise<StoredPart>;
  /** Makes the object readable as its parts in order. */
  finish(key: string, handle: string, parts: readonly StoredPart[]): Promise<void>;
  /** Drops an unfinished object and its parts (garbage collection of abandoned uploads). */
  abort(key: string, handle: string): Promise<void>;
  /** A stream of the finished object's bytes, or of one range of them. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** The finished object's size in bytes, undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  /** Removes a finished object; removing a missing one is fine. */
  delete(key: string): Promise<void>;
}
