// The control plane on Slurm (the dev cluster of scripts/slurm-dev: n1..n4, 8 GPUs each): the
// fleet comes from Slurm, workloads are placed by fabrik's scheduler and run by sbatch pinned to
// the placement, each as its project's own uid; the training example runs to its model file (in
// the workload's work directory), a 2-node gang gets its rendezvous, and a kill -9 of the control
// plane mid-run ends with the job re-adopted, not run twice.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ServerProcess,
  api as apiFor,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { OPERATOR_TOKEN } from '../helpers/harness.js';
import { LocalAccounts } from '../../src/exec/identities.js';
import { workloadPaths } from '../../src/exec/workspace.js';
import { identityOf } from '../../src/tenancy/identity.js';

const conf = process.env.SLURM_CONF;
const skip = !conf && process.env.CI !== 'true' ? 'SLURM_CONF is not set (scripts/slurm-dev up)' : false;
if (skip) console.warn(`\n*** SKIPPING Slurm control-plane tests: ${skip} ***\n`);

const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-slurm-cp-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
// Project identities of this suite's own (the server allocates from FABRIK_UID_BASE up).
const UID_BASE = 261_000;
let server: ServerProcess;
let call: ReturnType<typeof apiFor>;
let acmeKey: string;
const start = () =>
  startServerProcess({
    dataDir,
    database: join(dataDir, 'fabrik.db'),
    bootstrapToken: OPERATOR_TOKEN,
    env: {
      FABRIK_EXECUTOR: 'slurm',
      FABRIK_RECONCILE_INTERVAL_MS: '300',
      FABRIK_UID_BASE: String(UID_BASE),
      ...(conf ? { SLURM_CONF: conf } : {}),
    },
  });
/** A workload's directories; the project's id is the directory that holds the workload's. */
const paths = (workloadId: string, attempt = 1) => {
  const root = join(dataDir, 'workloads');
  const project = readdirSync(root).find((p) => existsSync(join(root, p, workloadId))) ?? 'none';
  return workloadPaths(root, project, workloadId, attempt);
};

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  kind: 'training',
  name,
  resources: { pool: 'gpu', gpu: 8, nodes: 1 },
  max_duration: '10m',
  requeue: true,
  env: { STEPS: '300', STEP_DELAY_MS: '2', CHECKPOINT_EVERY: '50' },
  run: 'node examples/train/train.js',
  // The repository, read-only for the job; without it the job starts in its work directory.
  workdir: '.',
  ...extra,
});
const get = async (name: string, project = 'acme.train') =>
  (await call('GET', `/api/v1/projects/${project}/workloads/${name}`)).body;
const reach = async (name: string, want: string, ms = 60_000, project = 'acme.train') => {
  try {
    return await eventually(
      async () => {
        const w = await get(name, project);
        return w.status === want ? w : undefined;
      },
      ms,
      `${name} to be ${want}`,
    );
  } catch (err) {
    const w = await get(name, project);
    throw new Error(
      `${(err as Error).message}; it is ${w.status}: ${w.events.map((e: any) => `${e.reason}: ${e.message}`).join(' | ')}`,
    );
  }
};

