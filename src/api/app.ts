// The HTTP server: fastify with one error envelope, schema-driven validation and /openapi.json,
// API-key authentication, rate limits, idempotent creates, request ids, and Prometheus metrics.
// Routes are thin adapters to the service modules; they live in ./routes/.
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
} from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AppError } from '../domain/errors.js';
import type { Caller } from '../policy/roles.js';
import { type Store, readiness } from '../store/db.js';
import { parseToken } from '../tenancy/api-key.js';
import { Authenticator } from '../tenancy/authn.js';
import { SessionAuthenticator } from '../tenancy/sessions.js';
import { type ConsoleAuthOptions, callerFromCookie } from './session.js';
import { oidcRoutes, sessionRoutes } from './routes/session.js';
import type { Registry as ArtifactRegistry } from '../registry/registry.js';
import { toAppError } from './error-map.js';
import { hubRoutes } from './hub/index.js';
import { idempotencyGuard } from './idempotency.js';
import type { RouteDeps, TaskIsolation } from './context.js';
import { registerRoutes } from './routes/index.js';
import { type AuditLogDeps, publicAuditLogRoutes } from './routes/audit-log.js';
import type { IdempotencyRecord } from '../audit/journal.js';
import type { LogLocator } from '../workload/logs.js';
import type { DeploymentDeps } from '../inference/deployments.js';
import { consoleRoutes } from './console.js';
import { SiteMetrics } from '../metering/site-metrics.js';
import { budgetGate } from '../metering/budget-gate.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
    /** Why a bearer key was refused; answered once the rate limiter has counted the attempt. */
    authFailure?: AppError;
    idempotency?: IdempotencyRecord;
  }
  interface FastifyContextConfig {
    /** false for the few routes that need no API key. */
    auth?: boolean;
    /** Success status of a creating route; enables Idempotency-Key handling. */
    idempotent?: number;
  }
}

