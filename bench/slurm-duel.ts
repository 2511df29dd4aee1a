// `npm run bench -- slurm-duel --json`: fabrik against Slurm's own scheduler on the same job stream,
// on the one-host dev cluster (scripts/slurm-dev up; SLURM_CONF set), next to the simulator's
// prediction for that stream (issue 12, item 4).
//
// The stream is generated here, seeded: sleep jobs of 1, 2, 4 and 8 GPUs on one node and gangs of
// 2 and 4 whole nodes (shapes cut to the fleet `sinfo` reports: 4 nodes × 8 GRES GPUs on the dev
// cluster), four projects with Zipf-like shares, log-normal run times (median 12 min, 2–55 min),
// Poisson arrivals compressed until the offered load over the arrival window (src/sim/load.ts) is
// --load (default 0.9): enough that jobs queue. Trace time is replayed scaled: --scale 60 means one
// real second per 60 s of trace, so a 12-minute job sleeps 12 s.
//
// It runs twice, one after the other, on the same cluster:
//   slurm   each job `sbatch`ed at its scaled arrival time, Slurm deciding: the dev cluster runs
//           priority/multifactor and sched/backfill (bf_interval=1, bf_resolution=1). Without
//           slurmdbd, Slurm 22.05 ignores the age and fair-share weights, so its order is job size
//           (bigger first), then submit order, with backfill; no quotas, no preemption.
//   fabrik  a fresh `fabrik server --executor slurm` (new SQLite database), each project with a
//           guarantee of an equal share of the GPUs and a limit of all of them (so fabrik's
//           scheduler decides, borrowing and reclaiming by preemption included); jobs submitted
//           through the REST API at the same scaled times, requeued when preempted. fabrik places,
//           Slurm executes the pinned sbatch.
// Each job is the same shell loop on both sides: it stamps its first start, sleeps in 200 ms steps
// that it records (in the workload directory on fabrik, so a preempted job resumes where it was:
// checkpoint-resume, as the simulator models preemption), and stamps its end. Queue time = first
// start stamp − the bench's clock just before sbatch/POST; makespan = last end − first submit. Both
// sides are measured the same way, from these real timestamps (sacct is not there: no slurmdbd).
//
// simulated: the engine of src/sim with the real scheduler core on the same jobs, fleet and quotas,
// policy `fabrik` and `slurm-multifactor` (or `fifo-backfill` when the core does not have it yet,
// named as such); and under `simulatedAsConfigured`, `slurm-multifactor` with the age and
// fair-share weights at 0, which is what the dev cluster's Slurm without slurmdbd really runs
// (the baseline's defaults weigh fair share 10×). The simulator runs in real seconds (submit, run
// time, the declared limit that Slurm gets as --time in whole minutes) and its results are scaled
// like the measured ones, so the core sees exactly the times the server sees. Neither engine's own time constants are scaled (fabrik's
// aging horizon, fair-share half-lives, Slurm's intervals): in trace terms they act `scale` times
// slower, on both the real and the simulated side.
//
// Output fields: `avgQueueS`, `p99QueueS` (nearest rank), `maxQueueS`, `makespanS` are TRACE
// seconds (real × scale); the same in real seconds under `real`. Options: --jobs N (40), --scale S
// (60), --seed N (1), --load X (0.9), --projects N (4). Progress goes to stderr.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { importSlurmFleet } from '../src/exec/slurm-fleet.js';
import { clientEnv, execFileRunner, slurmCall } from '../src/exec/slurm-cmd.js';
import { LocalAccounts } from '../src/exec/identities.js';
import { seededRandom } from '../src/domain/random.js';
import { toSchedNodes } from '../src/fleet/fleet-file.js';
import { schedule } from '../src/scheduler/index.js';
import {
  POLICIES,
  type PolicyName,
  type PoolQuota,
  type SchedNode,
  type ScheduleOptions,
} from '../src/scheduler/types.js';
import { snapshotDriver } from '../src/sim/core-driver.js';
import { simulate, type SimJob } from '../src/sim/engine.js';
import { compressToLoad, offeredLoad } from '../src/sim/load.js';
import { mean, percentileSorted } from '../src/sim/metrics.js';
import { realCore } from '../src/sim/real-core.js';
import type { TraceJob } from '../src/sim/trace.js';
import { identityOf } from '../src/tenancy/identity.js';
import { api, startServerProcess } from '../test/helpers/child-server.js';
import { OPERATOR_TOKEN } from '../test/helpers/harness.js';

