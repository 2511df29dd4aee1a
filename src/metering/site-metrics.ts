// Site metrics for /metrics, shaped like Kueue's (`kueue_…` → `fabrik_…`, the pool where Kueue has
// a ClusterQueue, the project where it has a LocalQueue). Two kinds:
//   - gauges read from the database at scrape time with bounded queries (pending and admitted work
//     grouped by pool and reason, live attempts, quotas, pool capacity), so every replica reports
//     the same figures and a new leader loses nothing;
//   - counters and histograms recorded where the event happens (a scheduling cycle, a reconcile
//     pass), fed by the loops through a one-line callback.
// The gateway's token and time-to-first-token series live in its own registry
// (src/inference/gateway/metrics.ts) and join the same /metrics text.
import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Decisions, Snapshot } from '../scheduler/types.js';
import type { Database } from '../store/schema.js';
import {
  type LiveAttemptRow,
  type ProjectPoolUse,
  borrowedOf,
  gpusByProjectPool,
  readLiveAttempts,
} from '../store/gpus-in-use.js';

const CYCLE_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Scrapes within this long of each other share one read of the database. */
const READ_TTL_MS = 500;

export interface SiteRows {
  readonly pending: readonly { pool: string; reason: string; n: number }[];
  readonly running: readonly { pool: string; n: number }[];
  readonly live: readonly LiveAttemptRow[];
  readonly quotas: readonly { project: string; pool: string; guaranteed: number; limit: number }[];
  readonly capacity: readonly { pool: string; gpus: number }[];
}

export interface SiteFigures {
  readonly pending: readonly { pool: string; reason: string; n: number }[];
  readonly admitted: readonly { pool: string; n: number }[];
  readonly projectUse: readonly (ProjectPoolUse & { readonly borrowed: number })[];
  readonly poolUse: readonly { pool: string; used: number }[];
  readonly quotas: SiteRows['quotas'];
  readonly capacity: SiteRows['capacity'];
  /** Seconds the oldest unconfirmed intent has waited for the engine: a launch, and a stop. */
  readonly lag: { readonly launch: number; readonly stop: number };
}

/** Pure: the figures a scrape reports, from the rows read and the clock. */
export function siteFigures(rows: SiteRows, nowMs: number): SiteFigures {
  const guaranteed = new Map(rows.quotas.map((q) => [`${q.project}\0${q.pool}`, q.guaranteed]));
  const projectUse = gpusByProjectPool(rows.live).map((u) => ({
    ...u,
    borrowed: borrowedOf(u.used, guaranteed.get(`${u.project}\0${u.pool}`)),
  }));
  const pools = new Map<string, number>();
  for (const u of projectUse) pools.set(u.pool, (pools.get(u.pool) ?? 0) + u.used);
  let launch = 0;
  let stop = 0;
  for (const a of rows.live) {
    const age = (iso: string) => (iso ? Math.max(0, (nowMs - Date.parse(iso)) / 1000) : 0);
    if (a.state === 'launching') launch = Math.max(launch, age(a.createdAt));
    // A stop is wanted from the moment stop_reason is set; the engine confirms it by ending the attempt.
    if (a.stopReason) stop = Math.max(stop, age(a.stoppingSince || a.createdAt));
  }
  return {
    pending: rows.pending.map((p) => ({ ...p, reason: p.reason || 'Queued' })),
    admitted: rows.running,
    projectUse,
    poolUse: [...pools].map(([pool, used]) => ({ pool, used })).sort((a, b) => a.pool.localeCompare(b.pool)),
    quotas: rows.quotas,
    capacity: rows.capacity,
    lag: { launch, stop },
  };
}

