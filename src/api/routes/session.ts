// Console sign-in: sessions under /api/v1/session (opened with an API key, read, ended) and the
// OpenID Connect redirects under /auth/oidc. Thin adapters over src/tenancy/sessions.ts and oidc.ts.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../store/db.js';
import { AppError } from '../../domain/errors.js';
import type { Authenticator } from '../../tenancy/authn.js';
import { safeReturnTo } from '../../tenancy/oidc.js';
import { describeSession, endSession, openKeySession, openOidcSession } from '../../tenancy/sessions.js';
import { toAppError } from '../error-map.js';
import * as S from '../schemas.js';
import { type ConsoleAuth, clearSessionCookies, originOf, overTls, setSessionCookies } from '../session.js';

const errors = { '4xx': S.ErrorBody };
/**
 * The session routes are listed in /openapi.json like every other: their shapes are declared once
 * (validation and the document, whence the console's generated client), and the cross-tenant
 * matrix covers them (a bearer key is no session: 401; B's cookie reaches only B's session).
 */
const HIDDEN = false;

export const SessionMethods = T.Object({
  apiKey: T.Boolean(),
  oidc: T.Object({ enabled: T.Boolean(), name: T.String() }),
});

export const SessionCreate = T.Object(
  { apiKey: T.String({ minLength: 1, maxLength: 300, description: 'an API key (fbk_…), sent once' }) },
  { additionalProperties: false },
);

export const Session = T.Object({
  principal: T.Object({
    id: T.String(),
    name: T.String(),
    kind: T.Union([T.Literal('user'), T.Literal('service_account')]),
  }),
  operator: T.Boolean(),
  memberships: T.Array(T.Object({ org: T.String(), project: T.Optional(T.String()), role: T.String() })),
  method: T.Union([T.Literal('api-key'), T.Literal('oidc')]),
  csrfToken: T.String({ description: 'send as x-csrf-token on POST, PUT, PATCH and DELETE' }),
  expiresAt: T.String(),
});

export interface SessionRouteDeps {
  readonly store: Store;
  readonly keys: Authenticator;
  readonly console: ConsoleAuth;
}

/** Under /api/v1. */
export async function sessionRoutes(app: FastifyInstance, deps: SessionRouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;
  const publicUrl = deps.console.publicUrl;

  r.get(
    '/session/methods',
    {
      config: { auth: false },
      schema: {
        tags: ['session'],
        hide: HIDDEN,
        summary: 'How one may sign in to the console',
        security: [],
        response: { 200: SessionMethods },
      },
    },
    async () => ({
      apiKey: true,
      oidc: { enabled: deps.console.oidc !== undefined, name: deps.console.oidc?.displayName ?? '' },
    }),
  );

  r.post(
    '/session',
    {
      // A key is checked here, not in the hook: failures count against the client address, on the
      // budget of requests without a valid key.
      config: {
        auth: false,
        rateLimit: { max: deps.console.perAddressPerMinute, keyGenerator: (req) => `anon:${req.ip}` },
      },
      schema: {
        tags: ['session'],
        hide: HIDDEN,
        summary: 'Sign in to the console with an API key: sets the session cookie',
        security: [],
        body: SessionCreate,
        response: { 200: Session, ...errors },
      },
    },
    async (req, reply) => {
      const caller = await deps.keys.authenticate(`Bearer ${req.body.apiKey}`);
      const opened = await openKeySession({ db, caller, requestId: req.id });
      setSessionCookies(reply, opened, overTls(req, publicUrl));
      return describeSession(db, opened.session);
    },
  );

  r.get(
    '/session',
    {
      schema: {
        tags: ['session'],
        hide: HIDDEN,
        summary: 'The console session of this cookie',
        response: { 200: Session, ...errors },
      },
    },
    async (req) => describeSession(db, requireSession(req)),
  );

  r.delete(
    '/session',
    {
      schema: {
        tags: ['session'],
        hide: HIDDEN,
        summary: 'Sign out: ends the session and clears its cookies',
        response: { 204: T.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const session = requireSession(req);
      await endSession({ db, caller: session.caller, requestId: req.id }, session);
      const token = req.cookies.fabrik_session;
      if (token) deps.console.sessions.invalidate(token);
      clearSessionCookies(reply, overTls(req, publicUrl));
      reply.status(204).send(null);
    },
  );
}

function requireSession(req: FastifyRequest) {
  if (!req.consoleSession)
    throw new AppError('UNAUTHENTICATED', 'no console session: sign in with POST /api/v1/session or /auth/oidc/login');
  return req.consoleSession;
}

const LoginQuery = T.Object({ return_to: T.Optional(T.String({ maxLength: 2000 })) });

/** At the root: the browser is sent to the identity provider and comes back to the callback. */
export async function oidcRoutes(app: FastifyInstance, deps: SessionRouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const publicUrl = deps.console.publicUrl;
  const callbackOf = (req: FastifyRequest) => `${originOf(req, publicUrl)}/auth/oidc/callback`;

  r.get('/auth/oidc/login', { schema: { hide: true, querystring: LoginQuery } }, async (req, reply) => {
    try {
      const oidc = configured(deps);
      const to = await oidc.begin(callbackOf(req), safeReturnTo(req.query.return_to));
      reply.header('cache-control', 'no-store').redirect(to.href, 302);
    } catch (err) {
      errorPage(req, reply, err);
    }
  });

  r.get('/auth/oidc/callback', { schema: { hide: true } }, async (req, reply) => {
    try {
      const oidc = configured(deps);
      const query = new URLSearchParams(req.url.split('?')[1] ?? '');
      const done = await oidc.finish(callbackOf(req), query, req.id);
      const opened = await openOidcSession(deps.store.db, done.principalId, req.id);
      setSessionCookies(reply, opened, overTls(req, publicUrl));
      reply.header('cache-control', 'no-store').redirect(safeReturnTo(done.returnTo), 302);
    } catch (err) {
      errorPage(req, reply, err);
    }
  });
}

function configured(deps: SessionRouteDeps) {
  if (!deps.console.oidc)
    throw new AppError('OIDC_NOT_CONFIGURED', 'this server has no OpenID Connect provider (--oidc-issuer)');
  return deps.console.oidc;
}

/** Browsers get a page that says what went wrong, with a way back; API clients the envelope. */
function errorPage(req: FastifyRequest, reply: FastifyReply, err: unknown): void {
  const e = toAppError(err as FastifyError);
  if (e.status >= 500) req.log.error({ err }, 'OpenID Connect sign-in failed');
  const accept = req.headers.accept ?? '';
  if (!accept.includes('text/html')) {
    reply.status(e.status).send(e.toJSON());
    return;
  }
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in failed · fabrik</title></head>
<body><main><h1>Sign-in failed</h1><p id="error-code">${escapeHtml(e.code)}</p>
<p id="error-message">${escapeHtml(e.message)}</p><p><a href="/signin">Back to sign-in</a></p></main></body></html>`;
  reply
    .status(e.status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'self'")
    .header('cache-control', 'no-store')
    .send(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
