// The gateway when replicas fail, vanish or are missing: a replica that refuses connections or
// answers 502/503 (the call goes elsewhere), one killed with kill -9 mid-traffic (no non-streamed
// call lost, streams cut with an error event and [DONE]), clients that go away (the upstream call
// is aborted), scale from zero (held until a table has a ready replica, else 503) and per-replica
// caps. Prefix affinity: gateway-affinity.test.ts.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
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
import type { RouteDeployment, RouteReplica } from '../../src/inference/types.js';
import { REPO_ROOT } from '../helpers/child-server.js';
import { type FakeUpstream, type FakeUpstreamOptions, startFakeUpstream } from '../helpers/fake-upstream.js';

const KEY = 'sk-acme';
const keys = new StaticKeys({ [KEY]: { keyId: 'key-acme', orgId: 'org-acme', projects: ['prj-chat'] } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface Setup {
  gateway: Gateway;
  server: GatewayServer;
  routing: StaticRouting;
  usage: MemoryUsage;
  client(maxRetries?: number): OpenAI;
  close(): Promise<void>;
}

async function setup(deployments: RouteDeployment[], extra: Partial<GatewayOptions> = {}): Promise<Setup> {
  const routing = new StaticRouting(deployments);
  const usage = new MemoryUsage();
  const gateway = createGateway({
    routing,
    keys,
    limits: new StaticLimits(),
    usage,
    limiter: new MemoryLimiter(),
    log: () => {},
    ...extra,
  });
  const server = await startGatewayServer(gateway, { port: 0 });
  return {
    gateway,
    server,
    routing,
    usage,
    client: (maxRetries = 0) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries, timeout: 20_000 }),
    async close() {
      await server.close();
      await gateway.close();
    },
  };
}

const replica = (id: string, url: string, state: RouteReplica['state'] = 'ready'): RouteReplica => ({
  id,
  url,
  node: 'n1',
  state,
});
const tiny = (replicas: RouteReplica[]) => deployment({ id: 'd-tiny', name: 'tiny', replicas });
const ask = (content: string, system = 'You are terse.') => [
  { role: 'system' as const, content: system },
  { role: 'user' as const, content },
];

/** A port nothing listens on, below the ephemeral range (where a connect could meet itself). */
async function deadPort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    const s = createServer();
    const free = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (free) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
}

/** The fake upstream in a child process of its own, for kill -9. */
async function childUpstream(opts: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/fake-upstream.ts', ...opts], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
  });
  return { url: JSON.parse(line).urls[0], child };
}

/** A raw streamed call: every SSE data payload as received, and which replica sent it. */
async function rawStream(url: string, content: string): Promise<{ events: string[]; replica?: string }> {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: ask(content, content), stream: true }),
  });
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.doesNotMatch(text, /^event:/m);
  const events = text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => e.replace(/^data: /, ''));
  const first = events.find((e) => e.startsWith('{"id"'));
  return { events, replica: first ? JSON.parse(first).system_fingerprint : undefined };
}

