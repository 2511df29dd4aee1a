// The llamacpp replica as the gateway meets it: replica-main in its own process, serving a tiny
// generated model, called with the official `openai` client (the compatibility that matters).
// Short generations and one thread (on two cores, two ggml threads contend with node's own and run
// the tiny model some 30 times slower), so it stays quick on a small, busy machine; no timing asserts.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startReplicaServer } from '../../src/inference/runtime/replica-server.js';
import { writeTinyModel } from '../../src/inference/runtime/tiny-model.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(ROOT, 'src/inference/runtime/replica-main.ts');
const CONTEXT = 2048;

interface Replica {
  child: ChildProcess;
  port: number;
  base: string;
  /** Every JSON line it printed so far. */
  events: Record<string, any>[];
  /** Resolves with the first event matching, waiting for it if needed. */
  waitFor(pred: (e: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  exited: Promise<number | null>;
}

async function startReplica(args: string[], env: Record<string, string>): Promise<Replica> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    // No HOME: the replica must not need one (it runs as a sandbox user).
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, any>[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  child.stdout!.on('data', (d) => {
    buffered += d;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitFor = (pred: (e: Record<string, any>) => boolean, timeoutMs = 60_000) =>
    new Promise<Record<string, any>>((res, rej) => {
      const check = () => {
        const e = events.find(pred);
        if (!e) return;
        waiters.delete(check);
        clearTimeout(timer);
        res(e);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        rej(new Error(`no such event in ${timeoutMs} ms; events: ${JSON.stringify(events)}; stderr: ${stderr}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  exited.then(() => {
    for (const w of waiters) w();
  });
  const listening = await waitFor((e) => e.event === 'listening' || e.event === 'error');
  assert.equal(listening.event, 'listening', JSON.stringify(listening));
  const port = listening.port as number;
  return { child, port, base: `http://127.0.0.1:${port}`, events, waitFor, exited };
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const load = async (r: Replica) => (await (await fetch(`${r.base}/load`)).json()) as Record<string, number>;

describe('llamacpp replica (replica-main + openai client)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-replica-'));
  const token = randomBytes(24).toString('base64url');
  let replica: Replica;
  let openai: OpenAI;

  before(async () => {
    // A directory with one model in a subfolder, as a registry snapshot is laid out.
    mkdirSync(join(dir, 'model', 'gguf'), { recursive: true });
    await writeTinyModel(join(dir, 'model', 'gguf', 'tiny.gguf'));
    replica = await startReplica(
      [
        '--model',
        join(dir, 'model'),
        '--port',
        '0',
        '--name',
        'tiny',
        '--threads',
        '2',
        '--context-size',
        String(CONTEXT),
      ],
      { FABRIK_REPLICA_TOKEN_SHA256: createHash('sha256').update(token).digest('hex') },
    );
    await replica.waitFor((e) => e.event === 'loaded');
    // No retries: a 503 or 401 must reach the test as it is.
    openai = new OpenAI({ baseURL: `${replica.base}/v1`, apiKey: token, maxRetries: 0, timeout: 60_000 });
  });

  after(async () => {
    if (replica && replica.child.exitCode === null) {
      replica.child.kill('SIGKILL');
      await replica.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports health without a token and lists its model', async () => {
    const health = await fetch(`${replica.base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const models = await openai.models.list();
    assert.deepEqual(
      models.data.map((m) => [m.id, m.object]),
      [['tiny', 'model']],
    );
    const loaded = replica.events.find((e) => e.event === 'loaded')!;
    assert.equal(loaded.contextSize, CONTEXT);
    assert.equal(loaded.slots, 2);
    assert.equal(loaded.gpu, false);
  });

  // Greedy (temperature 0) wherever a test counts tokens: the tiny model's end-of-generation logits
  // are zero, below the best of the others, so greedy decoding never stops early; sampling could.
  it('answers a chat completion with consistent usage', async () => {
    const r = await openai.chat.completions.create({
      model: 'tiny',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Say hello.' },
      ],
      max_tokens: 8,
      temperature: 0,
    });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'tiny');
    assert.equal(r.choices.length, 1);
    const [c] = r.choices;
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.equal(c.logprobs, null);
    assert.equal(c.finish_reason, 'length');
    const u = r.usage!;
    assert.ok(u.prompt_tokens > 10, `prompt tokens ${u.prompt_tokens}`);
    assert.equal(u.completion_tokens, 8);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  });

  it('streams a chat with the usage chunk, as the official client expects', async () => {
    const stream = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Count.' }],
      max_tokens: 6,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const all = JSON.stringify(chunks);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    assert.match([...ids][0], /^chatcmpl-/);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant', all);
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, [], all);
    const final = chunks.at(-2)!;
    assert.equal(final.choices[0].finish_reason, 'length', all);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, all);
    assert.equal(usageChunk.usage!.completion_tokens, 6, all);
    assert.equal(usageChunk.usage!.total_tokens, usageChunk.usage!.prompt_tokens + 6, all);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.ok(text.length > 0, all);
  });

  it('sends data lines only, ending with [DONE]', async () => {
    const res = await fetch(`${replica.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter((e) => e !== '');
    assert.ok(events.every((e) => e.startsWith('data: ') && !e.includes('\n')));
    assert.equal(events.at(-1), 'data: [DONE]');
    // Without include_usage there is no usage field at all.
    for (const e of events.slice(0, -1)) assert.equal('usage' in JSON.parse(e.slice(6)), false);
  });

  it('answers a plain completion', async () => {
    const r = await openai.completions.create({
      model: 'tiny',
      prompt: 'Once upon a time',
      max_tokens: 5,
      temperature: 0,
    });
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.choices[0].text, 'string');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage!.completion_tokens, 5);
    assert.ok(r.usage!.prompt_tokens > 1);
  });

  it('embeds (float and base64, as the client asks by default)', async () => {
    const r = await openai.embeddings.create({ model: 'tiny', input: ['hello', 'world'] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[1].index, 1);
    assert.equal(r.data[0].embedding.length, 64);
    assert.ok(r.data[0].embedding.every(Number.isFinite));
    assert.ok(r.usage.prompt_tokens > 2);
    const floats = await openai.embeddings.create({ model: 'tiny', input: 'hello', encoding_format: 'float' });
    assert.deepEqual(
      floats.data[0].embedding.map((x) => Math.fround(x)),
      r.data[0].embedding.map((x) => Math.fround(x)),
    );
  });

  it('refuses a wrong or missing token with 401', async () => {
    const wrong = new OpenAI({ baseURL: `${replica.base}/v1`, apiKey: 'not-the-token', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e: any) => e.status === 401 && e.code === 'invalid_api_key');
    const res = await fetch(`${replica.base}/v1/models`);
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  });

  it('refuses max_tokens beyond the context, and bad bodies, with 400', async () => {
    await assert.rejects(
      openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: CONTEXT,
      }),
      (e: any) => e.status === 400 && e.code === 'context_length_exceeded' && e.param === 'max_tokens',
    );
    await assert.rejects(
      openai.chat.completions.create({ model: 'tiny', messages: [] }),
      (e: any) => e.status === 400 && e.param === 'messages',
    );
    const tools = [{ type: 'function' as const, function: { name: 'f', parameters: {} } }];
    await assert.rejects(
      openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], tools }),
      (e: any) => e.status === 400 && e.param === 'tools',
    );
    const res = await fetch(`${replica.base}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: '{not json',
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.type, 'invalid_request_error');
    const unknown = await fetch(`${replica.base}/v1/nothing`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(unknown.status, 404);
  });

  it('stops generating when the client drops a stream, and frees the slot', async () => {
    const stream = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Talk for a long time.' }],
      max_tokens: CONTEXT - 48,
      stream: true,
    });
    let seen = 0;
    for await (const _ of stream) if (++seen === 3) break; // break aborts the request
    const aborted = await replica.waitFor((e) => e.event === 'aborted');
    assert.ok(aborted.completionTokens < CONTEXT - 48, JSON.stringify(aborted));
    await until(async () => ((await load(replica)).inflight === 0 ? true : undefined), 'inflight back to 0');
  });

  it('answers two concurrent requests, one per slot', async () => {
    const ask = (content: string) =>
      openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content }],
        max_tokens: 12,
        temperature: 0,
      });
    const [a, b] = await Promise.all([ask('first'), ask('second')]);
    for (const r of [a, b]) {
      assert.equal(r.usage!.completion_tokens, 12);
      assert.equal(r.choices[0].finish_reason, 'length');
    }
    assert.notEqual(a.id, b.id);
    assert.deepEqual(await load(replica), { inflight: 0, queued: 0, slots: 2 });
  });

  it('on SIGTERM finishes the running request, then exits 0', async () => {
    const stream = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'last one' }],
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    // The first chunk is out: the request holds a slot when the signal arrives.
    const it = stream[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.choices[0].delta.role, 'assistant');
    replica.child.kill('SIGTERM');
    let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
    for (let n = await it.next(); !n.done; n = await it.next()) last = n.value;
    assert.equal(last?.usage?.completion_tokens, 16);
    assert.equal(await replica.exited, 0);
    assert.ok(replica.events.some((e) => e.event === 'stopped'));
  });
});

describe('replica server edges', () => {
  it('says 503 while the model loads: /health and /v1 alike', async () => {
    const server = await startReplicaServer({ engine: new Promise(() => {}), name: 'slow', tokenSha256: '' });
    try {
      const health = await fetch(`http://127.0.0.1:${server.port}/health`);
      assert.equal(health.status, 503);
      assert.deepEqual(await health.json(), { status: 'loading' });
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: 'x', maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'hi' }] }),
        (e: any) => e.status === 503 && e.code === 'model_loading' && e.headers.get('retry-after') === '1',
      );
    } finally {
      await server.close();
    }
  });

