// `fabrik gateway` as its own process beside the control plane: it reads deployments and keys from
// the server's database, and with --redis it and the server's /v1 hold ONE exact tokens-per-minute
// limit between them. The deployment is `external` in front of a STAND-IN upstream
// (test/helpers/fake-upstream.ts, deterministic usage), so the token counts are known exactly.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import {
  ENTRY,
  REPO_ROOT,
  type ServerProcess,
  api as apiFor,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.js';
import { OPERATOR_TOKEN } from '../helpers/harness.js';

const REDIS = process.env.FABRIK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-gwp-'));
let server: ServerProcess;
let upstream: FakeUpstream;
let aliceKey: string;
const gateways: { child: ChildProcess; url: string }[] = [];

/** A `fabrik gateway` process on the server's data directory; resolves with its base URL. */
function startGateway(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ENTRY, 'gateway', '--port', '0', '--data-dir', dataDir, '--redis', REDIS],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${err}`)), 30_000);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /listening on (http:\/\/[\d.:]+)\/v1/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${err}`)));
  });
}

// 36 characters in one message: the gateway estimates ceil(36/4) + 4 = 13 prompt tokens, and the
// stand-in reports 13 prompt + 10 completion tokens: estimate and usage are both 23 per call.
const CALL = { model: 'ext', messages: [{ role: 'user' as const, content: 'x'.repeat(36) }], max_tokens: 10 };
const PER_CALL = 23;
const TPM = PER_CALL * 10;

describe('fabrik gateway as its own process, sharing exact limits through Redis', { timeout: 120_000 }, () => {
  before(async () => {
    upstream = await startFakeUpstream({ tokens: 10, promptTokens: 13 });
    server = await startServerProcess({
      dataDir,
      database: join(dataDir, 'fabrik.db'),
      bootstrapToken: OPERATOR_TOKEN,
      env: { FABRIK_REDIS_URL: REDIS },
    });
    const op = apiFor(server.url, OPERATOR_TOKEN);
    assert.equal((await op('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    assert.equal((await op('POST', '/api/v1/orgs/acme/projects', { name: 'apps' })).status, 201);
    await op('POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' });
    aliceKey = (await op('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice' })).body.token;
    const alice = apiFor(server.url, aliceKey);
    const d = await alice('POST', '/api/v1/projects/acme.apps/deployments', {
      name: 'ext',
      runtime: 'external',
      upstreamUrl: `${upstream.url}/v1`,
    });
    assert.equal(d.status, 201, d.text);
    const l = await alice('PUT', '/api/v1/projects/acme.apps/inference-limits', { tpm: TPM });
    assert.equal(l.status, 200, l.text);
    gateways.push(await startGateway(), await startGateway());
    // Every front reads limits every 2 s (DbLimitSource): a new limit is in force everywhere after that.
    await new Promise((r) => setTimeout(r, 2500));
  });
  after(async () => {
    for (const g of gateways) g.child.kill('SIGKILL');
    await killAllServerProcesses();
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the same deployments and keys as the server, and refuses what the server refuses', async () => {
    const ai = new OpenAI({ baseURL: `${gateways[0]!.url}/v1`, apiKey: aliceKey, maxRetries: 0 });
    // The limits cache of a fresh gateway fills within its 2 s refresh; a call now is within them.
    assert.deepEqual(
      (await ai.models.list()).data.map((m) => m.id),
      ['ext'],
    );
    const bad = new OpenAI({ baseURL: `${gateways[0]!.url}/v1`, apiKey: 'fbk_nope_nope', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    const health = await fetch(`${gateways[0]!.url}/healthz`);
    assert.equal(health.status, 200);
  });

  it('admits exactly the tokens-per-minute limit across the server and two gateway processes', async () => {
    // Wait for a fresh minute window if this one is nearly over, so every call lands in one window.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
    const fronts = [server.url, ...gateways.map((g) => g.url)];
    const clients = fronts.map((u) => new OpenAI({ baseURL: `${u}/v1`, apiKey: aliceKey, maxRetries: 0 }));
    const results = await Promise.allSettled(
      Array.from({ length: 45 }, (_, i) => clients[i % clients.length]!.chat.completions.create(CALL)),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const limited = results.filter(
      (r) => r.status === 'rejected' && r.reason instanceof OpenAI.RateLimitError,
    ) as PromiseRejectedResult[];
    assert.equal(ok.length, TPM / PER_CALL, `admitted ${ok.length} calls of ${PER_CALL} tokens under ${TPM}/min`);
    assert.equal(ok.length + limited.length, 45);
    const e = limited[0]!.reason as InstanceType<typeof OpenAI.RateLimitError>;
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.ok(Number(e.headers?.get('retry-after')) > 0);
  });

  it('meters usage from every front into the shared database, and reports its load for the autoscaler', async () => {
    const alice = apiFor(server.url, aliceKey);
    const usage = await eventually(
      async () => {
        const r = await alice('GET', '/api/v1/projects/acme.apps/usage/tokens?by=deployment&since=1h');
        const row = r.body?.rows?.find((x: { group: string }) => x.group === 'ext');
        return row && row.requests === TPM / PER_CALL ? row : undefined;
      },
      20_000,
      'usage from every front',
    );
    // Only admitted calls are metered: the ten of the limit test, 13 + 10 tokens each.
    assert.deepEqual([usage.requests, usage.tokensIn, usage.tokensOut], [10, 130, 100]);
    // Each gateway process writes what it sees of the deployment every second (gateway_load).
    const db = new Database(join(dataDir, 'fabrik.db'), { readonly: true });
    try {
      const rows = db.prepare('select gateway, last_request_at from gateway_load').all() as {
        gateway: string;
        last_request_at: number;
      }[];
      // The two gateway processes, and the server's own /v1 (named server:host:pid).
      const names = new Set(rows.map((r) => r.gateway));
      assert.equal([...names].filter((n) => !n.startsWith('server:')).length, 2);
      assert.equal([...names].filter((n) => n.startsWith('server:')).length, 1);
      assert.ok(rows.every((r) => r.last_request_at > 0));
    } finally {
      db.close();
    }
  });
});
