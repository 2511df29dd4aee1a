// The Hub client of one push or pull: JSON calls and downloads through fetch, part uploads
// through node:http (whose pipe waits for the socket; Node 20's fetch reads a streamed request
// body ahead without bound: a part per upload), retries with backoff, listing pages.
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError } from '../client.js';
import { hubError, protocolError, retryable, unreachable } from './errors.js';
import { sleep } from './flow.js';

export class Hub {
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
