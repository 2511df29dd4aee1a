// The uploads of a push, one LFS object at a time: `basic` (one PUT) or `multipart` (parts in
// parallel through the push's shared pool; the parts the server already confirmed are not sent
// again, so an interrupted push resumes part by part), then the completion call.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { protocolError } from './errors.js';
import { countChunks, type RateLimit, readChunk } from './flow.js';
import type { Hub } from './http.js';
import type { LocalFile } from './scan.js';

export interface LfsAction {
  href: string;
  header?: Record<string, string>;
}

export interface LfsObject {
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

export interface Counters {
  sent: number;
  skipped: number;
}

export function stringHeaders(h: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

export interface UploadContext {
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

export async function uploadBasic(ctx: UploadContext, obj: LfsObject, file: LocalFile): Promise<void> {
  const up = obj.actions!.upload!;
  await ctx.parts(() =>
    putRange(ctx, up.href, file, 0, file.size - 1, stringHeaders(up.header), `upload ${file.path}`),
  );
  ctx.report(file.path);
}

/** The multipart transfer: asks which parts the server already holds, sends the others, completes. */
export async function uploadMultipart(ctx: UploadContext, obj: LfsObject, file: LocalFile): Promise<void> {
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