export interface AppOptions {
  readonly store: Store;
  readonly logger?: FastifyServerOptions['logger'];
  /** How long a verified key stays cached; bounds how late a revocation takes effect elsewhere. */
  readonly authCacheTtlMs?: number;
  /** Requests per minute per API key (and per address on routes that need no key, e.g. /healthz). */
  readonly rateLimitPerMinute?: number;
  /**
   * Requests per minute per client address to routes that need a key, without a valid one (none,
   * or one that failed): default the lower of 600 and rateLimitPerMinute.
   */
  readonly unauthenticatedRateLimitPerMinute?: number;
  /** How long Idempotency-Key responses are replayed; default 24 h. */
  readonly idempotencyTtlMs?: number;
  readonly bodyLimitBytes?: number;
  /** Called after changes the scheduler reacts to (submit, cancel, quota and fleet changes). */
  readonly onStateChange?: () => void;
  readonly onCancelled?: (workloadId: string) => void;
  readonly workdirRoot?: string;
  readonly logs?: LogLocator;
  /** The executor's task isolation, for /readyz and node listings. */
  readonly isolation?: TaskIsolation;
  /** Whether this replica runs the control loops, and its lease epoch (PostgreSQL), for /readyz and /metrics. */
  readonly leadership?: () => { readonly leader: boolean; readonly epoch?: number };
  /** The model and dataset registry: its REST routes and the Hub protocol under /hub. */
  readonly registry?: ArtifactRegistry;
  /** Deployments: their REST routes (how replicas run here). */
  readonly deployments?: DeploymentDeps;
  /**
   * The inference gateway: requests under /v1 go straight to it from the HTTP server (before
   * fastify's routing, so its hot path stays light); its metrics join /metrics.
   */
  readonly gateway?: {
    handle(req: IncomingMessage, res: ServerResponse): void;
    readonly metrics: Registry;
  };
  /** The verifiable audit log: its public routes (/audit/…) and receipts under /api/v1. */
  readonly auditLog?: AuditLogDeps;
  /** Shared with the gateway so a revocation reaches both at once; default: the app's own. */
  readonly authenticator?: Authenticator;
  /** Console sign-in: OpenID Connect and the public URL (session cookies work without). */
  readonly console?: ConsoleAuthOptions;
  /** Kueue-style scheduler and quota series on /metrics (the loops feed its counters); default: gauges only. */
  readonly siteMetrics?: SiteMetrics;
  /** Compliance documents' energy rules and sub-processors (default: from the environment). */
  readonly compliance?: RouteDeps['compliance'];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const DEFAULT_UNAUTHENTICATED_PER_MINUTE = 600;

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimitBytes ?? 1024 * 1024,
    requestIdHeader: false,
    // One log line per request (written in onResponse) instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Path parameters as long as the longest the schemas accept (a project ref `org.project` is up
    // to 127 characters); longer ones and URLs that are not valid percent-encoding are refused
    // with the error envelope, not fastify's own body.
    routerOptions: { maxParamLength: 200 },
    frameworkErrors: (err, _req, reply) => {
      const e =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new AppError('INVALID_ARGUMENT', 'a path parameter is longer than 200 characters')
          : err.code === 'FST_ERR_BAD_URL'
            ? new AppError('INVALID_ENCODING', 'the URL is not valid percent-encoded UTF-8')
            : toAppError(err);
      (reply as FastifyReply).status(e.status).send(e.toJSON());
    },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Bodies are validated strictly (no coercion, unknown fields rejected); query strings and path
    // parameters are coerced from text.
    ajv: { customOptions: {} },
    // What Node's HTTP parser refuses (headers over maxHeaderSize: 431) in the error envelope too.
    clientErrorHandler: clientError,
    ...(opts.gateway ? { serverFactory: gatewayFront(opts.gateway.handle) } : {}),
  });

  // Bodies are read as bytes and must be UTF-8: decoding would turn bad bytes into U+FFFD unseen.
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    if (!isUtf8(body)) return done(invalidUtf8Body(), undefined);
    parseJson(req, body.toString('utf8'), done);
  });
  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_req, body: Buffer, done) => {
    if (!isUtf8(body)) return done(invalidUtf8Body(), undefined);
    done(null, body.toString('utf8'));
  });
  // Path and query text: invalid UTF-8 or NUL in them is refused before any route sees it.
  app.addHook('onRequest', async (req) => checkUrlEncoding(req.url));

  const strictAjv = addFormats.default(
    new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, strict: false, allErrors: true }),
  );
  const looseAjv = addFormats.default(
    new Ajv({ coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false, allErrors: true }),
  );
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : looseAjv).compile(schema));

  const auth = opts.authenticator ?? new Authenticator(opts.store.db, opts.authCacheTtlMs ?? 1000);
  const sessions = new SessionAuthenticator(opts.store.db, auth, opts.authCacheTtlMs ?? 1000);
  await app.register(cookie);
  const metrics = createMetrics();
  (opts.siteMetrics ?? new SiteMetrics(opts.store.db)).register(metrics.registry);
  const leadership = opts.leadership;
  if (leadership) {
    new Gauge({
      name: 'fabrik_leader',
      help: '1 when this replica holds the control-loops lease and runs the scheduler and reconciler',
      registers: [metrics.registry],
      collect() {
        this.set(leadership().leader ? 1 : 0);
      },
    });
  }

  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    req.log.info(
      {
        method: req.method,
        url: req.url.split('?')[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        key: req.caller?.keyPrefix,
      },
      'request',
    );
    const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.latency.observe(labels, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500) req.log.error({ err }, 'request failed');
    if (appErr.code === 'RATE_LIMITED' && (err as any).retryAfter) reply.header('retry-after', (err as any).retryAfter);
    reply.status(appErr.status).send(appErr.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new AppError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    reply.status(404).send(e.toJSON());
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fabrik',
        version: '0.1.0',
        description: 'Control plane of a sovereign AI factory: tenants, quotas, fleet, audit.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'fbk_… API key' } } },
      security: [{ apiKey: [] }],
    },
  });

  const perKey = opts.rateLimitPerMinute ?? 60_000;
  const perAddress = opts.unauthenticatedRateLimitPerMinute ?? Math.min(DEFAULT_UNAUTHENTICATED_PER_MINUTE, perKey);
  const consoleAuth = { ...opts.console, sessions, perAddressPerMinute: perAddress };
  await app.register(rateLimit, {
    global: true,
    // Its hook runs after the authentication hook (route hooks come last), so it knows the caller.
    max: (_req, key) => (key.startsWith('anon:') ? perAddress : perKey),
    timeWindow: 60_000,
    // One bucket per authenticated key, by its public prefix, so secrets never become map keys.
    // A request without a valid key (none, or one that failed) where one is needed costs its client
    // address, from a lower budget: made-up keys must not each get a bucket of their own. Routes
    // that need no key (health, metrics, OpenAPI) count per address at the normal budget, so probes
    // are not starved; routes outside /api/v1 that check keys themselves, per presented key.
    keyGenerator: (req) => {
      if (req.caller) return `key:${req.caller.keyPrefix}`;
      if (req.authFailure) return `anon:${req.ip}`;
      const h = req.headers.authorization;
      const presented = h?.startsWith('Bearer ') ? parseToken(h.slice(7)) : null;
      return presented ? `key:${presented.prefix}` : `ip:${req.ip}`;
    },
    errorResponseBuilder: (_req, ctx) =>
      Object.assign(
        new AppError(
          'RATE_LIMITED',
          `rate limit of ${ctx.max} requests per minute exceeded; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
        ),
        {
          statusCode: 429,
          retryAfter: Math.ceil(ctx.ttl / 1000),
        },
      ),
  });

  app.get('/healthz', { schema: { hide: true }, config: { auth: false } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true }, config: { auth: false } }, async (_req, reply) => {
    const r = await readiness(opts.store);
    reply.status(r.ok ? 200 : 503).send({
      status: r.ok ? 'ready' : 'not ready',
      detail: r.detail,
      ...(opts.isolation ? { isolation: { level: opts.isolation.level, summary: opts.isolation.summary } } : {}),
      ...opts.leadership?.(),
    });
  });
  app.get('/metrics', { schema: { hide: true }, config: { auth: false } }, async (_req, reply) => {
    const text = await metrics.registry.metrics();
    const gateway = opts.gateway ? await opts.gateway.metrics.metrics() : '';
    reply.header('content-type', metrics.registry.contentType).send(gateway ? `${text}\n${gateway}` : text);
  });
  app.get('/openapi.json', { schema: { hide: true }, config: { auth: false } }, async () => app.swagger());

  await app.register(
    async (api) => {
      api.addHook('onRequest', async (req) => {
        if (req.routeOptions.config.auth === false) return;
        try {
          // A console session cookie counts only without an Authorization header: bearer requests are unchanged.
          const byCookie = req.headers.authorization ? undefined : await callerFromCookie(req, sessions);
          req.caller = byCookie ?? (await auth.authenticate(req.headers.authorization));
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'UNAUTHENTICATED')) throw err;
          req.authFailure = err;
        }
      });
      // The rate limiter has now counted a failed authentication against the client address; the
      // 401 comes before any body is read.
      api.addHook('preParsing', async (req, _reply, payload) => {
        if (req.authFailure) throw req.authFailure;
        return payload;
      });
      api.addHook('preValidation', async (req) => checkJsonBody(req.body));
      api.addHook('preHandler', idempotencyGuard(opts.store, opts.idempotencyTtlMs));
      await registerRoutes(api, {
        store: opts.store,
        onKeyRevoked: (prefix) => auth.invalidate(prefix),
        onStateChange: opts.onStateChange,
        onCancelled: opts.onCancelled,
        workdirRoot: opts.workdirRoot,
        logs: opts.logs,
        isolation: opts.isolation,
        registry: opts.registry,
        deployments: opts.deployments,
        auditLog: opts.auditLog,
        compliance: opts.compliance,
        submissionGate: budgetGate,
      });
      await sessionRoutes(api, { store: opts.store, keys: auth, console: consoleAuth });
    },
    { prefix: '/api/v1' },
  );
  await oidcRoutes(app, { store: opts.store, keys: auth, console: consoleAuth });
  if (opts.registry) await hubRoutes(app, { store: opts.store, registry: opts.registry, auth });
  const auditLog = opts.auditLog;
  if (auditLog) {
    // Public routes, but bodies are held to the same text rules as under /api/v1.
    await app.register(async (scope) => {
      scope.addHook('preValidation', async (req) => checkJsonBody(req.body));
      await publicAuditLogRoutes(scope, opts.store, auditLog);
    });
  }
  // The web console at `/` (web/dist), last: its index answers GETs no other route claims.
  await consoleRoutes(app);

  return app;
}

/** The HTTP server in front of fastify: /v1 (the OpenAI-compatible gateway) bypasses fastify. */
function gatewayFront(gateway: (req: IncomingMessage, res: ServerResponse) => void) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
    createServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/v1' || url.startsWith('/v1/') || url.startsWith('/v1?')) gateway(req, res);
      else handler(req, res);
    });
}

function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fabrik_' });
  const requests = new Counter({
    name: 'fabrik_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'fabrik_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return { registry, requests, latency };
}

/** How deep a request body may nest: deeper is no resource of ours, and would overflow recursion. */
const MAX_BODY_DEPTH = 64;
/** With the u flag, a surrogate matches only when it is not half of a pair. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * What JSON.parse accepts but fabrik cannot take: nesting beyond MAX_BODY_DEPTH, strings with
 * lone UTF-16 surrogates (not Unicode, so not I-JSON, and audit entries are canonical I-JSON), and
 * NUL characters in strings (PostgreSQL cannot store them, SQLite would, and C tools cut there).
 * Checked without recursion, before schema validation.
 */
function checkJsonBody(body: unknown): void {
  if (body === null || typeof body !== 'object') {
    if (typeof body === 'string') checkText(body);
    return;
  }
  const stack: [unknown, number][] = [[body, 1]];
  while (stack.length) {
    const [value, depth] = stack.pop()!;
    if (depth > MAX_BODY_DEPTH)
      throw new AppError('INVALID_JSON', `request body nests deeper than ${MAX_BODY_DEPTH} levels`);
    for (const [k, v] of Object.entries(value as object)) {
      checkText(k);
      if (typeof v === 'string') checkText(v);
      else if (v !== null && typeof v === 'object') stack.push([v, depth + 1]);
    }
  }
}

function checkText(s: string): void {
  if (s.includes('\u0000'))
    throw new AppError('INVALID_ENCODING', 'request body holds a NUL character (\\u0000) in a string');
  if (LONE_SURROGATE.test(s)) throw loneSurrogate();
}

function invalidUtf8Body(): AppError {
  return new AppError('INVALID_ENCODING', 'request body is not valid UTF-8');
}

/** Runs of percent escapes: each run must decode to UTF-8 without NUL. */
const ESCAPES = /(?:%[0-9A-Fa-f]{2})+/g;

function checkUrlEncoding(url: string): void {
  if (!url.includes('%')) return;
  for (const [run] of url.matchAll(ESCAPES)) {
    const bytes = Buffer.from(run.replaceAll('%', ''), 'hex');
    if (bytes.includes(0)) throw new AppError('INVALID_ENCODING', 'the URL holds a NUL character (%00)');
    if (!isUtf8(bytes)) throw new AppError('INVALID_ENCODING', 'the URL is not valid percent-encoded UTF-8');
  }
}

/**
 * Answers what Node's HTTP parser refuses before fastify sees a request (as fastify's default
 * handler does), in the error envelope: 431 for a request line or headers over maxHeaderSize.
 */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new AppError('HEADERS_TOO_LARGE', 'the request line and headers are larger than this server reads')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new AppError('REQUEST_TIMEOUT', 'the request did not arrive in time')
        : new AppError('INVALID_ARGUMENT', 'malformed HTTP request');
  const body = JSON.stringify(e.toJSON());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

function loneSurrogate(): AppError {
  return new AppError(
    'INVALID_JSON',
    'request body holds a lone UTF-16 surrogate (\\ud800–\\udfff); send valid Unicode',
  );
}
