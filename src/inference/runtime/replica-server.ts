// The HTTP face of a serving replica: OpenAI-compatible endpoints on node:http (a replica serves
// one model to one gateway; a framework would only add start-up time and memory). It parses and
// checks requests, formats answers and streams exactly as OpenAI does, so the official clients work
// unchanged; tokens, bounds and slots are the engine's business (./llamacpp-engine.ts).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ChatMessage,
  type Completion,
  EngineError,
  type LlamaEngine,
  type Prompt,
  type Sampling,
} from './llamacpp-engine.js';

/** What the server needs of an engine (LlamaEngine; a fake in tests). */
export type ReplicaEngine = Pick<LlamaEngine, 'prepare' | 'generate' | 'embed' | 'load' | 'stopAccepting'>;

export interface ReplicaServerOptions {
  /** Requests get 503 until it resolves; /health turns 200 then. */
  engine: Promise<ReplicaEngine> | ReplicaEngine;
  /** The model name in answers and /v1/models. */
  name: string;
  host?: string;
  port?: number;
  /** Hex SHA-256 of the bearer token /v1 requires; default env FABRIK_REPLICA_TOKEN_SHA256; unset: no auth. */
  tokenSha256?: string;
  log?: (event: Record<string, unknown>) => void;
}

export interface ReplicaServer {
  port: number;
  /** Stops accepting, lets running requests finish for up to `graceMs` (default 10 s), then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

const MAX_BODY = 8 << 20;

type Obj = Record<string, unknown>;

const bad = (message: string, param: string | null = null) => new EngineError(400, message, null, param);

export async function startReplicaServer(opts: ReplicaServerOptions): Promise<ReplicaServer> {
  const log = opts.log ?? (() => {});
  const expected = parseDigest(opts.tokenSha256 ?? process.env.FABRIK_REPLICA_TOKEN_SHA256);
  const created = Math.floor(Date.now() / 1000);
  let engine: ReplicaEngine | undefined;
  let loadError: Error | undefined;
  Promise.resolve(opts.engine).then(
    (e) => {
      engine = e;
    },
    (err: Error) => {
      loadError = err;
    },
  );
  let closing = false;
  const open = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    handle(req, res).catch((err) => {
      // A client that left (and aborted its request) has nobody to tell.
      if (res.destroyed) return;
      if (!(err instanceof EngineError)) log({ event: 'error', path: req.url, error: (err as Error).message });
      sendError(res, err instanceof EngineError ? err : new EngineError(500, 'internal error'));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      if (loadError) return send(res, 500, { status: 'failed', error: loadError.message });
      return send(res, engine && !closing ? 200 : 503, { status: engine ? (closing ? 'stopping' : 'ok') : 'loading' });
    }
    if (path === '/load') return send(res, 200, engine?.load() ?? { inflight: 0, queued: 0, slots: 0 });
    const route = ROUTES[path];
    if (!route) throw new EngineError(404, `Unknown request URL: ${req.method} ${path}`, 'unknown_url');
    if (req.method !== route.method)
      throw new EngineError(
        405,
        `Method ${req.method} not allowed on ${path}; use ${route.method}`,
        'method_not_allowed',
      );
    if (expected && !authorized(req.headers.authorization, expected)) {
      res.setHeader('www-authenticate', 'Bearer');
      throw new EngineError(401, 'Incorrect API key provided.', 'invalid_api_key');
    }
    if (path === '/v1/models')
      return send(res, 200, {
        object: 'list',
        data: [{ id: opts.name, object: 'model', created, owned_by: 'fabrik' }],
      });
    if (closing) throw new EngineError(503, 'the replica is shutting down', 'shutting_down', null, 'server_error', 1);
    if (loadError) throw new EngineError(500, `the model failed to load: ${loadError.message}`, 'model_load_failed');
    if (!engine) throw new EngineError(503, 'the model is still loading', 'model_loading', null, 'server_error', 1);
    const body = await readJson(req);
    if (path === '/v1/embeddings') return embeddings(engine, body, res);
    return complete(engine, route.kind!, body, res);
  }

  async function embeddings(e: ReplicaEngine, body: Obj, res: ServerResponse): Promise<void> {
    const input = body.input;
    const inputs = typeof input === 'string' ? [input] : input;
    if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every((x) => typeof x === 'string'))
      throw bad('input must be a string or a non-empty array of strings', 'input');
    // The official clients ask for base64 (little-endian float32) unless told otherwise.
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64')
      throw bad('encoding_format must be "float" or "base64"', 'encoding_format');
    const { vectors, promptTokens } = await e.embed(inputs as string[]);
    const encode = (v: number[]) =>
      format === 'float' ? v : Buffer.from(new Float32Array(v).buffer).toString('base64');
    send(res, 200, {
      object: 'list',
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encode(v) })),
      model: opts.name,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  async function complete(e: ReplicaEngine, kind: 'chat' | 'text', body: Obj, res: ServerResponse): Promise<void> {
    const prompt: Prompt =
      kind === 'chat' ? { messages: parseMessages(body.messages) } : { text: parsePrompt(body.prompt) };
    const prepared = e.prepare(prompt, parseSampling(body));
    const stream = optional(body, 'stream', 'boolean') === true;
    const includeUsage = stream && (body.stream_options as Obj | undefined)?.include_usage === true;
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('base64url')}`;
    const base = {
      id,
      object: kind === 'chat' ? (stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: opts.name,
    };
    // The client going away (closed socket) stops the generation and frees its slot.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(new Error('client disconnected'));
    });

    const aborted = (r: Completion) => {
      if (r.aborted) log({ event: 'aborted', id, promptTokens: r.promptTokens, completionTokens: r.completionTokens });
      return r.aborted;
    };

    if (!stream) {
      const r = await e.generate(prepared, { signal: abort.signal });
      if (aborted(r)) return;
      const choice =
        kind === 'chat'
          ? { index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason }
          : { index: 0, text: r.text, logprobs: null, finish_reason: r.finishReason };
      return send(res, 200, { ...base, choices: [choice], usage: usage(r) });
    }

    // Headers go out once a slot is taken, so that a full queue is still a plain 503.
    const chunk = (delta: string | null, finish: string | null, first = false) => {
      const choice =
        kind === 'chat'
          ? {
              index: 0,
              delta: finish ? {} : first ? { role: 'assistant', content: '' } : { content: delta },
              logprobs: null,
              finish_reason: finish,
            }
          : { index: 0, text: delta ?? '', logprobs: null, finish_reason: finish };
      event(res, { ...base, choices: [choice], ...(includeUsage ? { usage: null } : {}) });
    };
    const start = () => {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
      if (kind === 'chat') chunk(null, null, true);
    };
    try {
      const r = await e.generate(prepared, { signal: abort.signal, onStart: start, onText: (t) => chunk(t, null) });
      if (aborted(r)) return;
      chunk(null, r.finishReason);
      if (includeUsage) event(res, { ...base, choices: [], usage: usage(r) });
    } catch (err) {
      if (!res.headersSent) throw err;
      log({ event: 'error', id, error: (err as Error).message });
      const e2 = err instanceof EngineError ? err : new EngineError(500, 'generation failed');
      event(res, errorBody(e2));
    }
    if (!res.writableEnded && !res.destroyed) res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    async close(graceMs = 10_000) {
      closing = true;
      engine?.stopAccepting();
      const stopped = new Promise((r) => server.close(r));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      server.closeAllConnections();
      await stopped;
    },
  };
}

const ROUTES: Record<string, { method: string; kind?: 'chat' | 'text' }> = {
  '/v1/models': { method: 'GET' },
  '/v1/chat/completions': { method: 'POST', kind: 'chat' },
  '/v1/completions': { method: 'POST', kind: 'text' },
  '/v1/embeddings': { method: 'POST' },
};

function parseDigest(hex: string | undefined): Buffer | undefined {
  if (hex === undefined || hex === '') return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('FABRIK_REPLICA_TOKEN_SHA256 must be 64 hex digits');
  return Buffer.from(hex, 'hex');
}

/** Compares digests, not tokens: equal length always, and timingSafeEqual leaks nothing of either. */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  return timingSafeEqual(createHash('sha256').update(m[1]).digest(), expected);
}

