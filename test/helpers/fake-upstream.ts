// A STAND-IN for a serving replica, not one: a minimal OpenAI-compatible HTTP server (node:http)
// that answers /v1/chat/completions, /v1/completions and /v1/embeddings, streamed or not, with
// made-up text and deterministic usage, for the gateway's tests and benchmark.
//
//   completion_tokens = min(max_tokens, tokens) — one content chunk per token when streaming
//   prompt_tokens     = `promptTokens` when set, else ceil(characters of the prompt / 4)
//
// It can wait before answering (`delayMs`) and between chunks (`tokenDelayMs`), fail its next N
// requests (502/503, a busy 503 with Retry-After, or a reset connection), be killed (every socket destroyed) and counts what it
// saw, including requests whose client went away before the answer ended (`aborted`). Each answer
// names the server in `system_fingerprint`, so a test sees which replica answered.
//
// Run as a process (for kill -9 and for load from another process):
//   node --import tsx test/helpers/fake-upstream.ts [--count N] [--tokens N] [--delay-ms N]
//        [--token-delay-ms N] [--prompt-tokens N] [--token T]
// prints one line `{"urls":["http://127.0.0.1:PORT", …]}` once every server listens.
import { EventEmitter } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface FakeUpstreamOptions {
  /** Shown as system_fingerprint (default `fake-<port>`). */
  name?: string;
  port?: number;
  /** Completion tokens per answer, at most max_tokens (default 8). */
  tokens?: number;
  /** Fixed prompt_tokens (default: ceil(prompt characters / 4)). */
  promptTokens?: number;
  /** Wait before the answer starts (default 0). */
  delayMs?: number;
  /** Wait between two streamed chunks (default 0). */
  tokenDelayMs?: number;
  /** When set, requests must carry `Authorization: Bearer <token>` (else 401). */
  token?: string;
}

/** 502/503: that status; 'busy': 503 with Retry-After: 1 (a full queue); 'reset': the connection destroyed. */
export type FailMode = 502 | 503 | 'busy' | 'reset';

export interface SeenRequest {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly requestId: string | undefined;
  readonly body: Record<string, any>;
}

export interface FakeUpstream extends EventEmitter {
  readonly url: string;
  readonly port: number;
  readonly name: string;
  readonly options: FakeUpstreamOptions;
  /** Requests received (all paths). */
  readonly requests: number;
  /** Requests whose client left before the answer ended. */
  readonly aborted: number;
  /** The last 100 requests. */
  readonly seen: readonly SeenRequest[];
  /** The next `n` requests fail this way. */
  failNext(n: number, mode?: FailMode): void;
  /** Every connection destroyed, the server closed: as if the replica died. */
  kill(): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function promptChars(body: Record<string, any>): number {
  const count = (x: unknown): number =>
    typeof x === 'string'
      ? x.length
      : Array.isArray(x)
        ? x.reduce((n: number, y) => n + (typeof y === 'object' && y ? count(y.content ?? y.text ?? '') : count(y)), 0)
        : 0;
  return count(body.messages ?? body.prompt ?? body.input ?? '');
}

class Fake extends EventEmitter implements FakeUpstream {
  url = '';
  port = 0;
  name = '';
  requests = 0;
  aborted = 0;
  seen: SeenRequest[] = [];
  readonly options: FakeUpstreamOptions;
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  #failures: FailMode[] = [];
  #seq = 0;

