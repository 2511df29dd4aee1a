// Client side of the registry's transfers over the Hugging Face Hub protocol (docs/registry.md):
// `push` walks a directory, hashes each file (streaming, with a cache so a resumed push does not
// hash again), creates the repo when missing, uploads what the org does not hold yet through the
// LFS batch API (multipart, parallel, resumable part by part) and commits; `pull` lists the tree
// of a commit and downloads every file to `<file>.part` (resumed with Range), verifies its
// SHA-256, fsyncs and renames. Nothing holds a whole file in memory: bodies are file streams.
// JSON calls and downloads go through fetch; part uploads through node:http, whose pipe waits for
// the socket (Node 20's fetch reads a streamed request body ahead without bound: a part per upload).
// Failures are CliErrors with the server's error code and the exit code that goes with it.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp, type Stats } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError } from './client.js';
import { EXIT, exitCodeForStatus } from './output.js';

// ---------------------------------------------------------------------------------------------
// References

export type RepoType = 'model' | 'dataset';

export interface RepoRef {
  readonly type: RepoType;
  /** `<org>.<project>` */
  readonly namespace: string;
  readonly name: string;
  /** A branch or tag name, or a 40-hex commit id; `main` when the reference names none. */
  readonly revision: string;
  /** Whether the reference itself named the revision (`:<rev>`). */
  readonly explicitRevision: boolean;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const REPO_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$/;
const REVISION = /^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

const REF_FORMAT = '<org>.<project>/<name>[:<rev>] (or datasets/<org>.<project>/<name>[:<rev>])';

/** `acme.train/llama[:rev]`, `datasets/acme.train/corpus[:rev]`; `dataset` = the --dataset flag. */
export function parseRef(input: string, opts: { dataset?: boolean; revision?: string } = {}): RepoRef {
  const bad = (why: string) => CliError.usage(`bad reference "${input}": ${why}; expected ${REF_FORMAT}`);
  let s = input.trim();
  let type: RepoType = opts.dataset ? 'dataset' : 'model';
  if (s.startsWith('datasets/')) {
    type = 'dataset';
    s = s.slice('datasets/'.length);
  } else if (s.startsWith('models/')) {
    if (opts.dataset) throw bad('models/ together with --dataset');
    s = s.slice('models/'.length);
  }
  const slash = s.indexOf('/');
  if (slash < 0) throw bad('no "/" between namespace and name');
  const namespace = s.slice(0, slash);
  let rest = s.slice(slash + 1);
  let revision: string | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    revision = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!revision) throw bad('empty revision after ":"');
  }
  const parts = namespace.split('.');
  if (parts.length !== 2 || !parts.every((p) => LABEL.test(p)))
    throw bad(`"${namespace}" is not <org>.<project> (lowercase letters, digits and dashes)`);
  if (!REPO_NAME.test(rest) || rest.endsWith('.git') || rest.includes('..'))
    throw bad(`"${rest}" is not a repository name (letters, digits, ".", "_", "-"; at most 96)`);
  if (opts.revision !== undefined && revision !== undefined && opts.revision !== revision)
    throw CliError.usage(`the reference names revision "${revision}" and --revision says "${opts.revision}"`);
  const rev = revision ?? opts.revision ?? 'main';
  if (!REVISION.test(rev) || rev.includes('..') || rev.endsWith('/') || rev.includes('//'))
    throw bad(`"${rev}" is not a revision (a branch, tag or 40-hex commit id)`);
  return { type, namespace, name: rest, revision: rev, explicitRevision: revision !== undefined };
}

/** `acme.train/llama` or `datasets/acme.train/corpus`: the form people type. */
export function formatRef(ref: RepoRef, withRevision = false): string {
  const base = `${ref.type === 'dataset' ? 'datasets/' : ''}${ref.namespace}/${ref.name}`;
  return withRevision ? `${base}:${ref.revision}` : base;
}

function apiRepoPath(ref: RepoRef): string {
  return `/hub/api/${ref.type}s/${ref.namespace}/${ref.name}`;
}

