// Makes what runs match what the database says should run, attempt by attempt. The scheduler's
// placement commits a `launching` attempt (the launch intent) before the engine is touched; this
// loop launches it (idempotently: the engine side carries the attempt's identity, so a launch
// repeated after a crash adopts what the first one started), records the handle, watches the
// engine, and stops in two phases what should no longer run: SIGTERM and `stopping_since` now,
// SIGKILL on a later pass once the grace period is over. Nothing here waits for an engine, so one
// job that ignores SIGTERM never holds up the others. What each observation means is decided by the lifecycle
// (./lifecycle.ts); every change is an audited transition (./repository.ts).
import type { Kysely } from 'kysely';
import type { ActorContext } from '../audit/journal.js';
import { SerialLoop } from '../domain/serial-loop.js';
import { ExecError, type ExecHandle, type Executor, type Mount, type Observation } from '../exec/types.js';
import { resolveWorkdir } from '../exec/workdir.js';
import { identityOf } from '../tenancy/identity.js';
import type { Database, WorkloadAttemptsTable, WorkloadsTable } from '../store/schema.js';
import { WorkloadArtifacts } from './artifacts/index.js';
import { type WorkloadEnv, literalEnv } from './env.js';
import type { LifecycleEvent } from './lifecycle.js';
import { limitsOf } from './limits.js';
import { applyEvent } from './repository.js';
import type { WorkloadSpec } from './spec.js';

export const EXECUTOR_ACTOR: ActorContext = { keyId: '', principal: 'system:executor', requestId: 'reconcile' };
/** Launches in flight at once in one pass. */
const LAUNCH_CONCURRENCY = 8;
/** After SIGKILL, how often it is sent again while the engine still reports the attempt alive. */
const KILL_REPEAT_MS = 10_000;

export interface ReconcilerOptions {
  readonly intervalMs?: number;
  /** Relative workdirs of specs resolve inside this directory. */
  readonly workdirRoot: string;
  /** Called when capacity was freed or work returned to the queue: the scheduler should run. */
  readonly onCapacityChange?: () => void;
  /** A task's environment from the spec's (secret references resolved); throwing fails the launch. */
  readonly resolveEnv?: (row: WorkloadsTable, env: WorkloadEnv) => Promise<Record<string, string>>;
  /** Who the audit entries name (and, on several replicas, the lease fence). */
  readonly actor?: ActorContext;
  /** The clock, for tests. */
  readonly now?: () => number;
  /** Registry inputs, code and outputs of specs (./artifacts/); without it such specs fail to launch. */
  readonly artifacts?: WorkloadArtifacts;
  /** Called after each timed or triggered pass with its duration (the site metrics). */
  readonly onPass?: (durationMs: number) => void;
}

/** How long stop() waits for publishes in flight; one cut short is done again after a restart. */
const PUBLISH_STOP_WAIT_MS = 10_000;

interface Publishing {
  promise: Promise<void>;
  outcome?: { ok: true; lines: string[] } | { ok: false; message: string };
}

