// Workloads run for real under the control plane (SQLite, local executor, this machine's 4
// development GPUs): to completion with logs, through a kill -9 of the server (re-adopted, never
// run twice), preemption with requeue and resume from checkpoint, max runtime, retries, cancel.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

const api = (url: string, token = OPERATOR_TOKEN) => apiFor(url, token);
const start = () =>
  startServerProcess({ dataDir, database: join(dataDir, 'fabrik.db'), bootstrapToken: OPERATOR_TOKEN, devGpus: 4 });

const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-cp-'));
let server: ServerProcess;
let call: ReturnType<typeof api>;
let globexKey: string;

const train = (name: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) => ({
  kind: 'training',
  name,
  resources: { pool: 'dev', gpu: 2 },
  max_duration: '10m',
  requeue: true,
  grace_period: '10s',
  env: { STEPS: '400', STEP_DELAY_MS: '5', CHECKPOINT_EVERY: '50', ...env },
  workdir: 'examples/train',
  run: 'node train.js',
  ...extra,
});

// On disk: <data dir>/workloads/<project id>/<workload id>/{work,attempt-N} (src/exec/workspace.ts).
const projectIds = new Map<string, string>();
const workloadDir = (w: { id: string; project: string }) =>
  join(dataDir, 'workloads', projectIds.get(w.project)!, w.id);
const workDir = (w: { id: string; project: string }) => join(workloadDir(w), 'work');

async function status(project: string, name: string) {
  return (await call('GET', `/api/v1/projects/${project}/workloads/${name}`)).body;
}
const reach = (project: string, name: string, want: string, ms = 30_000) =>
  eventually(
    async () => {
      const w = await status(project, name);
      return w.status === want ? w : undefined;
    },
    ms,
    `${name} to be ${want}`,
  );

