// One admitted call, from taking a replica to metering the answer:
//
//   take a replica (or hold until one is ready: scale from zero) → send the body → relay the answer
//     → reconcile the limiter's reservation, count metrics, hand a UsageRecord to the sink.
//
// Failover happens only before the client has seen a byte: a replica that refuses or resets the
// connection, or answers 502 or 503, is taken out of this gateway's rotation and the call goes to
// another replica (at most `retries` times). It is reported to the control plane as failed, unless
// it was a 503 with Retry-After — busy (queue full), loading, stopping — which only rests it for
// that long. Non-streamed answers
// are read whole before they are sent, so a replica dying in the middle of one is retried too.
// A stream is committed with its first event; a cut after that ends the client's stream with an
// error event and `data: [DONE]`. A client that goes away aborts the upstream request, so the
// replica frees its slot.
import type { ServerResponse } from 'node:http';
import type { GatewayCaller, UsageRecord } from '../types.js';
import { type OpenAIError, sendError, unavailable } from './errors.js';
import type { HoldQueues } from './hold.js';
import type { Limiter, Reservation } from './limits.js';
import type { GatewayMetrics } from './metrics.js';
import { type DeploymentRoute, type ReplicaSlot, hasLiveReplica, type PickOptions } from './routing.js';
import { type Upstreams, connectionFailure } from './upstream.js';
import { SseRelay, type Usage, scanUsage, streamErrorEvents } from './usage-scan.js';
import type { Endpoint } from './validate.js';

/** What a call needs of the gateway around it. */
export interface CallEnv {
  readonly upstreams: Upstreams;
  readonly holds: HoldQueues<ReplicaSlot>;
  readonly limiter: Limiter;
  readonly metrics: GatewayMetrics;
  readonly record: (r: UsageRecord) => void;
  readonly log: (message: string) => void;
  readonly pickOptions: PickOptions;
  readonly retries: number;
  readonly unavailableRetryAfterMs: number;
  /** The deployment's route in the current table (undefined once it left the table). */
  route(deploymentId: string): DeploymentRoute | undefined;
  /** A replica for the call now, counted outstanding; undefined when none can take it. */
  take(deploymentId: string, key: number): ReplicaSlot | undefined;
  /** The call is done with the replica (outstanding − 1, waiters may take it). */
  untake(slot: ReplicaSlot): void;
  /** The replica could not be reached: out of rotation here, reported to the control plane. */
  failed(slot: ReplicaSlot, reason: string): void;
  /** The replica asked for no calls for `ms` (503 with Retry-After): skipped that long, not reported. */
  busy(slot: ReplicaSlot, ms: number): void;
  /** Ask the control plane for a replica (debounced per deployment). */
  demand(deploymentId: string): void;
  stats(deploymentId: string): { inflight: number; queued: number };
}

