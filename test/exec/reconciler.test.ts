// The reconciler's policy, with a scripted executor standing in for an engine (a test double,
// named as such): an unreachable engine keeps the workload placed and says so once; a refusing
// engine fails it (or retries it); a vanished workload is requeued or failed by its spec.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Reconciler } from '../../src/exec/reconciler.js';
import {
  ExecError,
  type ExecHandle,
  type Executor,
  type LaunchRequest,
  type Observation,
} from '../../src/exec/types.js';
import { type TestApp, type Tenant, seedTenant, startTestApp } from '../helpers/harness.js';

/** Test double: launch outcomes and observations are scripted by the test. */
class ScriptedExecutor implements Executor {
  readonly name = 'local' as const;
  launches: LaunchRequest[] = [];
  stops: ExecHandle[] = [];
  nextLaunch: () => ExecHandle = () => ({ job: this.launches.length });
  observed = new Map<string, Observation>();

  async launch(req: LaunchRequest): Promise<ExecHandle> {
    this.launches.push(req);
    return this.nextLaunch();
  }
  async stop(handle: ExecHandle): Promise<void> {
    this.stops.push(handle);
  }
  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    return new Map(
      [...handles.keys()].map((id) => [id, this.observed.get(id) ?? { state: 'running', message: 'running' }]),
    );
  }
  logPath(): string | undefined {
    return undefined;
  }
}

describe('reconciler', () => {
  let t: TestApp;
  let acme: Tenant;
  const exec = new ScriptedExecutor();
  let rec: Reconciler;

  before(async () => {
    t = await startTestApp('sqlite');
    acme = await seedTenant(t, 'acme', { guaranteed: 32, limit: 32 });
    rec = new Reconciler(t.store.db, exec, { workdirRoot: process.cwd() });
  });
  after(() => t.close());

  const submit = async (name: string, extra: Record<string, unknown> = {}) => {
    const r = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads`, {
      token: acme.ownerToken,
      body: { kind: 'batch', name, resources: { gpu: 'B200:8' }, max_duration: '1h', run: 'true', ...extra },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await t.scheduler.cycle();
    return r.body.id as string;
  };
  const get = async (name: string) => (await t.call('GET', `/api/v1/projects/${acme.ref}/workloads/${name}`)).body;

  it('keeps a workload placed while the engine is unreachable, says so once, and launches when it is back', async () => {
    exec.nextLaunch = () => {
      throw new ExecError('slurmctld is not responding', true);
    };
    await submit('patient');
    await rec.reconcile();
    await rec.reconcile();
    let w = await get('patient');
    assert.equal(w.status, 'running');
    assert.equal(w.events.filter((e: any) => e.reason === 'LaunchFailed').length, 1);
    assert.match(w.events.find((e: any) => e.reason === 'LaunchFailed').message, /slurmctld is not responding/);
    exec.nextLaunch = () => ({ job: 'ok' });
    await rec.reconcile();
    w = await get('patient');
    assert.ok(w.events.some((e: any) => e.reason === 'Started'));
  });

  it("fails a workload the engine refuses, with the engine's message, unless retries remain", async () => {
    exec.nextLaunch = () => {
      throw new ExecError('sbatch: error: Invalid node name specified', false);
    };
    await submit('refused');
    await rec.reconcile();
    const w = await get('refused');
    assert.equal(w.status, 'failed');
    assert.match(w.message, /Invalid node name specified/);

    await submit('retried', { retries: 1 });
    await rec.reconcile();
    const r = await get('retried');
    assert.equal(r.status, 'pending');
    assert.equal(r.reason, 'BackOff');
    const row = await t.store.db
      .selectFrom('workloads')
      .select('not_before')
      .where('name', '=', 'retried')
      .executeTakeFirstOrThrow();
    assert.ok(Date.parse(row.not_before!) > Date.now(), 'a retry waits for its backoff');
    exec.nextLaunch = () => ({ job: 'ok' });
  });

  it('requeues a lost workload with requeue: true and fails one without', async () => {
    const keep = await submit('keeper', { requeue: true });
    const drop = await submit('dropper', { requeue: false });
    await rec.reconcile();
    exec.observed.set(keep, { state: 'lost', message: 'task 0 (pid 1) is gone without an exit record' });
    exec.observed.set(drop, { state: 'lost', message: 'task 0 (pid 2) is gone without an exit record' });
    await rec.reconcile();
    const k = await get('keeper');
    const d = await get('dropper');
    assert.equal(k.status, 'pending');
    assert.equal(k.reason, 'Lost');
    assert.equal(d.status, 'failed');
    assert.match(d.message, /not requeued/);
  });

  it("stops the engine's work of a cancelled workload and forgets its handle", async () => {
    await submit('doomed');
    await rec.reconcile();
    const before = exec.stops.length;
    const c = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads/doomed/cancel`, { token: acme.ownerToken });
    assert.equal(c.body.status, 'cancelled');
    await rec.reconcile();
    assert.equal(exec.stops.length, before + 1);
    const row = await t.store.db
      .selectFrom('workloads')
      .select('exec_handle')
      .where('name', '=', 'doomed')
      .executeTakeFirstOrThrow();
    assert.equal(row.exec_handle, null);
    const audit = await t.call('GET', '/api/v1/audit/entries?action=workload.stopped');
    assert.ok(audit.body.items.length >= 1);
  });
});
