// `fabrik pull`: the files of a revision into a directory. Each file goes to `<file>.part`
// (continued with Range after an interruption), its SHA-256 checked, fsynced and renamed into
// place; files already there with the right digest are kept.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError } from '../client.js';
import { EXIT } from '../output.js';
import { notFound, protocolError, retryable, unreachable } from './errors.js';
import { countChunks, forEachLimit, RateLimit, secondsSince, sleep } from './flow.js';
import { HashCache, sha256File } from './hash-cache.js';
import { Hub } from './http.js';
import { encodePath, formatRef, gitRepoPath, type RepoRef, SHA256_HEX } from './refs.js';
import { listTree, revisionCommit } from './remote.js';
import type { PullResult, TransferOptions } from './types.js';

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
