// The inference gateway: a stateless OpenAI-compatible HTTP front that routes calls to the serving
// replicas of a deployment. It stands on the ports of ../types.ts (routing table, key verifier,
// limit source, usage sink) and a Limiter, and keeps no state that another gateway process needs:
// run as many as the traffic asks for (with the Redis limiter they share exact limits).
//
// A call, top-down:
//   x-request-id (kept when sane, else new; on every answer) → route by path → verify the key and
//   read the body at once → parse and validate (400, 413) → resolve the model among the deployments
//   the key may use (404 alike for absent and forbidden; 400 when ambiguous) → reserve limits (429,
//   budgets 429 without retry) → ./call.ts: replica, hold, proxy, failover, meter.
//
// `handle` serves the paths under /v1/ (also given with the /v1 prefix already stripped);
// ./server.ts wraps it in a node:http server with /metrics and /healthz.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type {
  DeploymentLoad,
  GatewayCaller,
  KeyVerifier,
  LimitSource,
  RoutingSource,
  RoutingTable,
  UsageSink,
} from '../types.js';
import { type Call, type CallEnv, runCall } from './call.js';
import {
  INVALID_API_KEY,
  type OpenAIError,
  invalidRequest,
  limitError,
  modelNotFound,
  notFound,
  sendError,
  wrongMethod,
} from './errors.js';
import { HoldQueues } from './hold.js';
import type { Limiter } from './limits.js';
import { GatewayMetrics } from './metrics.js';
import { readBody, requestIdOf } from './request.js';
import { EMPTY_TABLE, type ReplicaSlot, type RouteIndex, buildIndex, pick, resolveModel } from './routing.js';
import { type UpstreamOptions, Upstreams } from './upstream.js';
import { type Endpoint, affinityKey, estimateTokens, parseBody, requestedMaxTokens, validateBody } from './validate.js';

export interface GatewayOptions {
  readonly routing: RoutingSource;
  readonly keys: KeyVerifier;
  readonly limits: LimitSource;
  readonly usage: UsageSink;
  readonly limiter: Limiter;
  /** How long a call waits for a ready replica (scale from zero) before a 503 (default 30 s). */
  readonly holdTimeoutMs?: number;
  /** Calls held per deployment at most; more get a 503 at once (default 1000). */
  readonly maxHeld?: number;
  /** Outstanding calls the affinity-preferred replica may have beyond the least loaded (default 4). */
  readonly loadCap?: number;
  /** Other replicas a call may try after one failed before its first byte (default 2). */
  readonly retries?: number;
  /** Hard cap of outstanding calls per replica; beyond it calls are held (default: none). */
  readonly maxInflightPerReplica?: number;
  /** How long a replica this gateway failed to reach stays out if the table keeps it ready (default 30 s). */
  readonly quarantineMs?: number;
  /** Largest request body (default 8 MiB); larger: 413. */
  readonly maxBodyBytes?: number;
  /** Completion tokens reserved for a call that names no max_tokens (default 512, within the context). */
  readonly defaultMaxTokens?: number;
  /** Retry-After of a 503 for want of a replica (default 5 s). */
  readonly unavailableRetryAfterMs?: number;
  /** Shortest interval between two `routing.demand()` calls for one deployment (default 1 s). */
  readonly demandIntervalMs?: number;
  readonly upstream?: UpstreamOptions;
  readonly log?: (message: string) => void;
}

export interface Gateway {
  handle(req: IncomingMessage, res: ServerResponse): void;
  load(): DeploymentLoad[];
  readonly metrics: Registry;
  /** Stops following the routing table, answers held calls (503), closes the replica connections, flushes the usage sink. */
  close(): Promise<void>;
}

const ENDPOINTS: Readonly<Record<string, Endpoint>> = {
  '/chat/completions': 'chat.completions',
  '/completions': 'completions',
  '/embeddings': 'embeddings',
};

interface Stats {
  inflight: number;
  queued: number;
  lastRequestAt: number;
  requests: number;
}

