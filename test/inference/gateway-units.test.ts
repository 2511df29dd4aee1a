// The gateway's pure parts: the routing index and pick (unit, differential against a plain
// reference, rendezvous stability, cost with hundreds of replicas), the request checks and
// estimates, the usage scanners (SSE relay split at every possible byte), and the hold queues.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HoldQueues } from '../../src/inference/gateway/hold.js';
import {
  type DeploymentRoute,
  type PickOptions,
  type ReplicaSlot,
  buildIndex,
  hashString,
  pick,
  rendezvousScore,
  resolveModel,
} from '../../src/inference/gateway/routing.js';
import { deployment } from '../../src/inference/gateway/static.js';
import { SseRelay, scanUsage } from '../../src/inference/gateway/usage-scan.js';
import { affinityKey, estimateTokens, validateBody } from '../../src/inference/gateway/validate.js';
import type { GatewayCaller, RouteReplica } from '../../src/inference/types.js';

const OPTS: PickOptions = { loadCap: 2, maxInflight: Number.POSITIVE_INFINITY, quarantineMs: 1000 };
const caller = (projects: string[]): GatewayCaller => ({
  keyId: 'k',
  orgId: 'o',
  principal: 'p',
  canUse: (id) => projects.includes(id),
});
const replicas = (n: number, state: RouteReplica['state'] = 'ready'): RouteReplica[] =>
  Array.from({ length: n }, (_, i) => ({ id: `r${i}`, url: `http://10.0.0.${i}:8000`, node: `n${i % 4}`, state }));

function routeOf(n: number): DeploymentRoute {
  const index = buildIndex({ version: 1, deployments: [deployment({ id: 'd', name: 'm', replicas: replicas(n) })] });
  return index.byId.get('d')!;
}

/** The pick rule written plainly (filter, sort, allocate): what `pick` must agree with. */
function reference(route: DeploymentRoute, key: number, now: number, o: PickOptions) {
  const usable = route.ready.filter(
    (s) => (s.failedAt === 0 || now - s.failedAt >= o.quarantineMs) && s.outstanding < o.maxInflight,
  );
  if (usable.length === 0) return { kind: 'none' as const };
  const min = Math.min(...usable.map((s) => s.outstanding));
  if (key !== 0) {
    const preferred = [...usable].sort((a, b) => rendezvousScore(key, b.seed) - rendezvousScore(key, a.seed))[0];
    if (preferred.outstanding <= min + o.loadCap) return { kind: 'exact' as const, slot: preferred };
  }
  return { kind: 'least' as const, min, usable };
}

describe('routing index', () => {
  it('indexes names, aliases and qualified names; keeps slots (load, marks) across versions', () => {
    const d1 = deployment({ id: 'd1', name: 'm', aliases: ['alias'], replicas: replicas(2) });
    const d2 = deployment({ id: 'd2', name: 'm', projectId: 'p2', project: 'acme.two', replicas: [] });
    const v1 = buildIndex({ version: 1, deployments: [d1, d2] });
    assert.deepEqual([...v1.byName.keys()].sort(), ['acme.chat/alias', 'acme.chat/m', 'acme.two/m', 'alias', 'm']);
    const slot = v1.byId.get('d1')!.ready[0];
    slot.outstanding = 3;
    slot.failedAt = 5;
    const d1b = { ...d1, replicas: [{ ...d1.replicas[0] }, { ...d1.replicas[1], state: 'unhealthy' as const }] };
    const v2 = buildIndex({ version: 2, deployments: [d1b] }, v1);
    assert.equal(v2.byId.get('d1')!.ready[0], slot, 'the same slot object');
    assert.equal(slot.outstanding, 3);
    assert.equal(slot.failedAt, 5, 'still ready in the table: the local mark stays');
    assert.equal(v2.byId.get('d1')!.ready.length, 1);
    const d1c = { ...d1, replicas: [{ ...d1.replicas[0], state: 'unhealthy' as const }] };
    buildIndex({ version: 3, deployments: [d1c] }, v2);
    assert.equal(slot.failedAt, 0, 'the table took it out: the local mark ends');
  });

  it('resolves only among usable deployments; forbidden is missing; shared names are ambiguous', () => {
    const index = buildIndex({
      version: 1,
      deployments: [
        deployment({ id: 'd1', name: 'm', replicas: [] }),
        deployment({ id: 'd2', name: 'm', projectId: 'p2', project: 'acme.two', replicas: [] }),
      ],
    });
    assert.equal(resolveModel(index, caller(['prj-chat']), 'm').kind, 'found');
    assert.equal(resolveModel(index, caller([]), 'm').kind, 'missing');
    assert.equal(resolveModel(index, caller([]), 'nothing').kind, 'missing');
    assert.deepEqual(resolveModel(index, caller(['prj-chat', 'p2']), 'm'), {
      kind: 'ambiguous',
      candidates: ['acme.chat/m', 'acme.two/m'],
    });
    const q = resolveModel(index, caller(['prj-chat', 'p2']), 'acme.two/m');
    assert.equal(q.kind === 'found' && q.route.deployment.id, 'd2');
  });
});

