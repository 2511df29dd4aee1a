// The witness against a stand-in for fabrik's audit log: a tiny node:http server written here
// (not the real server) that serves checkpoints and consistency proofs of real in-memory Merkle
// trees (src/audit/merkle/tree.ts) and records the cosignatures posted to it. The stand-in can
// fork: serve another tree, roll back, or lie in a proof. The witness must cosign the honest,
// growing log and refuse every fork without cosigning or moving its state; `fabrik witness`
// itself runs as a child process for the exit codes and the key file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.js';
import { generateWitnessKey, verifyCosignature } from '../../src/audit/cosignature.js';
import { leafHash } from '../../src/audit/merkle/hash.js';
import { type NodeId, appendLeaves, consistencyProof, rootAt } from '../../src/audit/merkle/tree.js';
import { generateSigner } from '../../src/audit/note.js';
import { type WitnessConfig, readState, runWitness, witnessRound } from '../../src/audit/witness.js';
import { ENTRY, REPO_ROOT, collectRun } from '../helpers/child-server.js';

const ORIGIN = 'fabrik.test/audit';

/** An append-only Merkle tree in memory; `fork()` copies it, to diverge from there. */
class MemoryTree {
  size = 0;
  frontier: Buffer[] = [];
  readonly nodes = new Map<string, Buffer>();
  readonly read = async (ids: readonly NodeId[]) => ids.map((id) => this.nodes.get(`${id.level}/${id.index}`)!);

  append(...entries: string[]): this {
    const r = appendLeaves(
      this.size,
      this.frontier,
      entries.map((e) => leafHash(Buffer.from(e))),
    );
    for (const n of r.nodes) this.nodes.set(`${n.id.level}/${n.id.index}`, n.hash);
    this.size = r.size;
    this.frontier = r.frontier;
    return this;
  }

  fork(): MemoryTree {
    const t = new MemoryTree();
    t.size = this.size;
    t.frontier = [...this.frontier];
    for (const [k, v] of this.nodes) t.nodes.set(k, v);
    return t;
  }
}

/** The stand-in log: what it serves is whatever `view` says at the time of the request. */
class StandInLog {
  readonly key = generateSigner(ORIGIN);
  view: { tree: MemoryTree; size?: number; signer?: string; origin?: string } = { tree: new MemoryTree() };
  lieInProof?: (proof: string[]) => unknown;
  postStatus = 200;
  readonly requests: string[] = [];
  readonly posted: { checkpoint: string; cosignature: string }[] = [];
  server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req.method ?? 'GET', req.url ?? '/', req)
        .then(([status, body]) => res.writeHead(status, { 'content-type': 'text/plain' }).end(body))
        .catch((err) => res.writeHead(500).end(String(err)));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async handle(method: string, url: string, req: NodeJS.ReadableStream): Promise<[number, string]> {
    this.requests.push(`${method} ${url}`);
    const { tree, size = tree.size, signer = this.key.signerKey, origin = ORIGIN } = this.view;
    const u = new URL(url, 'http://x');
    if (method === 'GET' && u.pathname === '/audit/checkpoint')
      return [200, signCheckpoint({ origin, size, rootHash: await rootAt(size, tree.read) }, signer)];
    if (method === 'GET' && u.pathname === '/audit/proof/consistency') {
      const [from, to] = [Number(u.searchParams.get('from')), Number(u.searchParams.get('to'))];
      const proof = (await consistencyProof(from, to, tree.read)).map((h) => h.toString('hex'));
      return [200, JSON.stringify({ size1: from, size2: to, proof: this.lieInProof ? this.lieInProof(proof) : proof })];
    }
    if (method === 'POST' && u.pathname === '/audit/cosignatures') {
      let body = '';
      for await (const chunk of req) body += chunk;
      this.posted.push(JSON.parse(body));
      return [this.postStatus, '{}'];
    }
    return [404, 'not found'];
  }
}