/** One job of the stream, in trace seconds. */
export interface DuelJob {
  readonly id: string;
  readonly project: string;
  readonly submitS: number;
  readonly durationS: number;
  readonly nodes: number;
  readonly gpusPerNode: number;
}

export interface StreamOptions {
  readonly jobs?: number;
  readonly seed?: number;
  readonly projects?: number;
  /** Offered load over the arrival window (src/sim/load.ts). */
  readonly load?: number;
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly medianDurationS?: number;
}

const MIN_DURATION_S = 120;
const MAX_DURATION_S = 55 * 60;
/** The sleep loop's step: run times are whole steps, on every side. */
const STEP_MS = 200;
/** fabrik's fair-share half-life (src/workload/scheduler-loop.ts), for the simulated fabrik run. */
const SERVER_USAGE_HALF_LIFE_S = 7 * 86_400;

/** The seeded stream: shapes that fit `nodes` × `gpusPerNode`, Zipf-like projects, Poisson arrivals at `load`. */
export function generateStream(o: StreamOptions): DuelJob[] {
  const n = o.jobs ?? 40;
  const rand = seededRandom(o.seed ?? 1);
  const projects = Array.from({ length: o.projects ?? 4 }, (_, i) => `p${i + 1}`);
  const zipf = projects.map((_, i) => 1 / (i + 1));
  const g = o.gpusPerNode;
  const shapes = [
    { nodes: 1, gpus: 1, weight: 30 },
    { nodes: 1, gpus: Math.min(2, g), weight: 15 },
    { nodes: 1, gpus: Math.min(4, g), weight: 15 },
    { nodes: 1, gpus: g, weight: 20 },
    ...(o.nodes >= 2 ? [{ nodes: 2, gpus: g, weight: 12 }] : []),
    ...(o.nodes >= 4 ? [{ nodes: 4, gpus: g, weight: 4 }] : []),
  ];
  const pick = <T>(items: readonly T[], weights: readonly number[]): T => {
    const total = weights.reduce((s, w) => s + w, 0);
    let u = rand() * total;
    for (let i = 0; i < items.length; i++) {
      u -= weights[i];
      if (u < 0) return items[i];
    }
    return items[items.length - 1];
  };
  const median = o.medianDurationS ?? 12 * 60;
  const trace: TraceJob[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    const shape = pick(
      shapes,
      shapes.map((s) => s.weight),
    );
    // Log-normal, sigma 0.7 (Box–Muller), clipped.
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const durationS = Math.round(Math.min(MAX_DURATION_S, Math.max(MIN_DURATION_S, median * Math.exp(0.7 * z))));
    t += -Math.log(1 - rand()) * 60;
    trace.push({
      id: `j${String(i).padStart(3, '0')}`,
      submitS: t,
      durationS,
      gpus: shape.nodes * shape.gpus,
      nodes: shape.nodes,
      gpusPerNode: shape.gpus,
      project: pick(projects, zipf),
      priority: 'normal',
    });
  }
  const timed = compressToLoad(trace, o.nodes * g, o.load ?? 0.9);
  const t0 = timed[0].submitS;
  return timed.map((j) => ({
    id: j.id,
    project: j.project,
    submitS: Math.round(j.submitS - t0),
    durationS: j.durationS,
    nodes: j.nodes,
    gpusPerNode: j.gpusPerNode,
  }));
}

/** Real-time form of a job: what both engines and the simulator are given. */
interface RealJob extends DuelJob {
  readonly submitReal: number;
  readonly runMs: number;
  /** The declared limit: Slurm's --time (whole minutes), fabrik's max_duration, the simulator's maxRuntimeS. */
  readonly limitMin: number;
}

function toReal(jobs: readonly DuelJob[], scale: number): RealJob[] {
  return jobs.map((j) => {
    const runMs = Math.max(STEP_MS, Math.round((j.durationS * 1000) / scale / STEP_MS) * STEP_MS);
    // The user's limit as the simulator models it (the next of 1 h, 4 h, …, see estimateMaxRuntime),
    // scaled, in whole minutes as Slurm takes it, with room for the job's own start-up.
    const declared = j.durationS <= 3600 ? 3600 : 4 * 3600;
    const limitMin = Math.max(1, Math.ceil(Math.max(declared / scale, runMs / 1000 + 30) / 60));
    return { ...j, submitReal: j.submitS / scale, runMs, limitMin };
  });
}

