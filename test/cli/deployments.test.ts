// `fabrik deploy`, `get deployments`, `describe deployment`, `scale`, `undeploy`, `usage tokens`
// and `get|set inference-limits` (src/cli/commands/deployments.ts, usage.ts), end to end: the CLI
// as child processes against a real server process on SQLite. What is checked is the output (aligned
// tables for people, the API object with -o json) and the exit codes, never that replicas become
// ready: the tenant has no quota, so replicas stay pending. Token usage rows are written straight
// into the database, as the gateway would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { writeTinyModel } from '../../src/inference/runtime/tiny-model.js';
import { EXIT } from '../../src/cli/output.js';
import {
  ENTRY,
  type ServerProcess,
  api,
  collectRun,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { OPERATOR_TOKEN, SMALL_FLEET, type TestDatabase, freshDatabase } from '../helpers/harness.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Cells of a line: runs of text separated by two or more spaces. */
function cells(line: string): { start: number; text: string }[] {
  return [...line.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ start: m.index as number, text: m[0] }));
}

/** Parses an aligned table, asserting that every row's cells start at the header's column offsets. */
function parseTable(out: string): Record<string, string>[] {
  const [header, ...rows] = out.trimEnd().split('\n');
  const columns = cells(header!);
  assert.ok(columns.length > 1, `not a table:\n${out}`);
  return rows.map((row) => {
    const found = cells(row);
    assert.deepEqual(
      found.map((c) => c.start),
      columns.map((c) => c.start),
      `row is not aligned with the header:\n${header}\n${row}`,
    );
    return Object.fromEntries(columns.map((c, i) => [c.text, found[i]!.text]));
  });
}

const TSX = import.meta.resolve('tsx');