describe('witness (against a stand-in log)', () => {
  const log = new StandInLog();
  const witness = generateWitnessKey('witness.test/w1');
  const root = mkdtempSync(join(tmpdir(), 'fabrik-witness-'));
  let dir: string;
  let cfg: WitnessConfig;
  let clock = 1_700_000_000;

  before(() => log.start());
  after(() => new Promise<void>((r) => log.server.close(() => r())));
  beforeEach(() => {
    dir = mkdtempSync(join(root, 'case-'));
    cfg = {
      logUrl: `${log.url}/`,
      logKey: log.key.verifierKey,
      witnessKey: witness.signerKey,
      statePath: join(dir, 'state.json'),
      now: () => clock++,
    };
    log.view = { tree: new MemoryTree() };
    log.lieInProof = undefined;
    log.postStatus = 200;
    log.requests.length = 0;
    log.posted.length = 0;
  });

  /** The last cosignature posted must verify with the witness key over the checkpoint posted. */
  function lastPostVerifies(): { time: number } {
    const p = log.posted.at(-1)!;
    return verifyCosignature(
      openCheckpoint(p.checkpoint, log.key.verifierKey).body,
      p.cosignature,
      witness.verifierKey,
    );
  }

  it('cosigns a growing log, proving each checkpoint consistent with the last', async () => {
    const tree = new MemoryTree().append('a', 'b', 'c');
    log.view = { tree };
    const first = await witnessRound(cfg);
    assert.ok(first.ok, JSON.stringify(first));
    assert.equal(first.size, 3);
    assert.equal(first.previousSize, null);
    assert.equal(log.posted.length, 1);
    assert.equal(log.posted[0].cosignature, first.cosignature);
    lastPostVerifies();
    assert.equal(readState(cfg.statePath)?.size, 3);

    tree.append('d', 'e', 'f', 'g', 'h');
    const second = await witnessRound(cfg);
    assert.ok(second.ok && second.size === 8 && second.previousSize === 3, JSON.stringify(second));
    assert.ok(log.requests.includes('GET /audit/proof/consistency?from=3&to=8'));
    const { time } = lastPostVerifies();
    assert.equal(readState(cfg.statePath)?.size, 8);
    assert.equal(readState(cfg.statePath)?.cosignedAt, time);

    // Nothing new: the same tree head is cosigned again, with a fresh time and no proof needed.
    log.requests.length = 0;
    const third = await witnessRound(cfg);
    assert.ok(third.ok && third.size === 8);
    assert.ok(lastPostVerifies().time > time);
    assert.ok(!log.requests.some((r) => r.includes('consistency')));
  });

  it('starts from the empty tree without asking for a proof from size 0', async () => {
    const tree = new MemoryTree();
    log.view = { tree };
    assert.ok((await witnessRound(cfg)).ok);
    tree.append('a', 'b');
    const r = await witnessRound(cfg);
    assert.ok(r.ok && r.size === 2 && r.previousSize === 0, JSON.stringify(r));
    assert.ok(!log.requests.some((q) => q.includes('consistency')));
  });

  /** Cosigns the honest tree, switches the stand-in to `fork`, and expects a refusal. */
  async function expectRefusal(honest: MemoryTree, fork: () => void, problem: string, pattern: RegExp) {
    log.view = { tree: honest };
    assert.ok((await witnessRound(cfg)).ok);
    const state = readFileSync(cfg.statePath);
    const posts = log.posted.length;
    fork();
    const r = await witnessRound(cfg);
    assert.ok(!r.ok, 'the fork was cosigned');
    assert.equal(r.problem, problem, r.message);
    assert.match(r.message, pattern);
    assert.equal(log.posted.length, posts, 'a cosignature was posted for the fork');
    assert.deepEqual(readFileSync(cfg.statePath), state, 'the state moved');
    return r;
  }

  it('refuses a second checkpoint of the same size with another root: SPLIT VIEW', async () => {
    const base = new MemoryTree().append('a', 'b', 'c', 'd');
    const honest = base.fork().append('e');
    const fork = base.fork().append('E');
    const r = await expectRefusal(honest, () => (log.view = { tree: fork }), 'split-view', /^SPLIT VIEW/);
    assert.ok(r.evidence && r.evidence.previous !== r.evidence.offered);
    assert.equal(openCheckpoint(r.evidence.offered, log.key.verifierKey).size, 5);
  });

  it('refuses a tree smaller than the one cosigned: SPLIT VIEW', async () => {
    const tree = new MemoryTree().append('a', 'b', 'c', 'd', 'e');
    await expectRefusal(tree, () => (log.view = { tree, size: 3 }), 'split-view', /SPLIT VIEW/);
  });

  it('refuses a larger tree that does not extend the one cosigned, whatever the proof', async () => {
    const base = new MemoryTree().append('a', 'b');
    const honest = base.fork().append('c', 'd', 'e');
    const fork = base.fork().append('C', 'd', 'e', 'f', 'g', 'h', 'i');
    await expectRefusal(honest, () => (log.view = { tree: fork }), 'inconsistent', /^inconsistent/);
  });

  it('refuses a consistency proof that lies, is short, or is not one', async () => {
    const tree = new MemoryTree().append('a', 'b', 'c');
    const lies: ((p: string[]) => unknown)[] = [
      (p) => [p[0].replace(/^./, (c) => (c === '0' ? '1' : '0')), ...p.slice(1)],
      (p) => p.slice(1),
      (p) => [...p, p[0]],
      () => 'not a list',
      (p) => p.map((h) => h.slice(2)),
    ];
    for (const lie of lies) {
      rmSync(cfg.statePath, { force: true });
      await expectRefusal(
        tree,
        () => {
          log.view = { tree: tree.fork().append('d', 'e', 'f', 'g') };
          log.lieInProof = lie;
        },
        'inconsistent',
        /inconsistent/,
      );
      log.lieInProof = undefined;
    }
  });

  it('refuses checkpoints signed by another key or for another origin', async () => {
    const tree = new MemoryTree().append('a');
    await expectRefusal(
      tree,
      () => (log.view = { tree, signer: generateSigner(ORIGIN).signerKey }),
      'invalid',
      /no signature from a known key/,
    );
    // The log's own key, but another origin than the one the witness pinned on first sight.
    await expectRefusal(
      tree,
      () => (log.view = { tree, origin: 'other.test/log' }),
      'invalid',
      /expected "fabrik\.test\/audit"/,
    );
  });

  it('keeps running and keeps refusing a forked log, then cosigns when the log is consistent again', async () => {
    const base = new MemoryTree().append('a', 'b', 'c');
    const honest = base.fork().append('d');
    log.view = { tree: honest };
    assert.ok((await witnessRound(cfg)).ok);
    log.view = { tree: base.fork().append('D') };
    const stop = new AbortController();
    const seen: boolean[] = [];
    await runWitness(cfg, {
      intervalMs: 5,
      signal: stop.signal,
      report: (r) => {
        seen.push(r.ok);
        if (seen.length === 3) log.view = { tree: honest.fork().append('e') };
        if (seen.length === 4) stop.abort();
      },
    });
    assert.deepEqual(seen, [false, false, false, true]);
    assert.equal(readState(cfg.statePath)?.size, 5);
  });

  it('reports an unreachable log and an undelivered cosignature, and refuses a corrupt state file', async () => {
    const down = await witnessRound({
      ...cfg,
      fetch: async () => {
        throw new Error('connection refused');
      },
    });
    assert.ok(!down.ok && down.problem === 'unreachable', JSON.stringify(down));

    log.view = { tree: new MemoryTree().append('a') };
    log.postStatus = 500;
    const undelivered = await witnessRound(cfg);
    assert.ok(!undelivered.ok && undelivered.problem === 'undelivered', JSON.stringify(undelivered));
    // The state moved before the cosignature left: the witness remembers what it signed.
    assert.equal(readState(cfg.statePath)?.size, 1);

    writeFileSync(cfg.statePath, '{"version":1,"size":');
    const corrupt = await witnessRound(cfg);
    assert.ok(!corrupt.ok && corrupt.problem === 'bad-state', JSON.stringify(corrupt));
    assert.equal(readFileSync(cfg.statePath, 'utf8'), '{"version":1,"size":');
  });

  it('`fabrik witness`: --new-key makes a 0600 key, --once exits 0 on a cosignature and 9 on a split view', async () => {
    const run = (...args: string[]) =>
      collectRun(spawn(process.execPath, ['--import', 'tsx', ENTRY, 'witness', ...args], { cwd: REPO_ROOT }));
    const keyFile = join(dir, 'w.key');
    const made = await run('--new-key', keyFile, '--name', 'witness.test/cli');
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^witness\.test\/cli\+[0-9a-f]{8}\+BA?[A-Za-z0-9+/]+=*\n$/);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal((await run('--new-key', keyFile)).code, 2, 'an existing key file was overwritten');

    const base = new MemoryTree().append('a', 'b');
    log.view = { tree: base.fork().append('c') };
    const args = [
      '--log',
      log.url,
      '--log-key',
      log.key.verifierKey,
      '--key',
      keyFile,
      '--state',
      cfg.statePath,
      '--once',
    ];
    const ok = await run(...args);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /cosigned fabrik\.test\/audit size 3/);
    verifyCosignature(
      openCheckpoint(log.posted.at(-1)!.checkpoint, log.key.verifierKey).body,
      log.posted.at(-1)!.cosignature,
      made.stdout.trim(),
    );

    const state = readFileSync(cfg.statePath);
    log.view = { tree: base.fork().append('C') };
    const split = await run(...args);
    assert.equal(split.code, 9, split.stderr);
    assert.match(split.stderr, /SPLIT VIEW/);
    assert.deepEqual(readFileSync(cfg.statePath), state);
    assert.equal((await run('--log', log.url, '--once')).code, 2);
  });

  after(() => rmSync(root, { recursive: true, force: true }));
});

// A leaf here is what the log hashes; make sure the stand-in agrees with RFC 6962 on one case.
it('stand-in tree: the root of one leaf is its leaf hash (RFC 6962)', async () => {
  const t = new MemoryTree().append('x');
  const want = createHash('sha256')
    .update(Buffer.from([0]))
    .update('x')
    .digest();
  assert.deepEqual(await rootAt(1, t.read), want);
});