describe('control plane with the Slurm executor', { skip }, () => {
  before(async () => {
    server = await start();
    call = apiFor(server.url, OPERATOR_TOKEN);
    assert.equal((await call('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    assert.equal((await call('POST', '/api/v1/orgs/acme/projects', { name: 'train' })).status, 201);
    const q = await call('PUT', '/api/v1/projects/acme.train/quotas/gpu', { guaranteed: 16, limit: 32 });
    assert.equal(q.status, 200, JSON.stringify(q.body));
    assert.equal((await call('POST', '/api/v1/orgs', { name: 'globex', residency: 'de' })).status, 201);
    assert.equal((await call('POST', '/api/v1/orgs/globex/projects', { name: 'train' })).status, 201);
    assert.equal(
      (await call('PUT', '/api/v1/projects/globex.train/quotas/gpu', { guaranteed: 16, limit: 16 })).status,
      200,
    );
    await call('POST', '/api/v1/orgs/acme/members', { user: 'ada', role: 'member' });
    acmeKey = (await call('POST', '/api/v1/orgs/acme/keys', { name: 'ada', user: 'ada' })).body.token;
  });
  after(async () => {
    await killAllServerProcesses();
    const accounts = new LocalAccounts();
    for (let uid = UID_BASE; uid < UID_BASE + 4; uid++) await accounts.remove(identityOf(uid));
  });

  it('imports the fleet from Slurm', async () => {
    const nodes = (await call('GET', '/api/v1/fleet/nodes')).body.items;
    assert.deepEqual(
      nodes.map((n: any) => `${n.name}:${n.gpuCount}:${n.state}`),
      ['n1:8:ready', 'n2:8:ready', 'n3:8:ready', 'n4:8:ready'],
    );
  });

  it('runs the training example through sbatch to its model file', async () => {
    assert.equal((await call('POST', '/api/v1/projects/acme.train/workloads', spec('slurm-train'))).status, 201);
    const w = await reach('slurm-train', 'succeeded');
    assert.ok(w.events.some((e: any) => e.reason === 'Started' && /slurm/.test(e.message)));
    const p = paths(w.id);
    assert.ok(existsSync(join(p.work, 'model.json')));
    // Written by the project's identity, not by the server's user.
    assert.ok(statSync(join(p.work, 'model.json')).uid >= UID_BASE);
  });

  it('runs a 2-node gang with one rank per placed node and a shared rendezvous', async () => {
    const r = await call(
      'POST',
      '/api/v1/projects/acme.train/workloads',
      spec('slurm-gang', {
        kind: 'batch',
        resources: { pool: 'gpu', gpu: 8, nodes: 2 },
        run: 'node examples/gang/rendezvous.js',
      }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const w = await reach('slurm-gang', 'succeeded');
    const envs = [0, 1].map((t) =>
      JSON.parse(
        readFileSync(join(paths(w.id).attempt, `task-${t}.log`), 'utf8')
          .trim()
          .split('\n')[0],
      ),
    );
    assert.deepEqual(envs.map((e) => e.RANK).sort(), ['0', '1']);
    assert.deepEqual(
      envs.map((e) => e.WORLD_SIZE),
      ['2', '2'],
    );
    assert.equal(envs[0].MASTER_ADDR, envs[1].MASTER_ADDR);
    assert.equal(envs[0].CUDA_VISIBLE_DEVICES.split(',').length, 8);
  });

  it('survives kill -9 of the control plane: the Slurm job is re-adopted and runs once', async () => {
    assert.equal(
      (
        await call(
          'POST',
          '/api/v1/projects/acme.train/workloads',
          spec('slurm-survivor', { env: { STEPS: '4000', STEP_DELAY_MS: '2' } }),
        )
      ).status,
      201,
    );
    const w = await eventually(async () => {
      const x = await get('slurm-survivor');
      return x.events.some((e: any) => e.reason === 'Started') ? x : undefined;
    });
    await server.kill9();
    server = await start();
    call = apiFor(server.url, OPERATOR_TOKEN);
    const done = await reach('slurm-survivor', 'succeeded', 90_000);
    assert.equal(done.attempts, 1);
    assert.equal(done.events.filter((e: any) => e.reason === 'Started').length, 1);
    assert.equal(done.id, w.id);
  });

  it('cancels a running Slurm job gracefully and serves its log to the tenant', async () => {
    assert.equal(
      (
        await call(
          'POST',
          '/api/v1/projects/acme.train/workloads',
          spec('slurm-cancel', { env: { STEPS: '100000', STEP_DELAY_MS: '2', CHECKPOINT_EVERY: '100' } }),
        )
      ).status,
      201,
    );
    // Cancel once the job really runs in Slurm (sbatch accepted is not enough on a busy machine).
    const logs = () => apiFor(server.url, acmeKey)('GET', '/api/v1/projects/acme.train/workloads/slurm-cancel/logs');
    await eventually(
      async () => (/step \d+/.test((await logs()).text) ? true : undefined),
      60_000,
      'the job to log progress',
    );
    assert.equal(
      (await call('POST', '/api/v1/projects/acme.train/workloads/slurm-cancel/cancel')).body.status,
      'cancelled',
    );
    await eventually(
      async () => ((await get('slurm-cancel')).events.some((e: any) => e.reason === 'Stopped') ? true : undefined),
      30_000,
      'stop',
    );
    assert.match((await logs()).text, /SIGTERM: checkpoint saved at step \d+/);
  });

  it('preempts a borrower on Slurm for the owner, requeues it, and it resumes from its checkpoint', async () => {
    // acme borrows the whole cluster (32 GPUs) with a preemptible job; globex claims its 16.
    const body = spec('slurm-borrower', {
      priority: 'preemptible',
      resources: { pool: 'gpu', gpu: 8, nodes: 4 },
      env: { STEPS: '2500', STEP_DELAY_MS: '3', CHECKPOINT_EVERY: '50' },
    });
    assert.equal((await call('POST', '/api/v1/projects/acme.train/workloads', body)).status, 201);
    const b = await eventually(
      async () => {
        const w = await get('slurm-borrower');
        return w.events.some((e: any) => e.reason === 'Started') &&
          existsSync(join(paths(w.id).work, 'checkpoint.json'))
          ? w
          : undefined;
      },
      60_000,
      'borrower running with a checkpoint',
    );
    assert.equal(b.borrowed, true);
    assert.equal(
      (
        await call(
          'POST',
          '/api/v1/projects/globex.train/workloads',
          spec('owner', { resources: { pool: 'gpu', gpu: 8, nodes: 2 } }),
        )
      ).status,
      201,
    );
    await reach('owner', 'succeeded', 90_000, 'globex.train');
    const done = await reach('slurm-borrower', 'succeeded', 120_000);
    assert.equal(done.preemptions, 1);
    const log = readFileSync(join(paths(done.id, done.attempts).attempt, 'task-0.log'), 'utf8');
    assert.match(log, /resuming from checkpoint at step [1-9]\d*/);
  });
});
