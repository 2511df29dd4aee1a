// The console's only way to the server: the public REST API, typed by generated.ts (from
// /openapi.json). Signed in with the session cookie, mutations carry the CSRF header; where the
// server has no session routes the key is kept in memory only (never in storage) as a bearer.
import { csrfHeaders } from '../lib/csrf.js';
import type { Paths } from './generated.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = {},
  ) {
    super(message);
  }
}

type Op<P extends keyof Paths, M extends keyof Paths[P]> = Paths[P][M] extends {
  path: infer Pa;
  query: infer Q;
  body: infer B;
  response: infer R;
}
  ? { path: Pa; query: Q; body: B; response: R }
  : never;

export type Response<P extends keyof Paths, M extends keyof Paths[P]> = Op<P, M>['response'];

export interface CallOptions<Pa, Q, B> {
  readonly path?: Pa;
  readonly query?: Partial<Q> | Record<string, string | number | boolean | undefined>;
  readonly body?: B;
  readonly signal?: AbortSignal;
}

let bearer: string | undefined;
let csrfToken: string | undefined;

/** In memory only: a reload forgets it (the fallback when the server has no session routes). */
export function setBearer(key: string | undefined): void {
  bearer = key;
}
export function rememberCsrf(token: string | undefined): void {
  csrfToken = token;
}

/** `/a/{b}` with b filled in (percent-encoded). */
export function fillPath(template: string, params: Record<string, string | number> = {}): string {
  return template.replace(/\{([^}]+)\}/g, (_, k: string) => {
    const v = params[k];
    if (v === undefined) throw new Error(`path parameter ${k} missing for ${template}`);
    return encodeURIComponent(String(v));
  });
}

export function queryString(q: Record<string, unknown> = {}): string {
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

export function requestHeaders(method: string, hasBody: boolean, cookies: string): Record<string, string> {
  return {
    accept: 'application/json',
    ...(hasBody ? { 'content-type': 'application/json' } : {}),
    ...(bearer ? { authorization: `Bearer ${bearer}` } : csrfHeaders(method, cookies, csrfToken)),
  };
}

function cookies(): string {
  return typeof document === 'undefined' ? '' : document.cookie;
}

/** The error the API sent (its envelope), or one that says what else came back. */
export async function errorOf(res: globalThis.Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const e = JSON.parse(text).error;
    if (e && typeof e.message === 'string') return new ApiError(res.status, String(e.code), e.message, e.details);
  } catch {
    // not the envelope
  }
  return new ApiError(res.status, 'HTTP_ERROR', `${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
}

export async function raw(
  method: string,
  url: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<globalThis.Response> {
  const res = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: requestHeaders(method, body !== undefined, cookies()),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function call<P extends keyof Paths, M extends keyof Paths[P] & string>(
  method: M,
  path: P,
  o: CallOptions<Op<P, M>['path'], Op<P, M>['query'], Op<P, M>['body']> = {},
): Promise<Op<P, M>['response']> {
  const url =
    fillPath(path as string, (o.path ?? {}) as Record<string, string>) +
    queryString(o.query as Record<string, unknown>);
  const res = await raw(method.toUpperCase(), url, o.body, o.signal);
  if (res.status === 204) return undefined as Op<P, M>['response'];
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as Op<P, M>['response'];
}

export const get = <P extends keyof Paths>(
  path: P,
  o?: CallOptions<Op<P, 'get' & keyof Paths[P]>['path'], Op<P, 'get' & keyof Paths[P]>['query'], never>,
) =>
  call('get' as 'get' as 'get' & keyof Paths[P] & string, path, o as never) as Promise<
    Op<P, 'get' & keyof Paths[P]>['response']
  >;

export const post = <P extends keyof Paths>(
  path: P,
  o?: CallOptions<Op<P, 'post' & keyof Paths[P]>['path'], never, Op<P, 'post' & keyof Paths[P]>['body']>,
) =>
  call('post' as 'post' & keyof Paths[P] & string, path, o as never) as Promise<
    Op<P, 'post' & keyof Paths[P]>['response']
  >;

/** An error's text for the page: the API's message with its code. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}
