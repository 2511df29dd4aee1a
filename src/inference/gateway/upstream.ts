// Connections to the replicas: one undici Pool per replica origin, with keep-alive and without
// pipelining (a replica answers one request per connection at a time, so a slow generation never
// holds up another call queued behind it on the same socket). Pools are made on first use and
// closed, after their running requests finish, once no replica of the routing table uses them.
//
// A replica URL is a base (`http://10.0.0.7:20013`, or an external upstream's
// `https://host/prefix`); a call goes to `<base path>/v1/<endpoint>`.
import { type Dispatcher, Pool } from 'undici';

export interface UpstreamOptions {
  /** Connections per replica (default 256; more calls queue inside the pool). */
  readonly connections?: number;
  /** Longest wait for the answer's headers, and between two body chunks (default 10 min: long generations). */
  readonly timeoutMs?: number;
  /** Longest wait to connect (default 2 s: a replica that does not accept is tried elsewhere). */
  readonly connectTimeoutMs?: number;
}

interface Target {
  readonly pool: Pool;
  /** The base URL's path, without a trailing slash ('' for none). */
  readonly prefix: string;
}

export interface UpstreamCall {
  readonly url: string;
  /** e.g. `/v1/chat/completions` */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | string;
  readonly signal: AbortSignal;
}

export class Upstreams {
  readonly #targets = new Map<string, Target>();
  readonly #pools = new Map<string, Pool>();
  readonly #opts: Required<UpstreamOptions>;

  constructor(opts: UpstreamOptions = {}) {
    this.#opts = {
      connections: opts.connections ?? 256,
      timeoutMs: opts.timeoutMs ?? 600_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 2000,
    };
  }

  #target(url: string): Target {
    let t = this.#targets.get(url);
    if (t === undefined) {
      const u = new URL(url);
      let pool = this.#pools.get(u.origin);
      if (pool === undefined) {
        pool = new Pool(u.origin, {
          connections: this.#opts.connections,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: this.#opts.timeoutMs,
          bodyTimeout: this.#opts.timeoutMs,
          connect: { timeout: this.#opts.connectTimeoutMs },
        });
        this.#pools.set(u.origin, pool);
      }
      t = { pool, prefix: u.pathname.replace(/\/+$/, '') };
      this.#targets.set(url, t);
    }
    return t;
  }

  request(c: UpstreamCall): Promise<Dispatcher.ResponseData> {
    const t = this.#target(c.url);
    return t.pool.request({
      method: 'POST',
      path: t.prefix + c.path,
      headers: c.headers,
      body: c.body,
      signal: c.signal,
    });
  }

  /** Closes (gracefully: running requests finish) the pools no URL in `urls` uses any more. */
  retain(urls: ReadonlySet<string>): void {
    const origins = new Set<string>();
    for (const url of urls) {
      try {
        origins.add(new URL(url).origin);
      } catch {
        // a malformed URL in the table: its calls fail and the replica is reported
      }
    }
    for (const url of this.#targets.keys()) if (!urls.has(url)) this.#targets.delete(url);
    for (const [origin, pool] of this.#pools)
      if (!origins.has(origin)) {
        this.#pools.delete(origin);
        pool.close().catch(() => {});
      }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#targets.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}

/** Errors of reaching a replica (the call may go to another), as opposed to timeouts and aborts. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_DESTROYED',
]);

/** Why a replica could not be used, when the error is one a retry elsewhere can cure; else undefined. */
export function connectionFailure(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e?.code && CONNECTION_ERRORS.has(e.code) ? e.code : e?.cause?.code;
  return code && CONNECTION_ERRORS.has(code) ? code : undefined;
}