export function createGateway(opts: GatewayOptions): Gateway {
  const log = opts.log ?? ((m: string) => process.stderr.write(`fabrik gateway: ${m}\n`));
  const maxBodyBytes = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const defaultMaxTokens = opts.defaultMaxTokens ?? 512;
  const demandIntervalMs = opts.demandIntervalMs ?? 1000;
  const pickOptions = {
    loadCap: opts.loadCap ?? 4,
    maxInflight: opts.maxInflightPerReplica ?? Number.POSITIVE_INFINITY,
    quarantineMs: opts.quarantineMs ?? 30_000,
  };
  let index: RouteIndex = buildIndex(EMPTY_TABLE);
  const stats = new Map<string, Stats>();
  const lastDemand = new Map<string, number>();
  const upstreams = new Upstreams(opts.upstream);
  const metrics = new GatewayMetrics(() => loadWithNames());

  const statsOf = (deploymentId: string): Stats => {
    let s = stats.get(deploymentId);
    if (s === undefined) {
      s = { inflight: 0, queued: 0, lastRequestAt: 0, requests: 0 };
      stats.set(deploymentId, s);
    }
    return s;
  };

  const take = (deploymentId: string, key: number): ReplicaSlot | undefined => {
    const route = index.byId.get(deploymentId);
    if (route === undefined) return undefined;
    const slot = pick(route, key, Date.now(), pickOptions);
    if (slot !== undefined) slot.outstanding++;
    return slot;
  };
  const holds = new HoldQueues<ReplicaSlot>(take, {
    maxHeld: opts.maxHeld ?? 1000,
    timeoutMs: opts.holdTimeoutMs ?? 30_000,
  });

  /** Switches to a new routing table: a new index (slots kept), unused pools closed, held calls served. */
  const apply = (table: RoutingTable) => {
    if (table.version === index.table.version) return;
    const next = buildIndex(table, index);
    for (const [key, slot] of index.slots)
      if (!next.slots.has(key)) {
        const route = index.byId.get(slot.deploymentId);
        if (route)
          metrics.forgetReplica({ project: route.deployment.project, deployment: route.qualified, replica: slot.id });
      }
    index = next;
    upstreams.retain(next.urls);
    holds.drainAll();
  };
  apply(opts.routing.current());
  const unsubscribe = opts.routing.subscribe(apply);

  const env: CallEnv = {
    upstreams,
    holds,
    limiter: opts.limiter,
    metrics,
    record: (r) => opts.usage.record(r),
    log,
    pickOptions,
    retries: opts.retries ?? 2,
    unavailableRetryAfterMs: opts.unavailableRetryAfterMs ?? 5000,
    route: (id) => index.byId.get(id),
    take,
    untake(slot) {
      slot.outstanding--;
      if (!holds.empty) holds.drain(slot.deploymentId);
    },
    failed(slot, reason) {
      const route = index.byId.get(slot.deploymentId);
      metrics.upstreamFailure(route?.qualified ?? '', reason);
      if (slot.failedAt !== 0) return; // already out; reported once per mark
      slot.failedAt = Date.now();
      log(`replica ${slot.id} of ${route?.qualified ?? slot.deploymentId} out of rotation: ${reason}`);
      opts.routing.replicaFailed(slot.deploymentId, slot.id, reason);
    },
    busy(slot, ms) {
      metrics.upstreamFailure(index.byId.get(slot.deploymentId)?.qualified ?? '', 'busy');
      slot.backoffUntil = Date.now() + ms;
      // Held calls may take it again when the rest is over (no table or finished call may come sooner).
      setTimeout(() => holds.drain(slot.deploymentId), ms).unref();
    },
    demand(id) {
      const now = Date.now();
      if (now - (lastDemand.get(id) ?? 0) < demandIntervalMs) return;
      lastDemand.set(id, now);
      opts.routing.demand(id);
    },
    stats: statsOf,
  };

  function loadWithNames(): (DeploymentLoad & { deployment: string })[] {
    const out: (DeploymentLoad & { deployment: string })[] = [];
    for (const route of index.byId.values()) {
      const s = stats.get(route.deployment.id);
      out.push({
        deploymentId: route.deployment.id,
        deployment: route.qualified,
        inflight: s?.inflight ?? 0,
        queued: s?.queued ?? 0,
        lastRequestAt: s?.lastRequestAt ?? 0,
        requests: s?.requests ?? 0,
      });
    }
    return out;
  }

  const fail = (res: ServerResponse, e: OpenAIError, deployment: string, endpoint: string) => {
    metrics.request(deployment, endpoint, e.status);
    sendError(res, e);
  };

  async function serve(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const arrivedAt = performance.now();
    const table = opts.routing.current();
    if (table.version !== index.table.version) apply(table);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    if (path.startsWith('/v1/')) path = path.slice(3);
    if (path === '/models' || path.startsWith('/models/')) return models(req, res, path);
    const endpoint = ENDPOINTS[path];
    if (endpoint === undefined) return fail(res, notFound(req), '', 'unknown');
    if (req.method !== 'POST') return fail(res, wrongMethod(req, 'POST'), '', endpoint);

    const [caller, raw] = await Promise.all([opts.keys.verify(req.headers.authorization), readBody(req, maxBodyBytes)]);
    if (raw === 'aborted') return;
    if (caller === undefined) return fail(res, INVALID_API_KEY, '', endpoint);
    if (!Buffer.isBuffer(raw)) {
      if (raw.close) res.setHeader('connection', 'close');
      const e: OpenAIError = {
        status: 413,
        message: `The request body is larger than the limit of ${maxBodyBytes} bytes.`,
        type: 'invalid_request_error',
        param: null,
        code: 'request_too_large',
      };
      return fail(res, e, '', endpoint);
    }
    const parsed = parseBody(raw);
    if (parsed.body === undefined) return fail(res, parsed.error, '', endpoint);
    const body = parsed.body;
    const invalid = validateBody(endpoint, body);
    if (invalid) return fail(res, invalid, '', endpoint);

    const model = body.model as string;
    const found = resolveModel(index, caller, model);
    if (found.kind === 'missing') return fail(res, modelNotFound(model), '', endpoint);
    if (found.kind === 'ambiguous') {
      const e = invalidRequest(
        `The model \`${model}\` names more than one deployment you can use; ask for one of: ${found.candidates.join(', ')}.`,
        'model',
        'ambiguous_model',
      );
      return fail(res, e, '', endpoint);
    }
    const route = found.route;
    const d = route.deployment;
    const s = statsOf(d.id);
    s.requests++;
    s.lastRequestAt = Date.now();
    const max = requestedMaxTokens(body);
    if (max !== undefined && max > d.contextSize) {
      const param = body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
      const e = invalidRequest(
        `${param} is too large: ${max}. This model's maximum context length is ${d.contextSize} tokens.`,
        param,
        'invalid_value',
      );
      return fail(res, e, route.qualified, endpoint);
    }

    // From here the call holds a reservation: a client that goes away must abort what runs for it.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const estimate = estimateTokens(endpoint, body, d.contextSize, defaultMaxTokens);
    const tokens = estimate.prompt + estimate.completion;
    const limits = opts.limits.limitsFor(caller, d);
    const reserved = await opts.limiter.reserve({ keyId: caller.keyId, projectId: d.projectId, limits, tokens });
    if (!reserved.ok) return fail(res, limitError(reserved, tokens), route.qualified, endpoint);
    if (abort.signal.aborted) {
      opts.limiter.release(reserved);
      return;
    }

    const stream = body.stream === true;
    const streamOptions = body.stream_options as { include_usage?: unknown } | null | undefined;
    const forwardUsage = stream && streamOptions?.include_usage === true;
    const call: Call = {
      requestId,
      arrivedAt,
      endpoint,
      path: `/v1${path}`,
      caller,
      route,
      // Streams always ask for the usage chunk (metering needs it); otherwise the body goes as it came.
      body:
        stream && !forwardUsage
          ? JSON.stringify({ ...body, stream_options: { ...streamOptions, include_usage: true } })
          : raw,
      stream,
      forwardUsage,
      key: affinityKey(endpoint, body, sessionOf(req)),
      estimate,
      reservation: reserved,
      res,
      signal: abort.signal,
    };
    await runCall(env, call);
  }

  async function models(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== 'GET') return fail(res, wrongMethod(req, 'GET'), '', 'models');
    const caller = await opts.keys.verify(req.headers.authorization);
    if (caller === undefined) return fail(res, INVALID_API_KEY, '', 'models');
    const list = listModels(index, caller);
    let answer: unknown = { object: 'list', data: list };
    if (path !== '/models') {
      let id: string;
      try {
        id = decodeURIComponent(path.slice('/models/'.length));
      } catch {
        id = path;
      }
      const found = resolveModel(index, caller, id);
      if (found.kind !== 'found') return fail(res, modelNotFound(id), '', 'models');
      answer = list.find((m) => m.id === id) ?? modelEntry(id, found.route.deployment);
    }
    const json = JSON.stringify(answer);
    metrics.request('', 'models', 200);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  }

  return {
    handle(req, res) {
      const requestId = requestIdOf(req);
      res.setHeader('x-request-id', requestId);
      serve(req, res, requestId).catch((err) => {
        log(`request ${requestId} failed: ${(err as Error).stack ?? err}`);
        if (!res.headersSent)
          sendError(res, { status: 500, message: 'internal error', type: 'server_error', param: null, code: null });
        else res.destroy();
      });
    },
    load: () => loadWithNames().map(({ deployment: _name, ...load }) => load),
    metrics: metrics.registry,
    async close() {
      unsubscribe();
      holds.releaseAll();
      await upstreams.close();
      await opts.usage.flush();
    },
  };
}

function sessionOf(req: IncomingMessage): string | undefined {
  const h = req.headers['x-session-id'] ?? req.headers['x-fabrik-session'];
  return typeof h === 'string' && h !== '' ? h : undefined;
}

interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

function modelEntry(id: string, d: { createdAt: number; project: string }): ModelEntry {
  return { id, object: 'model', created: Math.floor(d.createdAt / 1000), owned_by: d.project };
}

/** Every name of every deployment the caller may use; a name several of them share is listed qualified. */
function listModels(index: RouteIndex, caller: GatewayCaller): ModelEntry[] {
  const out: ModelEntry[] = [];
  for (const route of index.byId.values()) {
    const d = route.deployment;
    if (!caller.canUse(d.projectId)) continue;
    for (const name of new Set([d.name, ...d.aliases])) {
      const unique = resolveModel(index, caller, name).kind === 'found';
      out.push(modelEntry(unique ? name : `${d.project}/${name}`, d));
    }
  }
  return out;
}
