// Serving end to end under the control plane (SQLite and PostgreSQL, local executor, development
// GPUs, the sandbox when this machine allows it): a tiny llama.cpp model deployed from a local GGUF, its
// replica scheduled as a workload and health-checked, then called through the server's /v1 with
// the official `openai` client — chat, streaming with usage, another tenant's key refused, usage
// metered, a replica killed with kill -9 mid-traffic, scale to zero and back on a request.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import OpenAI from 'openai';
import { writeTinyModel } from '../../src/inference/runtime/tiny-model.js';
import {
  type ServerProcess,
  api as apiFor,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { DIALECTS, OPERATOR_TOKEN, type TestDatabase, freshDatabase, skipReason } from '../helpers/harness.js';

for (const dialect of DIALECTS) {
  const skip = await skipReason(dialect);
  let db: TestDatabase;
  const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-serve-'));
  const modelDir = mkdtempSync(join(tmpdir(), 'fabrik-tiny-'));
  const modelPath = join(modelDir, 'tiny.gguf');
  // Ports of this suite's replicas: a range of its own, so suites running at once never collide.
  const firstPort = 20000 + Math.floor(Math.random() * 400) * 20;
  let server: ServerProcess;
  let op: ReturnType<typeof apiFor>;
  let alice: ReturnType<typeof apiFor>;
  let aliceKey: string;
  let globexKey: string;

  const client = (key: string, maxRetries = 0) =>
    new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries, timeout: 60_000 });

  async function deployment(name: string) {
    const r = await alice('GET', `/api/v1/projects/acme.serve/deployments/${name}`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  }
  const readyCount = (name: string, n: number, ms = 90_000) =>
    eventually(
      async () => {
        const d = await deployment(name);
        return d.replicas.ready === n ? d : undefined;
      },
      ms,
      `${name} to have ${n} ready replicas`,
    );

  describe(`serving a model through the control plane (${dialect})`, { timeout: 600_000, skip }, () => {
    before(async () => {
      db = await freshDatabase(dialect);
      chmodSync(modelDir, 0o755);
      await writeTinyModel(modelPath);
      chmodSync(modelPath, 0o644);
      server = await startServerProcess({
        dataDir,
        database: db.url,
        bootstrapToken: OPERATOR_TOKEN,
        devGpus: 4,
        // Rate windows of 3 s instead of a minute: a 429's Retry-After is then short enough for the
        // client's own retry to be seen in a test.
        env: { FABRIK_REPLICA_PORTS: `${firstPort}-${firstPort + 19}`, FABRIK_RATE_WINDOW_MS: '3000' },
      });
      op = apiFor(server.url, OPERATOR_TOKEN);
      for (const org of ['acme', 'globex']) {
        assert.equal((await op('POST', '/api/v1/orgs', { name: org, residency: 'de' })).status, 201);
        assert.equal((await op('POST', `/api/v1/orgs/${org}/projects`, { name: 'serve' })).status, 201);
        const q = await op('PUT', `/api/v1/projects/${org}.serve/quotas/dev`, { guaranteed: 2, limit: 4 });
        assert.equal(q.status, 200, q.text);
      }
      await op('POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' });
      await op('POST', '/api/v1/orgs/globex/members', { user: 'gina', role: 'owner' });
      aliceKey = (await op('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice' })).body.token;
      globexKey = (await op('POST', '/api/v1/orgs/globex/keys', { name: 'gina', user: 'gina' })).body.token;
      alice = apiFor(server.url, aliceKey);
    });
    after(async () => {
      await killAllServerProcesses();
      await db?.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(modelDir, { recursive: true, force: true });
    });

    it('deploys a local GGUF: the replica is a critical workload, health-checked into rotation', async () => {
      const r = await alice('POST', '/api/v1/projects/acme.serve/deployments', {
        name: 'tiny',
        modelPath,
        replicas: '1..2',
        threads: 1,
        contextSize: 512,
        aliases: ['tiny-chat'],
      });
      assert.equal(r.status, 201, r.text);
      const d = await readyCount('tiny', 1);
      const rep = d.replicaList[0];
      assert.equal(rep.state, 'ready');
      const w = await alice('GET', `/api/v1/projects/acme.serve/workloads/${rep.workloadId}`);
      assert.equal(w.body.kind, 'inference');
      assert.equal(w.body.priority, 'critical');
      assert.equal(w.body.status, 'running');
    });

    it('answers the official openai client: chat, streamed with include_usage, /v1/models by name and alias', async () => {
      const ai = client(aliceKey);
      const models = await ai.models.list();
      assert.deepEqual(models.data.map((m) => m.id).sort(), ['tiny', 'tiny-chat']);
      const chat = await ai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 8,
      });
      assert.equal(chat.object, 'chat.completion');
      assert.ok(chat.usage && chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens > 0);
      assert.ok(chat.usage.completion_tokens <= 8);
      const stream = await ai.chat.completions.create({
        model: 'tiny-chat',
        messages: [{ role: 'user', content: 'Hello again' }],
        max_tokens: 6,
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage: OpenAI.CompletionUsage | undefined;
      let chunks = 0;
      for await (const c of stream) {
        chunks++;
        if (c.usage) usage = c.usage;
      }
      assert.ok(chunks >= 2);
      assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 6);
    });

    it("refuses another tenant's key: its model list is empty and calling A's model is 404 like a model that does not exist", async () => {
      const ai = client(globexKey);
      assert.deepEqual((await ai.models.list()).data, []);
      for (const model of ['tiny', 'acme.serve/tiny', 'no-such-model']) {
        await assert.rejects(
          ai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
          (err: unknown) => err instanceof OpenAI.NotFoundError,
        );
      }
      const other = apiFor(server.url, globexKey);
      assert.equal((await other('GET', '/api/v1/projects/acme.serve/deployments/tiny')).status, 404);
    });

    it('meters tokens per project, deployment and key, off the hot path', async () => {
      const rows = await eventually(
        async () => {
          const r = await alice('GET', '/api/v1/projects/acme.serve/usage/tokens?by=deployment&since=1h');
          const row = r.body?.rows?.find((x: { group: string }) => x.group === 'tiny');
          return row && row.requests >= 2 ? r.body.rows : undefined;
        },
        20_000,
        'usage rows',
      );
      assert.ok(rows[0].tokensOut > 0);
      // describe shows the load the gateways report (the server's own /v1 included).
      const load = await eventually(
        async () => (await deployment('tiny')).load?.lastRequestAt ?? undefined,
        10_000,
        'load',
      );
      assert.ok(load > Date.now() - 120_000);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /fabrik_gateway/);
    });

    it('loses no non-streamed request when a replica is killed with kill -9 mid-traffic, and replaces it', async () => {
      assert.equal(
        (await alice('PATCH', '/api/v1/projects/acme.serve/deployments/tiny', { replicas: '2' })).status,
        200,
      );
      const d = await readyCount('tiny', 2);
      const ai = client(aliceKey);
      const victim = d.replicaList[0];
      const port = new URL(victim.endpoint).port;
      const calls = Array.from({ length: 12 }, (_, i) =>
        (async () => {
          await new Promise((r) => setTimeout(r, i * 100));
          return ai.chat.completions.create({
            model: 'tiny',
            messages: [{ role: 'user', content: `q${i}` }],
            max_tokens: 4,
          });
        })(),
      );
      await new Promise((r) => setTimeout(r, 300));
      execFileSync('pkill', ['-9', '-f', `replica-main.*--port ${port}`]);
      const answers = await Promise.all(calls);
      assert.equal(answers.length, 12);
      for (const a of answers) assert.equal(a.object, 'chat.completion');
      // Replaced: two ready again, the victim's place taken by a new replica, or by a new attempt of
      // its workload when the executor saw the task lost (requeued) rather than failed.
      const healed = await eventually(
        async () => {
          const x = await deployment('tiny');
          const same = x.replicaList.find((r: { id: string }) => r.id === victim.id);
          return x.replicas.ready === 2 && (!same || same.attempt > victim.attempt) ? x : undefined;
        },
        90_000,
        'a replacement replica',
      );
      assert.equal(healed.replicaList.length, 2);
    });

    it('scales to zero after its idle period, and a request arriving at zero is held while a replica starts', async () => {
      const r = await alice('POST', '/api/v1/projects/acme.serve/deployments', {
        name: 'sleepy',
        modelPath,
        replicas: '0..1',
        threads: 1,
        contextSize: 256,
        idleTimeoutS: 2,
      });
      assert.equal(r.status, 201, r.text);
      await eventually(
        async () => {
          const x = await deployment('sleepy');
          return x.replicas.desired === 0 && x.replicaList.length === 0 ? x : undefined;
        },
        60_000,
        'sleepy to scale to zero',
      );
      const answer = await client(aliceKey).chat.completions.create({
        model: 'sleepy',
        messages: [{ role: 'user', content: 'wake up' }],
        max_tokens: 3,
      });
      assert.equal(answer.object, 'chat.completion');
      assert.equal((await deployment('sleepy')).replicas.ready, 1);
    });

    it('deploys a registry version: pinned to its commit, staged read-only into the replica', async () => {
      assert.equal((await alice('POST', '/api/v1/projects/acme.serve/models', { name: 'tiny-hub' })).status, 201);
      const pushed = await hub.uploadFiles({
        repo: { type: 'model', name: 'acme.serve/tiny-hub' },
        accessToken: `hf_${aliceKey}`,
        hubUrl: `${server.url}/hub`,
        files: [
          { path: 'README.md', content: new Blob(['# tiny\n']) },
          { path: 'weights/tiny.gguf', content: new Blob([new Uint8Array(readFileSync(modelPath))]) },
        ],
      });
      const r = await alice('POST', '/api/v1/projects/acme.serve/deployments', {
        name: 'from-hub',
        model: 'acme.serve/tiny-hub:main',
        threads: 1,
        contextSize: 256,
      });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.body.model.commit, pushed!.commit.oid);
      await readyCount('from-hub', 1);
      const answer = await client(aliceKey).chat.completions.create({
        model: 'from-hub',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 3,
      });
      assert.ok(answer.usage && answer.usage.completion_tokens > 0);
    });

    it('undeploys: the replicas stop and the model is gone from /v1', async () => {
      for (const name of ['tiny', 'sleepy', 'from-hub']) {
        assert.equal((await alice('DELETE', `/api/v1/projects/acme.serve/deployments/${name}`)).status, 200);
      }
      await eventually(
        async () => {
          const ws = await alice('GET', '/api/v1/projects/acme.serve/workloads?status=running');
          return (ws.body.items ?? ws.body).length === 0 ? true : undefined;
        },
        60_000,
        'replica workloads to end',
      );
      await assert.rejects(
        client(aliceKey).chat.completions.create({
          model: 'tiny',
          messages: [{ role: 'user', content: 'x' }],
          max_tokens: 2,
        }),
        (err: unknown) => err instanceof OpenAI.NotFoundError,
      );
    });
  });
}