/**
 * The job, the same on both sides: first-start stamp (kept across attempts), a sleep in steps whose
 * progress survives a preemption, end stamp. `rank` and `progress` are shell words.
 */
function jobScript(stamp: string, rank: string, progress: string, runMs: number): string {
  return [
    `s="${stamp}.${rank}"`,
    `[ -e "$s.start" ] || date +%s.%N > "$s.start"`,
    `f="${progress}.${rank}"`,
    `d=$(cat "$f" 2>/dev/null || echo 0)`,
    `while [ "$d" -lt ${runMs} ]; do sleep ${STEP_MS / 1000}; d=$((d + ${STEP_MS})); echo "$d" > "$f"; done`,
    `date +%s.%N > "$s.end"`,
  ].join('\n');
}

/** First start and last end over a job's rank stamp files; NaN where missing (end: until every rank ended). */
function readStamps(stamp: string, ranks: number): { start: number; end: number } {
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  let ends = 0;
  for (let r = 0; r < ranks; r++) {
    const s = `${stamp}.${r}`;
    if (existsSync(`${s}.start`)) start = Math.min(start, Number(readFileSync(`${s}.start`, 'utf8').trim()));
    if (existsSync(`${s}.end`)) {
      end = Math.max(end, Number(readFileSync(`${s}.end`, 'utf8').trim()));
      ends++;
    }
  }
  return {
    start: Number.isFinite(start) ? start : Number.NaN,
    end: ends === ranks ? end : Number.NaN,
  };
}

export interface SideFigures {
  /** Trace seconds (real × scale). */
  readonly avgQueueS: number;
  readonly p99QueueS: number;
  readonly maxQueueS: number;
  readonly makespanS: number;
  /** Jobs that ran to their end (every job, when the run is complete). */
  readonly completed: number;
  /** The same figures in real seconds. */
  readonly real: {
    readonly avgQueueS: number;
    readonly p99QueueS: number;
    readonly maxQueueS: number;
    readonly makespanS: number;
  };
}

const r1 = (x: number) => Math.round(x * 10) / 10;

