// Secrets through the API, on both dialects: create/replace/list/delete per org and project, who
// may do what, tenants kept apart, references checked at submit, values found nowhere but in the
// task's environment (not in any table, the SQLite file or its WAL, audit entries or responses),
// and sealed rows that refuse to open when altered or moved.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { after, before, describe, it } from 'node:test';
import { stateDigest } from '../../src/audit/entry.js';
import { Reconciler } from '../../src/workload/reconciler.js';
import type { ExecHandle, Executor, LaunchRequest, Observation } from '../../src/exec/types.js';
import { attachSecretBox, createSecretBox } from '../../src/app/secret-box.js';
import { SecretUnavailableError, resolveTaskEnv } from '../../src/tenancy/secrets.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

// Distinctive values, so that a search for them cannot match anything else.
const V = {
  orgWandb: `org-wandb-${randomBytes(12).toString('hex')}`,
  orgWandb2: `org-wandb-v2-${randomBytes(12).toString('hex')}`,
  projWandb: `proj-wandb-${randomBytes(12).toString('hex')}`,
  hf: `hf_${randomBytes(24).toString('hex')}`,
  globex: `globex-${randomBytes(12).toString('hex')}`,
};
const ALL_VALUES = Object.values(V);
const SECRET_FIELDS = [
  'createdAt',
  'createdBy',
  'name',
  'org',
  'project',
  'scope',
  'shadowed',
  'updatedAt',
  'updatedBy',
];

/** Test double: records what it was asked to launch. */
class RecordingExecutor implements Executor {
  readonly name = 'local' as const;
  launches: LaunchRequest[] = [];
  async launch(req: LaunchRequest): Promise<ExecHandle> {
    this.launches.push(req);
    return { job: this.launches.length };
  }
  async adopt(): Promise<ExecHandle | undefined> {
    return undefined;
  }
  async signal(): Promise<void> {}
  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    return new Map([...handles.keys()].map((id) => [id, { state: 'running', message: 'running' }]));
  }
  logPath(): string | undefined {
    return undefined;
  }
}

const job = (name: string, env: Record<string, unknown>) => ({
  kind: 'batch',
  name,
  resources: { gpu: 'B200:8' },
  max_duration: '1h',
  run: 'true',
  env,
});

