// Workloads and the registry, for real: a server process (SQLite, local executor in the bubblewrap
// sandbox, 4 development GPUs), a dataset and a code bundle pushed with @huggingface/hub, a
// training job that reads the dataset through a read-only mount, runs a script that came from the
// registry and publishes a model; the new version is signed, names the attempt as its producer,
// and lineage links dataset → attempt → model. Refusals: a tampered input version, a full storage
// quota at publish, and references the submit must reject.
// Needs root, bubblewrap and writable cgroups (the `sandbox` level); in CI it never skips.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import SQLite from 'better-sqlite3';
import { detectIsolation } from '../../src/exec/sandbox.js';
import { findBlob, openBlob } from '../../src/registry/content.js';
import { writeSafetensors } from '../../src/registry/formats.js';
import { ingestFile } from '../../src/registry/ingest.js';
import { decodeStatement, keyIdOf, verifyEnvelope } from '../../src/registry/signing.js';
import {
  type ServerProcess,
  api,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { startTestApp, seedTenant } from '../helpers/harness.js';

const OPERATOR_TOKEN = `fbk_artop_${'a'.repeat(43)}`;
const level = (() => {
  try {
    return detectIsolation({ want: 'sandbox' }).level;
  } catch (err) {
    return (err as Error).message;
  }
})();
const skip = level === 'sandbox' ? false : `the sandbox level is not available here: ${level}`;
if (skip && process.env.CI) throw new Error(`CI must run the artifacts suite: ${skip}`);
if (skip) console.warn(`SKIPPING workload artifacts suite: ${skip}`);

/** The training script, pushed as the `trainer` dataset: it reads the mount, tries to write it, publishes out/. */
const TRAIN_SH = `#!/bin/sh
set -e
echo "script from the registry, in $(pwd)"
echo "input at $FABRIK_INPUT_0"
cat /data/corpus/train.txt
if (echo x > /data/corpus/pwned) 2>/dev/null; then echo "MOUNT-WRITABLE"; exit 3; fi
if (echo x > /data/corpus/weights/base.safetensors) 2>/dev/null; then echo "FILE-WRITABLE"; exit 4; fi
grep -q ' /data/corpus ro[, ]' /proc/self/mountinfo && echo "the input mount is read-only"
mkdir -p out/extra
cp /data/corpus/weights/base.safetensors out/model.safetensors
wc -c < /data/corpus/train.txt > out/extra/seen.txt
`;

describe('workloads with registry inputs, code and outputs (local sandbox)', { skip }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-art-'));
  const scratch = mkdtempSync(join(tmpdir(), 'fabrik-art-files-'));
  let server: ServerProcess;
  let op: ReturnType<typeof api>;
  let alice: ReturnType<typeof api>;
  let hubUrl: string;
  let accessToken: string;
  let projectId: string;
  let projectUid: number;
  let db: SQLite.Database;
  let baseWeights: Buffer;
  const heads = new Map<string, string>();

  const submit = (spec: Record<string, unknown>) =>
    alice('POST', '/api/v1/projects/acme.vision/workloads', {
      kind: 'training',
      resources: { pool: 'dev', gpu: 1 },
      max_duration: '5m',
      grace_period: '2s',
      ...spec,
    });
  const until = (name: string, done: (w: any) => boolean, ms = 60_000) =>
    eventually(
      async () => {
        const w = (await alice('GET', `/api/v1/projects/acme.vision/workloads/${name}`)).body;
        return done(w) ? w : undefined;
      },
      ms,
      `workload ${name}`,
    );
  const ended = (name: string) => until(name, (w) => ['succeeded', 'failed', 'cancelled'].includes(w.status));
  const push = async (type: 'model' | 'dataset', name: string, files: { path: string; content: Blob }[]) => {
    const repo = { type, name: `acme.vision/${name}` };
    await hub.createRepo({ repo, accessToken, hubUrl }).catch((e) => {
      if (e.statusCode !== 409) throw e;
    });
    const out = await hub.uploadFiles({ repo, accessToken, hubUrl, files, commitTitle: `push ${name}` });
    heads.set(name, out?.commit.oid ?? '');
    return out?.commit.oid ?? '';
  };

  before(async () => {
    server = await startServerProcess({
      dataDir,
      database: join(dataDir, 'fabrik.db'),
      bootstrapToken: OPERATOR_TOKEN,
      devGpus: 4,
      env: { FABRIK_ISOLATION: 'sandbox' },
    });
    op = api(server.url, OPERATOR_TOKEN);
    assert.equal((await op('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    const p = await op('POST', '/api/v1/orgs/acme/projects', { name: 'vision' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    projectId = p.body.id;
    projectUid = p.body.uid;
    assert.equal((await op('POST', '/api/v1/orgs/acme/projects', { name: 'other' })).status, 201);
    assert.equal((await op('PUT', '/api/v1/projects/acme.vision/quotas/dev', { guaranteed: 4, limit: 4 })).status, 200);
    assert.equal((await op('POST', '/api/v1/orgs', { name: 'globex', residency: 'de' })).status, 201);
    assert.equal((await op('POST', '/api/v1/orgs/globex/projects', { name: 'secret' })).status, 201);
    // alice: member of acme.vision only (a project grant), so acme.other is out of her reach.
    const m = await op('POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'member', project: 'vision' });
    assert.ok([200, 201].includes(m.status), JSON.stringify(m.body));
    const key = await op('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice', project: 'vision' });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    alice = api(server.url, key.body.token);
    accessToken = `hf_${key.body.token}`;
    hubUrl = `${server.url}/hub`;
    db = new SQLite(join(dataDir, 'fabrik.db'));
    db.pragma('busy_timeout = 10000');

    const weightsFile = join(scratch, 'base.safetensors');
    await writeSafetensors(weightsFile, [
      { name: 'w', dtype: 'F32', shape: [512, 1024] },
      { name: 'b', dtype: 'F16', shape: [1024] },
    ]);
    baseWeights = readFileSync(weightsFile);
    await push('dataset', 'corpus', [
      { path: 'train.txt', content: new Blob(['the quick brown fox\n']) },
      { path: 'weights/base.safetensors', content: new Blob([new Uint8Array(baseWeights)]) },
    ]);
    await push('dataset', 'trainer', [{ path: 'train.sh', content: new Blob([TRAIN_SH]) }]);
  });
  after(async () => {
    db?.close();
    await killAllServerProcesses();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  it('trains on a read-only dataset mount with code from the registry and publishes a signed model', async () => {
    const r = await submit({
      name: 'ft',
      inputs: [{ dataset: 'acme.vision/corpus:main', path: '/data/corpus' }],
      code: { dataset: 'acme.vision/trainer' },
      outputs: [{ model: 'acme.vision/llama-ft', from: 'out/' }],
      run: './train.sh',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    // Pinned at submit: the stored spec names the commits, not just the refs.
    assert.equal(r.body.spec.inputs[0].commit, heads.get('corpus'));
    assert.equal(r.body.spec.code.commit, heads.get('trainer'));
    const w = await ended('ft');
    const logs = await alice('GET', '/api/v1/projects/acme.vision/workloads/ft/logs');
    assert.equal(w.status, 'succeeded', `${w.reason}: ${w.message}\n${logs.text}`);
    assert.match(logs.text, /script from the registry/);
    assert.match(logs.text, /input at \/data\/corpus/);
    assert.match(logs.text, /the quick brown fox/);
    assert.match(logs.text, /the input mount is read-only/);
    assert.match(w.message, /published model acme\.vision\/llama-ft@[0-9a-f]{12} \(2 files/);
    assert.deepEqual(
      w.events.map((e: any) => e.reason),
      ['Submitted', 'Scheduled', 'Started', 'Publishing', 'Completed'],
    );

    // The materialized copy: root's, group = the project's gid, nobody may write it.
    const copy = join(dataDir, 'workloads', projectId, w.id, 'inputs', '0');
    for (const [p, mode] of [
      [copy, 0o750],
      [join(copy, 'weights'), 0o750],
      [join(copy, 'train.txt'), 0o640],
    ] as const) {
      const st = statSync(p);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [0, projectUid, mode], p);
    }

    // The new version: a commit of llama-ft whose producer is the attempt, signed by the platform.
    const row = db
      .prepare(
        `select c.* from commits c join repos r on r.id = c.repo_id where r.kind = 'model' and r.name = 'llama-ft'`,
      )
      .all() as any[];
    assert.equal(row.length, 1);
    const c = row[0];
    assert.deepEqual([c.producer_workload_id, c.producer_attempt], [w.id, 1]);
    assert.equal(c.created_by, `workload:${w.id}`);
    const manifest = JSON.parse(c.manifest);
    assert.deepEqual(
      manifest.map((f: any) => f.path),
      ['extra/seen.txt', 'model.safetensors'],
    );
    const publicKey = createPublicKey(readFileSync(join(dataDir, 'registry-signing.key'), 'utf8'));
    const envelope = JSON.parse(c.envelope);
    const v = verifyEnvelope(envelope, [{ keyid: keyIdOf(publicKey), publicKey }], { files: manifest, commit: c.id });
    assert.ok(v.ok, JSON.stringify(v));
    assert.deepEqual(decodeStatement(envelope).predicate.fabrik.producer, { workloadId: w.id, attempt: 1 });
    // The safetensors header was read at commit, like any pushed model file.
    assert.equal(JSON.parse(c.formats)['model.safetensors'].format, 'safetensors');

    // Lineage: dataset commit → attempt, code commit → attempt, attempt → model commit.
    const edges = db.prepare('select from_kind, from_id, to_kind, to_id from lineage_edges').all() as any[];
    const has = (fk: string, fi: string, tk: string, ti: string) =>
      edges.some((e) => e.from_kind === fk && e.from_id === fi && e.to_kind === tk && e.to_id === ti);
    const attempt = `${w.id}:1`;
    assert.ok(has('commit', heads.get('corpus')!, 'attempt', attempt), JSON.stringify(edges));
    assert.ok(has('commit', heads.get('trainer')!, 'attempt', attempt), JSON.stringify(edges));
    assert.ok(has('attempt', attempt, 'commit', c.id), JSON.stringify(edges));

    // The Hub serves it, byte for byte.
    const blob = await hub.downloadFile({
      repo: { type: 'model', name: 'acme.vision/llama-ft' },
      path: 'model.safetensors',
      accessToken,
      hubUrl,
    });
    assert.ok(blob && Buffer.from(await blob.arrayBuffer()).equals(baseWeights));
  });

  it('fails the attempt when an input version was tampered with, and runs nothing', async () => {
    const oid = await push('dataset', 'tampered', [{ path: 'data.txt', content: new Blob(['original\n']) }]);
    // Someone with the database rewrites the signed statement (a digest swapped), keeping the signature.
    const c = db.prepare('select envelope from commits where id = ?').get(oid) as { envelope: string };
    const env = JSON.parse(c.envelope);
    const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
    statement.predicate.resources[0].digest = 'f'.repeat(64);
    env.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    db.prepare('update commits set envelope = ? where id = ?').run(JSON.stringify(env), oid);

    const r = await submit({
      name: 'tampered',
      inputs: [{ dataset: 'acme.vision/tampered', path: '/data/t' }],
      run: 'echo RAN',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const w = await ended('tampered');
    assert.equal(w.status, 'failed');
    assert.match(
      w.message,
      /could not stage its registry inputs: inputs\[0\]: the signature of dataset acme\.vision\/tampered@[0-9a-f]{12} does not verify \(signature by key [0-9a-f]+ does not verify\); refusing to run on an unsigned or altered version/,
    );
    assert.equal(w.attemptRecords[0].endReason, 'launch-failed');
    assert.ok(!w.events.some((e: any) => e.reason === 'Started'));

    // Unsigned (no envelope at all) is refused the same way.
    db.prepare(`update commits set envelope = '' where id = ?`).run(oid);
    assert.equal(
      (
        await submit({
          name: 'unsigned',
          inputs: [{ dataset: 'acme.vision/tampered', path: '/data/t' }],
          run: 'echo RAN',
        })
      ).status,
      201,
    );
    const u = await ended('unsigned');
    assert.equal(u.status, 'failed');
    assert.match(u.message, /is not signed; refusing to run on an unsigned version/);
  });

  it('ends OutputPublishFailed when the storage quota cannot hold the outputs, with nothing half-published', async () => {
    const used = db
      .prepare('select coalesce(sum(size), 0) as n from project_blobs where project_id = ?')
      .get(projectId) as {
      n: number;
    };
    db.prepare('insert into storage_quotas (project_id, limit_bytes, updated_at) values (?, ?, ?)').run(
      projectId,
      used.n + 1000,
      new Date().toISOString(),
    );
    try {
      const r = await submit({
        name: 'toobig',
        outputs: [{ model: 'acme.vision/too-big', from: 'out' }],
        run: 'mkdir -p "$FABRIK_WORKLOAD_DIR/out" && head -c 200000 /dev/urandom > "$FABRIK_WORKLOAD_DIR/out/w.bin"',
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const w = await ended('toobig');
      assert.equal(w.status, 'failed');
      assert.equal(w.reason, 'OutputPublishFailed');
      assert.match(w.message, /the tasks succeeded but the outputs were not published: .*storage quota/);
      assert.equal(w.attemptRecords[0].endReason, 'publish-failed');
      const versions = db
        .prepare(`select count(*) as n from commits c join repos r on r.id = c.repo_id where r.name = 'too-big'`)
        .get() as { n: number };
      assert.equal(versions.n, 0);
    } finally {
      db.prepare('delete from storage_quotas where project_id = ?').run(projectId);
    }
  });

  it('never follows a link out of the work directory when publishing: the output is refused', async () => {
    const r = await submit({
      name: 'sneaky',
      outputs: [{ model: 'acme.vision/sneaky', from: 'out' }],
      run: 'mkdir -p out && echo ok > out/a.txt && ln -s /etc/shadow out/shadow',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const w = await ended('sneaky');
    assert.equal(w.reason, 'OutputPublishFailed');
    assert.match(w.message, /outputs\[0\]: out\/shadow is a symbolic link; outputs hold regular files only/);
    const n = db.prepare(`select count(*) as n from repos where name = 'sneaky'`).get() as { n: number };
    assert.equal(n.n, 0);
  });

  it('refuses at submit what it could not run: unknown revisions, repos out of reach, bad mount paths', async () => {
    const input = (ref: string, path = '/data/x') => ({ name: 'bad', inputs: [{ dataset: ref, path }], run: 'true' });
    const rev = await submit(input('acme.vision/corpus:no-such-tag'));
    assert.equal(rev.status, 422, JSON.stringify(rev.body));
    assert.match(
      rev.body.error.message,
      /inputs\[0\]\.dataset: dataset acme\.vision\/corpus has no revision "no-such-tag"/,
    );
    const missing = await submit(input('acme.vision/nothing-here'));
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    // A project of the org that alice holds no role on: not found, like any repo she cannot see.
    assert.equal((await submit(input('acme.other/corpus'))).status, 404);
    const foreign = await submit(input('globex.secret/corpus'));
    assert.equal(foreign.status, 400);
    assert.match(foreign.body.error.message, /belongs to another organization/);
    const proc = await submit(input('acme.vision/corpus', '/proc/x'));
    assert.equal(proc.status, 400);
    assert.match(proc.body.error.message, /inputs\[0\]\.path: must not be under \/proc/);
    const out = await submit({ name: 'bad', outputs: [{ model: 'acme.other/m', from: 'out/' }], run: 'true' });
    assert.equal(out.status, 404, JSON.stringify(out.body));
    const overlap = await submit({
      name: 'bad',
      inputs: [
        { dataset: 'acme.vision/corpus', path: '/data' },
        { dataset: 'acme.vision/trainer', path: '/data/code' },
      ],
      run: 'true',
    });
    assert.equal(overlap.status, 400);
    assert.match(overlap.body.error.message, /inputs\[1\]\.path: \/data\/code overlaps inputs\[0\]\.path/);
  });
});

describe('ingestFile: a file on disk becomes a blob of the org, streamed', () => {
  const MiB = 1024 * 1024;
  it('stores in multipart parts, reads back byte for byte, dedups, and refuses links', async () => {
    const t = await startTestApp('sqlite', { registry: { limits: { chunkBytes: MiB, basicMaxBytes: MiB } } });
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-ingest-'));
    try {
      const tenant = await seedTenant(t, 'ingco');
      const org = await t.store.db.selectFrom('orgs').selectAll().where('name', '=', 'ingco').executeTakeFirstOrThrow();
      const project = await t.store.db
        .selectFrom('projects')
        .selectAll()
        .where('org_id', '=', org.id)
        .where('name', '=', tenant.project)
        .executeTakeFirstOrThrow();
      const reg = t.registry!;
      const big = Buffer.alloc(2 * MiB + 12345);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
      writeFileSync(join(dir, 'big.bin'), big);
      writeFileSync(join(dir, 'empty.bin'), '');
      symlinkSync(join(dir, 'big.bin'), join(dir, 'link.bin'));
      const got = await ingestFile(t.store.db, reg, org.id, project.id, join(dir, 'big.bin'), 'test');
      assert.equal(got.stored, true);
      assert.equal(got.size, big.length);
      const blob = await findBlob(t.store.db, org.id, got.blobId);
      assert.ok(blob);
      const parts: Buffer[] = [];
      for await (const b of await openBlob(reg, blob)) parts.push(b as Buffer);
      assert.ok(Buffer.concat(parts).equals(big));
      const upload = await t.store.db
        .selectFrom('uploads')
        .selectAll()
        .where('sha256', '=', got.sha256)
        .executeTakeFirstOrThrow();
      assert.deepEqual([upload.status, Number(upload.chunk_size)], ['complete', MiB]);
      // The same content again: nothing stored.
      const again = await ingestFile(t.store.db, reg, org.id, project.id, join(dir, 'big.bin'), 'test');
      assert.deepEqual([again.stored, again.blobId], [false, got.blobId]);
      const empty = await ingestFile(t.store.db, reg, org.id, project.id, join(dir, 'empty.bin'), 'test');
      assert.equal(empty.size, 0);
      assert.ok(await findBlob(t.store.db, org.id, empty.blobId));
      // A wrong digest announced by the caller is caught by the upload's own check.
      await assert.rejects(
        ingestFile(t.store.db, reg, org.id, project.id, join(dir, 'empty.bin'), 'test', {
          known: { sha256: 'a'.repeat(64), size: 0 },
        }),
        { code: 'DIGEST_MISMATCH' },
      );
      await assert.rejects(
        ingestFile(t.store.db, reg, org.id, project.id, join(dir, 'link.bin'), 'test'),
        /symbolic link/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await t.close();
    }
  });
});