export interface Call {
  readonly requestId: string;
  /** performance.now() when the call arrived. */
  readonly arrivedAt: number;
  readonly endpoint: Endpoint;
  /** `/v1/chat/completions` and so on. */
  readonly path: string;
  readonly caller: GatewayCaller;
  readonly route: DeploymentRoute;
  /** The body as it goes upstream. */
  readonly body: Buffer | string;
  readonly stream: boolean;
  /** Whether the client asked for the usage chunk of a stream itself. */
  readonly forwardUsage: boolean;
  /** Affinity key (0: none). */
  readonly key: number;
  readonly estimate: { readonly prompt: number; readonly completion: number };
  readonly reservation: Reservation;
  readonly res: ServerResponse;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

/** How the call ended, for metering. */
interface Outcome {
  status: number;
  slot?: ReplicaSlot;
  usage?: Usage;
  /** Data events relayed (streams): the completion count when upstream reports no usage. */
  chunks: number;
  /** performance.now() of the first byte to the client (non-streamed) or of the first token (streamed). */
  firstTokenAt?: number;
  interrupted: boolean;
}

type Attempt = { readonly retry: true } | { readonly retry: false; readonly outcome: Outcome };

const RETRY: Attempt = { retry: true };
/** What a call that ended with the client gone reports (nginx's "client closed request"). */
const CLIENT_GONE = 499;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

export async function runCall(env: CallEnv, call: Call): Promise<void> {
  const id = call.route.deployment.id;
  const stats = env.stats(id);
  let outcome: Outcome = { status: CLIENT_GONE, chunks: 0, interrupted: true };
  let dispatched = false;
  try {
    for (let attempt = 0; ; attempt++) {
      const slot = await acquire(env, call);
      if (slot === 'aborted') break;
      if (slot === 'unavailable') {
        outcome = reply(call, noReplica(call, env.unavailableRetryAfterMs));
        break;
      }
      if (!dispatched) {
        dispatched = true;
        stats.inflight++;
      }
      const a = await attemptOn(env, call, slot);
      if (!a.retry) {
        outcome = a.outcome;
        break;
      }
      if (attempt >= env.retries) {
        outcome = reply(call, {
          status: 502,
          message: `No replica of ${call.route.qualified} could be reached (${attempt + 1} tried).`,
          type: 'server_error',
          param: null,
          code: 'upstream_unavailable',
        });
        break;
      }
    }
  } catch (err) {
    outcome = reply(call, { status: 500, message: 'internal error', type: 'server_error', param: null, code: null });
    env.log(`call ${call.requestId} failed: ${(err as Error).stack}`);
  } finally {
    if (dispatched) stats.inflight--;
    finish(env, call, outcome);
  }
}

function noReplica(call: Call, retryAfterMs: number): OpenAIError {
  return unavailable(
    `No replica of ${call.route.qualified} is ready; it is being started, try again shortly.`,
    'no_replica_ready',
    retryAfterMs,
  );
}

function reply(call: Call, e: OpenAIError): Outcome {
  sendError(call.res, e);
  return { status: e.status, chunks: 0, interrupted: false };
}

/** A replica for the call: at once if one can take it, else after holding. */
async function acquire(env: CallEnv, call: Call): Promise<ReplicaSlot | 'unavailable' | 'aborted'> {
  if (call.signal.aborted) return 'aborted';
  const id = call.route.deployment.id;
  const slot = env.take(id, call.key);
  if (slot !== undefined) return slot;
  const route = env.route(id);
  if (route === undefined || !hasLiveReplica(route, Date.now(), env.pickOptions)) env.demand(id);
  const stats = env.stats(id);
  stats.queued++;
  const held = await env.holds.hold(id, call.key, call.signal);
  stats.queued--;
  if (held.kind === 'granted') return held.slot;
  return held.kind === 'aborted' ? 'aborted' : 'unavailable';
}

async function attemptOn(env: CallEnv, call: Call, slot: ReplicaSlot): Promise<Attempt> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': call.requestId };
  if (slot.authorization !== undefined) headers.authorization = slot.authorization;
  if (call.stream) headers.accept = 'text/event-stream';
  try {
    let resp: Awaited<ReturnType<Upstreams['request']>>;
    try {
      resp = await env.upstreams.request({
        url: slot.url,
        path: call.path,
        headers,
        body: call.body,
        signal: call.signal,
      });
    } catch (err) {
      return upstreamError(env, call, slot, err);
    }
    const status = resp.statusCode;
    if (status === 502 || status === 503) {
      resp.body.dump().catch(() => {});
      const retryAfter = Number(resp.headers['retry-after']);
      if (status === 503 && retryAfter > 0) env.busy(slot, Math.min(retryAfter, 60) * 1000);
      else env.failed(slot, `HTTP ${status}`);
      return RETRY;
    }
    const type = String(resp.headers['content-type'] ?? 'application/json');
    if (call.stream && status === 200 && type.includes('text/event-stream'))
      return await relayStream(env, call, slot, resp);
    const headersAt = performance.now();
    let body: Buffer;
    try {
      body = Buffer.from(await resp.body.arrayBuffer());
    } catch (err) {
      return upstreamError(env, call, slot, err);
    }
    const res = call.res;
    if (res.destroyed) return { retry: false, outcome: { status: CLIENT_GONE, slot, chunks: 0, interrupted: true } };
    res.writeHead(status, { 'content-type': type, 'content-length': body.length });
    res.end(body);
    const usage = status === 200 ? scanUsage(body) : undefined;
    return { retry: false, outcome: { status, slot, usage, chunks: 0, firstTokenAt: headersAt, interrupted: false } };
  } finally {
    env.untake(slot);
  }
}

/**
 * An error talking to the replica before anything went to the client: a connection failure is
 * retried elsewhere; a timeout answers 504, anything else 502; a client gone ends the call.
 */