function gitRepoPath(ref: RepoRef): string {
  return `/hub/${ref.type === 'dataset' ? 'datasets/' : ''}${ref.namespace}/${ref.name}`;
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

// ---------------------------------------------------------------------------------------------
// Options, progress, results

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

// ---------------------------------------------------------------------------------------------
// HTTP

/** A CliError from a failed answer: the server's code (envelope or X-Error-Code) and message. */
export async function hubError(res: Response, what: string): Promise<CliError> {
  const text = await res.text().catch(() => '');
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return errorFrom(res, parsed, text, what);
}

/**
 * fabrik's envelope `{error: {code, message, details}}`, or the Hub's `{error: "<message>", code?}`
 * with `X-Error-Code` (RepoNotFound, RevisionNotFound, …) and `X-Error-Message`.
 */
function errorFrom(res: Response, parsed: any, text: string, what: string): CliError {
  const env = parsed && typeof parsed.error === 'object' && parsed.error ? parsed.error : undefined;
  const code: string =
    env?.code ??
    res.headers.get('x-error-code') ??
    (typeof parsed?.code === 'string' ? parsed.code : undefined) ??
    (res.status === 507 ? 'STORAGE_QUOTA_EXCEEDED' : `HTTP_${res.status}`);
  const detail: string =
    env?.message ??
    (typeof parsed?.error === 'string' ? parsed.error : undefined) ??
    res.headers.get('x-error-message') ??
    (text.slice(0, 300) || res.statusText || `HTTP ${res.status}`);
  const message = `${what}: ${detail}`;
  const details = env?.details ?? (parsed && typeof parsed.details === 'object' ? parsed.details : {});
  return new CliError(message, exitCodeFor(res.status, code), {
    error: { code, message, details: { ...details, status: res.status } },
  });
}

function exitCodeFor(status: number, code: string): number {
  if (status === 507 || code === 'STORAGE_QUOTA_EXCEEDED') return EXIT.conflict;
  return exitCodeForStatus(status);
}

function protocolError(message: string, code = 'PROTOCOL_ERROR'): CliError {
  return new CliError(message, EXIT.internal, { error: { code, message, details: {} } });
}

function unreachable(endpoint: string, err: unknown): CliError {
  const cause = (err as Error).cause as Error | undefined;
  const message = `cannot reach fabrik at ${endpoint}: ${cause?.message ?? (err as Error).message}`;
  return new CliError(message, EXIT.unreachable, { error: { code: 'UNREACHABLE', message, details: {} } });
}

/** Network failures and 5xx answers (but not 507, a quota) are worth another try. */
function retryable(err: unknown): boolean {
  if (err instanceof CliError) {
    const status = err.body.error.details.status;
    return (
      err.exitCode === EXIT.unreachable ||
      (typeof status === 'number' && status >= 500 && status !== 507 && status !== 501)
    );
  }
  return err instanceof Error && (err.name === 'TypeError' || (err as NodeJS.ErrnoException).code === 'ECONNRESET');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Hub {
  readonly endpoint: string;
  private readonly origin: string;
  readonly attempts: number;

  constructor(
    endpoint: string,
    private readonly apiKey: string,
    attempts = 4,
  ) {
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.origin = new URL(this.endpoint).origin;
    this.attempts = Math.max(1, attempts);
  }

  url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.endpoint + pathOrUrl;
  }

  /** Authorization goes only to the server itself, never to capability URLs or other hosts. */
  private authHeader(url: string, auth: boolean): Record<string, string> {
    if (!auth || new URL(url).origin !== this.origin) return {};
    const key = this.apiKey.startsWith('hf_') ? this.apiKey : `hf_${this.apiKey}`;
    return { authorization: `Bearer ${key}` };
  }

  /** One request; a failure answer becomes a CliError unless its status is in `allow`. */
  async fetch(
    method: string,
    pathOrUrl: string,
    opts: {
      what: string;
      json?: unknown;
      body?: BodyInit | AsyncIterable<Uint8Array>;
      headers?: Record<string, string>;
      auth?: boolean;
      allow?: readonly number[];
    },
  ): Promise<Response> {
    const url = this.url(pathOrUrl);
    const headers: Record<string, string> = {
      ...this.authHeader(url, opts.auth ?? true),
      ...(opts.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    };
    const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body as BodyInit | undefined,
        ...(body !== undefined && typeof body === 'object' && Symbol.asyncIterator in body ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw unreachable(this.endpoint, err);
    }
    if (!res.ok && !(opts.allow ?? []).includes(res.status)) throw await hubError(res, opts.what);
    return res;
  }

  async json<T>(
    method: string,
    pathOrUrl: string,
    opts: Parameters<Hub['fetch']>[2],
  ): Promise<{ status: number; body: T; res: Response }> {
    const res = await this.fetch(method, pathOrUrl, opts);
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      if (res.ok) throw protocolError(`${opts.what}: the server answered something that is not JSON`);
    }
    return { status: res.status, body, res };
  }

  private agents: { http?: http.Agent; https?: https.Agent } = {};

  /**
   * PUTs a streamed body of `length` bytes with node:http: unlike fetch in Node 20 (which reads a
   * streamed request body as fast as it can, whatever the socket takes: a whole part in memory),
   * the pipe waits for the socket, so memory stays at a few chunks per upload in flight.
   * Upload URLs carry their own token: no Authorization header.
   */
  putStream(
    url: string,
    headers: Record<string, string>,
    body: AsyncIterable<Uint8Array>,
    what: string,
  ): Promise<Response> {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    if (secure && !this.agents.https) this.agents.https = new https.Agent({ keepAlive: true });
    if (!secure && !this.agents.http) this.agents.http = new http.Agent({ keepAlive: true });
    const agent = secure ? this.agents.https : this.agents.http;
    return new Promise<Response>((resolve, reject) => {
      let answered = false;
      const req = (secure ? https : http).request(u, { method: 'PUT', headers, agent }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(unreachable(this.endpoint, err)));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          const status = res.statusCode ?? 500;
          const text = Buffer.concat(chunks);
          const init = { status, headers: h };
          const nullBody = status === 204 || status === 205 || status === 304 || text.length === 0;
          const answer = new Response(nullBody ? null : text, init);
          if (answer.ok) resolve(answer);
          else hubError(answer, what).then(reject, reject);
        });
      });
      req.on('error', (err) => {
        if (!answered) reject(unreachable(this.endpoint, err));
      });
      pipeline(Readable.from(body), req).catch((err) => {
        // The server may answer (an error) before reading the whole body: that answer wins.
        if (!answered) setTimeout(() => answered || reject(unreachable(this.endpoint, err)), 200);
      });
    });
  }

  close(): void {
    this.agents.http?.destroy();
    this.agents.https?.destroy();
    this.agents = {};
  }

  /** Runs `fn` again after network errors and 5xx answers, with backoff. */
  async retry<T>(fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (attempt >= this.attempts || !retryable(err)) throw err;
        await sleep(Math.min(8000, 400 * 2 ** (attempt - 1)));
      }
    }
  }
}

