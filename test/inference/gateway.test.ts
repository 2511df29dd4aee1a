// The inference gateway through the official `openai` client, in front of stand-in replicas
// (test/helpers/fake-upstream.ts): chat and completions and embeddings, streams with and without
// the usage chunk, /v1/models, every error in the OpenAI shape as the client's APIError
// subclasses, 429s the client retries by itself and budgets it must not retry, x-request-id on
// every answer, and metering (usage records, Prometheus). Failover and holding:
// gateway-failover.test.ts; affinity: gateway-affinity.test.ts; limiters: gateway-limits.test.ts;
// the pure parts: gateway-units.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type Gateway, type GatewayOptions, createGateway } from '../../src/inference/gateway/gateway.js';
import { MemoryLimiter } from '../../src/inference/gateway/limits.js';
import { type GatewayServer, startGatewayServer } from '../../src/inference/gateway/server.js';
import {
  MemoryUsage,
  StaticKeys,
  StaticLimits,
  StaticRouting,
  deployment,
} from '../../src/inference/gateway/static.js';
import type { RouteDeployment } from '../../src/inference/types.js';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.js';

const KEY = 'sk-acme';
const OTHER_KEY = 'sk-globex';
const keys = new StaticKeys({
  [KEY]: { keyId: 'key-acme', orgId: 'org-acme', projects: ['prj-chat', 'prj-two'] },
  [OTHER_KEY]: { keyId: 'key-globex', orgId: 'org-globex', projects: ['prj-globex'] },
});

interface Setup {
  gateway: Gateway;
  server: GatewayServer;
  usage: MemoryUsage;
  limits: StaticLimits;
  routing: StaticRouting;
  client(opts?: { key?: string; maxRetries?: number }): OpenAI;
  close(): Promise<void>;
}

async function setup(deployments: RouteDeployment[], extra: Partial<GatewayOptions> = {}): Promise<Setup> {
  const routing = new StaticRouting(deployments);
  const usage = new MemoryUsage();
  const limits = new StaticLimits();
  const limiter = new MemoryLimiter();
  const gateway = createGateway({ routing, keys, limits, usage, limiter, log: () => {}, ...extra });
  const server = await startGatewayServer(gateway, { port: 0 });
  return {
    gateway,
    server,
    usage,
    limits,
    routing,
    client: ({ key = KEY, maxRetries = 0 } = {}) =>
      new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries, timeout: 20_000 }),
    async close() {
      await server.close();
      await gateway.close();
    },
  };
}

const hello = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say hello.' },
];