export async function readSiteRows(db: Kysely<Database>): Promise<SiteRows> {
  const pending = await db
    .selectFrom('workloads')
    .select((eb) => ['pool', 'reason', eb.fn.countAll<number>().as('n')])
    .where('status', '=', 'pending')
    .groupBy(['pool', 'reason'])
    .execute();
  const running = await db
    .selectFrom('workloads')
    .select((eb) => ['pool', eb.fn.countAll<number>().as('n')])
    .where('status', '=', 'running')
    .groupBy('pool')
    .execute();
  const quotas = await db
    .selectFrom('quotas as q')
    .innerJoin('projects as p', 'p.id', 'q.project_id')
    .innerJoin('orgs as o', 'o.id', 'p.org_id')
    .select(['o.name as org_name', 'p.name as project_name', 'q.pool', 'q.guaranteed', 'q.gpu_limit'])
    .execute();
  const capacity = await db
    .selectFrom('nodes')
    .select((eb) => ['pool', eb.fn.coalesce(eb.fn.sum<number>('gpu_count'), eb.lit(0)).as('gpus')])
    .groupBy('pool')
    .execute();
  return {
    pending: pending.map((r) => ({ pool: r.pool, reason: r.reason, n: Number(r.n) })),
    running: running.map((r) => ({ pool: r.pool, n: Number(r.n) })),
    live: await readLiveAttempts(db),
    quotas: quotas.map((q) => ({
      project: `${q.org_name}.${q.project_name}`,
      pool: q.pool,
      guaranteed: Number(q.guaranteed),
      limit: Number(q.gpu_limit),
    })),
    capacity: capacity.map((c) => ({ pool: c.pool, gpus: Number(c.gpus) })),
  };
}

/** What the scheduling loop reports after a cycle. */
export interface CycleFigures {
  readonly durationMs: number;
  readonly placed: number;
}

/**
 * Pure: the preemptions of a cycle by the victim's pool and why: `Reclamation` when another
 * project takes back GPUs the victim's project used above its guarantee, else `Priority`.
 */
export function preemptionsOf(d: Decisions, snap: Snapshot): { pool: string; reason: string }[] {
  const running = new Map(snap.running.map((r) => [r.id, r]));
  const pendingProject = new Map(snap.pending.map((p) => [p.id, p.project]));
  const used = new Map<string, number>();
  for (const r of snap.running)
    used.set(`${r.project}\0${r.pool}`, (used.get(`${r.project}\0${r.pool}`) ?? 0) + r.nodes * r.gpusPerNode);
  const guaranteed = new Map(snap.quotas.map((q) => [`${q.project}\0${q.pool}`, q.guaranteed]));
  return d.preempt.map((p) => {
    const victim = running.get(p.workloadId);
    if (!victim) return { pool: '', reason: 'Priority' };
    const key = `${victim.project}\0${victim.pool}`;
    const by = pendingProject.get(p.forWorkloadId);
    const reclaim =
      by !== undefined && by !== victim.project && borrowedOf(used.get(key) ?? 0, guaranteed.get(key)) > 0;
    return { pool: victim.pool, reason: reclaim ? 'Reclamation' : 'Priority' };
  });
}

export class SiteMetrics {
  readonly #db: Kysely<Database>;
  readonly #now: () => number;
  #read: { at: number; figures: Promise<SiteFigures | null> } | undefined;
  readonly #metrics: (Gauge | Counter | Histogram)[] = [];
  readonly #attempts: Counter<'result'>;
  readonly #attemptDuration: Histogram<'result'>;
  readonly #preempted: Counter<'pool' | 'reason'>;
  readonly #reconcile: Histogram;

