// `fabrik events`, `fabrik webhook` and the small things of `fabrik ps`/`describe`, as child
// processes against a real server process on SQLite: tables for people, JSON (lines) for scripts,
// --follow streaming until interrupted, a webhook receiver on 127.0.0.1 fed by the server's own
// delivery loop, and usage errors that list what is valid.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { type IncomingHttpHeaders, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { OPERATOR_TOKEN, SMALL_FLEET, type TestDatabase, freshDatabase } from '../helpers/harness.js';
import {
  ENTRY,
  collectRun,
  REPO_ROOT,
  type ServerProcess,
  api,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Cells of a line: runs of text separated by two or more spaces. */
function cells(line: string): { start: number; text: string }[] {
  return [...line.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ start: m.index as number, text: m[0] }));
}

/** An aligned table as rows of header → cell; every cell starts under its header. */
function parseTable(out: string): Record<string, string>[] {
  const [header, ...rows] = out.trimEnd().split('\n');
  const columns = cells(header!);
  return rows.map((row) => {
    const found = cells(row);
    assert.deepEqual(
      found.map((c) => c.start),
      columns.map((c) => c.start),
      `not aligned:\n${header}\n${row}`,
    );
    return Object.fromEntries(columns.map((c, i) => [c.text, found[i]!.text]));
  });
}

