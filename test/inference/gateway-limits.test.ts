// The gateway's limiters: the same contract for the in-process one and the Redis one (all or
// nothing over every counter, reconcile, release, windows and the calendar month), then what only
// Redis can show — two gateway PROCESSES on one Redis hold an exact tokens-per-minute limit, and
// Redis going away (and coming back) makes calls pass (fail-open, the default) or be refused with
// 503 (fail-closed), at once, never hanging.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import type { DevGatewayConfig } from '../../src/inference/gateway/dev-main.js';
import { createGateway } from '../../src/inference/gateway/gateway.js';
import {
  type Limiter,
  type LimitRequest,
  MemoryLimiter,
  type Reservation,
} from '../../src/inference/gateway/limits.js';
import { RedisLimiter } from '../../src/inference/gateway/limits-redis.js';
import { startGatewayServer } from '../../src/inference/gateway/server.js';
import {
  MemoryUsage,
  StaticKeys,
  StaticLimits,
  StaticRouting,
  deployment,
} from '../../src/inference/gateway/static.js';
import { estimateTokens } from '../../src/inference/gateway/validate.js';
import type { CallLimits } from '../../src/inference/types.js';
import { REPO_ROOT } from '../helpers/child-server.js';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.js';

const REDIS_URL = process.env.FABRIK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function redisUp(): Promise<boolean> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
const skip = (await redisUp()) ? false : `no Redis at ${REDIS_URL}`;

const call = (limits: CallLimits, tokens: number, keyId = 'k1', projectId = 'p1'): LimitRequest => ({
  keyId,
  projectId,
  limits,
  tokens,
});

/**
 * A free port below the ephemeral range: a client reconnecting to a dead port of that range can
 * end up connected to itself (TCP simultaneous open), which would then keep Redis from binding it.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    const s = createServer();
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
}

/** The contract, against either implementation; `make` gives a limiter on a clock the test sets. */
function contract(name: string, make: (now: () => number) => Limiter, skipIt: string | false = false) {
  describe(`${name}: reserve then reconcile`, { skip: skipIt }, () => {
    let clock = Date.UTC(2025, 4, 31, 23, 59, 0); // a minute before a month ends
    let limiter: Limiter;
    before(async () => {
      limiter = make(() => clock);
      if (limiter instanceof RedisLimiter) await limiter.ready();
    });
    after(() => limiter.close());

    it('reserves on every counter or on none', async () => {
      const limits = { key: { rpm: 10, tpm: 100 }, project: { tpm: 50 } };
      const first = await limiter.reserve(call(limits, 40));
      assert.equal(first.ok, true);
      const refused = await limiter.reserve(call(limits, 20));
      assert.deepEqual(
        { ok: refused.ok, kind: !refused.ok && refused.kind, scope: !refused.ok && refused.scope },
        { ok: false, kind: 'tokens', scope: 'project' },
      );
      assert.ok(!refused.ok && refused.retryAfterMs > 0 && refused.retryAfterMs <= 60_000);
      // The refused call charged nothing: the key's counters still have room for 10 more tokens, 9 requests.
      const fits = await limiter.reserve(call(limits, 10));
      assert.equal(fits.ok, true);
      assert.equal((await limiter.reserve(call(limits, 1))).ok, false);
    });

    it('gives back the difference on reconcile and everything on release', async () => {
      clock += 60_000; // next window (and next month)
      const limits = { key: { rpm: 2 }, project: { tpm: 100 } };
      const a = (await limiter.reserve(call(limits, 80))) as Reservation;
      assert.equal(a.ok, true);
      assert.equal((await limiter.reserve(call(limits, 30))).ok, false);
      limiter.reconcile(a, 20); // used 20 of the 80
      await sleep(50); // Redis: reconcile is sent, not awaited
      const b = (await limiter.reserve(call(limits, 80))) as Reservation;
      assert.equal(b.ok, true, 'after reconcile 80 more fit');
      const third = await limiter.reserve(call(limits, 1));
      assert.equal(!third.ok && third.kind, 'requests', 'two requests per window for the key');
      limiter.release(b);
      await sleep(50);
      assert.equal(
        (await limiter.reserve(call(limits, 80))).ok,
        true,
        'a released call gives back its request and tokens',
      );
    });

    it('starts each window afresh, and a month budget at the start of the month (UTC)', async () => {
      clock += 120_000;
      const limits = { key: { rpm: 1 }, project: { monthlyTokens: 100 } };
      assert.equal((await limiter.reserve(call(limits, 60, 'k2', 'p2'))).ok, true);
      assert.equal((await limiter.reserve(call(limits, 10, 'k2', 'p2'))).ok, false);
      clock += 60_000;
      const spent = await limiter.reserve(call(limits, 50, 'k2', 'p2'));
      assert.equal(!spent.ok && spent.kind, 'budget');
      const d = new Date(clock);
      const nextMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      assert.equal(!spent.ok && spent.retryAfterMs, nextMonth - clock);
      assert.equal((await limiter.reserve(call(limits, 40, 'k2', 'p2'))).ok, true);
      clock = nextMonth;
      assert.equal((await limiter.reserve(call(limits, 100, 'k2', 'p2'))).ok, true, 'a new month');
    });

    it('charges nothing when no limit applies', async () => {
      const r = await limiter.reserve(call({ key: {}, project: {} }, 1e9));
      assert.deepEqual(r, { ok: true, charges: [], tokens: 1e9 });
    });
  });
}