describe('workloads under the control plane (local executor)', () => {
  before(async () => {
    server = await start();
    call = api(server.url);
    for (const [org, g] of [
      ['acme', 0],
      ['globex', 4],
    ] as const) {
      assert.equal((await call('POST', '/api/v1/orgs', { name: org, residency: 'de' })).status, 201);
      const p = await call('POST', `/api/v1/orgs/${org}/projects`, { name: 'train' });
      assert.equal(p.status, 201);
      projectIds.set(`${org}.train`, p.body.id);
      const q = await call('PUT', `/api/v1/projects/${org}.train/quotas/dev`, { guaranteed: g, limit: 4 });
      assert.equal(q.status, 200, JSON.stringify(q.body));
    }
    await call('POST', '/api/v1/orgs/globex/members', { user: 'gina', role: 'member' });
    globexKey = (await call('POST', '/api/v1/orgs/globex/keys', { name: 'gina', user: 'gina' })).body.token;
  });
  after(async () => {
    await killAllServerProcesses();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the training example to its model file, with logs over HTTP', async () => {
    const r = await call('POST', '/api/v1/projects/globex.train/workloads', train('first'));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const w = await reach('globex.train', 'first', 'succeeded');
    assert.deepEqual(
      w.events.map((e: any) => e.reason),
      ['Submitted', 'Scheduled', 'Started', 'Completed'],
    );
    assert.ok(existsSync(join(workDir(w), 'model.json')));
    const logs = await api(server.url, globexKey)('GET', '/api/v1/projects/globex.train/workloads/first/logs?tail=1');
    assert.match(logs.text, /^done: 400 steps/);
    const all = await api(server.url, globexKey)('GET', '/api/v1/projects/globex.train/workloads/first/logs');
    assert.match(all.text, /step 50\/400/);
    // Operators do not read tenant logs through this path.
    assert.equal((await call('GET', '/api/v1/projects/globex.train/workloads/first/logs')).status, 403);
  });

  it('refuses at submit time a missing program and a workdir outside the root', async () => {
    const a = await call(
      'POST',
      '/api/v1/projects/globex.train/workloads',
      train('bad1', { run: 'no-such-program --x' }),
    );
    assert.equal(a.status, 400);
    assert.match(a.body.error.message, /no-such-program/);
    const b = await call('POST', '/api/v1/projects/globex.train/workloads', train('bad2', { workdir: '../..' }));
    assert.equal(b.status, 400);
    assert.match(b.body.error.message, /outside the allowed root/);
  });

  it('survives kill -9 of the control plane: the running job is re-adopted and runs once', async () => {
    const r = await call(
      'POST',
      '/api/v1/projects/globex.train/workloads',
      train('survivor', {}, { STEPS: '100000', STEP_DELAY_MS: '2' }),
    );
    assert.equal(r.status, 201);
    const running = await eventually(async () => {
      const w = await status('globex.train', 'survivor');
      const log = join(workloadDir(w), 'attempt-1', 'task-0.log');
      return existsSync(log) && /step \d+/.test(readFileSync(log, 'utf8')) ? w : undefined;
    });
    await server.kill9();
    server = await start();
    call = api(server.url);
    await new Promise((res) => setTimeout(res, 1500));
    const after = await status('globex.train', 'survivor');
    assert.equal(after.status, 'running');
    assert.equal(after.attempts, 1, 'not launched again');
    assert.deepEqual(
      readdirSync(workloadDir(running)).filter((d) => d.startsWith('attempt-')),
      ['attempt-1'],
    );
    const c = await call('POST', '/api/v1/projects/globex.train/workloads/survivor/cancel');
    assert.equal(c.body.status, 'cancelled');
    await eventually(async () =>
      (await status('globex.train', 'survivor')).events.some((e: any) => e.reason === 'Stopped') ? true : undefined,
    );
    const log = readFileSync(join(workloadDir(running), 'attempt-1', 'task-0.log'), 'utf8');
    assert.match(log, /SIGTERM: checkpoint saved/);
  });

  it('preempts a borrower for the owner, requeues it, and it resumes from its checkpoint', async () => {
    // acme has no guarantee: it borrows all 4 dev GPUs with a preemptible job.
    const slow = { STEPS: '3000', STEP_DELAY_MS: '3' };
    assert.equal(
      (
        await call(
          'POST',
          '/api/v1/projects/acme.train/workloads',
          train('borrower', { priority: 'preemptible', resources: { pool: 'dev', gpu: 4 } }, slow),
        )
      ).status,
      201,
    );
    const b = await eventually(async () => {
      const w = await status('acme.train', 'borrower');
      return w.events.some((e: any) => e.reason === 'Started') && existsSync(join(workDir(w), 'checkpoint.json'))
        ? w
        : undefined;
    });
    assert.equal(b.borrowed, true);
    // globex claims its guaranteed 4 GPUs.
    assert.equal(
      (
        await call(
          'POST',
          '/api/v1/projects/globex.train/workloads',
          train('owner', { resources: { pool: 'dev', gpu: 4 } }),
        )
      ).status,
      201,
    );
    await reach('globex.train', 'owner', 'succeeded', 60_000);
    const done = await reach('acme.train', 'borrower', 'succeeded', 90_000);
    assert.equal(done.preemptions, 1);
    assert.ok(done.events.some((e: any) => e.reason === 'Preempted'));
    const second = readFileSync(join(workloadDir(done), `attempt-${done.attempts}`, 'task-0.log'), 'utf8');
    assert.match(second, /resuming from checkpoint at step [1-9]\d*/);
    assert.match(second, /done: 3000 steps/);
    // Attempts on record: the preempted one stopped (SIGTERM, checkpoint) before the owner got its GPUs.
    const records = done.attemptRecords;
    assert.equal(records.length, 2);
    assert.deepEqual(
      records.map((a: any) => [a.number, a.state, a.endReason]),
      [
        [1, 'ended', 'preempted'],
        [2, 'ended', 'succeeded'],
      ],
    );
    assert.ok(records[0].stoppingSince && records[0].endedAt >= records[0].stoppingSince);
    const owner = await status('globex.train', 'owner');
    assert.ok(owner.attemptRecords[0].startedAt >= records[0].endedAt, 'the owner started after the victim ended');
  });

  it('stops work past its max runtime', async () => {
    assert.equal(
      (
        await call(
          'POST',
          '/api/v1/projects/globex.train/workloads',
          train('sleepy', { run: 'sleep 60', max_duration: '2s' }),
        )
      ).status,
      201,
    );
    const w = await reach('globex.train', 'sleepy', 'failed');
    assert.equal(w.reason, 'MaxRuntimeExceeded');
    const a = await eventually(
      async () => {
        const x = (await status('globex.train', 'sleepy')).attemptRecords[0];
        return x.state === 'ended' ? x : undefined;
      },
      20_000,
      'the attempt to end',
    );
    assert.equal(a.endReason, 'max-runtime');
  });

  it('retries a failing job with backoff up to its limit, then fails it with the exit code', async () => {
    assert.equal(
      (await call('POST', '/api/v1/projects/globex.train/workloads', train('flaky', { run: 'exit 7', retries: 1 })))
        .status,
      201,
    );
    const w = await reach('globex.train', 'flaky', 'failed', 40_000);
    assert.equal(w.attempts, 2);
    assert.ok(w.events.some((e: any) => e.reason === 'BackOff'));
    assert.match(w.message, /exited with 7/);
  });
});
