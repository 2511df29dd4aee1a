// Client side of the registry's transfers over the Hugging Face Hub protocol (docs/registry.md):
// `push` walks a directory, hashes each file (streaming, with a cache so a resumed push does not
// hash again), creates the repo when missing, uploads what the org does not hold yet through the
// LFS batch API (multipart, parallel, resumable part by part) and commits; `pull` lists the tree
// of a commit and downloads every file to `<file>.part` (resumed with Range), verifies its
// SHA-256, fsyncs and renames. Nothing holds a whole file in memory: bodies are file streams.
// JSON calls and downloads go through fetch; part uploads through node:http, whose pipe waits for
// the socket (Node 20's fetch reads a streamed request body ahead without bound: a part per upload).
// Failures are CliErrors with the server's error code and the exit code that goes with it.
//
// The modules, shared pieces first, then the two transfers:
//   refs.ts        `<org>.<project>/<name>[:<rev>]` references and the Hub paths they map to
//   types.ts       options, progress reports and results of push and pull
//   errors.ts      failed answers and network failures as CliErrors (code, exit code, retryable)
//   flow.ts        concurrency limits, the shared rate limit, counting streams
//   http.ts        the Hub client: JSON calls through fetch, streamed PUTs through node:http, retries
//   hash-cache.ts  streamed SHA-256 and the cache that spares hashing an unchanged file again
//   scan.ts        the local directory: which files are pushed, and why others are not
//   remote.ts      what the server holds: a revision's commit (creating the repo), a commit's tree
//   push.ts        push: hash, compare, LFS batch, upload, commit
//   upload.ts      push's uploads: basic, and multipart with resume part by part
//   pull.ts        pull: list, download with Range resume, verify, fsync, rename
export { defaultHashCachePath, HashCache, sha256File } from './hash-cache.js';
export { forEachLimit, semaphore } from './flow.js';
export { nextLink } from './http.js';
export { hubError } from './errors.js';
export { pull, safeRepoPath } from './pull.js';
export { push } from './push.js';
export { formatRef, parseRef, type RepoRef, type RepoType } from './refs.js';
export { type LocalFile, scanDirectory } from './scan.js';
export type {
  PullResult,
  PushOptions,
  PushResult,
  Skipped,
  TransferOptions,
  TransferPhase,
  TransferProgress,
} from './types.js';