function upstreamError(env: CallEnv, call: Call, slot: ReplicaSlot, err: unknown): Attempt {
  if (call.signal.aborted)
    return { retry: false, outcome: { status: CLIENT_GONE, slot, chunks: 0, interrupted: true } };
  const reason = connectionFailure(err);
  if (reason !== undefined) {
    env.failed(slot, reason);
    return RETRY;
  }
  const timeout = /TIMEOUT/.test(String((err as { code?: string }).code));
  const outcome = reply(call, {
    status: timeout ? 504 : 502,
    message: timeout ? 'The replica did not answer in time.' : 'The replica answered with an error.',
    type: 'server_error',
    param: null,
    code: timeout ? 'upstream_timeout' : 'upstream_error',
  });
  return { retry: false, outcome: { ...outcome, slot } };
}

/** Relays a stream; retryable until its first event went to the client. */
function relayStream(
  env: CallEnv,
  call: Call,
  slot: ReplicaSlot,
  resp: Awaited<ReturnType<Upstreams['request']>>,
): Promise<Attempt> {
  const res = call.res;
  const relay = new SseRelay(call.forwardUsage);
  const body = resp.body;
  /** When the first event went to the client: from then on the stream is committed (no retry). */
  let firstByteAt: number | undefined;
  let firstTokenAt: number | undefined;
  const outcome = (interrupted: boolean, status = 200): Attempt => ({
    retry: false,
    outcome: { status, slot, usage: relay.usage, chunks: relay.chunks, firstTokenAt, interrupted },
  });
  return new Promise((resolve) => {
    body.on('data', (chunk: Buffer) => {
      const out = relay.push(chunk);
      if (out === '' || res.destroyed) return;
      if (firstByteAt === undefined) {
        firstByteAt = performance.now();
        res.writeHead(200, SSE_HEADERS);
      }
      if (firstTokenAt === undefined && relay.sawToken) firstTokenAt = performance.now();
      if (!res.write(out)) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    });
    body.on('end', () => {
      if (res.destroyed) return resolve(outcome(true, CLIENT_GONE));
      if (firstByteAt === undefined) {
        firstByteAt = performance.now();
        res.writeHead(200, SSE_HEADERS);
      }
      const cut = !relay.done;
      res.end(cut ? streamErrorEvents('The replica ended the stream before it was complete.') : undefined);
      resolve(outcome(cut));
    });
    body.on('error', (err: Error) => {
      if (call.signal.aborted || res.destroyed) return resolve(outcome(true, CLIENT_GONE));
      if (firstByteAt === undefined) return resolve(upstreamError(env, call, slot, err));
      res.end(streamErrorEvents('The connection to the replica was lost in the middle of the stream.'));
      resolve(outcome(true));
    });
  });
}

/** Settles the reservation, counts the metrics and records the usage of a finished call. */
function finish(env: CallEnv, call: Call, o: Outcome): void {
  const end = performance.now();
  const d = call.route.deployment;
  let tokensIn = 0;
  let tokensOut = 0;
  if (o.usage) {
    tokensIn = o.usage.prompt;
    tokensOut = o.usage.completion;
  } else if (o.slot !== undefined && (o.status === 200 || o.chunks > 0)) {
    // No usage reported: the prompt estimate, and for streams one token per chunk; a non-streamed
    // answer without usage keeps the whole estimate.
    tokensIn = call.estimate.prompt;
    tokensOut = call.stream ? o.chunks : call.estimate.completion;
  }
  // A call no replica answered gives everything back, its request too: it was never served.
  if (o.slot !== undefined) env.limiter.reconcile(call.reservation, tokensIn + tokensOut);
  else env.limiter.release(call.reservation);
  const ttftMs = (o.firstTokenAt ?? end) - call.arrivedAt;
  const durationMs = end - call.arrivedAt;
  // Streams: the pace after the first token; non-streamed: over the whole call.
  const generationMs = call.stream ? end - (o.firstTokenAt ?? end) : durationMs;
  const tps = tokensOut > 0 && generationMs > 0 ? (tokensOut * 1000) / generationMs : 0;
  const m = env.metrics;
  m.request(call.route.qualified, call.endpoint, o.status);
  if (o.slot)
    m.tokens({ project: d.project, deployment: call.route.qualified, replica: o.slot.id }, tokensIn, tokensOut);
  m.timing(call.route.qualified, call.endpoint, ttftMs, durationMs, tps);
  env.record({
    at: Date.now(),
    requestId: call.requestId,
    keyId: call.caller.keyId,
    orgId: d.orgId,
    projectId: d.projectId,
    deploymentId: d.id,
    replicaId: o.slot?.id ?? '',
    endpoint: call.endpoint,
    tokensIn,
    tokensOut,
    ttftMs,
    durationMs,
    status: o.status,
    streamed: call.stream,
    interrupted: o.interrupted,
  });
}