for (const dialect of DIALECTS) {
  describe(`secrets on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;
    let memberToken: string;
    let projAdminToken: string;
    const box = createSecretBox(randomBytes(32));
    const exec = new RecordingExecutor();
    const responses: unknown[] = [];

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      attachSecretBox(t.store.db, box);
      acme = await seedTenant(t, 'acme', { guaranteed: 16, limit: 32 });
      globex = await seedTenant(t, 'globex', { guaranteed: 8, limit: 16 });
      const grant = async (user: string, role: string) => {
        const m = { user, role, project: 'train' };
        assert.equal((await t.call('POST', '/api/v1/orgs/acme/members', { body: m })).status, 201);
        const k = await t.call('POST', '/api/v1/orgs/acme/keys', { body: { name: user, user, project: 'train' } });
        assert.equal(k.status, 201, JSON.stringify(k.body));
        return k.body.token as string;
      };
      memberToken = await grant('mia', 'member');
      projAdminToken = await grant('pat', 'admin');
    });
    after(async () => {
      if (!skip) await t.close();
    });

    // Every answer is kept, to show later that no value ever came back.
    const call = async (...args: Parameters<TestApp['call']>) => {
      const r = await t.call(...args);
      responses.push(r.body, r.headers);
      return r;
    };
    const put = (path: string, name: string, value: unknown, token: string) =>
      call('PUT', `/api/v1/${path}/secrets/${name}`, { token, body: { value } });
    const list = (path: string, token: string) => call('GET', `/api/v1/${path}/secrets`, { token });
    const del = (path: string, name: string, token: string) =>
      call('DELETE', `/api/v1/${path}/secrets/${name}`, { token });
    const env = (tenant: Tenant, e: Record<string, unknown>) =>
      resolveTaskEnv(t.store.db, box, {
        ...(ids.get(tenant.org) as { orgId: string; projectId: string }),
        env: e as never,
      });
    const ids = new Map<string, { orgId: string; projectId: string }>();
    const idsOf = async (org: string, project = 'train') => {
      const r = await t.store.db
        .selectFrom('projects')
        .innerJoin('orgs', 'orgs.id', 'projects.org_id')
        .select(['orgs.id as orgId', 'projects.id as projectId'])
        .where('orgs.name', '=', org)
        .where('projects.name', '=', project)
        .executeTakeFirstOrThrow();
      return r;
    };

    it('creates, replaces, lists (names only) and deletes, per org and per project', { skip }, async () => {
      ids.set('acme', await idsOf('acme'));
      ids.set('globex', await idsOf('globex'));
      const created = await put('orgs/acme', 'wandb', V.orgWandb, acme.ownerToken);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.deepEqual(Object.keys(created.body).sort(), SECRET_FIELDS, 'no value among the fields');
      assert.equal(created.body.scope, 'org');
      const replaced = await put('orgs/acme', 'wandb', V.orgWandb2, acme.ownerToken);
      assert.equal(replaced.status, 200);
      assert.equal(replaced.body.createdAt, created.body.createdAt);
      assert.deepEqual(await env(acme, { K: { secret: 'wandb' } }), { K: V.orgWandb2 });

      const own = await put(`projects/${acme.ref}`, 'wandb', V.projWandb, projAdminToken);
      assert.equal(own.status, 201, JSON.stringify(own.body));
      assert.equal(own.body.project, acme.ref);
      assert.equal((await put(`projects/${acme.ref}`, 'hf', V.hf, acme.ownerToken)).status, 201);

      const inProject = await list(`projects/${acme.ref}`, memberToken);
      assert.equal(inProject.status, 200);
      assert.deepEqual(
        inProject.body.items.map((s: any) => [s.name, s.scope, s.shadowed]),
        [
          ['hf', 'project', false],
          ['wandb', 'project', false],
          ['wandb', 'org', true],
        ],
      );
      // The project's own shadows the org's.
      assert.deepEqual(await env(acme, { K: { secret: 'wandb' }, L: 'plain' }), { K: V.projWandb, L: 'plain' });
      const inOrg = await list('orgs/acme', memberToken);
      assert.deepEqual(
        inOrg.body.items.map((s: any) => s.name),
        ['wandb'],
      );

      assert.equal((await del(`projects/${acme.ref}`, 'wandb', projAdminToken)).status, 204);
      assert.equal((await del(`projects/${acme.ref}`, 'wandb', projAdminToken)).status, 404);
      assert.deepEqual(await env(acme, { K: { secret: 'wandb' } }), { K: V.orgWandb2 });
      const remaining = await list(`projects/${acme.ref}`, acme.ownerToken);
      assert.deepEqual(
        remaining.body.items.map((s: any) => [s.name, s.scope, s.shadowed]),
        [
          ['hf', 'project', false],
          ['wandb', 'org', false],
        ],
      );
    });

    it('refuses bad names and values before storing anything', { skip }, async () => {
      const cases: [string, unknown, number][] = [
        ['Bad_Name', 'v', 400],
        ['ok', '', 400],
        ['ok', 'a\u0000b', 400],
        ['ok', 'x'.repeat(65537), 400],
        ['ok', '€'.repeat(30000), 413], // 30,000 characters, but 90,000 bytes
        ['ok', 42, 400],
      ];
      for (const [name, value, status] of cases) {
        const r = await put('orgs/acme', name, value, acme.ownerToken);
        assert.equal(r.status, status, `${name}: ${JSON.stringify(r.body).slice(0, 200)}`);
      }
      const extra = await call('PUT', '/api/v1/orgs/acme/secrets/ok', {
        token: acme.ownerToken,
        body: { value: 'v', note: 'x' },
      });
      assert.equal(extra.status, 400);
      assert.equal((await t.store.db.selectFrom('secrets').select('id').where('name', '=', 'ok').execute()).length, 0);
    });

    it('lets admins write, members list names, and refuses the rest (on the audit record)', { skip }, async () => {
      assert.equal((await list('orgs/acme', acme.viewerToken)).status, 403);
      assert.equal((await list(`projects/${acme.ref}`, acme.viewerToken)).status, 403);
      assert.equal((await put('orgs/acme', 'x', 'v', acme.viewerToken)).status, 403);
      assert.equal((await put(`projects/${acme.ref}`, 'x', 'v', memberToken)).status, 403);
      assert.equal((await put('orgs/acme', 'x', 'v', projAdminToken)).status, 403, 'a project admin is no org admin');
      assert.equal((await del('orgs/acme', 'wandb', projAdminToken)).status, 403);
      const denied = await t.store.db
        .selectFrom('audit_entries')
        .select('action')
        .where('outcome', '=', 'denied')
        .where('action', 'like', 'secret.%')
        .execute();
      assert.equal(denied.length, 4);
      assert.equal((await t.store.db.selectFrom('secrets').select('id').where('name', '=', 'x').execute()).length, 0);
    });

    it("keeps tenants apart: another org's secrets are not found, not usable, not overwritable", { skip }, async () => {
      for (const r of [
        await list('orgs/acme', globex.ownerToken),
        await list(`projects/${acme.ref}`, globex.ownerToken),
        await put('orgs/acme', 'wandb', V.globex, globex.ownerToken),
        await put(`projects/${acme.ref}`, 'hf', V.globex, globex.ownerToken),
        await del('orgs/acme', 'wandb', globex.ownerToken),
      ]) {
        assert.equal(r.status, 404, JSON.stringify(r.body));
      }
      assert.deepEqual(await env(acme, { K: { secret: 'wandb' } }), { K: V.orgWandb2 });
      // globex's spec names acme's secret: refused at submit, nothing queued.
      const refused = await call('POST', `/api/v1/projects/${globex.ref}/workloads`, {
        token: globex.ownerToken,
        body: job('steal', { WANDB_API_KEY: { secret: 'wandb' } }),
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'SPEC_INVALID');
      assert.equal(refused.body.error.details.path, 'env.WANDB_API_KEY');
      assert.match(refused.body.error.message, /secret "wandb" not found/);
      await assert.rejects(env(globex, { K: { secret: 'wandb' } }), SecretUnavailableError);
      // Its own secret of the same name is its own.
      assert.equal((await put('orgs/globex', 'wandb', V.globex, globex.ownerToken)).status, 201);
      assert.deepEqual(await env(globex, { K: { secret: 'wandb' } }), { K: V.globex });
      assert.deepEqual(await env(acme, { K: { secret: 'wandb' } }), { K: V.orgWandb2 });
    });

    it('stores the reference with the workload, warns about plain credentials, and launches with the value', {
      skip,
    }, async () => {
      const ok = await call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('uses-secrets', { WANDB_API_KEY: { secret: 'wandb' }, HF: { secret: 'hf' }, HF_HOME: '/cache' }),
      });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.warnings, []);
      assert.deepEqual(ok.body.spec.env, {
        WANDB_API_KEY: { secret: 'wandb' },
        HF: { secret: 'hf' },
        HF_HOME: '/cache',
      });
      const shown = await call('GET', `/api/v1/projects/${acme.ref}/workloads/uses-secrets`, {
        token: acme.viewerToken,
      });
      assert.deepEqual(shown.body.spec.env.WANDB_API_KEY, { secret: 'wandb' });

      const missing = await call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('missing', { A: 'x', TOKEN_X: { secret: 'nope' } }),
      });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.details.path, 'env.TOKEN_X');

      const plainValue = `hf_${randomBytes(20).toString('hex')}`;
      const warned = await call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('plain-token', { HF_TOKEN: plainValue }),
      });
      assert.equal(warned.status, 201);
      assert.equal(warned.body.warnings.length, 1);
      assert.match(warned.body.warnings[0], /^env\.HF_TOKEN: the value looks like a Hugging Face token/);
      assert.ok(!warned.body.warnings[0].includes(plainValue));

      // The reconciler resolves references only for the launch; the executor gets the values.
      await t.scheduler.cycle();
      const rec = new Reconciler(t.store.db, exec, {
        workdirRoot: process.cwd(),
        resolveEnv: (row, e) =>
          resolveTaskEnv(t.store.db, box, { orgId: row.org_id, projectId: row.project_id, env: e }),
      });
      await rec.reconcile();
      const launched = exec.launches.find((l) => l.name === 'uses-secrets');
      assert.ok(launched, 'launched');
      assert.equal(launched.env.WANDB_API_KEY, V.orgWandb2);
      assert.equal(launched.env.HF, V.hf);
      assert.equal(launched.env.HF_HOME, '/cache');
    });

    it('fails a launch whose secret was deleted since submit, naming the secret, not retrying', { skip }, async () => {
      assert.equal((await put(`projects/${acme.ref}`, 'short-lived', 'gone-soon-value', acme.ownerToken)).status, 201);
      const r = await call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
        token: acme.ownerToken,
        body: job('orphan', { K: { secret: 'short-lived' } }),
      });
      assert.equal(r.status, 201);
      assert.equal((await del(`projects/${acme.ref}`, 'short-lived', acme.ownerToken)).status, 204);
      await t.scheduler.cycle();
      const rec = new Reconciler(t.store.db, exec, {
        workdirRoot: process.cwd(),
        resolveEnv: (row, e) =>
          resolveTaskEnv(t.store.db, box, { orgId: row.org_id, projectId: row.project_id, env: e }),
      });
      await rec.reconcile();
      const w = await call('GET', `/api/v1/projects/${acme.ref}/workloads/orphan`, { token: acme.ownerToken });
      assert.equal(w.body.status, 'failed', JSON.stringify(w.body));
      assert.match(w.body.message, /secret "short-lived" \(env\.K\) no longer exists/);
      assert.ok(!exec.launches.some((l) => l.name === 'orphan'));
    });

    it('refuses to open a tampered row, or one moved or copied to another project or org', { skip }, async () => {
      const a = ids.get('acme')!;
      const g = ids.get('globex')!;
      const row = await t.store.db
        .selectFrom('secrets')
        .selectAll()
        .where('org_id', '=', a.orgId)
        .where('project_id', '=', a.projectId)
        .where('name', '=', 'hf')
        .executeTakeFirstOrThrow();
      const ct = Buffer.from(row.ciphertext, 'base64');
      ct[0] ^= 0x01;
      await t.store.db
        .updateTable('secrets')
        .set({ ciphertext: ct.toString('base64') })
        .where('id', '=', row.id)
        .execute();
      await assert.rejects(env(acme, { K: { secret: 'hf' } }), /secret "hf" \(env\.K\) cannot be opened/);
      await t.store.db.updateTable('secrets').set({ ciphertext: row.ciphertext }).where('id', '=', row.id).execute();
      assert.deepEqual(await env(acme, { K: { secret: 'hf' } }), { K: V.hf });

      // A copy of acme's row under globex: found there, but it does not open.
      await t.store.db
        .insertInto('secrets')
        .values({ ...row, id: 'sec_copied', org_id: g.orgId, project_id: g.projectId })
        .execute();
      await assert.rejects(env(globex, { K: { secret: 'hf' } }), /cannot be opened/);
      // Moved to another project of the same org: likewise.
      assert.equal(
        (await call('POST', '/api/v1/orgs/acme/projects', { token: acme.ownerToken, body: { name: 'eval' } })).status,
        201,
      );
      const evalIds = await idsOf('acme', 'eval');
      await t.store.db.updateTable('secrets').set({ project_id: evalIds.projectId }).where('id', '=', row.id).execute();
      await assert.rejects(
        resolveTaskEnv(t.store.db, box, { ...evalIds, env: { K: { secret: 'hf' } } }),
        SecretUnavailableError,
      );
      await t.store.db.updateTable('secrets').set({ project_id: a.projectId }).where('id', '=', row.id).execute();
      await t.store.db.deleteFrom('secrets').where('id', '=', 'sec_copied').execute();
    });

    it('keeps every value out of every table, the database files, audit entries and responses', { skip }, async () => {
      const tables =
        dialect === 'sqlite'
          ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(t.store.db)).rows
          : (
              await sql<{
                name: string;
              }>`select table_name as name from information_schema.tables where table_schema = 'public'`.execute(
                t.store.db,
              )
            ).rows;
      assert.ok(tables.some((r) => r.name === 'secrets'));
      const needles = ALL_VALUES.flatMap((v) => [v, Buffer.from(v).toString('base64')]);
      for (const { name } of tables) {
        const rows = (await sql.raw(`select * from "${name}"`).execute(t.store.db)).rows;
        const text = JSON.stringify(rows);
        for (const v of needles) assert.ok(!text.includes(v), `table ${name} holds a secret value`);
      }
      const secretRows = await t.store.db.selectFrom('secrets').selectAll().execute();
      assert.ok(secretRows.length >= 3 && secretRows.every((r) => r.key_id === box.keyId && r.nonce && r.ciphertext));

      if (dialect === 'sqlite') {
        for (const file of [t.dbUrl, `${t.dbUrl}-wal`]) {
          let bytes: Buffer;
          try {
            bytes = readFileSync(file);
          } catch {
            continue; // no WAL right now: nothing to search
          }
          for (const v of needles) assert.equal(bytes.indexOf(v), -1, `${file} holds a secret value`);
        }
      }

      const audit = await call('GET', '/api/v1/audit/entries?action=secret.put&limit=1000');
      const done = audit.body.items.filter((e: any) => e.outcome === 'success');
      assert.ok(done.length >= 6, 'each put is audited');
      // What the entry digests is the value-free view the API answered with.
      const last = await put('orgs/globex', 'wandb', V.globex, globex.ownerToken);
      const entry = (await call('GET', '/api/v1/audit/entries?action=secret.put&limit=1000')).body.items.at(-1);
      assert.equal(entry.afterDigest, stateDigest(last.body));
      assert.equal(entry.resource, 'orgs/globex/secrets/wandb');
      const answers = JSON.stringify(responses);
      for (const v of needles) assert.ok(!answers.includes(v), 'an API response holds a secret value');
    });

    it('describes the routes in /openapi.json', { skip }, async () => {
      const doc = (await t.call('GET', '/openapi.json', { token: null })).body;
      for (const p of [
        '/api/v1/orgs/{org}/secrets/{name}',
        '/api/v1/projects/{project}/secrets',
        '/api/v1/orgs/{org}/secrets',
      ]) {
        assert.ok(doc.paths[p], `${p} missing`);
      }
      const putOp = doc.paths['/api/v1/projects/{project}/secrets/{name}'].put;
      assert.ok(putOp.requestBody.content['application/json'].schema.properties.value);
      const submit = doc.paths['/api/v1/projects/{project}/workloads'].post.responses['201'];
      assert.match(JSON.stringify(submit), /warnings/);
    });
  });
}