function figures(queueReal: number[], makespanReal: number, completed: number, scale: number): SideFigures {
  const q = [...queueReal].sort((a, b) => a - b);
  const avg = mean(q);
  const p99 = percentileSorted(q, 99);
  const max = q.length > 0 ? q[q.length - 1] : Number.NaN;
  return {
    avgQueueS: r1(avg * scale),
    p99QueueS: r1(p99 * scale),
    maxQueueS: r1(max * scale),
    makespanS: r1(makespanReal * scale),
    completed,
    real: { avgQueueS: r1(avg), p99QueueS: r1(p99), maxQueueS: r1(max), makespanS: r1(makespanReal) },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const log = (msg: string) => process.stderr.write(`slurm-duel: ${msg}\n`);

/** Submits each job at t0 + its real offset; `submit` gets the job and must not take long. */
async function replay(jobs: readonly RealJob[], submit: (j: RealJob) => Promise<void>): Promise<number[]> {
  const at: number[] = [];
  const inFlight: Promise<void>[] = [];
  const t0 = Date.now() + 500;
  for (const [i, j] of jobs.entries()) {
    await sleep(t0 + j.submitReal * 1000 - Date.now());
    at[i] = Date.now() / 1000;
    inFlight.push(submit(j));
  }
  await Promise.all(inFlight);
  return at;
}

/** Collects stamps until every job has ended, or `stillRunning()` says nothing more will. */
async function collect(
  jobs: readonly RealJob[],
  stampOf: (j: RealJob) => string,
  /** Stamp files per job: one on the Slurm side (the batch script runs on the first node), one per node on fabrik's. */
  ranksOf: (j: RealJob) => number,
  deadlineMs: number,
  stillRunning: () => Promise<boolean>,
  what: string,
) {
  const until = Date.now() + deadlineMs;
  let lastLog = 0;
  let idlePolls = 0;
  for (;;) {
    const got = jobs.map((j) => readStamps(stampOf(j), ranksOf(j)));
    const ended = got.filter((g) => !Number.isNaN(g.end)).length;
    if (Date.now() - lastLog > 10_000) {
      log(`${what}: ${ended}/${jobs.length} jobs ended`);
      lastLog = Date.now();
    }
    if (ended === jobs.length) return got;
    // A side that has nothing left running but misses stamps has lost jobs: report, don't hang.
    idlePolls = (await stillRunning()) ? 0 : idlePolls + 1;
    if (idlePolls >= 10 || Date.now() > until) {
      const missing = jobs.filter((_, i) => Number.isNaN(got[i].end)).map((j) => j.id);
      log(`${what}: giving up with ${missing.length} jobs not ended: ${missing.slice(0, 10).join(', ')}`);
      return got;
    }
    await sleep(500);
  }
}

function sideResult(
  jobs: readonly RealJob[],
  got: readonly { start: number; end: number }[],
  submitAt: readonly number[],
  scale: number,
): SideFigures {
  const queue: number[] = [];
  let lastEnd = Number.NEGATIVE_INFINITY;
  let completed = 0;
  got.forEach((g, i) => {
    if (!Number.isNaN(g.start)) queue.push(g.start - submitAt[i]);
    if (!Number.isNaN(g.end)) {
      completed++;
      lastEnd = Math.max(lastEnd, g.end);
    }
  });
  return figures(queue, completed === jobs.length ? lastEnd - Math.min(...submitAt) : Number.NaN, completed, scale);
}

interface ClusterInfo {
  readonly conf: string;
  readonly nodes: SchedNode[];
  readonly pool: string;
  readonly gpusPerNode: number;
}

async function cluster(conf: string): Promise<ClusterInfo> {
  const fleet = await importSlurmFleet({ slurmConf: conf });
  const nodes = toSchedNodes(fleet.spec.nodes, fleet.states).filter((n) => n.schedulable && n.gpus > 0);
  if (nodes.length === 0) throw new Error('slurm-duel: the cluster has no ready GPU nodes (sinfo)');
  const pool = nodes[0].pool;
  const inPool = nodes.filter((n) => n.pool === pool);
  return { conf, nodes: inPool, pool, gpusPerNode: Math.min(...inPool.map((n) => n.gpus)) };
}

async function slurmConfig(conf: string): Promise<Record<string, string>> {
  const text = await slurmCall(execFileRunner, 'scontrol', ['show', 'config'], {
    env: clientEnv(conf),
    timeoutMs: 30_000,
  });
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(PriorityType|SchedulerType|SchedulerParameters|PriorityWeightJobSize|SelectType)\s*=\s*(.*)$/.exec(
      line.trim(),
    );
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}

async function runSlurmSide(c: ClusterInfo, jobs: readonly RealJob[], scale: number, deadlineMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-duel-slurm-'));
  chmodSync(dir, 0o1777);
  const name = `fabrik-duel-${Date.now().toString(36)}`;
  const env = clientEnv(c.conf);
  const call = (cmd: string, args: string[]) => slurmCall(execFileRunner, cmd, args, { env, timeoutMs: 60_000 });
  const stampOf = (j: RealJob) => join(dir, j.id);
  try {
    log(`slurm: replaying ${jobs.length} jobs straight to sbatch`);
    const submitAt = await replay(jobs, async (j) => {
      await call('sbatch', [
        '--parsable',
        `--job-name=${name}`,
        `--account=${j.project}`,
        `--partition=${c.pool}`,
        `--nodes=${j.nodes}`,
        '--ntasks-per-node=1',
        `--gres=gpu:${j.gpusPerNode}`,
        `--time=${j.limitMin}`,
        '--output=/dev/null',
        `--chdir=${dir}`,
        `--wrap=${jobScript(stampOf(j), '0', join(dir, `${j.id}.progress`), j.runMs)}`,
      ]);
    });
    const running = async () => (await call('squeue', ['-h', `--name=${name}`, '-o', '%i'])).trim().length > 0;
    const got = await collect(jobs, stampOf, () => 1, deadlineMs, running, 'slurm');
    return sideResult(jobs, got, submitAt, scale);
  } finally {
    await call('scancel', [`--name=${name}`]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runFabrikSide(
  c: ClusterInfo,
  jobs: readonly RealJob[],
  quotas: readonly PoolQuota[],
  scale: number,
  deadlineMs: number,
  uidBase: number,
) {
  const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-duel-srv-'));
  const stamps = mkdtempSync(join(tmpdir(), 'fabrik-duel-stamps-'));
  chmodSync(stamps, 0o1777);
  const projects = [...new Set(quotas.map((q) => q.project))];
  const server = await startServerProcess({
    dataDir,
    database: join(dataDir, 'fabrik.db'),
    bootstrapToken: OPERATOR_TOKEN,
    env: {
      FABRIK_EXECUTOR: 'slurm',
      SLURM_CONF: c.conf,
      FABRIK_RATE_LIMIT: '1000000',
      FABRIK_RECONCILE_INTERVAL_MS: '200',
      FABRIK_UID_BASE: String(uidBase),
    },
    startTimeoutMs: 60_000,
  });
  const stampOf = (j: RealJob) => join(stamps, j.id);
  try {
    const call = api(server.url, OPERATOR_TOKEN);
    const ok = async (p: Promise<{ status: number; text: string; body: any }>, want: number, what: string) => {
      const r = await p;
      if (r.status !== want) throw new Error(`slurm-duel: ${what}: ${r.status} ${r.text}`);
      return r.body;
    };
    // The fleet is imported from sinfo at start; wait until every node is there and ready.
    for (let i = 0; ; i++) {
      const nodes = (await ok(call('GET', '/api/v1/fleet/nodes'), 200, 'fleet')).items as { state: string }[];
      if (nodes.filter((n) => n.state === 'ready').length >= c.nodes.length) break;
      if (i > 100) throw new Error('slurm-duel: fabrik did not import the Slurm fleet');
      await sleep(200);
    }
    await ok(call('POST', '/api/v1/orgs', { name: 'duel', residency: 'de' }), 201, 'org');
    for (const p of projects) {
      await ok(call('POST', '/api/v1/orgs/duel/projects', { name: p }), 201, `project ${p}`);
      const q = quotas.find((x) => x.project === p)!;
      await ok(
        call('PUT', `/api/v1/projects/duel.${p}/quotas/${c.pool}`, { guaranteed: q.guaranteed, limit: q.limit }),
        200,
        `quota ${p}`,
      );
    }
    log(`fabrik: replaying ${jobs.length} jobs through ${server.url} (executor slurm)`);
    const submitAt = await replay(jobs, async (j) => {
      await ok(
        call('POST', `/api/v1/projects/duel.${j.project}/workloads`, {
          kind: 'batch',
          name: j.id,
          resources: { pool: c.pool, gpu: j.gpusPerNode, nodes: j.nodes },
          max_duration: j.limitMin * 60,
          requeue: true,
          run: jobScript(stampOf(j), '$FABRIK_NODE_RANK', '$FABRIK_WORKLOAD_DIR/progress', j.runMs),
        }),
        201,
        `submit ${j.id}`,
      );
    });
    const list = async () => {
      const all: { name: string; status: string; preemptions: number; attempts: number }[] = [];
      for (const p of projects) {
        const r = await ok(call('GET', `/api/v1/projects/duel.${p}/workloads?all=true&limit=1000`), 200, 'list');
        all.push(...r.items);
      }
      return all;
    };
    const running = async () => (await list()).some((w) => w.status === 'pending' || w.status === 'running');
    const got = await collect(jobs, stampOf, (j) => j.nodes, deadlineMs, running, 'fabrik');
    // The stamps say a job ended; fabrik learns it from Slurm a reconcile pass later.
    let final = await list();
    for (let i = 0; i < 60 && final.some((w) => w.status === 'pending' || w.status === 'running'); i++) {
      await sleep(500);
      final = await list();
    }
    const notDone = final.filter((w) => w.status !== 'succeeded');
    if (notDone.length > 0) log(`fabrik: not succeeded: ${notDone.map((w) => `${w.name} ${w.status}`).join(', ')}`);
    return {
      ...sideResult(jobs, got, submitAt, scale),
      succeeded: final.filter((w) => w.status === 'succeeded').length,
      preemptions: final.reduce((s, w) => s + w.preemptions, 0),
      attempts: final.reduce((s, w) => s + w.attempts, 0),
    };
  } finally {
    await server.stop();
    const accounts = new LocalAccounts();
    for (let uid = uidBase; uid < uidBase + projects.length + 2; uid++)
      await accounts.remove(identityOf(uid)).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(stamps, { recursive: true, force: true });
  }
}

/** The simulator on the same stream, in real seconds (see the header), figures scaled like the measured ones. */
function predict(
  c: ClusterInfo,
  jobs: readonly RealJob[],
  quotas: readonly PoolQuota[],
  policy: PolicyName,
  scale: number,
  options?: ScheduleOptions,
): SideFigures {
  const sim: SimJob[] = jobs.map((j) => ({
    id: j.id,
    submitS: j.submitReal,
    durationS: j.runMs / 1000,
    maxRuntimeS: j.limitMin * 60,
    nodes: j.nodes,
    gpusPerNode: j.gpusPerNode,
    project: j.project,
    pool: c.pool,
    priority: 'normal',
  }));
  const r = simulate({
    jobs: sim,
    nodes: c.nodes,
    quotas,
    policy,
    driver: options
      ? snapshotDriver((snap) => schedule({ ...snap, options: { ...snap.options, ...options } }))
      : realCore(),
    usageHalfLifeS: SERVER_USAGE_HALF_LIFE_S,
  });
  const queue: number[] = [];
  let lastEnd = Number.NEGATIVE_INFINITY;
  let completed = 0;
  r.outcomes.forEach((o, i) => {
    if (!Number.isNaN(o.firstStartS)) queue.push(o.firstStartS - sim[i].submitS);
    if (!Number.isNaN(o.endS)) {
      completed++;
      lastEnd = Math.max(lastEnd, o.endS);
    }
  });
  return figures(queue, lastEnd - sim[0].submitS, completed, scale);
}

export interface DuelOptions {
  readonly jobs?: number;
  readonly scale?: number;
  readonly seed?: number;
  readonly load?: number;
  readonly projects?: number;
  readonly slurmConf?: string;
  /** Project uids of the fabrik half's server (FABRIK_UID_BASE); its own range, apart from the test suites'. */
  readonly uidBase?: number;
}

export async function runDuel(o: DuelOptions = {}): Promise<Record<string, unknown>> {
  const conf = o.slurmConf ?? process.env.SLURM_CONF;
  if (!conf) throw new Error('slurm-duel: SLURM_CONF is not set (scripts/slurm-dev up)');
  const scale = o.scale ?? 60;
  const wall0 = Date.now();
  const c = await cluster(conf);
  const config = await slurmConfig(conf);
  if (config.PriorityType !== 'priority/multifactor' || config.SchedulerType !== 'sched/backfill') {
    throw new Error(
      `slurm-duel: the cluster runs ${config.PriorityType} and ${config.SchedulerType}; the duel needs ` +
        'priority/multifactor and sched/backfill (rerun scripts/slurm-dev up, which writes them)',
    );
  }
  const stream = generateStream({
    jobs: o.jobs,
    seed: o.seed,
    projects: o.projects,
    load: o.load,
    nodes: c.nodes.length,
    gpusPerNode: c.gpusPerNode,
  });
  const jobs = toReal(stream, scale);
  const capacity = c.nodes.reduce((s, n) => s + n.gpus, 0);
  const projects = [...new Set(stream.map((j) => j.project))].sort();
  // Equal guarantees that add up to at most the pool, and a limit of the whole pool: each tenant
  // bought a share and may borrow the rest; fabrik reclaims borrowed GPUs for a tenant's guarantee.
  const share = Math.floor(capacity / projects.length);
  const quotas: PoolQuota[] = projects.map((p) => ({ project: p, pool: c.pool, guaranteed: share, limit: capacity }));
  const work = jobs.reduce((s, j) => s + (j.nodes * j.gpusPerNode * j.runMs) / 1000, 0);
  const span = jobs[jobs.length - 1].submitReal;
  // Generous: all work back to back on one GPU-set, plus the arrivals, plus start-up, times three.
  const deadlineMs = (3 * (span + work / capacity + jobs.length) + 120) * 1000;
  log(
    `${jobs.length} jobs, ${projects.length} projects, ${capacity} GPUs (${c.nodes.length} × ${c.gpusPerNode}), ` +
      `arrivals over ${r1(span * scale)} s trace = ${r1(span)} s real (scale ${scale}), offered load ` +
      `${r1(
        offeredLoad(
          stream.map((j) => ({ ...j, gpus: j.nodes * j.gpusPerNode })),
          capacity,
        ) * 100,
      )} %`,
  );

  const slurmBaseline = (POLICIES as readonly string[]).includes('slurm-multifactor')
    ? ('slurm-multifactor' as PolicyName)
    : ('fifo-backfill' as PolicyName);
  const simulated = {
    [slurmBaseline]: predict(c, jobs, quotas, slurmBaseline, scale),
    fabrik: predict(c, jobs, quotas, 'fabrik', scale),
  };
  // The dev cluster's Slurm has no slurmdbd, so it ignores the age and fair-share weights: the
  // baseline with those at 0 is what that Slurm really does.
  const asConfigured =
    slurmBaseline === 'slurm-multifactor'
      ? {
          'slurm-multifactor': predict(c, jobs, quotas, slurmBaseline, scale, {
            priorityWeightAge: 0,
            priorityWeightFairshare: 0,
          }),
        }
      : undefined;
  log(`simulated: ${JSON.stringify({ ...simulated, asConfigured })}`);

  const t1 = Date.now();
  const slurm = await runSlurmSide(c, jobs, scale, deadlineMs);
  const slurmWallS = (Date.now() - t1) / 1000;
  log(`slurm: ${JSON.stringify(slurm)}`);
  const t2 = Date.now();
  const fabrik = await runFabrikSide(c, jobs, quotas, scale, deadlineMs, o.uidBase ?? 264_000);
  const fabrikWallS = (Date.now() - t2) / 1000;
  log(`fabrik: ${JSON.stringify(fabrik)}`);

  const shapes: Record<string, number> = {};
  for (const j of stream) {
    const k = `${j.nodes}x${j.gpusPerNode}`;
    shapes[k] = (shapes[k] ?? 0) + 1;
  }
  return {
    bench: 'slurm-duel',
    jobs: jobs.length,
    slurm: { ...slurm, wallS: r1(slurmWallS) },
    fabrik: { ...fabrik, wallS: r1(fabrikWallS) },
    simulated,
    ...(asConfigured ? { simulatedAsConfigured: asConfigured } : {}),
    scale,
    units: 'avgQueueS, p99QueueS, maxQueueS, makespanS: trace seconds (real × scale); under "real": real seconds',
    stream: {
      seed: o.seed ?? 1,
      projects: Object.fromEntries(projects.map((p) => [p, stream.filter((j) => j.project === p).length])),
      shapes,
      arrivalSpanS: r1(span * scale),
      offeredLoad:
        r1(
          offeredLoad(
            stream.map((j) => ({ ...j, gpus: j.nodes * j.gpusPerNode })),
            capacity,
          ) * 1000,
        ) / 1000,
      gpus: capacity,
    },
    quotas: { guaranteed: share, limit: capacity, note: 'per project, fabrik half and simulator' },
    notes: {
      slurm: `sbatch at arrival; ${config.PriorityType} (job size only: age and fair share need slurmdbd), ${config.SchedulerType} ${config.SchedulerParameters ?? ''}; no quotas, no preemption`,
      fabrik:
        'fabrik server --executor slurm, fresh SQLite database, REST submits; fabrik places (borrowing and reclaim by preemption), Slurm runs the pinned sbatch',
      simulated: `src/sim engine with the real core on the same jobs, fleet and quotas, in real seconds, scaled; ${slurmBaseline === 'fifo-backfill' ? 'slurm-multifactor is not in POLICIES yet: fifo-backfill stands in for Slurm' : 'slurm-multifactor as the Slurm baseline'}`,
      simulatedAsConfigured:
        'slurm-multifactor with PriorityWeightAge=0 and PriorityWeightFairshare=0: the dev cluster without slurmdbd ignores both',
      measured:
        'queue = first start stamp of the job − the bench clock just before sbatch/POST; makespan = last end − first submit',
    },
    machine: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
    wallS: r1((Date.now() - wall0) / 1000),
  };
}

function arg(args: string[], name: string): number | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`slurm-duel: ${name} needs a positive number, got ${args[i + 1]}`);
  return v;
}

export default async function (args: string[]): Promise<Record<string, unknown>> {
  return runDuel({
    jobs: arg(args, '--jobs'),
    scale: arg(args, '--scale'),
    seed: arg(args, '--seed'),
    load: arg(args, '--load'),
    projects: arg(args, '--projects'),
  });
}
