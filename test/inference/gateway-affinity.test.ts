// Prefix affinity through the gateway: calls that share a system prompt (or a session header) go
// to the same replica while it is not loaded beyond the cap, so its KV cache is reused; other
// prompts spread; a burst of one prompt spills over to other replicas.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { createGateway } from '../../src/inference/gateway/gateway.js';
import { MemoryLimiter } from '../../src/inference/gateway/limits.js';
import { type GatewayServer, startGatewayServer } from '../../src/inference/gateway/server.js';
import {
  MemoryUsage,
  StaticKeys,
  StaticLimits,
  StaticRouting,
  deployment,
} from '../../src/inference/gateway/static.js';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.js';

const KEY = 'sk-acme';
const ask = (content: string, system: string) => [
  { role: 'system' as const, content: system },
  { role: 'user' as const, content },
];

describe('prefix affinity', () => {
  const fakes: FakeUpstream[] = [];
  let gateway: ReturnType<typeof createGateway>;
  let server: GatewayServer;
  const t = { client: () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 }) };
  before(async () => {
    for (let i = 0; i < 4; i++) fakes.push(await startFakeUpstream({ name: `r${i}`, delayMs: 60 }));
    const replicas = fakes.map((f, i) => ({ id: `r${i}`, url: f.url, node: `n${i}`, state: 'ready' as const }));
    gateway = createGateway({
      routing: new StaticRouting([deployment({ id: 'd-tiny', name: 'tiny', replicas })]),
      keys: new StaticKeys({ [KEY]: { keyId: 'key-acme', orgId: 'org-acme', projects: ['prj-chat'] } }),
      limits: new StaticLimits(),
      usage: new MemoryUsage(),
      limiter: new MemoryLimiter(),
      loadCap: 1,
    });
    server = await startGatewayServer(gateway, { port: 0 });
  });
  after(async () => {
    await server.close();
    await gateway.close();
    await Promise.all(fakes.map((f) => f.close()));
  });

  it('sends calls with the same system prompt to the same replica under low load, others elsewhere', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await t.client().chat.completions.create({
        model: 'tiny',
        messages: ask(`question ${i}`, 'You are the support bot of ACME.'),
        max_tokens: 1,
      });
      seen.add(r.system_fingerprint!);
    }
    assert.equal(seen.size, 1);
    const others = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = await t
        .client()
        .chat.completions.create({ model: 'tiny', messages: ask('q', `System ${i}`), max_tokens: 1 });
      others.add(r.system_fingerprint!);
    }
    assert.ok(others.size > 1, 'different system prompts spread');
    const session = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await t
        .client()
        .chat.completions.create(
          { model: 'tiny', messages: ask(`s${i}`, `S${i}`), max_tokens: 1 },
          { headers: { 'x-session-id': 'user-7' } },
        );
      session.add(r.system_fingerprint!);
    }
    assert.equal(session.size, 1, 'a session header wins over the prompt');
  });

  it('spreads one system prompt over more replicas once its replica is loaded beyond the cap', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        t.client().chat.completions.create({ model: 'tiny', messages: ask(`burst ${i}`, 'Shared'), max_tokens: 1 }),
      ),
    );
    const used = new Set(results.map((r) => r.system_fingerprint));
    assert.ok(used.size >= 3, `replicas used: ${used.size}`);
  });
});