  constructor(db: Kysely<Database>, opts: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    const site = this;
    const gauge = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (g: Gauge<L>, f: SiteFigures) => void,
    ) => {
      const g: Gauge<L> = new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [],
        async collect() {
          const f = await site.figures();
          this.reset();
          if (f) fill(this, f);
        },
      });
      this.#metrics.push(g);
    };
    gauge('fabrik_pending_workloads', 'Workloads waiting, by pool and pending reason.', ['pool', 'reason'], (g, f) => {
      for (const p of f.pending) g.set({ pool: p.pool, reason: p.reason }, p.n);
    });
    gauge('fabrik_admitted_active_workloads', 'Workloads placed and running, by pool.', ['pool'], (g, f) => {
      for (const r of f.admitted) g.set({ pool: r.pool }, r.n);
    });
    gauge(
      'fabrik_project_resource_usage',
      'GPUs held by live attempts (launching, running, stopping), by project and pool.',
      ['project', 'pool', 'resource'],
      (g, f) => {
        for (const u of f.projectUse) g.set({ project: u.project, pool: u.pool, resource: 'gpu' }, u.used);
      },
    );
    gauge(
      'fabrik_project_borrowed_resources',
      'GPUs used above the guarantee (borrowed idle capacity), by project and pool.',
      ['project', 'pool', 'resource'],
      (g, f) => {
        for (const u of f.projectUse) g.set({ project: u.project, pool: u.pool, resource: 'gpu' }, u.borrowed);
      },
    );
    gauge(
      'fabrik_project_nominal_quota',
      'Guaranteed GPUs (reclaimed from borrowers at once), by project and pool.',
      ['project', 'pool', 'resource'],
      (g, f) => {
        for (const q of f.quotas) g.set({ project: q.project, pool: q.pool, resource: 'gpu' }, q.guaranteed);
      },
    );
    gauge(
      'fabrik_project_borrowing_limit',
      'GPUs a project may borrow above its guarantee (limit − guaranteed), by project and pool.',
      ['project', 'pool', 'resource'],
      (g, f) => {
        for (const q of f.quotas)
          g.set({ project: q.project, pool: q.pool, resource: 'gpu' }, Math.max(0, q.limit - q.guaranteed));
      },
    );
    gauge('fabrik_pool_resource_usage', 'GPUs held by live attempts, by pool.', ['pool', 'resource'], (g, f) => {
      for (const u of f.poolUse) g.set({ pool: u.pool, resource: 'gpu' }, u.used);
    });
    gauge('fabrik_pool_capacity', "GPUs of the pool's nodes.", ['pool', 'resource'], (g, f) => {
      for (const c of f.capacity) g.set({ pool: c.pool, resource: 'gpu' }, c.gpus);
    });
    gauge(
      'fabrik_reconcile_lag_seconds',
      'How long the oldest intent has waited for the engine: a launch (attempt launching) or a stop (requested, not ended).',
      ['phase'],
      (g, f) => {
        g.set({ phase: 'launch' }, f.lag.launch);
        g.set({ phase: 'stop' }, f.lag.stop);
      },
    );
    this.#attempts = new Counter({
      name: 'fabrik_admission_attempts_total',
      help: 'Scheduling cycles with work queued, by result: success (placed work) or inadmissible (placed none).',
      labelNames: ['result'],
      registers: [],
    });
    this.#attemptDuration = new Histogram({
      name: 'fabrik_admission_attempt_duration_seconds',
      help: 'Duration of a scheduling cycle with work queued (snapshot, decisions, writes), by result.',
      labelNames: ['result'],
      buckets: CYCLE_SECONDS,
      registers: [],
    });
    this.#preempted = new Counter({
      name: 'fabrik_preempted_workloads_total',
      help: "Workloads preempted, by the victim's pool and reason (Reclamation of borrowed GPUs, or Priority).",
      labelNames: ['pool', 'reason'],
      registers: [],
    });
    this.#reconcile = new Histogram({
      name: 'fabrik_reconcile_duration_seconds',
      help: 'Duration of a reconcile pass over the live attempts.',
      buckets: CYCLE_SECONDS,
      registers: [],
    });
    this.#metrics.push(this.#attempts, this.#attemptDuration, this.#preempted, this.#reconcile);
  }

  /** Adds every series to `registry` (the app's, behind /metrics). */
  register(registry: Registry): void {
    for (const m of this.#metrics) registry.registerMetric(m);
  }

  /** Records a scheduling cycle (SchedulerLoop's onCycle). */
  readonly cycle = (report: CycleFigures, decisions?: Decisions, snapshot?: Snapshot): void => {
    // Nothing queued: no admission was attempted (as Kueue, which records attempts on queue heads).
    if (decisions && decisions.place.length + decisions.pending.length + decisions.preempt.length === 0) return;
    // A claim that needs victims is placed only once they stopped (a later cycle): not admitted yet.
    const waiting = new Set(decisions?.preempt.map((p) => p.forWorkloadId));
    const placed = decisions ? decisions.place.filter((p) => !waiting.has(p.workloadId)).length : report.placed;
    const result = placed > 0 ? 'success' : 'inadmissible';
    this.#attempts.inc({ result });
    this.#attemptDuration.observe({ result }, report.durationMs / 1000);
    if (decisions && snapshot)
      for (const p of preemptionsOf(decisions, snapshot)) this.#preempted.inc({ pool: p.pool, reason: p.reason });
  };

  /** Records a reconcile pass (Reconciler's onPass). */
  readonly reconciled = (durationMs: number): void => {
    this.#reconcile.observe(durationMs / 1000);
  };

  /** One read of the database per scrape (the gauges share it); null when the read failed. */
  figures(): Promise<SiteFigures | null> {
    const now = this.#now();
    if (this.#read && now - this.#read.at < READ_TTL_MS) return this.#read.figures;
    const figures = readSiteRows(this.#db)
      .then((rows) => siteFigures(rows, this.#now()))
      .catch((err: Error) => {
        process.emitWarning(`site metrics: reading the database failed: ${err.message}`);
        return null;
      });
    this.#read = { at: now, figures };
    return figures;
  }
}