  it('refuses with 503 and Retry-After when every slot is busy and the queue is full', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-replica-busy-'));
    const model = join(dir, 'tiny.gguf');
    await writeTinyModel(model);
    const r = await startReplica(
      ['--model', model, '--port', '0', '--name', 'tiny', '--threads', '1', '--parallel', '1', '--max-queue', '0'],
      {},
    );
    const long = new AbortController();
    try {
      await r.waitFor((e) => e.event === 'loaded');
      const body = (max: number) => JSON.stringify({ prompt: 'go', max_tokens: max, stream: true });
      const first = await fetch(`${r.base}/v1/completions`, { method: 'POST', body: body(2000), signal: long.signal });
      assert.equal(first.status, 200);
      await until(async () => ((await load(r)).inflight === 1 ? true : undefined), 'the first request to run');
      const second = await fetch(`${r.base}/v1/completions`, { method: 'POST', body: body(4) });
      assert.equal(second.status, 503);
      assert.equal(second.headers.get('retry-after'), '1');
      assert.equal((await second.json()).error.code, 'overloaded');
      long.abort();
      await until(async () => ((await load(r)).inflight === 0 ? true : undefined), 'the slot to be freed');
    } finally {
      long.abort();
      r.child.kill('SIGTERM');
      await r.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
