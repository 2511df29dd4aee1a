// Answers in the OpenAI error shape, `{"error":{"message","type","param","code"}}`, so the official
// clients raise their usual APIError subclasses (status, code, type) and apply their own retry
// rules (Retry-After, retry-after-ms, x-should-retry).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Rejection } from './limits.js';

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'requests'
  | 'tokens'
  | 'insufficient_quota'
  | 'server_error';

export interface OpenAIError {
  readonly status: number;
  readonly message: string;
  readonly type: OpenAIErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers (Retry-After and friends). */
  readonly headers?: Readonly<Record<string, string>>;
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): OpenAIError {
  return { status: 400, message, type: 'invalid_request_error', param, code };
}

/**
 * The same answer for a model that does not exist and for one the key may not use: a different
 * answer would tell a caller which deployments other tenants run.
 */
export function modelNotFound(model: string): OpenAIError {
  return {
    status: 404,
    message: `The model \`${model}\` does not exist or you do not have access to it.`,
    type: 'invalid_request_error',
    param: 'model',
    code: 'model_not_found',
  };
}

export const INVALID_API_KEY: OpenAIError = {
  status: 401,
  message: 'Incorrect API key provided. Pass a valid fabrik API key as `Authorization: Bearer <key>`.',
  type: 'invalid_request_error',
  param: null,
  code: 'invalid_api_key',
};

/** Retry-After (whole seconds, at least 1) and retry-after-ms (the client's finer hint). */
export function retryHeaders(retryAfterMs: number): Record<string, string> {
  const ms = Math.max(1, Math.ceil(retryAfterMs));
  return { 'retry-after': String(Math.ceil(ms / 1000)), 'retry-after-ms': String(ms) };
}

/** 503 with a hint when to come back: no replica ready in time, or the limiter is unreachable (fail-closed). */
export function unavailable(message: string, code: string, retryAfterMs: number): OpenAIError {
  return { status: 503, message, type: 'server_error', param: null, code, headers: retryHeaders(retryAfterMs) };
}

export function errorBody(e: Pick<OpenAIError, 'message' | 'type' | 'param' | 'code'>): string {
  return JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}

export function sendError(res: ServerResponse, e: OpenAIError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = errorBody(e);
  res.statusCode = e.status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (e.headers) for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  res.end(body);
}

export function notFound(req: IncomingMessage): OpenAIError {
  return { ...invalidRequest(`Invalid URL (${req.method} ${req.url})`), status: 404 };
}

export function wrongMethod(req: IncomingMessage, allowed: string): OpenAIError {
  return {
    ...invalidRequest(`Invalid method for URL (${req.method} ${req.url}): use ${allowed}.`),
    status: 405,
    headers: { allow: allowed },
  };
}

/** 429 for a limit, without retry for a spent budget (or a call larger than its limit); 503 for a limiter that cannot answer. */
export function limitError(r: Rejection, tokens: number): OpenAIError {
  const retry = retryHeaders(r.retryAfterMs);
  const seconds = Math.ceil(r.retryAfterMs / 1000);
  switch (r.kind) {
    case 'unavailable':
      return {
        status: 503,
        message: 'Rate limits cannot be checked right now; try again shortly.',
        type: 'server_error',
        param: null,
        code: 'limiter_unavailable',
        headers: retry,
      };
    case 'budget':
      return {
        status: 429,
        message: `The project's monthly token budget (${r.limit}) is spent; it renews at the start of next month (UTC).`,
        type: 'insufficient_quota',
        param: null,
        code: 'insufficient_quota',
        headers: { ...retry, 'x-should-retry': 'false' },
      };
    default: {
      const per = r.kind === 'requests' ? 'requests' : 'tokens';
      const tooLarge = r.kind === 'tokens' && r.limit !== undefined && tokens > r.limit;
      return {
        status: 429,
        message: tooLarge
          ? `Request too large: it needs about ${tokens} tokens, the ${r.scope}'s limit is ${r.limit} tokens per window.`
          : `Rate limit reached for ${per} of this ${r.scope} (limit ${r.limit}). Try again in ${seconds}s.`,
        type: r.kind,
        param: null,
        code: 'rate_limit_exceeded',
        headers: tooLarge ? { ...retry, 'x-should-retry': 'false' } : retry,
      };
    }
  }
}
