// The console's session cookie on the HTTP side: reading it in the /api/v1 auth hook (bearer keys
// keep precedence and behave as before), the CSRF check on mutations it authenticates, and the
// cookies' flags. Browsers send cookies by themselves, so a cookie-authenticated POST/PUT/PATCH/
// DELETE must also carry `x-csrf-token`, which only a page of this origin can read (double submit).
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.js';
import type { OidcSignIn } from '../tenancy/oidc.js';
import { type ActiveSession, type OpenedSession, type SessionAuthenticator, csrfMatches } from '../tenancy/sessions.js';
import type { Caller } from '../policy/roles.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session the request came with (cookie), when it authenticated by one. */
    consoleSession?: ActiveSession;
  }
}

export const SESSION_COOKIE = 'fabrik_session';
export const CSRF_COOKIE = 'fabrik_csrf';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface ConsoleAuthOptions {
  /** Sign-in through an identity provider, when configured. */
  readonly oidc?: OidcSignIn;
  /** The URL browsers reach this server at (e.g. behind a TLS proxy): redirect URI, Secure cookies. */
  readonly publicUrl?: string;
}

export interface ConsoleAuth extends ConsoleAuthOptions {
  readonly sessions: SessionAuthenticator;
  /** Requests per minute per address to the session creating route (as other unauthenticated ones). */
  readonly perAddressPerMinute: number;
}

/**
 * The caller of a request that carries no Authorization header but a session cookie; undefined
 * without one. A bad or ended session is UNAUTHENTICATED (401 after the rate limiter counted it);
 * a mutation without the session's CSRF token is CSRF_FAILED (403).
 */
export async function callerFromCookie(
  req: FastifyRequest,
  sessions: SessionAuthenticator,
): Promise<Caller | undefined> {
  const token = req.cookies?.[SESSION_COOKIE];
  if (!token) return undefined;
  const session = await sessions.authenticate(token);
  if (!SAFE_METHODS.has(req.method)) {
    const presented = req.headers[CSRF_HEADER];
    if (!csrfMatches(typeof presented === 'string' ? presented : undefined, session.csrfToken))
      throw new AppError(
        'CSRF_FAILED',
        `a console request that changes something must carry the ${CSRF_HEADER} header`,
      );
  }
  req.consoleSession = session;
  return session.caller;
}

/** Whether browsers reach this server over TLS: then cookies are `Secure`. */
export function overTls(req: FastifyRequest, publicUrl?: string): boolean {
  if (publicUrl) return publicUrl.startsWith('https:');
  return (req.raw.socket as TLSSocket).encrypted === true;
}

/** This server's origin as browsers see it (--public-url, else the request's own). */
export function originOf(req: FastifyRequest, publicUrl?: string): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  return `${overTls(req) ? 'https' : 'http'}://${req.host}`;
}

export function setSessionCookies(reply: FastifyReply, opened: OpenedSession, secure: boolean): void {
  const expires = new Date(opened.session.expiresAt);
  reply.setCookie(SESSION_COOKIE, opened.token, { httpOnly: true, sameSite: 'strict', path: '/', secure, expires });
  reply.setCookie(CSRF_COOKIE, opened.session.csrfToken, {
    httpOnly: false,
    sameSite: 'strict',
    path: '/',
    secure,
    expires,
  });
}

export function clearSessionCookies(reply: FastifyReply, secure: boolean): void {
  reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/', secure });
  reply.clearCookie(CSRF_COOKIE, { httpOnly: false, sameSite: 'strict', path: '/', secure });
}