describe('failover', () => {
  const fakes: FakeUpstream[] = [];
  const fake = async (o: FakeUpstreamOptions = {}) => {
    const f = await startFakeUpstream(o);
    fakes.push(f);
    return f;
  };
  after(() => Promise.all(fakes.map((f) => f.close())));

  it('sends the call to another replica when one refuses connections, and keeps that one out', async () => {
    const live = await fake({ name: 'live' });
    const t = await setup([
      tiny([replica('r-dead', `http://127.0.0.1:${await deadPort()}`), replica('r-live', live.url)]),
    ]);
    try {
      for (let i = 0; i < 6; i++) {
        const r = await t.client().chat.completions.create({ model: 'tiny', messages: ask(`q${i}`), max_tokens: 1 });
        assert.equal(r.system_fingerprint, 'live');
      }
      assert.deepEqual(
        t.routing.failures.map((f) => [f.replicaId, f.reason]),
        [['r-dead', 'ECONNREFUSED']],
      );
    } finally {
      await t.close();
    }
  });

  it('retries elsewhere on 502, 503 and a reset before the first byte; streams too', async () => {
    for (const [mode, stream] of [
      [502, false],
      [503, false],
      ['reset', false],
      ['reset', true],
    ] as const) {
      const a = await fake({ name: 'a' });
      const b = await fake({ name: 'b' });
      const t = await setup([tiny([replica('r-a', a.url), replica('r-b', b.url)])]);
      try {
        a.failNext(1, mode);
        // Two calls: whichever replica the first one tries, one of them meets the failure.
        for (let i = 0; i < 2; i++) {
          const s = await t
            .client()
            .chat.completions.create({ model: 'tiny', messages: ask(`q${i}`), max_tokens: 2, stream });
          let text = '';
          if (stream) for await (const c of s as AsyncIterable<any>) text += c.choices[0]?.delta?.content ?? '';
          else text = (s as OpenAI.ChatCompletion).choices[0].message.content!;
          assert.equal(text, 'tok tok ', `${mode}`);
        }
        assert.equal(t.routing.failures.length, 1);
        assert.equal(t.routing.failures[0].replicaId, 'r-a');
        assert.match(
          t.routing.failures[0].reason,
          typeof mode === 'number' ? new RegExp(`HTTP ${mode}`) : /SOCKET|RESET/,
        );
        assert.equal(b.requests, 2, 'a is out of rotation after its failure');
      } finally {
        await t.close();
      }
    }
  });

  it('rests a busy replica (503 with Retry-After) without reporting it, then uses it again', async () => {
    const a = await fake({ name: 'a' });
    const b = await fake({ name: 'b' });
    const t = await setup([tiny([replica('r-a', a.url), replica('r-b', b.url)])]);
    try {
      a.failNext(1, 'busy');
      b.failNext(1, 'busy');
      const first = await t.client().chat.completions.create({ model: 'tiny', messages: ask('x'), max_tokens: 1 });
      // The first replica tried was busy, the second too: the call waited (held) for the rest to end.
      assert.ok(['a', 'b'].includes(first.system_fingerprint!));
      assert.deepEqual(t.routing.failures, [], 'busy is not failed');
      assert.deepEqual(t.routing.demands, ['d-tiny'], 'every replica busy: ask for more');
      await sleep(50); // the second one's rest ends a moment after the first one's
      const before = [a.requests, b.requests];
      // Embeddings have no affinity: equally loaded replicas take turns.
      for (let i = 0; i < 4; i++) await t.client().embeddings.create({ model: 'tiny', input: `e${i}` });
      assert.deepEqual([a.requests - before[0], b.requests - before[1]], [2, 2], 'both back in rotation');
    } finally {
      await t.close();
    }
  });

  it('loses no non-streamed call when a replica is killed with kill -9 mid-traffic; its streams end with an error event and [DONE]', async () => {
    const slow = ['--delay-ms', '20', '--tokens', '40', '--token-delay-ms', '25'];
    const victim = await childUpstream(slow);
    const survivor = await fake({ name: 'survivor', delayMs: 20, tokens: 40, tokenDelayMs: 25 });
    const t = await setup([tiny([replica('r-victim', victim.url), replica('r-survivor', survivor.url)])], {
      loadCap: 0,
    });
    try {
      const streams = Array.from({ length: 6 }, (_, i) => rawStream(t.server.url, `stream ${i}`));
      let stop = false;
      let ok = 0;
      const workers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const r = await t
            .client()
            .chat.completions.create({ model: 'tiny', messages: ask(`w${w}-${i}`), max_tokens: 2 });
          assert.equal(r.choices[0].message.content, 'tok tok ');
          ok++;
        }
      });
      await sleep(300);
      victim.child.kill('SIGKILL');
      await sleep(500);
      stop = true;
      await Promise.all(workers);
      assert.ok(ok > 20, `non-streamed calls answered: ${ok}`);
      const results = await Promise.all(streams);
      const cut = results.filter((r) => r.replica !== 'survivor');
      assert.ok(cut.length > 0 && cut.length < 6, `streams on the killed replica: ${cut.length}`);
      for (const r of cut) {
        assert.equal(r.events.at(-1), '[DONE]');
        assert.equal(JSON.parse(r.events.at(-2)!).error.code, 'upstream_error');
      }
      for (const r of results.filter((x) => x.replica === 'survivor')) {
        assert.equal(r.events.at(-1), '[DONE]');
        assert.equal(r.events.filter((e) => e.includes('"error"')).length, 0);
      }
      assert.ok(t.routing.failures.some((f) => f.replicaId === 'r-victim'));
      const interrupted = t.usage.records.filter((r) => r.interrupted);
      assert.equal(interrupted.length, cut.length);
      assert.ok(interrupted.every((r) => r.status === 200 && r.streamed && r.replicaId === 'r-victim'));
    } finally {
      victim.child.kill('SIGKILL');
      await t.close();
    }
  });

  it('aborts the upstream call when the client goes away, streamed or not', async () => {
    const a = await fake({ name: 'a', tokens: 200, tokenDelayMs: 20 });
    const t = await setup([tiny([replica('r-a', a.url)])]);
    try {
      const s = await t.client().chat.completions.create({ model: 'tiny', messages: ask('long'), stream: true });
      let n = 0;
      for await (const _ of s) if (++n === 3) break; // the client aborts its request
      await eventually(() => a.aborted === 1, 3000, 'the upstream to see the stream abort');
      const slowA = await fake({ name: 'slow', delayMs: 3000 });
      t.routing.publish([tiny([replica('r-slow', slowA.url)])]);
      const ac = new AbortController();
      const call = t.client().chat.completions.create({ model: 'tiny', messages: ask('x') }, { signal: ac.signal });
      await eventually(() => slowA.requests === 1, 3000, 'the call to reach the upstream');
      ac.abort();
      await call.catch(() => {});
      await eventually(() => slowA.aborted === 1, 3000, 'the upstream to see the abort');
      await eventually(() => t.usage.records.length === 2, 3000, 'both calls metered');
      assert.deepEqual(
        t.usage.records.map((r) => [r.status, r.interrupted]),
        [
          [499, true],
          [499, true],
        ],
      );
      assert.equal(t.gateway.load()[0].inflight, 0);
    } finally {
      await t.close();
    }
  });
});