  constructor(opts: FakeUpstreamOptions) {
    super();
    this.options = opts;
    this.server = createServer((req, res) => this.#serve(req, res));
    this.server.keepAliveTimeout = 60_000;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  failNext(n: number, mode: FailMode = 503): void {
    for (let i = 0; i < n; i++) this.#failures.push(mode);
  }

  kill(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/health') return void res.end('{"status":"ok"}');
    let body: Record<string, any> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      res.writeHead(400).end('{"error":{"message":"bad json","type":"invalid_request_error"}}');
      return;
    }
    const auth = req.headers.authorization;
    this.seen.push({ path, authorization: auth, requestId: req.headers['x-request-id'] as string, body });
    if (this.seen.length > 100) this.seen.shift();
    this.emit('request', path, body);
    let finished = false;
    res.on('close', () => {
      if (!finished) {
        this.aborted++;
        this.emit('abort', path);
      }
    });
    const failure = this.#failures.shift();
    if (failure === 'reset') return void req.socket.destroy();
    if (failure === 'busy') {
      finished = true;
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      return void res.end('{"error":{"message":"queue full","type":"server_error","code":"overloaded"}}');
    }
    if (failure) {
      finished = true;
      res.writeHead(failure, { 'content-type': 'application/json' });
      return void res.end(`{"error":{"message":"fake failure ${failure}","type":"server_error"}}`);
    }
    if (this.options.token !== undefined && auth !== `Bearer ${this.options.token}`) {
      finished = true;
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end('{"error":{"message":"bad replica token","type":"invalid_request_error"}}');
    }
    if (this.options.delayMs) await sleep(this.options.delayMs);
    if (res.destroyed) return;
    const endpoint = path.replace(/^\/v1\//, '');
    const max = typeof body.max_tokens === 'number' ? body.max_tokens : Number.POSITIVE_INFINITY;
    const tokens = endpoint === 'embeddings' ? 0 : Math.min(max, this.options.tokens ?? 8);
    const prompt = this.options.promptTokens ?? Math.ceil(promptChars(body) / 4);
    const usage = { prompt_tokens: prompt, completion_tokens: tokens, total_tokens: prompt + tokens };
    if (!['chat/completions', 'completions', 'embeddings'].includes(endpoint)) {
      finished = true;
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":{"message":"no such path","type":"invalid_request_error"}}');
    }
    const id = `fake-${++this.#seq}`;
    const created = Math.floor(Date.now() / 1000);
    const head = { id, created, model: body.model, system_fingerprint: this.name };
    if (body.stream === true && endpoint !== 'embeddings') {
      await this.#stream(res, endpoint, head, tokens, usage, body.stream_options?.include_usage === true);
      finished = true;
      return;
    }
    let answer: unknown;
    if (endpoint === 'embeddings') {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      const data = inputs.map((_: unknown, index: number) => ({
        object: 'embedding',
        index,
        embedding: [0.1, 0.2, 0.3],
      }));
      answer = { object: 'list', data, model: body.model, usage: { prompt_tokens: prompt, total_tokens: prompt } };
    } else if (endpoint === 'chat/completions') {
      const message = { role: 'assistant', content: 'tok '.repeat(tokens) };
      answer = { ...head, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: 'stop' }], usage };
    } else {
      const choice = { index: 0, text: 'tok '.repeat(tokens), finish_reason: 'stop', logprobs: null };
      answer = { ...head, object: 'text_completion', choices: [choice], usage };
    }
    const json = JSON.stringify(answer);
    finished = true;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  }

  async #stream(
    res: ServerResponse,
    endpoint: string,
    head: Record<string, unknown>,
    tokens: number,
    usage: Record<string, number>,
    includeUsage: boolean,
  ): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chat = endpoint === 'chat/completions';
    const object = chat ? 'chat.completion.chunk' : 'text_completion';
    const extra = includeUsage ? { usage: null } : {};
    const send = (choices: unknown[], more: Record<string, unknown> = extra) =>
      res.write(`data: ${JSON.stringify({ ...head, object, choices, ...more })}\n\n`);
    const choice = (text: string | undefined, finish: string | null) =>
      chat
        ? { index: 0, delta: text === undefined ? {} : { content: text }, finish_reason: finish }
        : { index: 0, text: text ?? '', finish_reason: finish };
    if (chat) send([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    for (let i = 0; i < tokens; i++) {
      if (res.destroyed) return;
      if (i > 0 && this.options.tokenDelayMs) await sleep(this.options.tokenDelayMs);
      if (res.destroyed) return;
      send([choice('tok ', null)]);
    }
    send([choice(undefined, 'stop')]);
    if (includeUsage) send([], { usage });
    res.end('data: [DONE]\n\n');
  }
}

export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const fake = new Fake(opts);
  await new Promise<void>((resolve) => fake.server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  fake.port = (fake.server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  fake.name = opts.name ?? `fake-${fake.port}`;
  return fake;
}

// As a process: N servers, their URLs on one stdout line; it lives until killed.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const num = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const i = args.indexOf('--token');
  const token = i >= 0 ? args[i + 1] : undefined;
  const opts: FakeUpstreamOptions = {
    tokens: num('--tokens'),
    delayMs: num('--delay-ms'),
    tokenDelayMs: num('--token-delay-ms'),
    promptTokens: num('--prompt-tokens'),
    token,
  };
  const fakes = await Promise.all(Array.from({ length: num('--count') ?? 1 }, () => startFakeUpstream(opts)));
  process.stdout.write(`${JSON.stringify({ urls: fakes.map((f) => f.url) })}\n`);
}
