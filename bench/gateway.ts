// `npm run bench -- gateway --json`: what the inference gateway adds to a call, and how much it
// carries. Three kinds of process, so no two share an event loop: this one generates the load
// (autocannon, and an evenly paced open-loop client), a gateway process
// (src/inference/gateway/dev-main.ts: in-memory ports, the in-process limiter with every limit
// set so each call is really counted) and a process of 65 stand-in upstreams
// (test/helpers/fake-upstream.ts). In one run:
//   at1000      a fixed 1,000 non-streamed chat calls per second, evenly paced, straight to an
//               upstream and through the gateway (3 alternating rounds each, the median round
//               reported): p50/p99 of each and the p99 the gateway adds
//   maxRps      the gateway's most non-streamed calls per second (closed loop), one replica;
//               directMaxRps the same straight to the upstream (the baseline); streamedMaxRps
//               streamed calls (16 tokens each) through the gateway
//   replicas64  the same over a deployment of 64 replicas (64 upstream servers, ports)
//   llamacpp    a real tiny llama.cpp replica (src/inference/runtime/replica-main.ts on a model
//               from writeTinyModel) behind the gateway: streamed tokens/s and time to first token
// Options: --seconds N (each measurement or round, default 5), --connections N (closed loop, default 32),
// --no-llamacpp.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevGatewayConfig } from '../src/inference/gateway/dev-main.js';
import { REPO_ROOT } from '../test/helpers/child-server.js';
import { paced, percentile } from './paced.js';

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: object) => PromiseLike<AutocannonResult>;

const KEY = 'sk-bench';
const BODY = JSON.stringify({
  model: 'bench',
  messages: [
    { role: 'system', content: 'You are the benchmark assistant. Answer in one short sentence.' },
    { role: 'user', content: 'How far is the moon?' },
  ],
  max_tokens: 16,
});
const body = (model: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...JSON.parse(BODY), model, ...extra });

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const say = (m: string) => process.stderr.write(`bench gateway: ${m}\n`);

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

const children: ChildProcess[] = [];

/** A child process that prints a JSON line when ready (`match` picks the line); resolves with it. */
function startChild(argv: string[], match: (line: any) => boolean = () => true): Promise<any> {
  const child = spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(line);
          if (match(j)) resolve(j);
        } catch {}
        nl = buf.indexOf('\n');
      }
    });
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}`)));
  });
}

/**
 * Non-streamed chat calls at an even pace (see bench/paced.ts): an open loop, each latency counted
 * from the call's scheduled send time; `failed` counts non-2xx answers and errors.
 */
async function pacedChat(url: string, payload: string, rate: number, seconds: number): Promise<Paced> {
  const r = await paced({
    url: `${url}/v1/chat/completions`,
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: payload,
    rate,
    seconds,
    maxSockets: 128,
  });
  return { p50: percentile(r.samples, 50), p99: percentile(r.samples, 99), failed: r.failed };
}

interface Paced {
  p50: number;
  p99: number;
  failed: number;
}

const ROUNDS = 3;

/** The round with the median p99 (its p50 with it). */
function medianRound(rounds: Paced[]): Paced {
  return [...rounds].sort((a, b) => a.p99 - b.p99)[Math.floor(rounds.length / 2)];
}

/** Closed loop: as many calls per second as `connections` keep-alive connections get answered. */
async function maxRps(url: string, payload: string, seconds: number, connections: number): Promise<number> {
  const r = await autocannon({
    url: `${url}/v1/chat/completions`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: payload,
  });
  if (r.non2xx + r.errors + r.timeouts > 0) say(`  ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  return Math.round(r['2xx'] / r.duration);
}

/** Streamed chat calls one after another: median time to the first token and tokens/s after it. */
async function streamed(url: string, model: string, calls: number) {
  const ttft: number[] = [];
  const rates: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: body(model, { max_tokens: 64, stream: true, stream_options: { include_usage: true } }),
    });
    if (r.status !== 200) throw new Error(`streamed call: ${r.status} ${await r.text()}`);
    let first = 0;
    let tokens = 0;
    let buf = '';
    const decoder = new TextDecoder();
    for await (const chunk of r.body as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      const events = buf.split('\n\n');
      buf = events.pop()!;
      for (const e of events) {
        if (!e.startsWith('data: {')) continue;
        const data = JSON.parse(e.slice(6));
        if (!first && data.choices?.[0]?.delta?.content) first = performance.now();
        if (data.usage) tokens = data.usage.completion_tokens;
      }
    }
    const end = performance.now();
    if (!first) first = end;
    ttft.push(first - started);
    if (end > first) rates.push((tokens - 1) / ((end - first) / 1000));
  }
  ttft.sort((a, b) => a - b);
  rates.sort((a, b) => a - b);
  return { tokensPerSec: round(percentile(rates, 50), 1), ttftMs: round(percentile(ttft, 50)) };
}