describe('fabrik deploy/get/describe/scale/undeploy/usage/limits against a real server', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let home: string;
  let alice: string;
  let viewer: string;
  let gus: string;

  /** `fabrik ARGS` in `cwd` (default the temp home) as alice, or another key. */
  function fabrik(args: string[], o: { token?: string; cwd?: string } = {}): Promise<Run> {
    const env: Record<string, string | undefined> = {
      ...process.env,
      FABRIK_CONFIG: join(home, 'config.json'),
      FABRIK_ENDPOINT: server.url,
      FABRIK_API_KEY: o.token ?? alice,
      NO_COLOR: '1',
    };
    delete env.FABRIK_PROJECT;
    return collectRun(spawn(process.execPath, ['--import', TSX, ENTRY, ...args], { cwd: o.cwd ?? home, env }));
  }
  async function ok(args: string[], o?: { token?: string; cwd?: string }): Promise<Run> {
    const r = await fabrik(args, o);
    assert.equal(r.code, 0, `fabrik ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  async function json(args: string[], o?: { token?: string }): Promise<any> {
    return JSON.parse((await ok([...args, '-o', 'json'], o)).stdout);
  }
  async function exits(code: number, args: string[], o?: { token?: string }): Promise<Run> {
    const r = await fabrik(args, o);
    assert.equal(r.code, code, `fabrik ${args.join(' ')} exited ${r.code}, not ${code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  const get = async (path: string) => {
    const r = await api(server.url, OPERATOR_TOKEN)('GET', path);
    assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
    return r.body;
  };

  before(async () => {
    db = await freshDatabase('sqlite');
    server = await startServerProcess({ database: db.url, bootstrapToken: OPERATOR_TOKEN });
    home = mkdtempSync(join(tmpdir(), 'fabrik-deploy-cli-'));
    const call = api(server.url, OPERATOR_TOKEN);
    const must = async (method: string, path: string, body?: unknown) => {
      const r = await call(method, path, body);
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
      return r.body;
    };
    await must('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' });
    await must('POST', '/api/v1/orgs', { name: 'globex', residency: 'de' });
    await must('POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' });
    await must('POST', '/api/v1/orgs/acme/members', { user: 'vic', role: 'viewer' });
    await must('POST', '/api/v1/orgs/globex/members', { user: 'gus', role: 'owner' });
    alice = (await must('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice' })).token;
    viewer = (await must('POST', '/api/v1/orgs/acme/keys', { name: 'vic', user: 'vic' })).token;
    gus = (await must('POST', '/api/v1/orgs/globex/keys', { name: 'gus', user: 'gus' })).token;
    await must('POST', '/api/v1/orgs/acme/projects', { name: 'train' });
    await must('POST', '/api/v1/fleet/apply', { file: SMALL_FLEET });
    // No quota: replicas stay pending, nothing is launched.
    await must('PUT', '/api/v1/projects/acme.train/quotas/b200', { guaranteed: 0, limit: 0 });
    await writeTinyModel(join(home, 'tiny.gguf'));
  });
  after(async () => {
    await killAllServerProcesses();
    await db?.drop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('deploys a local file (path made absolute) and an upstream; says how to call them', async () => {
    const r = await ok(['deploy', 'tiny', '--model-path', 'tiny.gguf', '-p', 'acme.train', '--gpu', 'B200'], {
      cwd: home,
    });
    assert.match(r.stdout, /deployment\/tiny created in acme\.train: tiny\.gguf, llamacpp, replicas 1\.\.1/);
    assert.match(r.stdout, /^model: +tiny$/m);
    assert.ok(r.stdout.includes(`base URL: ${server.url}/v1`), r.stdout);
    const d = await get('/api/v1/projects/acme.train/deployments/tiny');
    assert.equal(d.modelPath, join(home, 'tiny.gguf'), 'the server got an absolute path');

    // An external upstream is ready at once: --wait returns straight away.
    const ext = await ok([
      'deploy',
      'gpt',
      '--upstream',
      'http://127.0.0.1:9/v1',
      '-p',
      'acme.train',
      '--alias',
      'gpt-4o',
      '--alias',
      'chat',
      '--wait',
      '--timeout',
      '10s',
    ]);
    assert.match(ext.stdout, /ready: 1\/1 replicas ready/);
    assert.match(ext.stdout, /^model: +gpt \(also gpt-4o, chat\)$/m);
    const j = await json(['deploy', 'gpt2', '--upstream', 'http://127.0.0.1:9/v1', '-p', 'acme.train']);
    // deploy prints what it created: the described deployment, less the gateways' load.
    const { load: _load, ...described } = await get('/api/v1/projects/acme.train/deployments/gpt2');
    assert.deepEqual(j, described);
  });

  it('refuses bad deploys with the documented exit codes', async () => {
    const dup = await exits(EXIT.conflict, [
      'deploy',
      'gpt',
      '--upstream',
      'http://127.0.0.1:9/v1',
      '-p',
      'acme.train',
    ]);
    assert.match(dup.stderr, /already exists.*\(ALREADY_EXISTS\)/);
    const notRef = await exits(EXIT.usage, ['deploy', 'just-a-name', '-p', 'acme.train']);
    assert.match(notRef.stderr, /not a registry model/);
    await exits(EXIT.usage, ['deploy', 'x', '--model-path', 'a.gguf', '--upstream', 'http://h/v1', '-p', 'acme.train']);
    await exits(EXIT.usage, ['deploy', 'x', '--upstream', 'http://h/v1', '-p', 'acme.train', '--threads', 'two']);
    const range = await exits(EXIT.usage, [
      'deploy',
      'x',
      '--model-path',
      'tiny.gguf',
      '-p',
      'acme.train',
      '--replicas',
      '5..2',
    ]);
    assert.match(range.stderr, /replicas/);
    // A registry reference: the project comes from it; a model that is not there is refused.
    const missing = await fabrik(['deploy', 'acme.train/llama-ft:v3', '--gpu', 'B200']);
    assert.ok(missing.code === EXIT.conflict || missing.code === EXIT.notFound, missing.stderr);
    assert.match(missing.stderr, /llama-ft/);
    await exits(EXIT.notFound, ['deploy', 'gpt', '--upstream', 'http://127.0.0.1:9/v1', '-p', 'acme.nope']);
    await exits(EXIT.auth, ['deploy', 'vgpt', '--upstream', 'http://127.0.0.1:9/v1', '-p', 'acme.train'], {
      token: viewer,
    });
  });

  it('lists deployments as an aligned table and as the API object', async () => {
    const rows = parseTable((await ok(['get', 'deployments', '-p', 'acme.train'])).stdout);
    assert.deepEqual(
      rows.map((r) => [r.NAME, r.PROJECT, r.RUNTIME, r.MODEL, r.READY, r.REPLICAS, r.GPU]),
      [
        ['tiny', 'acme.train', 'llamacpp', 'tiny.gguf', '0/1', '1..1', 'B200:1'],
        ['gpt', 'acme.train', 'external', 'http://127.0.0.1:9/v1', '1/1', '1..1', '-'],
        ['gpt2', 'acme.train', 'external', 'http://127.0.0.1:9/v1', '1/1', '1..1', '-'],
      ],
    );
    assert.ok(rows.every((r) => /^\d+[smhd]$/.test(r.AGE!)));
    const listed = await json(['get', 'deployments', '-p', 'acme.train']);
    const fromApi = await get('/api/v1/projects/acme.train/deployments');
    // Replica states may move between the two reads; the deployments are the same.
    assert.deepEqual(
      listed.items.map((d: any) => d.id),
      fromApi.items.map((d: any) => d.id),
    );
    // Without a project: every project the key sees; another org's key sees none of them.
    assert.equal(parseTable((await ok(['get', 'deployments'])).stdout).length, 3);
    assert.deepEqual((await json(['get', 'deployments'], { token: gus })).items, []);
    const none = await ok(['get', 'deployments'], { token: gus });
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /No resources found/);
  });

  it('describes a deployment with its replicas; unknown or foreign ones exit 3', async () => {
    const r = await ok(['describe', 'deployment', 'tiny', '-p', 'acme.train']);
    assert.match(r.stdout, /^Name: +tiny$/m);
    assert.match(r.stdout, /^Project: +acme\.train$/m);
    assert.match(r.stdout, /^Runtime: +llamacpp$/m);
    assert.match(r.stdout, /^Replicas: +\d+ ready \/ 1 desired \(range 1\.\.1/m);
    assert.match(r.stdout, /\nReplicas:\n/);
    const lines = r.stdout.split('\n');
    const at = lines.indexOf('Replicas:');
    if (lines[at + 1]!.trim() !== '(none yet)') {
      assert.match(lines[at + 1]!, /ORDINAL +STATE +WORKLOAD +STATUS +NODE +ENDPOINT +ATTEMPT +READY SINCE +MESSAGE/);
    }
    const one = await json(['get', 'deployment', 'tiny', '-p', 'acme.train']);
    assert.equal(one.id, (await get('/api/v1/projects/acme.train/deployments/tiny')).id);
    assert.equal((await json(['describe', 'deploy', 'gpt', '-p', 'acme.train'])).runtime, 'external');
    await exits(EXIT.notFound, ['describe', 'deployment', 'nope', '-p', 'acme.train']);
    await exits(EXIT.notFound, ['describe', 'deployment', 'tiny', '-p', 'acme.train'], { token: gus });
    const bad = await exits(EXIT.notFound, ['get', 'deployment', 'tiny', '-p', 'acme.train', '-o', 'json'], {
      token: gus,
    });
    assert.equal(JSON.parse(bad.stderr).error.code, 'NOT_FOUND');
  });

  it('scales and undeploys; bad ranges exit 2, another org exits 3', async () => {
    const r = await ok(['scale', 'tiny', '--replicas', '0..4', '-p', 'acme.train']);
    assert.match(r.stdout, /deployment\/tiny scaled to 0\.\.4 \(desired 1, ready \d+\)/);
    assert.deepEqual((await get('/api/v1/projects/acme.train/deployments/tiny')).replicas.max, 4);
    assert.match(
      (await exits(EXIT.usage, ['scale', 'tiny', '--replicas', '5..2', '-p', 'acme.train'])).stderr,
      /5\.\.2/,
    );
    await exits(EXIT.usage, ['scale', 'gpt', '--replicas', '2', '-p', 'acme.train']);
    await exits(EXIT.usage, ['scale', 'tiny', '-p', 'acme.train']);
    await exits(EXIT.notFound, ['scale', 'tiny', '--replicas', '2', '-p', 'acme.train'], { token: gus });
    await exits(EXIT.auth, ['scale', 'tiny', '--replicas', '2', '-p', 'acme.train'], { token: viewer });
    await exits(EXIT.notFound, ['undeploy', 'gpt2', '-p', 'acme.train'], { token: gus });
    assert.match(
      (await ok(['undeploy', 'gpt2', '-p', 'acme.train'])).stdout,
      /deployment\/gpt2 undeployed from acme\.train/,
    );
    await exits(EXIT.notFound, ['undeploy', 'gpt2', '-p', 'acme.train']);
  });

  it('sets and shows inference limits', async () => {
    await exits(EXIT.usage, ['set', 'inference-limits', '-p', 'acme.train']);
    await exits(EXIT.usage, ['set', 'inference-limits', '-p', 'acme.train', '--rpm', 'lots']);
    const set = await ok([
      'set',
      'inference-limits',
      '-p',
      'acme.train',
      '--rpm',
      '60',
      '--tpm',
      '100k',
      '--monthly-tokens',
      '5M',
    ]);
    assert.match(set.stdout, /acme\.train: 0 tokens used since \d{4}-\d{2}-01 of 5000000/);
    const prefix = viewer.slice(4, 16);
    await ok(['set', 'inference-limits', '-p', 'acme.train', '--key', prefix, '--rpm', '5']);
    const shown = (await ok(['get', 'inference-limits', '-p', 'acme.train'])).stdout.split('\n');
    const rows = parseTable(shown.slice(1).join('\n'));
    assert.deepEqual(
      rows.map((r) => [r.SCOPE, r.KEY, r.PRINCIPAL, r.RPM, r.TPM, r['MONTHLY TOKENS']]),
      [
        ['project', '-', '-', '60', '100000', '5000000'],
        ['key', prefix, 'user:vic', '5', '-', '-'],
      ],
    );
    const j = await json(['get', 'inference-limits', '-p', 'acme.train'], { token: viewer });
    assert.deepEqual(j, await get('/api/v1/projects/acme.train/inference-limits'));
    await exits(EXIT.auth, ['set', 'inference-limits', '-p', 'acme.train', '--rpm', '1'], { token: viewer });
    await exits(EXIT.notFound, ['get', 'inference-limits', '-p', 'acme.train'], { token: gus });
    await exits(EXIT.usage, ['set', 'inference-limits', '-p', 'acme.train', '--key', prefix, '--monthly-tokens', '1']);
    await ok(['inference-limits', 'delete', '-p', 'acme.train', '--key', prefix]);
    await exits(EXIT.notFound, ['inference-limits', 'delete', '-p', 'acme.train', '--key', prefix]);
    assert.deepEqual((await json(['get', 'inference-limits', '-p', 'acme.train'])).keys, []);
  });

  it('shows token usage grouped, with a total', async () => {
    const tiny = await get('/api/v1/projects/acme.train/deployments/tiny');
    const gpt = await get('/api/v1/projects/acme.train/deployments/gpt');
    const sqlite = new SQLite(db.url);
    try {
      const project = sqlite.prepare("select id, org_id from projects where name = 'train'").get() as any;
      const key = sqlite.prepare('select id from api_keys where prefix = ?').get(alice.slice(4, 16)) as any;
      const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000).toISOString();
      const insert = sqlite.prepare('insert into token_usage values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      insert.run(minute, project.org_id, project.id, key.id, tiny.id, '', 4, 1, 400, 800, 200, 4000);
      insert.run(minute, project.org_id, project.id, key.id, gpt.id, '', 1, 0, 10, 20, 50, 1000);
    } finally {
      sqlite.close();
    }
    const out = (await ok(['usage', 'tokens', '-p', 'acme.train'])).stdout.split('\n');
    assert.match(out[0]!, /^acme\.train: .* by deployment$/);
    const rows = parseTable(out.slice(1).join('\n'));
    assert.deepEqual(
      rows.map((r) => [
        r.DEPLOYMENT,
        r.REQUESTS,
        r.ERRORS,
        r['TOKENS IN'],
        r['TOKENS OUT'],
        r['TTFT MS'],
        r['TOKENS PER SEC'],
      ]),
      [
        ['tiny', '4', '1', '400', '800', '50', '200'],
        ['gpt', '1', '0', '10', '20', '50', '20'],
        ['TOTAL', '5', '1', '410', '820', '50', '164'],
      ],
    );
    const byKey = parseTable(
      (await ok(['usage', 'tokens', '-p', 'acme.train', '--by', 'key'])).stdout.split('\n').slice(1).join('\n'),
    );
    assert.deepEqual(
      byKey.map((r) => [r.KEY, r.REQUESTS]),
      [
        [alice.slice(4, 16), '5'],
        ['TOTAL', '5'],
      ],
    );
    const j = await json(['usage', 'tokens', '-p', 'acme.train', '--by', 'hour', '--since', '2h']);
    assert.equal(j.by, 'hour');
    assert.equal(j.totals.tokensOut, 820);
    assert.match((await ok(['usage', 'tokens', '-p', 'acme.train', '--since', '1m'])).stdout, /no usage in this range/);
    // --deployment: only that deployment's usage, by name or id; an unknown one is not found.
    const onlyTiny = (await ok(['usage', 'tokens', '-p', 'acme.train', '--deployment', 'tiny'])).stdout.split('\n');
    assert.match(onlyTiny[0]!, /^acme\.train, deployment tiny: .* by deployment$/);
    assert.deepEqual(
      parseTable(onlyTiny.slice(1).join('\n')).map((r) => [r.DEPLOYMENT, r.REQUESTS, r['TOKENS OUT']]),
      [
        ['tiny', '4', '800'],
        ['TOTAL', '4', '800'],
      ],
    );
    const gptOnly = await json(['usage', 'tokens', '-p', 'acme.train', '--deployment', gpt.id, '--by', 'key']);
    assert.deepEqual(gptOnly.deployment, { id: gpt.id, name: 'gpt' });
    assert.equal(gptOnly.totals.tokensOut, 20);
    await exits(EXIT.notFound, ['usage', 'tokens', '-p', 'acme.train', '--deployment', 'nope']);
    await exits(EXIT.usage, ['usage', 'tokens', '-p', 'acme.train', '--by', 'week']);
    await exits(EXIT.usage, ['usage', 'tokens', '-p', 'acme.train', '--since', 'yesterday']);
    await exits(EXIT.notFound, ['usage', 'tokens', '-p', 'acme.train'], { token: gus });
    await exits(EXIT.usage, ['usage', 'tokens']);
  });
});