describe('fabrik events, webhook and ps against a real server', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let call: ReturnType<typeof api>;
  let owner: string;
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  let receiverUrl: string;

  const env = () => ({ FABRIK_ENDPOINT: server.url, FABRIK_API_KEY: owner, FABRIK_CONFIG: '/nonexistent/fabrik.json' });

  function spawnFabrik(args: string[]) {
    return spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  function fabrik(args: string[]): Promise<Run> {
    return collectRun(spawnFabrik(args));
  }

  async function ok(args: string[]): Promise<Run> {
    const r = await fabrik(args);
    assert.equal(r.code, 0, `fabrik ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    return r;
  }

  const must = async (method: string, path: string, body?: unknown, token = OPERATOR_TOKEN) => {
    const r = await api(server.url, token)(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  };

  before(async () => {
    db = await freshDatabase('sqlite');
    server = await startServerProcess({ database: db.url, bootstrapToken: OPERATOR_TOKEN });
    call = api(server.url, OPERATOR_TOKEN);
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    await must('POST', '/api/v1/fleet/apply', { file: SMALL_FLEET });
    await must('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' });
    await must('POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' });
    owner = (await must('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice' })).token;
    await must('POST', '/api/v1/orgs/acme/projects', { name: 'train' }, owner);
    // A zero limit: workloads wait (QuotaLimit), nothing runs.
    await must('PUT', '/api/v1/projects/acme.train/quotas/b200', { guaranteed: 0, limit: 0 });
  });

  after(async () => {
    await killAllServerProcesses();
    await new Promise<void>((r) => receiver.close(() => r()));
    await db?.drop();
  });

  it('prints events as a table and as JSON lines, filtered by type', async () => {
    const mine = (await api(server.url, owner)('GET', '/api/v1/events?limit=1000')).body.items;
    assert.ok(mine.length >= 3);
    const lines = (await ok(['events', '-o', 'json'])).stdout.trimEnd().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)),
      mine,
      'one CloudEvent per line, as the API answers them',
    );
    const rows = parseTable((await ok(['events'])).stdout);
    assert.deepEqual(Object.keys(rows[0]!), ['TIME', 'TYPE', 'SUBJECT', 'DETAIL']);
    assert.deepEqual(
      rows.map((r) => r.TYPE),
      mine.map((e: { type: string }) => e.type),
    );
    assert.ok(rows.some((r) => r.TYPE === 'project.created' && r.SUBJECT === 'orgs/acme/projects/train'));
    const filtered = (await ok(['events', '--types', 'project.created', '-o', 'json'])).stdout.trim().split('\n');
    assert.deepEqual(
      filtered.map((l) => JSON.parse(l).type),
      ['project.created'],
    );
    const bad = await fabrik(['events', '--types', 'project.creatd']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown event type "project\.creatd"; known: .*project\.created/);
  });

  it('follows new events with --follow until interrupted', async () => {
    const head = (await api(server.url, owner)('GET', '/api/v1/events?limit=1000')).body.nextCursor;
    const child = spawnFabrik(['events', '--follow', '--after', head, '-o', 'json']);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await must('POST', '/api/v1/orgs/acme/projects', { name: 'followed' }, owner);
      const line = await eventually(
        async () => out.split('\n').find((l) => l.includes('"followed"')),
        15_000,
        'the event',
      );
      const e = JSON.parse(line);
      assert.equal(e.type, 'project.created');
      assert.equal(e.data.name, 'followed');
    } finally {
      child.kill('SIGINT');
    }
    await closed;
  });

  it('manages webhooks: create shows the secret once, deliveries are listed, delete', async () => {
    const refused = await fabrik(['webhook', 'create', '--org', 'acme', '--url', 'file:///etc/passwd']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /url: only http:\/\/ and https:\/\/ targets/);
    const created = await fabrik([
      'webhook',
      'create',
      '--org',
      'acme',
      '--url',
      `${receiverUrl}/fabrik`,
      '--types',
      'project.created,workload.finished',
      '-o',
      'json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const w = JSON.parse(created.stdout);
    assert.match(w.secret, /^whsec_/);
    assert.deepEqual(w.types, ['project.created', 'workload.finished']);
    assert.match(created.stderr, /not shown again/);

    await must('POST', '/api/v1/orgs/acme/projects', { name: 'hooked' }, owner);
    const got = await eventually(async () => received.find((r) => r.body.includes('"hooked"')), 15_000, 'a delivery');
    const id = String(got.headers['webhook-id']);
    const ts = String(got.headers['webhook-timestamp']);
    const key = Buffer.from(w.secret.slice(6), 'base64');
    const sig = createHmac('sha256', key).update(`${id}.${ts}.${got.body}`).digest('base64');
    assert.equal(got.headers['webhook-signature'], `v1,${sig}`);

    const list = JSON.parse((await ok(['webhook', 'list', '--org', 'acme', '-o', 'json'])).stdout);
    assert.equal(list.items.length, 1);
    assert.equal(list.items[0].secret, undefined, 'never listed');
    const table = parseTable((await ok(['webhook', 'list', '--org', 'acme'])).stdout);
    assert.equal(table[0]!.ID, w.id);
    assert.equal(table[0]!.DELIVERED, '1');
    const deliveries = JSON.parse((await ok(['webhook', 'deliveries', w.id, '--org', 'acme', '-o', 'json'])).stdout);
    assert.deepEqual(
      deliveries.items.map((d: any) => [d.event.id, d.status, d.attempts, d.lastStatusCode]),
      [[id, 'delivered', 1, 204]],
    );
    const rows = parseTable((await ok(['webhook', 'deliveries', w.id, '--org', 'acme'])).stdout);
    assert.deepEqual(
      [rows[0]!.EVENT, rows[0]!.STATUS, rows[0]!.ATTEMPTS, rows[0]!.CODE, rows[0]!['NEXT TRY']],
      [id, 'delivered', '1', '204', '-'],
    );
    assert.match((await ok(['webhook', 'delete', w.id, '--org', 'acme'])).stdout, /deleted/);
    assert.equal((await fabrik(['webhook', 'deliveries', w.id, '--org', 'acme'])).code, 3);
  });

  it('ps: recently ended workloads too, by submit time; unknown --status lists the valid ones', async () => {
    const spec = (name: string) => ({
      kind: 'batch',
      name,
      resources: { gpu: 'B200:8', nodes: 1 },
      max_duration: '2h',
      run: 'sleep 600',
    });
    for (const n of ['first', 'second', 'third'])
      await must('POST', '/api/v1/projects/acme.train/workloads', spec(n), owner);
    await must('POST', '/api/v1/projects/acme.train/workloads/second/cancel', undefined, owner);
    const ps = JSON.parse((await ok(['ps', '-p', 'acme.train', '-o', 'json'])).stdout);
    assert.deepEqual(
      ps.items.map((w: any) => [w.name, w.status]),
      [
        ['first', 'pending'],
        ['second', 'cancelled'],
        ['third', 'pending'],
      ],
    );
    const rows = parseTable((await ok(['ps', '-p', 'acme.train'])).stdout);
    assert.deepEqual(
      rows.map((r) => [r.NAME, r.STATUS]),
      [
        ['first', 'pending'],
        ['second', 'cancelled'],
        ['third', 'pending'],
      ],
    );
    const bad = await fabrik(['ps', '-p', 'acme.train', '--status', 'runing']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /unknown status "runing"; valid: pending, running, succeeded, failed, cancelled, preempted/,
    );
    const api400 = await call('GET', '/api/v1/workloads?status=runing');
    assert.equal(api400.status, 400);
    assert.deepEqual(api400.body.error.details.valid, [
      'pending',
      'running',
      'succeeded',
      'failed',
      'cancelled',
      'preempted',
    ]);
    const described = (await ok(['describe', 'second', '-p', 'acme.train'])).stdout;
    assert.match(described, /^Max runtime: +2h$/m);
    // The finished workload came as an event too.
    const finished = (await ok(['events', '--types', 'workload.finished', '-o', 'json'])).stdout.trim().split('\n');
    assert.deepEqual(
      finished.map((l) => [JSON.parse(l).data.name, JSON.parse(l).data.status]),
      [['second', 'cancelled']],
    );
  });
});