/** A tiny llama.cpp replica process; undefined (and why, on stderr) when it cannot run here. */
async function startLlamacpp(dir: string): Promise<string | undefined> {
  try {
    const { writeTinyModel } = await import('../src/inference/runtime/tiny-model.js');
    const model = join(dir, 'tiny.gguf');
    await writeTinyModel(model);
    const entry = 'src/inference/runtime/replica-main.ts';
    // One thread: on 2 cores, two llama.cpp threads contend with the load generator and run far slower.
    const argv = ['--import', 'tsx', entry, '--model', model, '--port', '0', '--name', 'tiny', '--threads', '1'];
    let port = 0;
    await startChild([...argv, '--context-size', '512'], (j) => {
      if (j.event === 'listening') port = j.port;
      if (j.event === 'error') throw new Error(j.error);
      return j.event === 'loaded';
    });
    return `http://127.0.0.1:${port}`;
  } catch (err) {
    say(`llama.cpp replica unavailable: ${(err as Error).message}`);
    return undefined;
  }
}

export default async function (args: string[]): Promise<object> {
  const seconds = arg(args, '--seconds', 5);
  const connections = arg(args, '--connections', 32);
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-bench-gw-'));
  try {
    say('starting 65 upstreams, a llama.cpp replica and a gateway…');
    const { urls } = await startChild([
      '--import',
      'tsx',
      'test/helpers/fake-upstream.ts',
      '--count',
      '65',
      '--tokens',
      '16',
    ]);
    const llama = args.includes('--no-llamacpp') ? undefined : await startLlamacpp(dir);
    const replica = (url: string, i: number) => ({ id: `r${i}`, url, node: `n${i % 8}`, state: 'ready' as const });
    const config: DevGatewayConfig = {
      deployments: [
        { id: 'd1', name: 'bench', replicas: [replica(urls[0], 0)] },
        { id: 'd64', name: 'bench64', replicas: urls.slice(1).map(replica) },
        ...(llama ? [{ id: 'dl', name: 'tiny', contextSize: 512, replicas: [replica(llama, 99)] }] : []),
      ],
      keys: { [KEY]: { keyId: 'key-bench', orgId: 'org-acme', projects: ['prj-chat'] } },
      // Every counter in play, none ever reached: the limiter's cost is in the figures.
      limits: { key: { rpm: 1e9, tpm: 1e12 }, project: { rpm: 1e9, tpm: 1e12, monthlyTokens: 1e15 } },
      limiter: { kind: 'memory' },
    };
    const { url: gateway } = await startChild([
      '--import',
      'tsx',
      'src/inference/gateway/dev-main.ts',
      '--config',
      JSON.stringify(config),
    ]);

    say('warming up…');
    await maxRps(urls[0], body('bench'), 2, connections);
    await maxRps(gateway, body('bench'), 2, connections);
    await maxRps(gateway, body('bench64'), 2, connections);

    // Direct and through the gateway in alternating rounds, the median round of each reported:
    // a burst of noise from elsewhere on the machine then spoils one round, not the figure.
    say(`1,000 calls/s, evenly paced: ${ROUNDS} rounds of ${seconds} s, direct and through the gateway in turn…`);
    const directRounds: Paced[] = [];
    const gatewayRounds: Paced[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      directRounds.push(await pacedChat(urls[0], body('bench'), 1000, seconds));
      gatewayRounds.push(await pacedChat(gateway, body('bench'), 1000, seconds));
      say(
        `  round ${i + 1}: direct p99 ${round(directRounds[i].p99)} ms, gateway p99 ${round(gatewayRounds[i].p99)} ms`,
      );
    }
    const direct = medianRound(directRounds);
    const through = medianRound(gatewayRounds);
    const failed = [...directRounds, ...gatewayRounds].reduce((n, r) => n + r.failed, 0);
    if (failed > 0) say(`  failed calls: ${failed}`);

    say(`closed loop, ${connections} connections…`);
    // The upstream alone, the same way: the baseline the gateway's figure is a share of.
    const directMax = await maxRps(urls[0], body('bench'), seconds, connections);
    const one = await maxRps(gateway, body('bench'), seconds, connections);
    const sixtyFour = await maxRps(gateway, body('bench64'), seconds, connections);
    const streaming = await maxRps(gateway, body('bench', { stream: true }), seconds, connections);
    say(
      `  direct ${directMax}/s; through the gateway: one replica ${one}/s, 64 replicas ${sixtyFour}/s, streamed (16 tokens) ${streaming}/s`,
    );

    let llamacpp: { tokensPerSec: number; ttftMs: number } | { skipped: string } = { skipped: 'no llama.cpp replica' };
    if (llama) {
      say('llama.cpp: streamed calls through the gateway…');
      await streamed(gateway, 'tiny', 2);
      llamacpp = await streamed(gateway, 'tiny', 10);
      say(`  ${llamacpp.tokensPerSec} tokens/s, first token after ${llamacpp.ttftMs} ms`);
    }
    const cpu = cpus();
    return {
      bench: 'gateway',
      at1000: {
        directP99Ms: round(direct.p99),
        gatewayP99Ms: round(through.p99),
        addedP99Ms: round(through.p99 - direct.p99),
        directP50Ms: round(direct.p50),
        gatewayP50Ms: round(through.p50),
      },
      maxRps: one,
      directMaxRps: directMax,
      replicas64: { maxRps: sixtyFour },
      streamedMaxRps: streaming,
      llamacpp,
      machine: `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores`,
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
