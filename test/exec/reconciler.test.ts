// The reconciler's policy, with a scripted executor standing in for an engine (a test double,
// named as such): an unreachable engine keeps the workload placed and says so once; a refusing
// engine fails it (or retries it); a vanished workload is requeued or failed by its spec; stops
// go in two phases without waiting; an attempt cancelled before its handle was recorded is adopted
// and stopped. Observations are keyed by attempt (`<workload id>.<n>`).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Reconciler } from '../../src/workload/reconciler.js';
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
  signals: { handle: ExecHandle; signal: 'TERM' | 'KILL' }[] = [];
  adoptable = new Map<string, ExecHandle>();
  nextLaunch: () => ExecHandle = () => ({ job: this.launches.length });
  observed = new Map<string, Observation>();

  async launch(req: LaunchRequest): Promise<ExecHandle> {
    this.launches.push(req);
    return this.nextLaunch();
  }
  async adopt(ref: { workloadId: string; attempt: number }): Promise<ExecHandle | undefined> {
    return this.adoptable.get(`${ref.workloadId}.${ref.attempt}`);
  }
  async signal(handle: ExecHandle, signal: 'TERM' | 'KILL'): Promise<void> {
    this.signals.push({ handle, signal });
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
  let clock = Date.now();

  before(async () => {
    t = await startTestApp('sqlite');
    acme = await seedTenant(t, 'acme', { guaranteed: 32, limit: 32 });
    rec = new Reconciler(t.store.db, exec, { workdirRoot: process.cwd(), now: () => clock });
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
    exec.observed.set(`${keep}.1`, { state: 'lost', message: 'task 0 (pid 1) is gone without an exit record' });
    exec.observed.set(`${drop}.1`, { state: 'lost', message: 'task 0 (pid 2) is gone without an exit record' });
    await rec.reconcile();
    const k = await get('keeper');
    const d = await get('dropper');
    assert.equal(k.status, 'pending');
    assert.equal(k.reason, 'Lost');
    assert.equal(d.status, 'failed');
    assert.match(d.message, /not requeued/);
  });

  it('stops a cancelled workload in two phases, never waiting: SIGTERM, then SIGKILL after the grace period', async () => {
    const id = await submit('doomed', { grace_period: '20s' });
    exec.nextLaunch = () => ({ job: 'doomed' });
    await rec.reconcile();
    const c = await t.call('POST', `/api/v1/projects/${acme.ref}/workloads/doomed/cancel`, { token: acme.ownerToken });
    assert.equal(c.body.status, 'cancelled');
    const mine = () => exec.signals.filter((s) => (s.handle as { job: string }).job === 'doomed');
    await rec.reconcile();
    assert.deepEqual(
      mine().map((s) => s.signal),
      ['TERM'],
    );
    const attempt = () =>
      t.store.db.selectFrom('workload_attempts').selectAll().where('workload_id', '=', id).executeTakeFirstOrThrow();
    assert.equal((await attempt()).state, 'stopping');
    await rec.reconcile(); // inside the grace period: nothing more
    assert.equal(mine().length, 1);
    clock += 21_000;
    await rec.reconcile();
    assert.deepEqual(
      mine().map((s) => s.signal),
      ['TERM', 'KILL'],
    );
    exec.observed.set(`${id}.1`, { state: 'failed', exitCode: 137, message: 'task 0 exited with 137 (signal 9)' });
    clock += 1000;
    await rec.reconcile();
    const a = await attempt();
    assert.equal(a.state, 'ended');
    assert.equal(a.end_reason, 'cancelled');
    assert.equal(a.exit_code, 137);
    assert.ok(a.stopping_since && a.killed_at && a.ended_at);
    const w = await get('doomed');
    assert.equal(w.status, 'cancelled');
    assert.deepEqual(
      w.events.map((e: any) => e.reason).filter((r: string) => ['Stopping', 'Killing', 'Stopped'].includes(r)),
      ['Stopping', 'Killing', 'Stopped'],
    );
    const audit = await t.call('GET', `/api/v1/audit/entries?resource=projects/${acme.ref}/workloads/doomed`);
    const actions = audit.body.items.map((e: any) => e.action);
    for (const want of [
      'workload.submit',
      'workload.place',
      'workload.start',
      'workload.cancel',
      'workload.stop',
      'workload.stopped',
    ])
      assert.ok(actions.includes(want), `${want} in ${actions}`);
  });

  it('adopts and stops an attempt that was cancelled before its launch was recorded', async () => {
    const id = await submit('orphan');
    // The crash window: placed (attempt 1 launching), the engine took it, the handle never committed.
    exec.adoptable.set(`${id}.1`, { job: 'orphan' });
    await t.call('POST', `/api/v1/projects/${acme.ref}/workloads/orphan/cancel`, { token: acme.ownerToken });
    const launches = exec.launches.length;
    await rec.reconcile();
    assert.equal(exec.launches.length, launches, 'a cancelled attempt is never launched');
    await rec.reconcile();
    assert.ok(exec.signals.some((s) => (s.handle as { job: string }).job === 'orphan' && s.signal === 'TERM'));
    exec.observed.set(`${id}.1`, { state: 'failed', exitCode: 143, message: 'task 0 exited with 143 (signal 15)' });
    await rec.reconcile();
    const gone = await submit('never-started');
    await t.call('POST', `/api/v1/projects/${acme.ref}/workloads/never-started/cancel`, { token: acme.ownerToken });
    await rec.reconcile();
    const a = await t.store.db
      .selectFrom('workload_attempts')
      .selectAll()
      .where('workload_id', '=', gone)
      .executeTakeFirstOrThrow();
    assert.equal(a.state, 'ended', 'nothing on the engine: the attempt just ends');
  });
});