describe('pick', () => {
  it('prefers the rendezvous replica, spills to the least loaded past the cap, skips failed ones', () => {
    const route = routeOf(4);
    const key = 12345;
    const preferred = pick(route, key, 0, OPTS)!;
    assert.equal(pick(route, key, 0, OPTS), preferred, 'stable');
    preferred.outstanding = 2;
    assert.equal(pick(route, key, 0, OPTS), preferred, 'within the cap');
    preferred.outstanding = 3;
    const other = pick(route, key, 0, OPTS)!;
    assert.notEqual(other, preferred);
    assert.equal(other.outstanding, 0);
    preferred.outstanding = 0;
    preferred.failedAt = 10_000;
    assert.notEqual(pick(route, key, 10_500, OPTS), preferred, 'failed here: out');
    assert.equal(pick(route, key, 11_000, OPTS), preferred, 'quarantine over: back');
    assert.equal(preferred.failedAt, 0);
  });

  it('spreads calls without affinity round-robin over equally loaded replicas', () => {
    const route = routeOf(3);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) seen.add(pick(route, 0, 0, OPTS)!.id);
    assert.equal(seen.size, 3);
  });

  it('returns nothing when every replica is failed or at its cap', () => {
    const route = routeOf(2);
    for (const s of route.ready) s.outstanding = 1;
    assert.equal(pick(route, 7, 0, { ...OPTS, maxInflight: 1 }), undefined);
    assert.equal(pick(routeOf(0), 7, 0, OPTS), undefined);
  });

  it('agrees with the plain reference (differential, random states)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ outstanding: fc.nat(8), failed: fc.boolean() }), { minLength: 0, maxLength: 12 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff })),
        fc.nat(4),
        fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 8 })),
        (states, key, loadCap, maxInflight) => {
          const route = routeOf(states.length);
          states.forEach((st, i) => {
            route.ready[i].outstanding = st.outstanding;
            route.ready[i].failedAt = st.failed ? 1 : 0;
          });
          const o = { loadCap, maxInflight, quarantineMs: 1000 };
          const expected = reference(route, key, 500, o);
          const got = pick(route, key, 500, o);
          if (expected.kind === 'none') assert.equal(got, undefined);
          else if (expected.kind === 'exact') assert.equal(got, expected.slot);
          else {
            assert.ok(got && expected.usable.includes(got));
            assert.equal(got.outstanding, expected.min);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('moves only the keys of a replica that leaves, and only to one that comes (rendezvous)', () => {
    const preferredOf = (slots: ReplicaSlot[], key: number) =>
      slots.reduce((a, b) => (rendezvousScore(key, b.seed) > rendezvousScore(key, a.seed) ? b : a));
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 40 }),
        fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 50 }),
        (n, keys) => {
          const all = routeOf(n + 1).ready as ReplicaSlot[];
          const before = all.slice(0, n);
          for (const key of keys) {
            const was = preferredOf(before, key);
            const now = preferredOf(all, key);
            assert.ok(now === was || now === all[n], 'a new replica only takes keys');
            const gone = before.filter((s) => s !== before[0]);
            if (was !== before[0]) assert.equal(preferredOf(gone, key), was, 'only the leaving one’s keys move');
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stays cheap with hundreds of replicas: 20,000 picks over 500 in well under a second', () => {
    const route = routeOf(500);
    route.ready.forEach((s, i) => {
      s.outstanding = i % 7;
    });
    const started = performance.now();
    let sum = 0;
    for (let i = 1; i <= 20_000; i++) sum += pick(route, hashString(String(i)), 0, OPTS)!.outstanding;
    const ms = performance.now() - started;
    assert.ok(sum >= 0);
    assert.ok(ms < 1000, `${ms} ms`);
  });
});