/** The next page of a listing, from `Link: <url>; rel="next"`. */
export function nextLink(link: string | null, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2])) return new URL(m[1], base).toString();
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Small tools: concurrency, rate limit, counting streams

/** At most `n` of the functions run at once. */
export function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Runs `fn` over the items, `n` at a time; stops starting new ones at the first failure. */
export async function forEachLimit<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(n, items.length)) }, async () => {
      while (!failed && next < items.length) {
        const item = items[next++];
        try {
          await fn(item);
        } catch (err) {
          failed ??= { err };
        }
      }
    }),
  );
  if (failed) throw failed.err;
}

/** A shared byte budget per second over every stream of one push or pull. */
class RateLimit {
  private t0 = Date.now();
  private used = 0;
  constructor(private readonly bytesPerSecond: number) {}
  async take(n: number): Promise<void> {
    this.used += n;
    const due = this.t0 + (this.used / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) {
      // Idle for a while: do not let the budget pile up into a burst.
      this.t0 = Date.now();
      this.used = 0;
    }
  }
}

/** Yields the chunks of `source`, counting each (and waiting on the rate limit) as it passes. */
async function* countChunks(
  source: AsyncIterable<Uint8Array>,
  onChunk: (n: number, chunk: Uint8Array) => void,
  limit?: RateLimit,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (limit) await limit.take(chunk.length);
    onChunk(chunk.length, chunk);
    yield chunk;
  }
}

function readChunk(limited: boolean): number {
  return limited ? 256 * 1024 : 1024 * 1024;
}

// ---------------------------------------------------------------------------------------------
// The hash cache: sha256 by absolute path, size, mtime and inode

interface CacheEntry {
  sha256: string;
  at: number;
}

const CACHE_LIMIT = 50_000;

export function defaultHashCachePath(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'fabrik', 'hashes.json');
}

export class HashCache {
  private readonly entries: Map<string, CacheEntry>;
  private dirty = false;

  private constructor(
    readonly file: string | undefined,
    entries: Record<string, CacheEntry>,
  ) {
    this.entries = new Map(Object.entries(entries));
  }

  static async open(file: string | false | undefined): Promise<HashCache> {
    if (file === false) return new HashCache(undefined, {});
    const path = file ?? defaultHashCachePath();
    return new HashCache(path, await readCacheFile(path));
  }