describe('the gateway through the official openai client', () => {
  let a: FakeUpstream;
  let t: Setup;
  before(async () => {
    a = await startFakeUpstream({ name: 'replica-a', token: 'replica-secret', tokens: 6 });
    const replicas = [{ id: 'r-a', url: a.url, token: 'replica-secret', node: 'n1', state: 'ready' as const }];
    t = await setup([
      deployment({ id: 'd-tiny', name: 'tiny', aliases: ['tiny-alias'], contextSize: 1024, replicas }),
      deployment({ id: 'd-dup1', name: 'dup', replicas }),
      deployment({ id: 'd-dup2', name: 'dup', projectId: 'prj-two', project: 'acme.two', replicas }),
      deployment({ id: 'd-globex', name: 'secret', projectId: 'prj-globex', project: 'globex.ml', replicas }),
    ]);
  });
  after(async () => {
    await t.close();
    await a.close();
  });

  it('answers a chat completion, with the replica token upstream and never the caller key', async () => {
    const { data, response } = await t
      .client()
      .chat.completions.create({ model: 'tiny', messages: hello, max_tokens: 4 })
      .withResponse();
    assert.equal(data.choices[0].message.content, 'tok tok tok tok ');
    assert.equal(data.system_fingerprint, 'replica-a');
    assert.deepEqual(data.usage, { prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 });
    const id = response.headers.get('x-request-id');
    assert.ok(id);
    const seen = a.seen.at(-1)!;
    assert.equal(seen.authorization, 'Bearer replica-secret');
    assert.equal(seen.requestId, id);
    assert.equal(seen.body.model, 'tiny');
    const record = t.usage.records.find((r) => r.requestId === id)!;
    assert.equal(record.keyId, 'key-acme');
    assert.equal(record.deploymentId, 'd-tiny');
    assert.equal(record.replicaId, 'r-a');
    assert.equal(record.tokensIn, 6);
    assert.equal(record.tokensOut, 4);
    assert.equal(record.status, 200);
    assert.equal(record.streamed, false);
  });

  it('answers by alias and by the qualified name', async () => {
    const c = t.client();
    for (const model of ['tiny-alias', 'acme.chat/tiny', 'acme.chat/tiny-alias']) {
      const r = await c.chat.completions.create({ model, messages: hello, max_tokens: 1 });
      assert.equal(r.choices[0].message.content, 'tok ');
    }
  });

  it('streams with include_usage: the usage chunk comes last and the stream ends', async () => {
    const stream = await t.client().chat.completions.create({
      model: 'tiny',
      messages: hello,
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'tok '.repeat(5));
    assert.equal(chunks.filter((c) => c.usage).length, 1);
    const record = t.usage.records.at(-1)!;
    assert.equal(record.streamed, true);
    assert.equal(record.interrupted, false);
    assert.equal(record.tokensOut, 5);
  });

  it('streams without include_usage: no usage chunk reaches the client, yet the call is metered', async () => {
    const stream = await t
      .client()
      .chat.completions.create({ model: 'tiny', messages: hello, max_tokens: 3, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(
      chunks.some((c) => c.usage),
      false,
    );
    assert.ok(chunks.every((c) => c.choices.length === 1));
    assert.equal(a.seen.at(-1)!.body.stream_options.include_usage, true, 'upstream was asked for usage');
    const record = t.usage.records.at(-1)!;
    assert.equal(record.tokensIn, 6);
    assert.equal(record.tokensOut, 3);
  });

  it('answers completions (streamed too) and embeddings', async () => {
    const c = t.client();
    const r = await c.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 2 });
    assert.equal(r.choices[0].text, 'tok tok ');
    assert.equal(r.usage?.completion_tokens, 2);
    const s = await c.completions.create({ model: 'tiny', prompt: 'Once', max_tokens: 2, stream: true });
    let text = '';
    for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, 'tok tok ');
    const e = await c.embeddings.create({ model: 'tiny', input: ['a', 'b'], encoding_format: 'float' });
    assert.equal(e.data.length, 2);
    assert.deepEqual(e.data[1].embedding, [0.1, 0.2, 0.3]);
    assert.equal(t.usage.records.at(-1)!.endpoint, 'embeddings');
  });

  it('lists only the models the key may use, under every name, ambiguous ones qualified', async () => {
    const list = await t.client().models.list();
    const ids = list.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ['acme.chat/dup', 'acme.two/dup', 'tiny', 'tiny-alias']);
    const tiny = list.data.find((m) => m.id === 'tiny')!;
    assert.deepEqual(tiny, { id: 'tiny', object: 'model', created: 1735689600, owned_by: 'acme.chat' });
    assert.equal((await t.client().models.retrieve('tiny-alias')).id, 'tiny-alias');
    const other = await t.client({ key: OTHER_KEY }).models.list();
    assert.deepEqual(
      other.data.map((m) => m.id),
      ['secret'],
    );
  });

  it('answers 404 alike for a model that does not exist and one the key may not use', async () => {
    const c = t.client();
    const absent = await c.chat.completions.create({ model: 'secret2', messages: hello }).catch((e) => e);
    const forbidden = await c.chat.completions.create({ model: 'secret', messages: hello }).catch((e) => e);
    for (const e of [absent, forbidden]) {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.type, 'invalid_request_error');
    }
    assert.equal(absent.message.replace('secret2', 'secret'), forbidden.message);
    const retrieve = await c.models.retrieve('secret').catch((e) => e);
    assert.ok(retrieve instanceof OpenAI.NotFoundError);
    const qualified = await c.chat.completions.create({ model: 'globex.ml/secret', messages: hello }).catch((e) => e);
    assert.ok(qualified instanceof OpenAI.NotFoundError);
  });

  it('refuses an ambiguous name with 400 naming the qualified forms', async () => {
    const e = await t
      .client()
      .chat.completions.create({ model: 'dup', messages: hello })
      .catch((x) => x);
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.code, 'ambiguous_model');
    assert.match(e.message, /acme\.chat\/dup, acme\.two\/dup/);
    const ok = await t.client().chat.completions.create({ model: 'acme.two/dup', messages: hello, max_tokens: 1 });
    assert.equal(ok.choices.length, 1);
  });

  it('validates like OpenAI: unknown fields, wrong types, missing fields, max_tokens beyond the context', async () => {
    const c = t.client();
    const cases: [Record<string, unknown>, string | null, RegExp][] = [
      [{ model: 'tiny', messages: hello, bogus: 1 }, 'bogus', /Unrecognized request argument supplied: bogus/],
      [{ model: 'tiny', messages: hello, temperature: 'hot' }, 'temperature', /Invalid type for 'temperature'/],
      [{ model: 'tiny' }, 'messages', /Missing required parameter: 'messages'/],
      [{ model: 'tiny', messages: [] }, 'messages', /empty array/],
      [{ model: 'tiny', messages: hello, max_tokens: 5000 }, 'max_tokens', /maximum context length is 1024/],
      [{ model: 'tiny', messages: hello, max_tokens: 0 }, 'max_tokens', /minimum/],
      [{ messages: hello }, 'model', /Missing required parameter: 'model'/],
    ];
    for (const [body, param, message] of cases) {
      const e = await c.chat.completions.create(body as any).catch((x) => x);
      assert.ok(e instanceof OpenAI.BadRequestError, `${JSON.stringify(body)}: ${e}`);
      assert.equal(e.status, 400);
      assert.equal(e.type, 'invalid_request_error');
      assert.equal(e.param, param);
      assert.match(e.message, message);
    }
    const e = await c.embeddings.create({ model: 'tiny', input: 'x', dimensions: 'big' } as any).catch((x) => x);
    assert.ok(e instanceof OpenAI.BadRequestError);
  });

  it('refuses malformed JSON (400) and bodies over the size limit (413) in the OpenAI shape', async () => {
    const post = (body: string) =>
      fetch(`${t.server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body,
      });
    const bad = await post('{"model": "tiny", ');
    assert.equal(bad.status, 400);
    const json = await bad.json();
    assert.equal(json.error.type, 'invalid_request_error');
    assert.equal(json.error.code, 'invalid_json');
    assert.ok(bad.headers.get('x-request-id'));
    assert.equal((await post('[1,2]')).status, 400);
    const small = await setup([], { maxBodyBytes: 1000 });
    try {
      const r = await fetch(`${small.server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(2000) }] }),
      });
      assert.equal(r.status, 413);
      assert.equal((await r.json()).error.code, 'request_too_large');
      const e = await small
        .client()
        .chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'y'.repeat(10_000) }] })
        .catch((x) => x);
      assert.ok(e instanceof OpenAI.APIError && e.status === 413, String(e));
    } finally {
      await small.close();
    }
  });

  it('answers 401 for a missing or unknown key', async () => {
    const e = await t
      .client({ key: 'sk-nobody' })
      .chat.completions.create({ model: 'tiny', messages: hello })
      .catch((x) => x);
    assert.ok(e instanceof OpenAI.AuthenticationError);
    assert.equal(e.code, 'invalid_api_key');
    const r = await fetch(`${t.server.url}/v1/models`);
    assert.equal(r.status, 401);
    assert.ok(r.headers.get('x-request-id'));
  });

  it('puts x-request-id on every answer: kept when sane, replaced when not', async () => {
    const get = (path: string, id?: string) =>
      fetch(`${t.server.url}${path}`, {
        headers: { authorization: `Bearer ${KEY}`, ...(id === undefined ? {} : { 'x-request-id': id }) },
      });
    for (const path of ['/v1/models', '/v1/nope', '/healthz', '/metrics', '/nope', '/v1/chat/completions']) {
      const r = await get(path, 'trace-42');
      assert.equal(r.headers.get('x-request-id'), 'trace-42', path);
      await r.arrayBuffer();
    }
    const odd = await get('/v1/models', 'bad id with spaces');
    assert.match(odd.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
    const e = await t
      .client()
      .chat.completions.create({ model: 'nope', messages: hello })
      .catch((x) => x);
    assert.match(e.requestID, /^[0-9a-f-]{36}$/);
    assert.equal((await get('/v1/nope')).status, 404);
  });

  it('counts requests and tokens in Prometheus without key labels', async () => {
    const text = await (await fetch(`${t.server.url}/metrics`)).text();
    assert.match(
      text,
      /fabrik_gateway_requests_total\{deployment="acme.chat\/tiny",endpoint="chat.completions",status="200"\} \d+/,
    );
    assert.match(
      text,
      /fabrik_gateway_completion_tokens_total\{project="acme.chat",deployment="acme.chat\/tiny",replica="r-a"\} \d+/,
    );
    assert.match(text, /fabrik_gateway_time_to_first_token_seconds_bucket/);
    assert.match(text, /fabrik_gateway_tokens_per_second_bucket/);
    assert.doesNotMatch(text, /key-acme|sk-acme/);
    const load = t.gateway.load().find((l) => l.deploymentId === 'd-tiny')!;
    assert.equal(load.inflight, 0);
    assert.ok(load.requests > 5 && load.lastRequestAt > 0);
  });
});

