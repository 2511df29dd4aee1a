// The `fabrik` CLI end to end: real child processes of the command against a real server process
// on SQLite, with the saved login in a temp file (FABRIK_CONFIG). An operator goes from nothing to
// the Munich fleet, two orgs, projects, members, service accounts, keys and quotas; along the way
// the output is checked for people (aligned tables), for scripts (-o json is the API object) and
// for shells (documented exit codes, the server's message on stderr).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPERATOR_TOKEN, type TestDatabase, freshDatabase } from '../helpers/harness.js';
import {
  ENTRY,
  collectRun,
  REPO_ROOT,
  type ServerProcess,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const GROUPS = ['org', 'project', 'user', 'sa', 'member', 'key', 'quota', 'fleet', 'audit'] as const;
const TOKEN = /fbk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/g;

/** Cells of a line: runs of text separated by two or more spaces (a cell may hold single spaces). */
function cells(line: string): { start: number; text: string }[] {
  return [...line.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ start: m.index as number, text: m[0] }));
}

/** Parses an aligned table, asserting that every row's cells start at the header's column offsets. */
function parseTable(out: string): Record<string, string>[] {
  const [header, ...rows] = out.trimEnd().split('\n');
  const columns = cells(header);
  assert.ok(columns.length > 1, `not a table:\n${out}`);
  for (const h of columns) assert.match(h.text, /^[A-Z][A-Z ]*$/, `header cell "${h.text}"`);
  return rows.map((row) => {
    const found = cells(row);
    assert.deepEqual(
      found.map((c) => c.start),
      columns.map((c) => c.start),
      `row is not aligned with the header:\n${header}\n${row}`,
    );
    return Object.fromEntries(columns.map((c, i) => [c.text, found[i].text]));
  });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('the fabrik CLI against a real server on SQLite', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let home: string;
  let config: string;
  /** Tokens printed by `key create`, by name. */
  const tokens: Record<string, string> = {};

  /** Runs `fabrik ARGS` as a child process with the temp config; `input` goes to its stdin. */
  function fabrik(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
    const env: Record<string, string | undefined> = {
      ...process.env,
      FABRIK_CONFIG: config,
      NO_COLOR: '1',
      ...opts.env,
    };
    if (!opts.env?.FABRIK_API_KEY) delete env.FABRIK_API_KEY;
    if (!opts.env?.FABRIK_ENDPOINT) delete env.FABRIK_ENDPOINT;
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return collectRun(child, { input: opts.input });
  }

  /** Runs a command that must succeed. */
  async function ok(args: string[], opts?: { env?: Record<string, string>; input?: string }): Promise<Run> {
    const r = await fabrik(args, opts);
    assert.equal(r.code, 0, `fabrik ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    return r;
  }

  async function json(args: string[], opts?: { env?: Record<string, string> }): Promise<any> {
    return JSON.parse((await ok([...args, '-o', 'json'], opts)).stdout);
  }

  /** The API's own answer, for comparing with what the CLI prints. */
  async function api(path: string, token = OPERATOR_TOKEN): Promise<any> {
    const r = await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `GET ${path}`);
    return r.json();
  }

  before(async () => {
    db = await freshDatabase('sqlite');
    server = await startServerProcess({ database: db.url, bootstrapToken: OPERATOR_TOKEN });
    home = mkdtempSync(join(tmpdir(), 'fabrik-cli-'));
    config = join(home, 'fabrik', 'config.json');
  });

  after(async () => {
    await killAllServerProcesses();
    await db?.drop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('refuses to work before login, with exit code 4 and a hint', async () => {
    const r = await fabrik(['org', 'list']);
    assert.equal(r.code, 4);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /fabrik login/);
  });

  it('logs in: endpoint and key saved in a file only its owner can read, the key never printed', async () => {
    const r = await ok(['login', '--endpoint', server.url], { input: `${OPERATOR_TOKEN}\n` });
    assert.match(r.stdout, /Logged in to .* as user:admin/);
    assert.ok(!r.stdout.includes(OPERATOR_TOKEN) && !r.stderr.includes(OPERATOR_TOKEN), 'the key is not printed');
    assert.equal(statSync(config).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(config, 'utf8')), { endpoint: server.url, apiKey: OPERATOR_TOKEN });
    assert.equal((await json(['whoami'])).principal, 'user:admin');
  });

  it('applies the Munich fleet: pools b200 with 8,000 GPUs and rtxpro6000 with 2,000', async () => {
    const applied = await ok(['fleet', 'apply', '-f', 'examples/fleets/munich.yaml']);
    assert.match(applied.stdout, /1250 nodes \(10000 GPUs\) in 2 pools; 1250 created/);

    const pools = parseTable((await ok(['fleet', 'pools'])).stdout);
    assert.deepEqual(
      pools.map((p) => [p.POOL, p.NODES, p.GPUS, p.MEMORY]),
      [
        ['b200', '1000', '8000', '180GiB'],
        ['rtxpro6000', '250', '2000', '96GiB'],
      ],
    );
    const asJson = await json(['fleet', 'pools']);
    assert.deepEqual(asJson, { items: (await api('/api/v1/fleet/pools')).items });
  });

  it('creates two orgs with projects; tables and JSON agree with the API', async () => {
    assert.match((await ok(['org', 'create', 'acme', '--residency', 'de'])).stdout, /organization\/acme created/);
    const globex = await json(['org', 'create', 'globex', '--residency', 'eu', '--display-name', 'Globex Corp']);
    assert.deepEqual(globex, await api('/api/v1/orgs/globex'));
    assert.equal(globex.residency, 'eu');

    await Promise.all([
      ok(['project', 'create', 'train', '--org', 'acme']),
      ok(['project', 'create', 'infer', '--org', 'acme']),
      ok(['project', 'create', 'research', '--org', 'globex']),
    ]);
    const orgs = parseTable((await ok(['org', 'list'])).stdout);
    assert.deepEqual(
      orgs.map((o) => [o.NAME, o['DISPLAY NAME'], o.RESIDENCY, o.STATUS]),
      [
        ['acme', 'acme', 'de', 'active'],
        ['globex', 'Globex Corp', 'eu', 'active'],
      ],
    );
    assert.deepEqual(await json(['org', 'list']), { items: (await api('/api/v1/orgs')).items });
    assert.deepEqual(
      parseTable((await ok(['project', 'list', '--org', 'acme'])).stdout).map((p) => p.NAME),
      ['acme.infer', 'acme.train'],
    );
    assert.deepEqual(await json(['project', 'list', '--org', 'acme']), {
      items: (await api('/api/v1/orgs/acme/projects')).items,
    });
  });

  it('adds members and service accounts', async () => {
    await ok(['member', 'add', '--org', 'acme', '--user', 'alice', '--role', 'owner']);
    await ok(['member', 'add', '--org', 'acme', '--user', 'bob', '--role', 'viewer', '--project', 'train']);
    assert.match(
      (await ok(['sa', 'create', 'ci', '--org', 'acme', '--role', 'member', '--project', 'train'])).stdout,
      /serviceaccount\/ci created in acme/,
    );
    await ok(['member', 'add', '--org', 'globex', '--user', 'carol', '--role', 'admin']);

    const members = parseTable((await ok(['member', 'list', '--org', 'acme'])).stdout);
    assert.deepEqual(members.map((m) => [m.PRINCIPAL, m.ROLE, m.PROJECT]).sort(), [
      ['serviceaccount:acme/ci', 'member', 'train'],
      ['user:alice', 'owner', '(all)'],
      ['user:bob', 'viewer', 'train'],
    ]);
    assert.deepEqual(await json(['member', 'list', '--org', 'acme']), {
      items: (await api('/api/v1/orgs/acme/members')).items,
    });
    const sas = await json(['sa', 'list', '--org', 'acme']);
    assert.deepEqual(
      sas.items.map((s: any) => s.principal),
      ['serviceaccount:acme/ci'],
    );
  });

  it('creates keys: the token is printed once, never listed, and works as FABRIK_API_KEY', async () => {
    const created = await ok(['key', 'create', 'alice-laptop', '--org', 'acme', '--user', 'alice']);
    const printed = created.stdout.match(TOKEN) ?? [];
    assert.equal(printed.length, 1, `exactly one token in:\n${created.stdout}`);
    assert.ok(!created.stderr.includes(printed[0]));
    tokens.alice = printed[0];

    const ci = await json(['key', 'create', 'ci-deploy', '--org', 'acme', '--sa', 'ci', '--project', 'train']);
    assert.match(ci.token, TOKEN);
    assert.equal(ci.principal, 'serviceaccount:acme/ci');
    assert.equal(ci.project, 'train');
    tokens.ci = ci.token;
    tokens.carol = (await json(['key', 'create', 'carol', '--org', 'globex', '--user', 'carol'])).token;

    const listed = await ok(['key', 'list', '--org', 'acme']);
    for (const t of Object.values(tokens)) assert.ok(!listed.stdout.includes(t), 'listings never show a token');
    const keys = parseTable(listed.stdout);
    assert.deepEqual(keys.map((k) => k.NAME).sort(), ['alice-laptop', 'ci-deploy']);
    assert.ok(
      keys.some((k) => tokens.alice.startsWith(`fbk_${k.PREFIX}_`)),
      'the prefix is shown',
    );

    const asAlice = { FABRIK_API_KEY: tokens.alice };
    assert.equal((await json(['whoami'], { env: asAlice })).principal, 'user:alice');
    assert.deepEqual(
      (await json(['org', 'list'], { env: asAlice })).items.map((o: any) => o.name),
      ['acme'],
      'a tenant sees only its own org',
    );
    const asCi = { FABRIK_API_KEY: tokens.ci };
    assert.equal((await json(['project', 'get', 'acme.train'], { env: asCi })).ref, 'acme.train');
  });

  it("sets quotas; one beyond capacity exits 5 with the server's message on stderr", async () => {
    assert.match(
      (await ok(['quota', 'set', 'acme.train', 'b200', '--guaranteed', '6000', '--limit', '8000'])).stdout,
      /guaranteed 6000, limit 8000/,
    );
    await ok(['quota', 'set', 'acme.infer', 'rtxpro6000', '--guaranteed', '1000', '--limit', '2000']);
    await ok(['quota', 'set', 'globex.research', 'b200', '--guaranteed', '2000', '--limit', '4000']);

    const over = await fabrik(['quota', 'set', 'acme.infer', 'b200', '--guaranteed', '500', '--limit', '8000']);
    assert.equal(over.code, 5);
    assert.equal(over.stdout, '');
    const direct = await fetch(`${server.url}/api/v1/projects/acme.infer/quotas/b200`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ guaranteed: 500, limit: 8000 }),
    });
    assert.equal(direct.status, 422);
    const envelope = (await direct.json()) as { error: { code: string; message: string } };
    assert.match(envelope.error.message, /exceeds capacity by 500/);
    assert.ok(over.stderr.includes(envelope.error.message), `stderr carries the server's message:\n${over.stderr}`);

    const overJson = await fabrik([
      'quota',
      'set',
      'acme.infer',
      'b200',
      '--guaranteed',
      '500',
      '--limit',
      '8000',
      '-o',
      'json',
    ]);
    assert.equal(overJson.code, 5);
    assert.equal(overJson.stdout, '');
    assert.deepEqual(JSON.parse(overJson.stderr), envelope, 'JSON errors are the API envelope');

    const quotas = parseTable((await ok(['quota', 'list'])).stdout);
    assert.deepEqual(quotas.map((x) => [x.PROJECT, x.POOL, x.GUARANTEED, x.LIMIT]).sort(), [
      ['acme.infer', 'rtxpro6000', '1000', '2000'],
      ['acme.train', 'b200', '6000', '8000'],
      ['globex.research', 'b200', '2000', '4000'],
    ]);
    assert.deepEqual(await json(['quota', 'list']), { items: (await api('/api/v1/quotas')).items });
    const b200 = (await json(['fleet', 'pools'])).items.find((p: any) => p.name === 'b200');
    assert.equal(b200.guaranteed, 8000);
  });

  it('cordons a node: it leaves the schedulable capacity', async () => {
    assert.match((await ok(['fleet', 'cordon', 'b200-0001'])).stdout, /node\/b200-0001 cordoned/);
    const cordoned = parseTable((await ok(['fleet', 'nodes', '--state', 'cordoned'])).stdout);
    assert.deepEqual(
      cordoned.map((n) => [n.NAME, n.POOL, n.STATE, n.POD]),
      [['b200-0001', 'b200', 'cordoned', 'b200-su01']],
    );
    const node = await json(['fleet', 'get', 'b200-0001']);
    assert.deepEqual(node, await api('/api/v1/fleet/nodes/b200-0001'));
    const b200 = (await json(['fleet', 'pools'])).items.find((p: any) => p.name === 'b200');
    assert.equal(b200.schedulableGpus, 7992);
  });

  it('lists the audit trail of all of it, gap-free', async () => {
    const entries = parseTable((await ok(['audit', 'list'])).stdout);
    const actions = new Set(entries.map((e) => e.ACTION));
    for (const a of [
      'bootstrap.operator',
      'fleet.apply',
      'org.create',
      'project.create',
      'member.add',
      'serviceaccount.create',
      'apikey.create',
      'quota.set',
      'node.cordon',
    ]) {
      assert.ok(actions.has(a), `audit list shows ${a}`);
    }
    assert.deepEqual(
      entries.map((e) => Number(e.SEQ)),
      entries.map((_, i) => i + 1),
    );
    const asJson = await json(['audit', 'list']);
    assert.deepEqual(asJson, { items: (await api('/api/v1/audit/entries?limit=1000')).items });
    for (const e of asJson.items) assert.deepEqual(JSON.parse(e.canonical).seq, e.seq);

    const acmeOnly = await json(['audit', 'list', '--org', 'acme', '--action', 'quota.set']);
    assert.deepEqual(acmeOnly.items.map((e: any) => e.resource).sort(), [
      'projects/acme.infer/quotas/rtxpro6000',
      'projects/acme.train/quotas/b200',
    ]);
  });

  it('answers with documented exit codes: 2 usage, 3 not found, 4 unauthenticated or forbidden, 5 conflict, 7 unreachable', async () => {
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    const cases: [string, string[], number, Record<string, string>?][] = [
      ['unknown flag', ['org', 'list', '--bogus'], 2],
      ['bad -o', ['org', 'list', '-o', 'yaml'], 2],
      ['missing required option', ['project', 'create', 'x'], 2],
      ['unknown command', ['frobnicate'], 2],
      ['not an integer', ['quota', 'set', 'acme.train', 'b200', '--guaranteed', 'many', '--limit', '8'], 2],
      ['invalid name (400)', ['org', 'create', 'Not_A_DNS_Label', '--residency', 'de'], 2],
      ['missing project', ['project', 'get', 'acme.nope'], 3],
      ['missing node', ['fleet', 'cordon', 'b200-9999'], 3],
      ["another tenant's project", ['project', 'get', 'globex.research'], 3, { FABRIK_API_KEY: tokens.alice }],
      ['unknown key', ['org', 'list'], 4, { FABRIK_API_KEY: `fbk_aaaaaaaaaaaa_${'A'.repeat(43)}` }],
      [
        'forbidden: quotas are for operators',
        ['quota', 'set', 'acme.train', 'b200', '--guaranteed', '1', '--limit', '8'],
        4,
        { FABRIK_API_KEY: tokens.alice },
      ],
      ['name taken', ['org', 'create', 'acme', '--residency', 'de'], 5],
      ['server unreachable', ['org', 'list'], 7, { FABRIK_ENDPOINT: unreachable }],
    ];
    const runs = await Promise.all(cases.map(([, args, , env]) => fabrik(args, { env })));
    runs.forEach((r, i) => {
      const [what, args, code] = cases[i];
      assert.equal(r.code, code, `${what}: fabrik ${args.join(' ')}\n${r.stderr}`);
      assert.equal(r.stdout, '', `${what}: nothing on stdout`);
      assert.match(r.stderr, /\S/, `${what}: a message on stderr`);
    });
    const unreachableJson = await fabrik(['org', 'list', '-o', 'json'], { env: { FABRIK_ENDPOINT: unreachable } });
    assert.equal(unreachableJson.code, 7);
    assert.equal(JSON.parse(unreachableJson.stderr).error.code, 'UNREACHABLE');
  });

  it('explains each command group and its commands in --help', async () => {
    const helps = await Promise.all(GROUPS.map((g) => ok([g, '--help'])));
    helps.forEach((h, i) => {
      const text = h.stdout;
      assert.match(text, new RegExp(`^Usage: fabrik ${GROUPS[i]} `), `${GROUPS[i]} --help`);
      const lines = text.split('\n');
      const start = lines.indexOf('Commands:');
      assert.ok(start > 0, `${GROUPS[i]} --help lists its commands`);
      const commands = lines.slice(start + 1).filter((l) => /^ {2}\S/.test(l) && !l.startsWith('  help '));
      assert.ok(commands.length >= 1);
      for (const line of commands)
        assert.match(line, /^ {2}\S.*\S {2,}[A-Z]\S* /, `${GROUPS[i]}: "${line.trim()}" has a description`);
    });
    const top = await ok(['--help']);
    for (const g of GROUPS)
      assert.match(top.stdout, new RegExp(`^ {2}${g}(?: \\S+)* {2,}[A-Z]`, 'm'), `fabrik --help describes ${g}`);
    const set = await ok(['quota', 'set', '--help']);
    assert.match(set.stdout, /--guaranteed <gpus>\s+GPUs always available/);
    assert.match(set.stdout, /-o, --output <format>\s+table, wide or json/);
  });
});