describe('scale from zero and holding', () => {
  let a: FakeUpstream;
  before(async () => {
    a = await startFakeUpstream({ name: 'a', delayMs: 150 });
  });
  after(() => a.close());

  it('holds a call while no replica is ready, asks for one, and answers once a table has it', async () => {
    const t = await setup([tiny([replica('r-a', a.url, 'starting')])], { holdTimeoutMs: 5000 });
    try {
      t.routing.onDemand = () => setTimeout(() => t.routing.publish([tiny([replica('r-a', a.url)])]), 300);
      const call = t.client().chat.completions.create({ model: 'tiny', messages: ask('hi'), max_tokens: 1 });
      await eventually(() => t.gateway.load()[0]?.queued === 1, 2000, 'the call to be held');
      const r = await call;
      assert.equal(r.system_fingerprint, 'a');
      assert.deepEqual(t.routing.demands, ['d-tiny']);
      assert.equal(t.gateway.load()[0].queued, 0);
    } finally {
      await t.close();
    }
  });

  it('answers 503 with Retry-After when no replica is ready in time, and at once beyond maxHeld', async () => {
    const t = await setup([tiny([])], { holdTimeoutMs: 1500, maxHeld: 1, unavailableRetryAfterMs: 2000 });
    try {
      const first = t
        .client()
        .chat.completions.create({ model: 'tiny', messages: ask('a') })
        .catch((e) => e);
      await eventually(() => t.gateway.load()[0]?.queued === 1, 2000, 'the first call to be held');
      const started = Date.now();
      const second = await t
        .client()
        .chat.completions.create({ model: 'tiny', messages: ask('b') })
        .catch((e) => e);
      assert.ok(Date.now() - started < 1000, 'beyond maxHeld: refused at once, not after the hold timeout');
      for (const e of [await first, second]) {
        assert.ok(e instanceof OpenAI.InternalServerError, String(e));
        assert.equal(e.status, 503);
        assert.equal(e.code, 'no_replica_ready');
        assert.equal(e.headers.get('retry-after'), '2');
        assert.equal(e.headers.get('retry-after-ms'), '2000');
      }
      assert.deepEqual(t.routing.demands, ['d-tiny']);
      const records = t.usage.records.map((r) => [r.status, r.replicaId]);
      assert.deepEqual(records, [
        [503, ''],
        [503, ''],
      ]);
    } finally {
      await t.close();
    }
  });

  it('holds calls beyond a per-replica cap and serves them as calls finish', async () => {
    const t = await setup([tiny([replica('r-a', a.url)])], { maxInflightPerReplica: 1 });
    try {
      const calls = Array.from({ length: 3 }, (_, i) =>
        t.client().chat.completions.create({ model: 'tiny', messages: ask(`c${i}`), max_tokens: 1 }),
      );
      await eventually(() => t.gateway.load()[0]?.queued === 2, 2000, 'two calls held');
      assert.equal(t.gateway.load()[0].inflight, 1);
      const results = await Promise.all(calls);
      assert.equal(results.length, 3);
      assert.deepEqual(t.routing.demands, [], 'a replica at its cap is no reason to scale from zero');
    } finally {
      await t.close();
    }
  });
});