function usage(r: { promptTokens: number; completionTokens: number }) {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
  };
}

function errorBody(e: EngineError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

function sendError(res: ServerResponse, e: EngineError): void {
  if (e.retryAfter !== undefined && !res.headersSent) res.setHeader('retry-after', String(e.retryAfter));
  send(res, e.status, errorBody(e));
}

/** One server-sent event: `data:` lines only, as OpenAI sends them (no `event:` names). */
function event(res: ServerResponse, body: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(body)}\n\n`);
}

async function readJson(req: IncomingMessage): Promise<Obj> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > MAX_BODY) throw new EngineError(413, `request body over ${MAX_BODY} bytes`, 'body_too_large');
    parts.push(part);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw bad('the body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object');
  return body as Obj;
}

/** A field of the given type or absent (null counts as absent, as OpenAI treats it). */
function optional<T extends 'number' | 'boolean' | 'string'>(
  body: Obj,
  key: string,
  type: T,
): (T extends 'number' ? number : T extends 'boolean' ? boolean : string) | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) throw bad(`${key} must be a ${type}`, key);
  return v as any;
}

function parseSampling(body: Obj): Sampling {
  const n = optional(body, 'n', 'number');
  if (n !== undefined && n !== 1) throw bad('only n = 1 is supported', 'n');
  // Refused rather than ignored: an answer that silently lacks them would be wrong, not just plain.
  for (const key of ['tools', 'functions'])
    if (Array.isArray(body[key]) && (body[key] as unknown[]).length > 0)
      throw bad(`${key} are not supported here`, key);
  if (body.logprobs === true || typeof body.logprobs === 'number')
    throw bad('logprobs are not supported here', 'logprobs');
  const format = (body.response_format as Obj | undefined)?.type;
  if (format !== undefined && format !== 'text')
    throw bad('only response_format "text" is supported here', 'response_format');
  const maxKey =
    body.max_completion_tokens !== undefined && body.max_completion_tokens !== null
      ? 'max_completion_tokens'
      : 'max_tokens';
  const maxTokens = optional(body, maxKey, 'number');
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1))
    throw bad(`${maxKey} must be a positive integer`, maxKey);
  const temperature = optional(body, 'temperature', 'number');
  if (temperature !== undefined && (temperature < 0 || temperature > 2))
    throw bad('temperature must be between 0 and 2', 'temperature');
  const topP = optional(body, 'top_p', 'number');
  if (topP !== undefined && (topP <= 0 || topP > 1)) throw bad('top_p must be greater than 0 and at most 1', 'top_p');
  const seed = optional(body, 'seed', 'number');
  if (seed !== undefined && !Number.isInteger(seed)) throw bad('seed must be an integer', 'seed');
  const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined);
  if (
    stop !== undefined &&
    (!Array.isArray(stop) || stop.length > 4 || !stop.every((s) => typeof s === 'string' && s !== ''))
  )
    throw bad('stop must be a string or an array of at most 4 non-empty strings', 'stop');
  return { maxTokens, temperature, topP, seed, stop: stop as string[] | undefined };
}

function parseMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw bad('messages must be a non-empty array', 'messages');
  return messages.map((m, i) => {
    const param = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) throw bad(`${param} must be an object`, param);
    const { role, content } = m as Obj;
    // `developer` is the newer name of `system`.
    const r = role === 'developer' ? 'system' : role;
    if (r !== 'system' && r !== 'user' && r !== 'assistant')
      throw bad(
        `${param}.role must be system, developer, user or assistant (got ${JSON.stringify(role)})`,
        `${param}.role`,
      );
    return { role: r, content: textContent(content, `${param}.content`, r === 'assistant') };
  });
}

/** A string, or text parts (`[{type:'text', text}]`) joined; other part types need a multimodal model. */
function textContent(content: unknown, param: string, nullable: boolean): string {
  if (typeof content === 'string') return content;
  if (nullable && (content === null || content === undefined)) return '';
  if (!Array.isArray(content)) throw bad(`${param} must be a string or an array of text parts`, param);
  return content
    .map((p, j) => {
      if (p?.type !== 'text' || typeof p.text !== 'string') throw bad(`${param}[${j}] must be a text part`, param);
      return p.text as string;
    })
    .join('');
}

function parsePrompt(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') return prompt[0];
  throw bad('prompt must be a string (or an array of one string)', 'prompt');
}