describe('request checks and estimates', () => {
  const chat = { model: 'm', messages: [{ role: 'user', content: 'hello world!' }] };

  it('accepts null for optional fields, refuses it for required ones', () => {
    assert.equal(validateBody('chat.completions', { ...chat, temperature: null, stop: null }), undefined);
    assert.equal(validateBody('chat.completions', { ...chat, messages: null })?.param, 'messages');
    assert.equal(validateBody('chat.completions', { ...chat, messages: [{ content: 'x' }] })?.param, 'messages[0]');
    assert.equal(validateBody('completions', { model: 'm', prompt: ['a', 'b'] }), undefined);
    assert.equal(validateBody('embeddings', { model: 'm', input: 3 })?.code, 'invalid_type');
  });

  it('estimates 4 characters a token plus per-message overhead, and the completion at its maximum', () => {
    assert.deepEqual(estimateTokens('chat.completions', { ...chat, max_tokens: 10, n: 2 }, 4096, 512), {
      prompt: 3 + 4,
      completion: 20,
    });
    assert.deepEqual(estimateTokens('chat.completions', chat, 100, 512), { prompt: 7, completion: 93 });
    assert.deepEqual(estimateTokens('embeddings', { model: 'm', input: ['abcd', [1, 2, 3]] }, 100, 512), {
      prompt: 4,
      completion: 0,
    });
  });

  it('keys affinity by the system prompt (or the first message), a session header first', () => {
    const sys = (s: string, u: string) => ({
      messages: [
        { role: 'system', content: s },
        { role: 'user', content: u },
      ],
    });
    const k = affinityKey('chat.completions', sys('Be brief.', 'a'), undefined);
    assert.equal(affinityKey('chat.completions', sys('Be brief.', 'b'), undefined), k);
    assert.notEqual(affinityKey('chat.completions', sys('Be long.', 'a'), undefined), k);
    const conv = {
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'x' },
      ],
    };
    const conv2 = { messages: [{ role: 'user', content: 'first' }] };
    assert.equal(affinityKey('chat.completions', conv, undefined), affinityKey('chat.completions', conv2, undefined));
    assert.equal(
      affinityKey('chat.completions', sys('a', 'b'), 'sess'),
      affinityKey('completions', { prompt: 'x' }, 'sess'),
    );
    assert.equal(affinityKey('embeddings', { input: 'x' }, undefined), 0);
  });
});