contract('memory', (now) => new MemoryLimiter({ now }));
contract(
  'redis',
  (now) => new RedisLimiter({ url: REDIS_URL, prefix: `fabrik:test:${randomUUID()}:`, now, log: () => {} }),
  skip,
);

describe('redis limiter across processes and outages', { skip }, () => {
  let upstream: FakeUpstream;
  const children: ChildProcess[] = [];
  before(async () => {
    // Deterministic usage: what the gateway estimates is what the replica reports.
    const messages = [{ role: 'user', content: 'hi there' }];
    const est = estimateTokens('chat.completions', { messages, max_tokens: 4 }, 4096, 512);
    upstream = await startFakeUpstream({ name: 'u', promptTokens: est.prompt, tokens: 4 });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await upstream.close();
  });

  async function gatewayProcess(config: DevGatewayConfig): Promise<string> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/inference/gateway/dev-main.ts', '--config', JSON.stringify(config)],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
    });
    return JSON.parse(line).url;
  }

  it('holds an exact tokens-per-minute limit across two gateway processes hammered at once', async () => {
    const messages = [{ role: 'user' as const, content: 'hi there' }];
    const perCall = estimateTokens('chat.completions', { messages, max_tokens: 4 }, 4096, 512);
    const tokensPerCall = perCall.prompt + perCall.completion;
    const limit = 25 * tokensPerCall;
    const windowMs = 600_000;
    // Stay inside one window: the limit holds per window.
    const into = Date.now() % windowMs;
    if (into > windowMs - 20_000) await sleep(windowMs - into + 100);
    const config: DevGatewayConfig = {
      deployments: [{ id: 'd1', name: 'tiny', replicas: [{ id: 'r1', url: upstream.url, node: 'n', state: 'ready' }] }],
      keys: { 'sk-a': { keyId: 'ka', orgId: 'org-acme', projects: ['prj-chat'] } },
      limits: { key: {}, project: { tpm: limit } },
      limiter: { kind: 'redis', url: REDIS_URL, prefix: `fabrik:test:${randomUUID()}:`, windowMs },
    };
    const urls = await Promise.all([gatewayProcess(config), gatewayProcess(config)]);
    const before = upstream.requests;
    let admitted = 0;
    let refused = 0;
    await Promise.all(
      urls.flatMap((url) =>
        Array.from({ length: 12 }, async () => {
          const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-a', maxRetries: 0 });
          for (let i = 0; i < 8; i++) {
            try {
              const r = await c.chat.completions.create({ model: 'tiny', messages, max_tokens: 4 });
              assert.equal(r.usage?.total_tokens, tokensPerCall);
              admitted++;
            } catch (e) {
              assert.ok(e instanceof OpenAI.RateLimitError, String(e));
              refused++;
            }
          }
        }),
      ),
    );
    assert.equal(admitted + refused, 2 * 12 * 8);
    assert.equal(admitted, 25, `admitted ${admitted} calls of ${tokensPerCall} tokens under a limit of ${limit}`);
    assert.equal(upstream.requests - before, 25);
  });

  it('fails open by default when Redis is unreachable: at once, logged once', async () => {
    const logs: string[] = [];
    const port = await freePort();
    const limiter = new RedisLimiter({ url: `redis://127.0.0.1:${port}`, log: (m) => logs.push(m) });
    try {
      const limits = { key: { rpm: 1 }, project: {} };
      const started = performance.now();
      for (let i = 0; i < 20; i++) assert.equal((await limiter.reserve(call(limits, 10))).ok, true);
      assert.ok(performance.now() - started < 500, 'no call waits for Redis');
      assert.equal(logs.length, 1);
      assert.match(logs[0], /unavailable.*pass unlimited/);
    } finally {
      await limiter.close();
    }
  });

  it('fails closed when so constructed: 503 limiter_unavailable through the gateway', async () => {
    const port = await freePort();
    const limiter = new RedisLimiter({ url: `redis://127.0.0.1:${port}`, failMode: 'closed', log: () => {} });
    const routing = new StaticRouting([
      deployment({ id: 'd1', name: 'tiny', replicas: [{ id: 'r1', url: upstream.url, node: 'n', state: 'ready' }] }),
    ]);
    const gateway = createGateway({
      routing,
      keys: new StaticKeys({ sk: { keyId: 'k', orgId: 'org-acme', projects: ['prj-chat'] } }),
      limits: new StaticLimits({ key: { rpm: 100 }, project: {} }),
      usage: new MemoryUsage(),
      limiter,
      log: () => {},
    });
    const server = await startGatewayServer(gateway, { port: 0 });
    try {
      const c = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk', maxRetries: 0 });
      const started = performance.now();
      const e = await c.chat.completions
        .create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }] })
        .catch((x) => x);
      assert.ok(performance.now() - started < 500);
      assert.ok(e instanceof OpenAI.InternalServerError, String(e));
      assert.equal(e.status, 503);
      assert.equal(e.code, 'limiter_unavailable');
      assert.equal(e.headers.get('retry-after'), '1');
    } finally {
      await server.close();
      await gateway.close();
      await limiter.close();
    }
  });

  it('recovers when Redis comes back empty (restarted): scripts loaded again, limits enforced', async () => {
    const port = await freePort();
    const start = () => {
      const p = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      children.push(p);
      return p;
    };
    let redis = start();
    const logs: string[] = [];
    const limiter = new RedisLimiter({ url: `redis://127.0.0.1:${port}`, log: (m) => logs.push(m) });
    try {
      await limiter.ready();
      const limits = { key: { rpm: 1 }, project: {} };
      assert.equal((await limiter.reserve(call(limits, 1, 'kr'))).ok, true);
      assert.equal((await limiter.reserve(call(limits, 1, 'kr'))).ok, false);
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      const started = performance.now();
      assert.equal((await limiter.reserve(call(limits, 1, 'kr'))).ok, true, 'fail-open while down');
      assert.ok(performance.now() - started < 1000, 'within the command timeout');
      redis = start();
      await limiter.ready();
      assert.equal((await limiter.reserve(call(limits, 1, 'kr'))).ok, true, 'a new, empty Redis');
      assert.equal((await limiter.reserve(call(limits, 1, 'kr'))).ok, false, `enforced again ${logs}`);
      assert.equal(logs.length, 2);
      assert.match(logs[1], /answers again/);
    } finally {
      await limiter.close();
      redis.kill('SIGKILL');
    }
  });
});