describe('limits through the official client', () => {
  let a: FakeUpstream;
  before(async () => {
    a = await startFakeUpstream({ name: 'replica-a', tokens: 4 });
  });
  after(() => a.close());
  const deployments = () => [
    deployment({ id: 'd-tiny', name: 'tiny', replicas: [{ id: 'r-a', url: a.url, node: 'n1', state: 'ready' }] }),
  ];

  it('answers 429 with Retry-After; the client retries by itself and gets through in the next window', async () => {
    const t = await setup(deployments(), { limiter: new MemoryLimiter({ windowMs: 1000 }) });
    try {
      t.limits.limits = { key: { rpm: 1 }, project: {} };
      const c = t.client({ maxRetries: 0 });
      await c.chat.completions.create({ model: 'tiny', messages: hello, max_tokens: 1 });
      const e = await c.chat.completions.create({ model: 'tiny', messages: hello, max_tokens: 1 }).catch((x) => x);
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.code, 'rate_limit_exceeded');
      assert.equal(e.type, 'requests');
      assert.equal(e.headers.get('retry-after'), '1');
      assert.ok(Number(e.headers.get('retry-after-ms')) <= 1000);
      const started = Date.now();
      const r = await t
        .client({ maxRetries: 3 })
        .chat.completions.create({ model: 'tiny', messages: hello, max_tokens: 1 });
      assert.equal(r.choices.length, 1);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await t.close();
    }
  });

  it('answers 429 insufficient_quota with x-should-retry: false once the monthly budget is spent; the client does not retry', async () => {
    const t = await setup(deployments());
    try {
      t.limits.limits = { key: {}, project: { monthlyTokens: 60 } };
      const c = t.client({ maxRetries: 3 });
      let served = 0;
      let e: any;
      for (let i = 0; i < 20 && !e; i++) {
        await c.chat.completions
          .create({ model: 'tiny', messages: hello, max_tokens: 4 })
          .then(() => served++)
          .catch((x) => {
            e = x;
          });
      }
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.equal(e.code, 'insufficient_quota');
      assert.equal(e.headers.get('x-should-retry'), 'false');
      // Each call uses 10 tokens (6 prompt + 4) and reserves 18 (14 estimated + 4): after 50, the 10 left are too few.
      assert.equal(served, 5);
      const text = await t.gateway.metrics.metrics();
      const rejected = text.match(/fabrik_gateway_requests_total\{[^}]*status="429"\} (\d+)/);
      assert.equal(rejected?.[1], '1', 'the client sent the refused call once, without retrying');
    } finally {
      await t.close();
    }
  });

  it('refuses a call larger than its tokens-per-minute limit without retry', async () => {
    const t = await setup(deployments());
    try {
      t.limits.limits = { key: { tpm: 5 }, project: {} };
      const e = await t
        .client({ maxRetries: 2 })
        .chat.completions.create({ model: 'tiny', messages: hello, max_tokens: 4 })
        .catch((x) => x);
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.type, 'tokens');
      assert.equal(e.headers.get('x-should-retry'), 'false');
    } finally {
      await t.close();
    }
  });
});
