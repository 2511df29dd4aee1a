// `fabrik push`: the regular files of a directory as one new commit on a revision. Hashes each
// file (with the hash cache), creates the repo when missing, leaves out what the revision already
// holds as it is, asks the LFS batch API what the org still needs, uploads that (upload.ts) and
// commits every changed file as an lfsFile on top of the revision's current commit.
import { promises as fsp } from 'node:fs';
import { CliError } from '../client.js';
import { EXIT } from '../output.js';
import { protocolError } from './errors.js';
import { forEachLimit, RateLimit, secondsSince, semaphore } from './flow.js';
import { HashCache, sha256File } from './hash-cache.js';
import { Hub } from './http.js';
import { apiRepoPath, formatRef, gitRepoPath, type RepoRef, SHA256_HEX } from './refs.js';
import { listTree, revisionCommit, type TreeEntry } from './remote.js';
import { type LocalFile, scanDirectory } from './scan.js';
import type { PushOptions, PushResult } from './types.js';
import { type Counters, type LfsObject, stringHeaders, uploadBasic, uploadMultipart } from './upload.js';

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