  static key(abs: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>): string {
    return `${abs}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  }

  get(abs: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>): string | undefined {
    return this.entries.get(HashCache.key(abs, st))?.sha256;
  }

  set(abs: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>, sha256: string): void {
    this.entries.set(HashCache.key(abs, st), { sha256, at: Date.now() });
    this.dirty = true;
  }

  /** Writes the cache (merged with what other processes wrote meanwhile) atomically; best effort. */
  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    this.dirty = false;
    try {
      const merged = new Map(Object.entries(await readCacheFile(this.file)));
      for (const [k, v] of this.entries) merged.set(k, v);
      let list = [...merged.entries()];
      if (list.length > CACHE_LIMIT) list = list.sort((a, b) => b[1].at - a[1].at).slice(0, CACHE_LIMIT);
      await fsp.mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify(Object.fromEntries(list)), { mode: 0o600 });
      await fsp.rename(tmp, this.file);
    } catch {
      // A cache that cannot be written only costs hashing again next time.
    }
  }
}

async function readCacheFile(path: string): Promise<Record<string, CacheEntry>> {
  try {
    const parsed = JSON.parse(await fsp.readFile(path, 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** SHA-256 of a file, streaming; `onBytes` hears each chunk's length. */
export async function sha256File(abs: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// The local directory

export interface LocalFile {
  /** Path in the repository, `/`-separated. */
  readonly path: string;
  /** Where the content is read from (through a symlink inside the directory: its target). */
  readonly abs: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

/**
 * The regular files under `root`, sorted by path. Symlinks to files inside the directory are
 * pushed with their target's content; symlinks that lead out of it are refused (a usage error);
 * everything else that is not pushed is listed in `skipped` with the reason.
 */
export async function scanDirectory(root: string): Promise<{ files: LocalFile[]; skipped: Skipped[] }> {
  let top: string;
  try {
    top = await fsp.realpath(root);
    if (!(await fsp.stat(top)).isDirectory()) throw CliError.usage(`${root} is not a directory`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw CliError.usage(`cannot read directory ${root}: ${(err as Error).message}`);
  }
  const files: LocalFile[] = [];
  const skipped: Skipped[] = [];
  const inside = (p: string) => p === top || p.startsWith(top + sep);

  async function walk(dir: string, rel: string): Promise<number> {
    const entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    let count = 0;
    for (const e of entries) {
      const abs = join(dir, e.name);
      const path = rel ? `${rel}/${e.name}` : e.name;
      const st = await fsp.lstat(abs);
      if (st.isDirectory()) {
        if (e.name === '.git') {
          skipped.push({ path: `${path}/`, reason: 'version-control directory' });
          continue;
        }
        const n = await walk(abs, path);
        if (n === 0) skipped.push({ path: `${path}/`, reason: 'empty directory (a repository holds only files)' });
        count += n;
      } else if (st.isFile()) {
        files.push({ path, abs, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
        count++;
      } else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await fsp.realpath(abs);
        } catch {
          skipped.push({ path, reason: `dangling symlink (to ${await fsp.readlink(abs).catch(() => '?')})` });
          continue;
        }
        if (!inside(target))
          throw CliError.usage(
            `${path} is a symlink to ${target}, outside ${top}: refusing to push it (copy the file in, or remove the link)`,
          );
        const tst = await fsp.stat(target);
        if (tst.isFile()) {
          files.push({ path, abs: target, size: tst.size, mtimeMs: tst.mtimeMs, ino: tst.ino });
          count++;
        } else if (tst.isDirectory()) {
          skipped.push({
            path,
            reason: `symlink to the directory ${relative(top, target) || '.'} (pushed under its own path)`,
          });
        } else {
          skipped.push({ path, reason: 'symlink to something that is not a regular file' });
        }
      } else {
        const kind = st.isFIFO()
          ? 'fifo'
          : st.isSocket()
            ? 'socket'
            : st.isCharacterDevice() || st.isBlockDevice()
              ? 'device'
              : 'special file';
        skipped.push({ path, reason: `not a regular file (${kind})` });
      }
    }
    return count;
  }

  await walk(top, '');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, skipped };
}

// ---------------------------------------------------------------------------------------------
// Push

interface LfsAction {
  href: string;
  header?: Record<string, string>;
}

interface LfsObject {
  oid: string;
  size: number;
  actions?: { upload?: LfsAction; verify?: LfsAction };
  error?: { code: number | string; message: string };
}

interface UploadStatus {
  oid?: string;
  size?: number;
  chunkSize?: number;
  parts?: { partNumber: number; etag: string; size?: number }[];
  status?: string;
}

interface TreeEntry {
  type: 'file' | 'directory';
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

interface Counters {
  sent: number;
  skipped: number;
}

/** Pushes the regular files of `dir` to the repository as one new commit on `ref.revision`. */
export async function push(dir: string, ref: RepoRef, opts: PushOptions): Promise<PushResult> {
  const hub = new Hub(opts.endpoint, opts.apiKey, opts.attempts);
  try {
    return await pushWith(hub, dir, ref, opts);
  } finally {
    hub.close();
  }
}

async function pushWith(hub: Hub, dir: string, ref: RepoRef, opts: PushOptions): Promise<PushResult> {
  const t0 = performance.now();
  const parallel = Math.max(1, opts.parallel ?? 4);
  const progress = opts.onProgress ?? (() => {});
  const limit = opts.maxBytesPerSecond ? new RateLimit(opts.maxBytesPerSecond) : undefined;

  progress({ phase: 'scan', doneBytes: 0, totalBytes: 0 });
  const { files, skipped } = await scanDirectory(dir);
  if (files.length === 0) throw CliError.usage(`nothing to push: ${dir} holds no regular files`);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);

  // 1. Digests, from the cache when the file has not changed since it was last hashed.
  const cache = await HashCache.open(opts.hashCache);
  const digests = new Map<string, string>();
  let hashed = 0;
  let cachedHashBytes = 0;
  await forEachLimit(files, Math.min(parallel, 4), async (f) => {
    const hit = cache.get(f.abs, f);
    if (hit) {
      digests.set(f.path, hit);
      hashed += f.size;
      cachedHashBytes += f.size;
      progress({ phase: 'hash', doneBytes: hashed, totalBytes, file: f.path });
      return;
    }
    const sha = await sha256File(f.abs, (n) => {
      hashed += n;
      progress({ phase: 'hash', doneBytes: hashed, totalBytes, file: f.path });
    });
    const now = await fsp.stat(f.abs);
    if (now.size !== f.size || now.mtimeMs !== f.mtimeMs)
      throw CliError.usage(`${f.path} changed while it was being hashed; push again when it is complete`);
    digests.set(f.path, sha);
    cache.set(f.abs, f, sha);
    if (f.size >= 16 * 1024 * 1024) await cache.save();
  });
  await cache.save();
  progress({ phase: 'hash', doneBytes: totalBytes, totalBytes });

  // 2. The repository and the revision's current commit (the new commit's parent).
  const parent = await revisionCommit(hub, ref, true);

  // 3. What the revision already holds as it is, and what the server says to ignore.
  const remote = parent ? await listTree(hub, ref, parent) : new Map<string, TreeEntry>();
  const ignored = await preupload(hub, ref, files, parent !== undefined);
  const counters: Counters = { sent: 0, skipped: 0 };
  const changed: LocalFile[] = [];
  for (const f of files) {
    if (ignored.has(f.path)) {
      skipped.push({ path: f.path, reason: 'the server ignores this path' });
      continue;
    }
    const r = remote.get(f.path);
    const remoteSha = r?.lfs?.oid ?? (r?.oid && SHA256_HEX.test(r.oid) ? r.oid : undefined);
    if (remoteSha === digests.get(f.path) && (r?.lfs?.size ?? r?.size) === f.size) counters.skipped += f.size;
    else changed.push(f);
  }
  const pushed = files.filter((f) => !ignored.has(f.path));
  const inFlight = { bytes: 0 };
  const report = (file?: string) =>
    progress({ phase: 'upload', doneBytes: counters.sent + counters.skipped + inFlight.bytes, totalBytes, file });

  if (changed.length === 0) {
    progress({ phase: 'upload', doneBytes: totalBytes, totalBytes });
    return {
      repo: formatRef(ref),
      type: ref.type,
      revision: ref.revision,
      commit: parent as string,
      unchanged: true,
      files: pushed.length,
      bytes: totalBytes,
      sentBytes: 0,
      skippedBytes: totalBytes,
      cachedHashBytes,
      seconds: secondsSince(t0),
      skipped,
    };
  }

  // 4. LFS batch: which contents the org still needs, and where to send them.
  const byOid = new Map<string, LocalFile>();
  for (const f of changed) if (!byOid.has(digests.get(f.path)!)) byOid.set(digests.get(f.path)!, f);
  // Files with the same content as another one in this push are not sent twice.
  for (const f of changed) if (byOid.get(digests.get(f.path)!) !== f) counters.skipped += f.size;
  const objects = [...byOid.entries()].map(([oid, f]) => ({ oid, size: f.size }));
  const answers: { obj: LfsObject; file: LocalFile; transfer: string }[] = [];
  for (let i = 0; i < objects.length; i += 100) {
    const batch = objects.slice(i, i + 100);
    const { body } = await hub.retry(() =>
      hub.json<{ transfer?: string; objects?: LfsObject[] }>('POST', `${gitRepoPath(ref)}.git/info/lfs/objects/batch`, {
        what: 'LFS batch',
        headers: { 'content-type': 'application/vnd.git-lfs+json', accept: 'application/vnd.git-lfs+json' },
        body: JSON.stringify({
          operation: 'upload',
          transfers: ['multipart', 'basic'],
          hash_algo: 'sha256',
          ref: { name: ref.revision },
          objects: batch,
        }),
      }),
    );
    const transfer = body?.transfer ?? 'basic';
    for (const want of batch) {
      const obj = body?.objects?.find((o) => o.oid === want.oid);
      const file = byOid.get(want.oid)!;
      if (!obj) throw protocolError(`LFS batch: no answer for ${file.path} (${want.oid})`);
      if (obj.error) {
        const code = typeof obj.error.code === 'string' ? obj.error.code : `LFS_${obj.error.code}`;
        const message = `LFS batch: ${file.path}: ${obj.error.message}`;
        throw new CliError(message, obj.error.code === 507 ? EXIT.conflict : EXIT.usage, {
          error: { code, message, details: { path: file.path, oid: want.oid } },
        });
      }
      if (!obj.actions?.upload) counters.skipped += file.size;
      else answers.push({ obj, file, transfer });
    }
  }
  report();

  // 5. Send what is missing: objects N at a time, their parts through one pool of N.
  const parts = semaphore(parallel);
  const ctx = { hub, parts, limit, counters, inFlight, report };
  await forEachLimit(answers, parallel, async ({ obj, file, transfer }) => {
    const header = obj.actions!.upload!.header ?? {};
    if (transfer === 'multipart' && header.chunk_size !== undefined) await uploadMultipart(ctx, obj, file);
    else await uploadBasic(ctx, obj, file);
    if (obj.actions?.verify) {
      const v = obj.actions.verify;
      await hub.retry(() =>
        hub
          .fetch('POST', v.href, {
            what: `verify ${file.path}`,
            auth: false,
            headers: { 'content-type': 'application/vnd.git-lfs+json', ...stringHeaders(v.header) },
            body: JSON.stringify({ oid: obj.oid, size: obj.size }),
          })
          .then((r) => r.arrayBuffer()),
      );
    }
  });

  // 6. The commit: every changed file as an lfsFile, on top of the revision's current commit.
  progress({ phase: 'commit', doneBytes: totalBytes, totalBytes });
  const summary = opts.message ?? `Upload ${changed.length} file${changed.length === 1 ? '' : 's'} with fabrik push`;
  const lines = [
    {
      key: 'header',
      value: {
        summary,
        ...(opts.description ? { description: opts.description } : {}),
        ...(parent ? { parentCommit: parent } : {}),
      },
    },
    ...changed.map((f) => ({
      key: 'lfsFile',
      value: { path: f.path, algo: 'sha256', oid: digests.get(f.path), size: f.size },
    })),
  ];
  const res = await hub.fetch('POST', `${apiRepoPath(ref)}/commit/${encodeURIComponent(ref.revision)}`, {
    what: 'commit',
    headers: { 'content-type': 'application/x-ndjson' },
    body: `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`,
    allow: [409],
  });
  const answer: any = await res.json().catch(() => undefined);
  if (res.status === 409) {
    const detail = answer?.error?.message ?? answer?.error ?? 'the revision moved';
    const message = `commit: ${formatRef(ref, true)} changed while pushing (${detail}); push again to commit on top of it`;
    throw new CliError(message, EXIT.conflict, {
      error: { code: answer?.error?.code ?? 'CONFLICT', message, details: { status: 409 } },
    });
  }
  if (!answer?.commitOid) throw protocolError('commit: the answer carries no commitOid');
  return {
    repo: formatRef(ref),
    type: ref.type,
    revision: ref.revision,
    commit: answer.commitOid,
    commitUrl: answer.commitUrl,
    unchanged: false,
    files: pushed.length,
    bytes: totalBytes,
    sentBytes: counters.sent,
    skippedBytes: counters.skipped,
    cachedHashBytes,
    seconds: secondsSince(t0),
    skipped,
  };
}

function secondsSince(t0: number): number {
  return Math.round(performance.now() - t0) / 1000;
}

function stringHeaders(h: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * The commit the revision points at; undefined when the repository has no such revision yet.
 * With `create`, a missing repository is created (409: someone else just did; fine).
 */
async function revisionCommit(hub: Hub, ref: RepoRef, create: boolean): Promise<string | undefined> {
  const path = `${apiRepoPath(ref)}/revision/${encodeURIComponent(ref.revision)}`;
  const info = await hub.retry(() =>
    hub.json<{ sha?: string }>('GET', path, { what: `repo info ${formatRef(ref, true)}`, allow: [404] }),
  );
  if (info.status === 200) return info.body?.sha ?? undefined;
  // Either the repository is missing, or it is there without this revision (no commit yet).
  const repo = await hub.retry(() =>
    hub.json('GET', apiRepoPath(ref), { what: `repo info ${formatRef(ref)}`, allow: [404] }),
  );
  if (repo.status === 200) {
    if (!create) throw notFound(`revision "${ref.revision}" of ${formatRef(ref)}`, 'RevisionNotFound');
    return undefined;
  }
  if (!create) throw errorOf(info, `repo info ${formatRef(ref, true)}`);
  await hub
    .fetch('POST', '/hub/api/repos/create', {
      what: `create ${formatRef(ref)}`,
      json: { name: ref.name, organization: ref.namespace, type: ref.type },
      allow: [409],
    })
    .then((r) => r.arrayBuffer());
  return undefined;
}

function notFound(what: string, code: string): CliError {
  const message = `${what} not found`;
  return new CliError(message, EXIT.notFound, { error: { code, message, details: { status: 404 } } });
}

function errorOf(r: { res: Response; body: any }, what: string): CliError {
  return errorFrom(r.res, r.body, '', what);
}

/** Every file of the tree at `commit`, by path (following `Link: rel=next`). */
async function listTree(hub: Hub, ref: RepoRef, commit: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  let url: string | undefined = hub.url(`${apiRepoPath(ref)}/tree/${encodeURIComponent(commit)}?recursive=true`);
  for (let pages = 0; url; pages++) {
    if (pages > 100_000) throw protocolError('tree: the listing does not end');
    const page: { res: Response; body: TreeEntry[] } = await hub.retry(() =>
      hub.json<TreeEntry[]>('GET', url as string, { what: `tree of ${formatRef(ref)}@${commit.slice(0, 12)}` }),
    );
    if (!Array.isArray(page.body)) throw protocolError('tree: the answer is not a list');
    for (const e of page.body) if (e.type === 'file') out.set(e.path, e);
    url = nextLink(page.res.headers.get('link'), url);
  }
  return out;
}

/** Asks the server about the files (as the Hub clients do); returns the paths it says to ignore. */
async function preupload(
  hub: Hub,
  ref: RepoRef,
  files: readonly LocalFile[],
  hasRevision: boolean,
): Promise<Set<string>> {
  const ignored = new Set<string>();
  for (let i = 0; i < files.length; i += 256) {
    const chunk = files.slice(i, i + 256);
    const entries = await Promise.all(
      chunk.map(async (f) => ({ path: f.path, size: f.size, sample: (await readSample(f.abs)).toString('base64') })),
    );
    const r = await hub.retry(() =>
      hub.json<{ files?: { path: string; shouldIgnore?: boolean }[] }>(
        'POST',
        `${apiRepoPath(ref)}/preupload/${encodeURIComponent(ref.revision)}`,
        { what: 'preupload', json: { files: entries }, allow: hasRevision ? [] : [404] },
      ),
    );
    if (r.status === 404) return ignored; // a repository without the revision yet: nothing to learn
    for (const f of r.body?.files ?? []) if (f.shouldIgnore) ignored.add(f.path);
  }
  return ignored;
}

async function readSample(abs: string): Promise<Buffer> {
  const fh = await fsp.open(abs, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

interface UploadContext {
  readonly hub: Hub;
  readonly parts: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly limit: RateLimit | undefined;
  readonly counters: Counters;
  readonly inFlight: { bytes: number };
  readonly report: (file?: string) => void;
}

/** PUTs bytes [start, end] of the file; returns the answer's ETag. Counts bytes as they go. */
async function putRange(
  ctx: UploadContext,
  url: string,
  file: LocalFile,
  start: number,
  end: number,
  headers: Record<string, string>,
  what: string,
): Promise<string | null> {
  return ctx.hub.retry(async () => {
    let sent = 0;
    const length = end - start + 1;
    const source =
      length > 0
        ? createReadStream(file.abs, { start, end, highWaterMark: readChunk(ctx.limit !== undefined) })
        : Readable.from([]);
    const body = countChunks(
      source,
      (n) => {
        sent += n;
        ctx.inFlight.bytes += n;
        ctx.report(file.path);
      },
      ctx.limit,
    );
    try {
      const res = await ctx.hub.putStream(
        url,
        { 'content-type': 'application/octet-stream', ...headers, 'content-length': String(length) },
        body,
        what,
      );
      ctx.counters.sent += length;
      return res.headers.get('etag');
    } finally {
      ctx.inFlight.bytes -= sent;
      source.destroy();
    }
  });
}

async function uploadBasic(ctx: UploadContext, obj: LfsObject, file: LocalFile): Promise<void> {
  const up = obj.actions!.upload!;
  await ctx.parts(() =>
    putRange(ctx, up.href, file, 0, file.size - 1, stringHeaders(up.header), `upload ${file.path}`),
  );
  ctx.report(file.path);
}

/** The multipart transfer: asks which parts the server already holds, sends the others, completes. */
async function uploadMultipart(ctx: UploadContext, obj: LfsObject, file: LocalFile): Promise<void> {
  const up = obj.actions!.upload!;
  const header = up.header ?? {};
  const chunk = Number(header.chunk_size);
  if (!Number.isInteger(chunk) || chunk <= 0) throw protocolError(`LFS batch: bad chunk_size "${header.chunk_size}"`);
  const urls = new Map<number, string>();
  for (const [k, v] of Object.entries(header)) if (/^\d+$/.test(k) && typeof v === 'string') urls.set(Number(k), v);
  const count = Math.max(1, Math.ceil(file.size / chunk));
  for (let n = 1; n <= count; n++)
    if (!urls.has(n)) throw protocolError(`LFS batch: no URL for part ${n} of ${file.path}`);
  const partSize = (n: number) => Math.min(file.size, n * chunk) - (n - 1) * chunk;

  // Resume: the parts the server confirmed (stored whole) are not sent again.
  const status = await ctx.hub.retry(() =>
    ctx.hub.json<UploadStatus>('GET', up.href, { what: `upload status of ${file.path}`, auth: false, allow: [404] }),
  );
  const etags = new Map<number, string>();
  if (status.status === 200)
    for (const p of status.body?.parts ?? [])
      if (
        p.partNumber >= 1 &&
        p.partNumber <= count &&
        p.etag &&
        (p.size === undefined || p.size === partSize(p.partNumber))
      )
        etags.set(p.partNumber, p.etag);
  for (const n of etags.keys()) ctx.counters.skipped += partSize(n);
  ctx.report(file.path);

  const missing = [...Array(count).keys()].map((i) => i + 1).filter((n) => !etags.has(n));
  // After a part fails for good, the parts still waiting are not started (the error ends the push).
  let failed = false;
  await Promise.all(
    missing.map((n) =>
      ctx.parts(async () => {
        if (failed) return;
        const start = (n - 1) * chunk;
        try {
          const etag = await putRange(
            ctx,
            urls.get(n)!,
            file,
            start,
            start + partSize(n) - 1,
            {},
            `upload ${file.path} part ${n}`,
          );
          if (!etag) throw protocolError(`upload ${file.path} part ${n}: the answer carries no ETag`);
          etags.set(n, etag);
        } catch (err) {
          failed = true;
          throw err;
        }
      }),
    ),
  );

  await ctx.hub.retry(() =>
    ctx.hub
      .fetch('POST', up.href, {
        what: `complete upload of ${file.path}`,
        auth: false,
        json: {
          oid: obj.oid,
          parts: [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([partNumber, etag]) => ({ partNumber, etag })),
        },
      })
      .then((r) => r.arrayBuffer()),
  );
}

// ---------------------------------------------------------------------------------------------
// Pull

/** A tree path that is safe to join under the target directory; a CliError otherwise. */
export function safeRepoPath(p: string): string {
  const bad = (why: string) =>
    new CliError(`refusing tree path "${p}": ${why}`, EXIT.internal, {
      error: { code: 'UNSAFE_PATH', message: `refusing tree path "${p}": ${why}`, details: { path: p } },
    });
  if (typeof p !== 'string' || p.length === 0) throw bad('empty');
  if (p.includes('\0')) throw bad('contains NUL');
  if (p.startsWith('/') || isAbsolute(p) || /^[A-Za-z]:/.test(p)) throw bad('absolute');
  if (p.includes('\\')) throw bad('contains a backslash');
  const segs = p.split('/');
  if (segs.some((s) => s === '..')) throw bad('contains ".."');
  if (segs.some((s) => s === '' || s === '.')) throw bad('empty or "." segment');
  return p;
}

/** Downloads the revision's files into `dir`. */
export async function pull(ref: RepoRef, dir: string, opts: TransferOptions): Promise<PullResult> {
  const t0 = performance.now();
  const hub = new Hub(opts.endpoint, opts.apiKey, opts.attempts);
  const parallel = Math.max(1, opts.parallel ?? 4);
  const progress = opts.onProgress ?? (() => {});
  const limit = opts.maxBytesPerSecond ? new RateLimit(opts.maxBytesPerSecond) : undefined;

  progress({ phase: 'scan', doneBytes: 0, totalBytes: 0 });
  const commit = await revisionCommit(hub, ref, false);
  if (!commit) throw notFound(`revision "${ref.revision}" of ${formatRef(ref)}`, 'RevisionNotFound');
  const tree = [...(await listTree(hub, ref, commit)).values()];
  const root = resolve(dir);
  const entries = tree.map((e) => {
    safeRepoPath(e.path);
    const target = resolve(root, ...e.path.split('/'));
    if (!target.startsWith(root + sep))
      throw protocolError(`refusing tree path "${e.path}": outside the directory`, 'UNSAFE_PATH');
    const size = e.lfs?.size ?? e.size;
    const sha = e.lfs?.oid ?? (e.oid && SHA256_HEX.test(e.oid) ? e.oid : undefined);
    if (typeof size !== 'number' || !sha) throw protocolError(`tree: ${e.path} has no size or sha256`);
    return { path: e.path, target, size, sha };
  });
  const totalBytes = entries.reduce((n, e) => n + e.size, 0);
  await fsp.mkdir(root, { recursive: true });
  const cache = await HashCache.open(opts.hashCache);

  const c = { received: 0, resumed: 0, skipped: 0, done: 0 };
  const report = (file?: string) => progress({ phase: 'download', doneBytes: c.done, totalBytes, file });
  await forEachLimit(entries, parallel, async (e) => {
    // Already there with the right content (a pull into the same place again): keep it.
    const have = await fsp.stat(e.target).catch(() => undefined);
    if (have?.isFile() && have.size === e.size) {
      const sha = cache.get(e.target, have) ?? (await sha256File(e.target));
      if (sha === e.sha) {
        cache.set(e.target, have, sha);
        c.skipped += e.size;
        c.done += e.size;
        report(e.path);
        return;
      }
    }
    await fsp.mkdir(dirname(e.target), { recursive: true });
    const url = `${gitRepoPath(ref)}/resolve/${commit}/${encodePath(e.path)}`;
    await download(hub, url, e, limit, c, report);
    const st = await fsp.stat(e.target);
    cache.set(e.target, st, e.sha);
  });
  await cache.save();
  return {
    repo: formatRef(ref),
    type: ref.type,
    revision: ref.revision,
    commit,
    dir: root,
    files: entries.length,
    bytes: totalBytes,
    receivedBytes: c.received,
    resumedBytes: c.resumed,
    skippedBytes: c.skipped,
    seconds: secondsSince(t0),
  };
}

/**
 * One file: continues `<target>.part` with Range when there is one, hashing what is there first;
 * after a network failure goes on from where it stopped. Verifies, fsyncs, renames.
 */
async function download(
  hub: Hub,
  url: string,
  e: { path: string; target: string; size: number; sha: string },
  limit: RateLimit | undefined,
  c: { received: number; resumed: number; done: number },
  report: (file?: string) => void,
): Promise<void> {
  const part = `${e.target}.part`;
  let restarts = 0;
  for (let attempt = 1; ; attempt++) {
    // Bytes this attempt added to the progress count: taken back when it fails.
    let counted = 0;
    const count = (n: number) => {
      counted += n;
      c.done += n;
      report(e.path);
    };
    try {
      let hash: Hash = createHash('sha256');
      let have = (await fsp.stat(part).catch(() => undefined))?.size ?? 0;
      if (have > e.size) {
        await fsp.rm(part, { force: true });
        have = 0;
      }
      // What an earlier attempt (or an interrupted pull) left: hash it, it is part of the digest.
      if (have > 0)
        for await (const chunk of createReadStream(part, { end: have - 1, highWaterMark: 4 * 1024 * 1024 })) {
          hash.update(chunk as Buffer);
          count((chunk as Buffer).length);
        }
      const kept = have;
      if (have < e.size || e.size === 0) {
        const res = await hub.fetch('GET', url, {
          what: `download ${e.path}`,
          headers: have > 0 ? { range: `bytes=${have}-` } : {},
          allow: [416],
        });
        if (res.status === 416) {
          await res.body?.cancel().catch(() => undefined);
          throw Object.assign(new Error(`download ${e.path}: range not satisfiable`), { restart: true });
        }
        if (have > 0 && res.status === 206) {
          const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
          if (!m || Number(m[1]) !== have) {
            await res.body?.cancel().catch(() => undefined);
            throw protocolError(
              `download ${e.path}: asked for bytes ${have}- and got ${res.headers.get('content-range')}`,
            );
          }
          if (attempt === 1) c.resumed += have;
        } else if (have > 0) {
          // The server ignored the range (200): start the file over.
          c.done -= counted;
          counted = 0;
          hash = createHash('sha256');
          have = 0;
        }
        if (!res.body) throw protocolError(`download ${e.path}: empty answer`);
        await pipeline(
          countChunks(
            Readable.fromWeb(res.body as any) as AsyncIterable<Uint8Array>,
            (n, chunk) => {
              hash.update(chunk);
              c.received += n;
              count(n);
            },
            limit,
          ),
          createWriteStream(part, { flags: have > 0 ? 'a' : 'w' }),
        );
      }
      const fh = await fsp.open(part, 'r+');
      let size: number;
      try {
        await fh.sync();
        size = (await fh.stat()).size;
      } finally {
        await fh.close();
      }
      const digest = hash.digest('hex');
      if (size !== e.size || digest !== e.sha) {
        await fsp.rm(part, { force: true });
        if (kept > 0 && restarts === 0)
          // The kept .part may be what was wrong: once more from the start.
          throw Object.assign(new Error(`download ${e.path}: digest mismatch after resuming`), { restart: true });
        const message = `download ${e.path}: got ${size} bytes with sha256 ${digest}, expected ${e.size} bytes with sha256 ${e.sha}`;
        throw new CliError(message, EXIT.internal, {
          error: { code: 'DIGEST_MISMATCH', message, details: { path: e.path } },
        });
      }
      await fsp.rename(part, e.target);
      await fsyncDir(dirname(e.target));
      return;
    } catch (err) {
      c.done -= counted;
      report(e.path);
      if ((err as { restart?: boolean }).restart === true) {
        await fsp.rm(part, { force: true });
        if (restarts++ < 3) continue;
      }
      if (attempt >= hub.attempts || !(retryable(err) || isStreamError(err))) {
        if (isStreamError(err) && !(err instanceof CliError)) throw unreachable(hub.endpoint, err);
        throw err;
      }
      await sleep(Math.min(8000, 400 * 2 ** (attempt - 1)));
    }
  }
}

function isStreamError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code ?? ((err as Error)?.cause as NodeJS.ErrnoException)?.code;
  return (
    code === 'ECONNRESET' ||
    code === 'UND_ERR_SOCKET' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    (err as Error)?.name === 'TypeError'
  );
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems do not fsync directories; the file itself is synced.
  }
}