describe('usage scanners', () => {
  it('finds the top-level usage of a JSON answer without being fooled by content', () => {
    const body = JSON.stringify({
      choices: [{ message: { content: 'the "usage": {"prompt_tokens": 999} trick' } }],
      usage: { prompt_tokens: 5, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 1 } },
      timings: { n: 1 },
    });
    assert.deepEqual(scanUsage(Buffer.from(body)), { prompt: 5, completion: 7 });
    assert.equal(scanUsage(Buffer.from('{"choices":[{"text":"\\"usage\\": {}"}]}')), undefined);
    const first = JSON.stringify({
      usage: { prompt_tokens: 2, completion_tokens: 1 },
      choices: [{ text: '"usage": {}' }],
    });
    assert.deepEqual(scanUsage(Buffer.from(first)), { prompt: 2, completion: 1 });
    assert.equal(scanUsage(Buffer.from('{"usage": null}')), undefined);
  });

  const upstream = [
    ': a comment\n\n',
    'event: message\ndata: {"choices":[{"delta":{"content":"h€llo"}}],"usage":null}\n\n',
    'data: {"choices":[{"delta":{"content":" wörld"}}],"usage":null}\r\n\r\n',
    'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
    'data: [DONE]\n\n',
  ].join('');

  it('passes data events through, drops other fields, and the usage chunk unless asked for', () => {
    for (const forward of [false, true]) {
      const relay = new SseRelay(forward);
      const out = relay.push(Buffer.from(upstream));
      assert.deepEqual(relay.usage, { prompt: 3, completion: 2 });
      assert.equal(relay.done, true);
      assert.equal(relay.chunks, 2);
      assert.doesNotMatch(out, /event:|^:/m);
      assert.equal(out.includes('"prompt_tokens":3'), forward);
      assert.ok(out.endsWith('data: [DONE]\n\n'));
    }
  });

  it('gives the same output however the bytes are split (UTF-8 characters too)', () => {
    const bytes = Buffer.from(upstream);
    const whole = new SseRelay(false).push(bytes);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
        const relay = new SseRelay(false);
        let out = '';
        let from = 0;
        for (const c of [...cuts.sort((a, b) => a - b), bytes.length]) {
          out += relay.push(bytes.subarray(from, c));
          from = c;
        }
        assert.equal(out, whole);
        assert.deepEqual(relay.usage, { prompt: 3, completion: 2 });
      }),
      { numRuns: 500 },
    );
  });

  it('tells the first generated token from the role-only first chunk', () => {
    const relay = new SseRelay(false);
    relay.push(Buffer.from('data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'));
    assert.equal(relay.sawToken, false);
    relay.push(Buffer.from('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'));
    assert.equal(relay.sawToken, true);
  });

  it('keeps the content of a content chunk that carries usage, without the usage', () => {
    const relay = new SseRelay(false);
    const out = relay.push(
      Buffer.from('data: {"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}\n\n'),
    );
    assert.equal(out, 'data: {"choices":[{"delta":{"content":"x"}}],"usage":null}\n\n');
    assert.deepEqual(relay.usage, { prompt: 1, completion: 0 });
  });
});

describe('hold queues', () => {
  it('serves waiters in order, bounded in count and time, and lets aborted ones go', async () => {
    let free = 0;
    const holds = new HoldQueues<string>(() => (free > 0 ? `slot${free--}` : undefined), {
      maxHeld: 2,
      timeoutMs: 100,
    });
    const ac = new AbortController();
    const a = holds.hold('d', 1, new AbortController().signal);
    const b = holds.hold('d', 2, ac.signal);
    assert.deepEqual(await holds.hold('d', 3, new AbortController().signal), { kind: 'full' });
    ac.abort();
    assert.deepEqual(await b, { kind: 'aborted' });
    free = 1;
    holds.drain('d');
    assert.deepEqual(await a, { kind: 'granted', slot: 'slot1' });
    assert.equal(holds.empty, true);
    assert.deepEqual(await holds.hold('d', 4, new AbortController().signal), { kind: 'timeout' });
    assert.equal(holds.count('d'), 0);
    const last = holds.hold('d', 5, new AbortController().signal);
    holds.releaseAll(); // the gateway closes
    assert.deepEqual(await last, { kind: 'timeout' });
  });
});