export class Reconciler extends SerialLoop {
  /** Attempts whose retryable launch failure was reported, so a retrying launch does not flood the events. */
  private readonly reported = new Set<string>();
  private readonly lastKill = new Map<string, number>();
  /** Outputs of succeeded attempts being published, by attempt id: off the pass, so one big model does not stall the loop. */
  private readonly publishing = new Map<string, Publishing>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly executor: Executor,
    private readonly opts: ReconcilerOptions,
  ) {
    super(opts.intervalMs ?? 2000, (err) => process.emitWarning(`reconcile failed: ${err.message}`));
  }

  protected override async work(): Promise<void> {
    const t0 = performance.now();
    await this.reconcile();
    this.opts.onPass?.(performance.now() - t0);
  }

  override async stop(): Promise<void> {
    await super.stop();
    const inFlight = [...this.publishing.values()].filter((p) => !p.outcome).map((p) => p.promise);
    if (inFlight.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(inFlight),
      new Promise((r) => {
        timer = setTimeout(r, PUBLISH_STOP_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** One pass over every attempt that is not over yet. */
  async reconcile(): Promise<void> {
    const attempts = await this.db.selectFrom('workload_attempts').selectAll().where('state', '!=', 'ended').execute();
    if (attempts.length === 0) return;
    const ids = [...new Set(attempts.map((a) => a.workload_id))];
    const rows = new Map<string, WorkloadsTable>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const r of await this.db
        .selectFrom('workloads')
        .selectAll()
        .where('id', 'in', ids.slice(i, i + 500))
        .execute())
        rows.set(r.id, r);
    }
    const handles = new Map<string, ExecHandle>();
    for (const a of attempts) if (a.handle) handles.set(a.id, JSON.parse(a.handle) as ExecHandle);
    const observed = handles.size ? await this.executor.observe(handles) : new Map<string, Observation>();
    let freed = false;
    // Launches go to the engine several at a time (sbatch takes tens of milliseconds each); the
    // rest of the pass is cheap bookkeeping.
    const launches: (() => Promise<boolean>)[] = [];
    for (const a of attempts) {
      const w = rows.get(a.workload_id);
      if (!w) continue;
      if (a.state === 'launching' && w.status === 'running' && w.attempts === a.number && a.stop_reason === '') {
        launches.push(() => this.launch(w, a));
        continue;
      }
      freed = (await this.step(w, a, handles.get(a.id), observed.get(a.id))) || freed;
    }
    for (const f of await inParallel(launches, LAUNCH_CONCURRENCY)) freed = f || freed;
    if (freed) this.opts.onCapacityChange?.();
  }

  /** Moves one attempt along; true when capacity was freed. */
  private async step(w: WorkloadsTable, a: WorkloadAttemptsTable, h?: ExecHandle, o?: Observation): Promise<boolean> {
    const wanted = w.status === 'running' && w.attempts === a.number && a.stop_reason === '';
    if (a.state === 'launching') {
      if (wanted) return this.launch(w, a);
      // Cancelled or preempted before its handle was on record: whatever the engine holds of it is stopped.
      const found = await this.executor.adopt(this.ref(w, a, (await this.project(w.project_id)).uid));
      if (found) return this.apply(w, { type: 'adopted', handle: JSON.stringify(found) });
      return this.apply(w, { type: 'abandoned', message: `attempt ${a.number} never started on the engine` });
    }
    if (!h) return false;
    if (o && o.state !== 'running') {
      this.lastKill.delete(a.id);
      if (!wanted) {
        this.publishing.delete(a.id);
        return this.apply(w, { type: 'stopped', exitCode: o.exitCode ?? null, message: o.message });
      }
      if (o.state === 'succeeded' && (specOf(w).outputs?.length ?? 0) > 0) {
        // The tasks are done; the attempt ends once its outputs are published (or could not be).
        const p = await this.publish(w, a, o.message);
        if (!p) return false;
        this.publishing.delete(a.id);
        if (!p.ok) return this.apply(w, { type: 'ended', outcome: 'publish-failed', exitCode: 0, message: p.message });
        const message = `${o.message}; ${p.lines.join('; ')}`;
        return this.apply(w, { type: 'ended', outcome: 'succeeded', exitCode: o.exitCode ?? 0, message });
      }
      const outcome = o.state === 'failed' && o.reason === 'OOMKilled' ? 'oom-killed' : o.state;
      return this.apply(w, { type: 'ended', outcome, exitCode: o.exitCode ?? null, message: o.message });
    }
    const now = this.now();
    if (wanted) {
      const started = Date.parse(a.started_at || a.launched_at);
      // Serving replicas run until scaled down: decide() refuses them a max-runtime stop.
      if (w.kind !== 'inference' && started + w.max_runtime_s * 1000 < now)
        await this.apply(w, { type: 'max-runtime' });
      return false;
    }
    const graceS = specOf(w).gracePeriodS ?? 30;
    if (a.state !== 'stopping') {
      await this.executor.signal(h, 'TERM');
      await this.apply(w, { type: 'stop-requested' });
    } else if (!a.killed_at && Date.parse(a.stopping_since) + graceS * 1000 <= now) {
      await this.executor.signal(h, 'KILL');
      this.lastKill.set(a.id, now);
      await this.apply(w, { type: 'stop-escalated', graceS });
    } else if (a.killed_at && now - (this.lastKill.get(a.id) ?? Date.parse(a.killed_at)) >= KILL_REPEAT_MS) {
      await this.executor.signal(h, 'KILL');
      this.lastKill.set(a.id, now);
    }
    return false;
  }

  /** The outcome of publishing a succeeded attempt's outputs, starting it if needed; undefined while it runs. */
  private async publish(w: WorkloadsTable, a: WorkloadAttemptsTable, observed: string): Promise<Publishing['outcome']> {
    const known = this.publishing.get(a.id);
    if (known) return known.outcome;
    const artifacts = this.opts.artifacts;
    const entry: { promise: Promise<void>; outcome?: Publishing['outcome'] } = { promise: Promise.resolve() };
    this.publishing.set(a.id, entry);
    const targets = (specOf(w).outputs ?? []).map((o) => `${o.kind} ${o.repo}`).join(', ');
    await this.apply(w, { type: 'publishing', message: `${observed}; publishing ${targets}` });
    entry.promise = (async () => {
      // A tick first: the pass that started it goes on, and a synchronous throw still lands here.
      await Promise.resolve();
      try {
        if (!artifacts) throw new Error('this server has no registry to publish outputs to');
        const lines = await artifacts.publish(w, specOf(w), a.number, () => this.stillWanted(w.id, a.number));
        entry.outcome = { ok: true, lines };
      } catch (err) {
        entry.outcome = { ok: false, message: (err as Error).message };
      }
      this.trigger();
    })();
    return undefined;
  }

  /** Whether attempt n is still the workload's current, wanted run (not cancelled meanwhile). */
  private async stillWanted(workloadId: string, n: number): Promise<boolean> {
    const w = await this.db
      .selectFrom('workloads')
      .innerJoin('workload_attempts', 'workload_attempts.workload_id', 'workloads.id')
      .select(['workloads.status', 'workloads.attempts', 'workload_attempts.stop_reason'])
      .where('workloads.id', '=', workloadId)
      .where('workload_attempts.number', '=', n)
      .executeTakeFirst();
    return w?.status === 'running' && w.attempts === n && w.stop_reason === '';
  }

  private async launch(w: WorkloadsTable, a: WorkloadAttemptsTable): Promise<boolean> {
    const spec = specOf(w);
    let handle: ExecHandle;
    let staging = false;
    try {
      const project = await this.project(w.project_id);
      const identity = identityOf(project.uid);
      // Registry inputs and code are on disk, checked, before anything starts (idempotent per attempt).
      let mounts: Mount[] = [];
      if (WorkloadArtifacts.wanted(spec)) {
        staging = true;
        if (!this.opts.artifacts)
          throw new ExecError("this server has no registry for the spec's inputs, code or outputs", false);
        mounts = await this.opts.artifacts.stage(w, spec, a.number, identity);
        staging = false;
      }
      for (const m of spec.hostMounts ?? []) mounts.push({ source: m.source, target: m.target, readOnly: true });
      handle = await this.executor.launch({
        ...this.ref(w, a, project.uid),
        name: w.name,
        project: project.ref,
        limits: limitsOf(spec),
        run: spec.run ?? 'sleep infinity',
        setup: spec.setup,
        env: this.opts.resolveEnv ? await this.opts.resolveEnv(w, spec.env ?? {}) : literalEnv(spec.env ?? {}),
        // Resolved again: the directory may have become a symbolic link since submit.
        workdir: spec.workdir === undefined ? undefined : launchWorkdir(this.opts.workdirRoot, spec.workdir),
        placement: JSON.parse(a.placement),
        maxRuntimeS: w.max_runtime_s,
        ...(mounts.length > 0 ? { mounts } : {}),
      });
    } catch (err) {
      const message = staging
        ? `could not stage its registry inputs: ${(err as Error).message}`
        : `${this.executor.name} executor could not start it: ${(err as Error).message}`;
      if (err instanceof ExecError && err.retryable) {
        // The engine may come back: keep the placement and try again next pass; say why once.
        if (this.reported.has(a.id)) return false;
        this.reported.add(a.id);
        await this.apply(w, { type: 'launch-failed', message, retryable: true });
        return false;
      }
      return this.apply(w, { type: 'launch-failed', message, retryable: false });
    }
    this.reported.delete(a.id);
    // Fault injection for the exactly-once tests: die between the engine's acceptance and the commit.
    if (process.env.FABRIK_FAULT === 'crash-after-launch') process.kill(process.pid, 'SIGKILL');
    // Refused when it was cancelled meanwhile: the attempt stays `launching`, the next pass adopts and stops it.
    await this.apply(w, { type: 'launched', handle: JSON.stringify(handle), executor: this.executor.name });
    return false;
  }

  private async apply(w: WorkloadsTable, ev: LifecycleEvent): Promise<boolean> {
    const done = await applyEvent(
      this.db,
      this.opts.actor ?? EXECUTOR_ACTOR,
      w,
      ev,
      new Date(this.now()).toISOString(),
    );
    return done?.decision.freesCapacity ?? false;
  }

  private ref(w: WorkloadsTable, a: WorkloadAttemptsTable, uid: number) {
    return { workloadId: w.id, projectId: w.project_id, attempt: a.number, identity: identityOf(uid) };
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private async project(projectId: string): Promise<{ ref: string; uid: number }> {
    const p = await this.db
      .selectFrom('projects')
      .innerJoin('orgs', 'orgs.id', 'projects.org_id')
      .select(['projects.name', 'projects.uid', 'orgs.name as org_name'])
      .where('projects.id', '=', projectId)
      .executeTakeFirstOrThrow();
    return { ref: `${p.org_name}.${p.name}`, uid: p.uid };
  }
}

async function inParallel<T>(jobs: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

function specOf(row: WorkloadsTable): WorkloadSpec {
  return JSON.parse(row.spec) as WorkloadSpec;
}

function launchWorkdir(root: string, workdir: string): string {
  try {
    return resolveWorkdir(root, workdir);
  } catch (err) {
    throw new ExecError((err as Error).message, false);
  }
}
