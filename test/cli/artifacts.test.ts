// `fabrik get models|datasets`, `describe model|dataset`, `verify`, `lineage`, `tag|untag` and
// the storage-quota commands (src/cli/commands/artifacts.ts), end to end: the CLI as child
// processes against a real server process on SQLite, with content pushed by the official Hub
// client (@huggingface/hub) and lineage edges written straight into the database. verify is
// checked offline against a saved key, against a pulled directory (a modified, missing or extra
// file fails with exit code 9), and against an envelope tampered with in the database.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import SQLite from 'better-sqlite3';
import { formatBytes, parseSize } from '../../src/cli/commands/artifacts.js';
import { EXIT } from '../../src/cli/output.js';
import {
  ENTRY,
  collectRun,
  REPO_ROOT,
  type ServerProcess,
  api,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { OPERATOR_TOKEN, SMALL_FLEET, type TestDatabase, freshDatabase } from '../helpers/harness.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const MiB = 1024 * 1024;

/** A valid safetensors file: one BF16 tensor of `n` elements. */
function safetensors(n: number): Buffer {
  const json = JSON.stringify({ weight: { dtype: 'BF16', shape: [n], data_offsets: [0, 2 * n] } });
  const header = Buffer.from(json.padEnd((json.length + 7) & ~7, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, randomBytes(2 * n)]);
}

/** Rows of an aligned table, by header (cells are separated by two or more spaces). */
function parseTable(out: string): Record<string, string>[] {
  const [header, ...rows] = out.trimEnd().split('\n');
  const cols = header.split(/ {2,}/);
  return rows.map((r) => Object.fromEntries(r.split(/ {2,}/).map((c, i) => [cols[i], c])));
}

const CARD = `---
license: apache-2.0
base_model: meta-llama/Llama-3.1-8B
datasets: [acme/corpus]
pipeline_tag: text-generation
model-index:
  - name: tiny
    results:
      - task: { type: text-generation }
        dataset: { type: acme/corpus, name: corpus, split: test }
        metrics:
          - { type: accuracy, value: 0.81 }
---
# Tiny

A tiny model for the CLI tests.
`;

describe('fabrik get/describe/verify/lineage/tag against a real server', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let home: string;
  let alice: string;
  let globex: string;
  let modelCommit: string;
  let datasetCommit: string;
  const files: Record<string, Buffer> = {
    'README.md': Buffer.from(CARD),
    'model.safetensors': safetensors(MiB),
    'tokenizer/vocab.txt': Buffer.from('hello\nworld\n'),
  };

  function fabrik(args: string[], token = alice): Promise<Run> {
    const env: Record<string, string | undefined> = {
      ...process.env,
      FABRIK_CONFIG: join(home, 'config.json'),
      FABRIK_ENDPOINT: server.url,
      FABRIK_API_KEY: token,
      NO_COLOR: '1',
    };
    delete env.FABRIK_PROJECT;
    return collectRun(spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: REPO_ROOT, env }));
  }
  async function ok(args: string[], token?: string): Promise<Run> {
    const r = await fabrik(args, token);
    assert.equal(r.code, 0, `fabrik ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    return r;
  }
  async function json(args: string[], token?: string): Promise<any> {
    return JSON.parse((await ok([...args, '-o', 'json'], token)).stdout);
  }
  async function exits(code: number, args: string[], token?: string): Promise<Run> {
    const r = await fabrik(args, token);
    assert.equal(r.code, code, `fabrik ${args.join(' ')} exited ${r.code}, not ${code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  const sqlite = <T>(fn: (d: SQLite.Database) => T): T => {
    const d = new SQLite(db.url);
    try {
      return fn(d);
    } finally {
      d.close();
    }
  };
  /** A directory holding the version's files, as a pull writes them. */
  function pulledDir(): string {
    const dir = mkdtempSync(join(home, 'pulled-'));
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), content);
    }
    return dir;
  }

  before(async () => {
    db = await freshDatabase('sqlite');
    server = await startServerProcess({ database: db.url, bootstrapToken: OPERATOR_TOKEN });
    home = mkdtempSync(join(tmpdir(), 'fabrik-artifacts-'));
    const call = api(server.url, OPERATOR_TOKEN);
    const must = async (method: string, path: string, body?: unknown) => {
      const r = await call(method, path, body);
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
      return r.body;
    };
    await must('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' });
    await must('POST', '/api/v1/orgs', { name: 'globex', residency: 'de' });
    await must('POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' });
    await must('POST', '/api/v1/orgs/globex/members', { user: 'gus', role: 'owner' });
    alice = (await must('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice' })).token;
    globex = (await must('POST', '/api/v1/orgs/globex/keys', { name: 'gus', user: 'gus' })).token;
    await must('POST', '/api/v1/orgs/acme/projects', { name: 'train' });
    await must('POST', '/api/v1/fleet/apply', { file: SMALL_FLEET });
    // No quota to run in: the workload stays pending (nothing is launched).
    await must('PUT', '/api/v1/projects/acme.train/quotas/b200', { guaranteed: 0, limit: 0 });

    const hubUrl = `${server.url}/hub`;
    const accessToken = `hf_${alice}`;
    const push = async (repo: hub.RepoDesignation, content: Record<string, Buffer>) => {
      await hub.createRepo({ repo, accessToken, hubUrl });
      const out = await hub.uploadFiles({
        repo,
        accessToken,
        hubUrl,
        files: Object.entries(content).map(([path, c]) => ({ path, content: new Blob([new Uint8Array(c)]) })),
      });
      return out!.commit.oid;
    };
    datasetCommit = await push({ type: 'dataset', name: 'acme.train/corpus' }, { 'train.jsonl': Buffer.from('{}\n') });
    modelCommit = await push({ type: 'model', name: 'acme.train/tiny-1.0' }, files);
    await push({ type: 'model', name: 'acme.train/tampered' }, { 'a.txt': Buffer.from('original') });

    const wl = await must('POST', '/api/v1/projects/acme.train/workloads', {
      kind: 'training',
      name: 'finetune',
      resources: { gpu: 'B200:8', nodes: 1 },
      max_duration: '2h',
      run: 'python train.py',
    });
    sqlite((d) => {
      const org = (d.prepare("select id from orgs where name = 'acme'").get() as { id: string }).id;
      const insert = d.prepare(
        'insert into lineage_edges (id, org_id, from_kind, from_id, to_kind, to_id, created_at) values (?, ?, ?, ?, ?, ?, ?)',
      );
      const now = new Date().toISOString();
      insert.run('lin_a', org, 'commit', datasetCommit, 'attempt', `${wl.id}:1`, now);
      insert.run('lin_b', org, 'attempt', `${wl.id}:1`, 'commit', modelCommit, now);
    });
  });

  after(async () => {
    await killAllServerProcesses();
    await db?.drop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('parses and prints sizes', () => {
    assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
    assert.equal(parseSize('1.5 MiB'), 1.5 * MiB);
    assert.equal(parseSize('2TB'), 2e12);
    assert.equal(parseSize('512K'), 512 * 1024);
    assert.equal(parseSize('1048576'), MiB);
    assert.throws(() => parseSize('ten gigs'));
    assert.equal(formatBytes(1536), '1.5 KiB');
  });

  it('lists models and datasets in an aligned table, and as the API object with -o json', async () => {
    const models = parseTable((await ok(['get', 'models', '-p', 'acme.train'])).stdout);
    const size = Object.values(files).reduce((n, b) => n + b.length, 0);
    assert.deepEqual(
      models.map((m) => [m.NAME, m.VERSION, m.FILES, m.SIZE]),
      [
        ['tampered', models[0].VERSION, '1', '8 B'],
        ['tiny-1.0', modelCommit.slice(0, 12), '3', formatBytes(size)],
      ],
    );
    assert.deepEqual(Object.keys(models[0]), ['NAME', 'VERSION', 'UPDATED', 'FILES', 'SIZE']);
    const asJson = await json(['get', 'models', '-p', 'acme.train']);
    const fromApi = await api(server.url, alice)('GET', '/api/v1/projects/acme.train/models');
    assert.deepEqual(asJson, { items: fromApi.body.items });
    const datasets = parseTable((await ok(['get', 'datasets', '-p', 'acme.train'])).stdout);
    assert.deepEqual(
      datasets.map((d) => [d.NAME, d.VERSION]),
      [['corpus', datasetCommit.slice(0, 12)]],
    );
    await exits(EXIT.notFound, ['get', 'models', '-p', 'acme.train'], globex);
  });

  it('describes a model: card, formats, refs, signature and versions', async () => {
    const out = (await ok(['describe', 'model', 'acme.train/tiny-1.0'])).stdout;
    for (const re of [
      /^Name: +acme\.train\/tiny-1\.0$/m,
      /License: +apache-2\.0/,
      /Base model: +meta-llama\/Llama-3\.1-8B/,
      /Datasets: +acme\/corpus/,
      /Pipeline tag: +text-generation/,
      /Evaluation: +accuracy 0\.81 on acme\/corpus \(test\)/,
      /Parameters: +1\.0M \(1048576\)/,
      /Formats: +safetensors/,
      /Dtypes: +BF16 1\.0M/,
      /Signature: +ok \(platform key [0-9a-f]{12}\)/,
      new RegExp(`main +branch +${modelCommit.slice(0, 12)}`),
    ])
      assert.match(out, re);
    const j = await json(['describe', 'model', 'acme.train/tiny-1.0']);
    assert.equal(j.repo.latest.id, modelCommit);
    assert.equal(j.version.verification.ok, true);
    assert.equal(j.versions.length, 1);
    const ds = (await ok(['describe', 'dataset', 'acme.train/corpus'])).stdout;
    assert.match(ds, /^Kind: +dataset$/m);
    assert.equal(
      (await json(['describe', 'model', `datasets/acme.train/corpus:${datasetCommit}`])).version.version.id,
      datasetCommit,
    );
    await exits(EXIT.notFound, ['describe', 'model', 'acme.train/nosuch']);
    await exits(EXIT.usage, ['describe', 'model', 'not a ref']);
  });

  it('verifies offline: with the served key, a saved key, and a pulled directory', async () => {
    const r = await ok(['verify', 'acme.train/tiny-1.0']);
    assert.match(r.stdout, new RegExp(`verified acme\\.train/tiny-1\\.0:main \\(${modelCommit}\\)`));
    const key = (await api(server.url, alice)('GET', '/api/v1/registry/signing-key')).body;
    const keyFile = join(home, 'fabrik.pub');
    writeFileSync(keyFile, key.publicKeyPem);
    const j = await json(['verify', `acme.train/tiny-1.0:${modelCommit}`, '--key', keyFile]);
    assert.deepEqual([j.ok, j.keyid, j.signers, j.files], [true, key.keyid, [key.keyid], 3]);

    const dir = pulledDir();
    const withDir = await json(['verify', 'acme.train/tiny-1.0', '--dir', dir]);
    assert.deepEqual(withDir.dir, { checked: 3, modified: [], missing: [], extra: [] });

    const other = join(home, 'other.pub');
    writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const wrongKey = await exits(EXIT.verifyFailed, ['verify', 'acme.train/tiny-1.0', '--key', other]);
    assert.match(wrongKey.stdout, /verification FAILED .*no signature by the platform key/);
    await exits(EXIT.usage, ['verify', 'acme.train/tiny-1.0', '--key', join(home, 'missing.pub')]);
    await exits(EXIT.usage, ['verify', 'acme.train/tiny-1.0', '--dir', join(home, 'nodir')]);
    rmSync(dir, { recursive: true });
  });

  it('fails verification (exit 9) for a modified, missing or extra file in --dir', async () => {
    const modified = pulledDir();
    const w = join(modified, 'model.safetensors');
    const bytes = Buffer.from(files['model.safetensors']);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(w, bytes);
    const r = await exits(EXIT.verifyFailed, ['verify', 'acme.train/tiny-1.0', '--dir', modified, '-o', 'json']);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, false);
    assert.deepEqual(report.dir.modified, ['model.safetensors']);
    assert.match(report.reason, /model\.safetensors differs from the signed digest/);
    const table = await exits(EXIT.verifyFailed, ['verify', 'acme.train/tiny-1.0', '--dir', modified]);
    assert.match(table.stdout, /verification FAILED/);

    const missing = pulledDir();
    unlinkSync(join(missing, 'tokenizer/vocab.txt'));
    writeFileSync(join(missing, 'evil.pkl'), 'import os');
    const m = JSON.parse(
      (await exits(EXIT.verifyFailed, ['verify', 'acme.train/tiny-1.0', '--dir', missing, '-o', 'json'])).stdout,
    );
    assert.deepEqual([m.dir.missing, m.dir.extra], [['tokenizer/vocab.txt'], ['evil.pkl']]);
  });

  it('fails verification (exit 9) once the stored envelope is tampered with', async () => {
    await ok(['verify', 'acme.train/tampered']);
    sqlite((d) => {
      const row = d
        .prepare("select c.id, c.envelope from commits c join repos r on r.id = c.repo_id where r.name = 'tampered'")
        .get() as {
        id: string;
        envelope: string;
      };
      const env = JSON.parse(row.envelope);
      const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
      statement.predicate.resources[0].digest = createHash('sha256').update('evil').digest('hex');
      env.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
      d.prepare('update commits set envelope = ? where id = ?').run(JSON.stringify(env), row.id);
    });
    const r = await exits(EXIT.verifyFailed, ['verify', 'acme.train/tampered']);
    assert.match(r.stdout, /verification FAILED .*does not verify/);
    const described = (await ok(['describe', 'model', 'acme.train/tampered'])).stdout;
    assert.match(described, /Signature: +FAILED/);
  });

  it('shows lineage as a tree, up and down, and as JSON', async () => {
    const up = (await ok(['lineage', 'acme.train/tiny-1.0', '--up'])).stdout;
    assert.equal(
      up.trimEnd(),
      [
        `acme.train/tiny-1.0@${modelCommit.slice(0, 12)} (model)`,
        '└── <- attempt finetune#1 (acme.train, pending)',
        `    └── <- datasets/acme.train/corpus@${datasetCommit.slice(0, 12)} (dataset)`,
      ].join('\n'),
    );
    const down = (await ok(['lineage', 'datasets/acme.train/corpus', '--down'])).stdout;
    assert.match(down, /└── -> attempt finetune#1/);
    assert.match(down, new RegExp(`└── -> acme\\.train/tiny-1\\.0@${modelCommit.slice(0, 12)} \\(model\\)`));
    const j = await json(['lineage', 'acme.train/tiny-1.0']);
    assert.deepEqual(
      j.nodes.map((n: any) => n.kind),
      ['commit', 'attempt', 'commit'],
    );
    const none = (await ok(['lineage', 'acme.train/tampered'])).stdout;
    assert.match(none, /no lineage recorded/);
    await exits(EXIT.usage, ['lineage', 'acme.train/tiny-1.0', '--up', '--down']);
    await exits(EXIT.notFound, ['lineage', 'acme.train/tiny-1.0'], globex);
  });

  it('tags and untags versions', async () => {
    const t = await ok(['tag', 'acme.train/tiny-1.0', 'v1']);
    assert.match(t.stdout, new RegExp(`tag v1 -> ${modelCommit.slice(0, 12)} on acme\\.train/tiny-1\\.0`));
    await ok(['verify', 'acme.train/tiny-1.0:v1']);
    assert.match((await ok(['describe', 'model', 'acme.train/tiny-1.0'])).stdout, /v1 +tag/);
    await exits(EXIT.conflict, ['tag', 'acme.train/tiny-1.0', 'main']);
    await exits(EXIT.notFound, ['tag', 'acme.train/tiny-1.0:nosuch', 'v2']);
    await exits(EXIT.notFound, ['tag', 'acme.train/tiny-1.0', 'v3'], globex);
    await ok(['untag', 'acme.train/tiny-1.0', 'v1']);
    await exits(EXIT.notFound, ['untag', 'acme.train/tiny-1.0', 'v1']);
  });

  it('gets and sets storage quotas (operators set them)', async () => {
    await exits(EXIT.auth, ['set', 'storage-quota', 'acme.train', '10GiB']);
    const set = await json(['set', 'storage-quota', 'acme.train', '10GiB'], OPERATOR_TOKEN);
    assert.equal(set.limitBytes, 10 * 1024 ** 3);
    const shown = parseTable((await ok(['get', 'storage-quota', '-p', 'acme.train'])).stdout);
    assert.deepEqual(
      shown.map((s) => [s.PROJECT, s.LIMIT]),
      [['acme.train', '10.0 GiB']],
    );
    assert.ok(Number((await json(['get', 'storage-quota', 'acme.train'])).usedBytes) > MiB);
    const cleared = await json(['set', 'storage-quota', 'acme.train', 'none'], OPERATOR_TOKEN);
    assert.equal(cleared.limitBytes, null);
    await exits(EXIT.usage, ['set', 'storage-quota', 'acme.train', 'lots'], OPERATOR_TOKEN);
  });
});
