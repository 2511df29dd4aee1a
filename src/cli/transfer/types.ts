// What push and pull take and give back: options, progress reports and results (rendered by
// src/cli/commands/registry.ts, as text or as -o json).
import type { RepoType } from './refs.js';

export type TransferPhase = 'scan' | 'hash' | 'upload' | 'commit' | 'download';

export interface TransferProgress {
  readonly phase: TransferPhase;
  readonly doneBytes: number;
  readonly totalBytes: number;
  /** The file being worked on (the most recent one when several are in flight). */
  readonly file?: string;
}

export interface TransferOptions {
  /** Server URL, e.g. http://127.0.0.1:8080 (the Hub protocol lives under /hub). */
  readonly endpoint: string;
  /** A fabrik API key; sent as `Bearer hf_<key>`. */
  readonly apiKey: string;
  /** Parts (push) or files (pull) in flight at once; default 4. */
  readonly parallel?: number;
  readonly onProgress?: (p: TransferProgress) => void;
  /** The hash cache file; default `~/.cache/fabrik/hashes.json` ($XDG_CACHE_HOME); false: none. */
  readonly hashCache?: string | false;
  /** At most this many bytes per second over all transfers of the call (like curl --limit-rate). */
  readonly maxBytesPerSecond?: number;
  /** Attempts per request on network errors and 5xx answers (default 4). */
  readonly attempts?: number;
}

export interface PushOptions extends TransferOptions {
  /** Commit summary. */
  readonly message?: string;
  readonly description?: string;
}

export interface Skipped {
  readonly path: string;
  readonly reason: string;
}

export interface PushResult {
  readonly repo: string;
  readonly type: RepoType;
  readonly revision: string;
  /** The new commit, or the revision's current one when nothing changed. */
  readonly commit: string;
  readonly commitUrl?: string;
  /** True when every file was already in the revision as it is: no commit was made. */
  readonly unchanged: boolean;
  readonly files: number;
  readonly bytes: number;
  /** Bytes sent over the network in this run. */
  readonly sentBytes: number;
  /** Bytes not sent: already stored in the org, already in the revision, or parts confirmed before. */
  readonly skippedBytes: number;
  /** Bytes whose digest came from the hash cache. */
  readonly cachedHashBytes: number;
  readonly seconds: number;
  /** Entries of the directory that were not pushed, and why. */
  readonly skipped: readonly Skipped[];
}

export interface PullResult {
  readonly repo: string;
  readonly type: RepoType;
  readonly revision: string;
  readonly commit: string;
  readonly dir: string;
  readonly files: number;
  readonly bytes: number;
  /** Bytes downloaded in this run. */
  readonly receivedBytes: number;
  /** Bytes of `.part` files an earlier pull left, kept and continued with Range. */
  readonly resumedBytes: number;
  /** Bytes of files already present with the right digest (not downloaded again). */
  readonly skippedBytes: number;
  readonly seconds: number;
}
