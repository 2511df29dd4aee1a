// `npm run bench -- exec --json`: how fast submitted workloads start running. For the local
// executor (and Slurm when a dev cluster is up: SLURM_CONF), submit N short workloads through the
// API and measure, from the workloads' events, submit → Started latency (p50/p99) and workloads
// started per second ("Started" is process spawn for local, sbatch accepted for Slurm). For Slurm
// the same run also measures raw `sbatch` submissions per second without fabrik, so fabrik's
// overhead can be stated as a ratio.
// The local figures run at the best isolation level the machine allows (the server's `auto`), and
// `isolation` compares task start with and without it (bench/exec-isolation.ts).
// Options: --count N (default 1000), --concurrency N (default 8), --isolation-count N (default 200),
// --failover-rounds N (default 1).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/db.js';
import { api, eventually, startServerProcess } from '../test/helpers/child-server.js';
import { OPERATOR_TOKEN } from '../test/helpers/harness.js';
import { failoverFigure } from './exec-failover.js';
import { isolationStart } from './exec-isolation.js';
import { rawSbatchPerSec } from './exec-slurm.js';

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : Number.NaN;
}

interface Target {
  readonly executor: 'local' | 'slurm';
  /** Pool the workloads ask for and its GPUs (one GPU per workload). */
  readonly pool: string;
  readonly gpus: number;
}

async function measure(target: Target, count: number, concurrency: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-bench-exec-'));
  const server = await startServerProcess({
    dataDir,
    database: join(dataDir, 'fabrik.db'),
    bootstrapToken: OPERATOR_TOKEN,
    ...(target.executor === 'local' ? { devGpus: 16 } : {}),
    env: { FABRIK_RATE_LIMIT: '1000000', FABRIK_RECONCILE_INTERVAL_MS: '200', FABRIK_EXECUTOR: target.executor },
  });
  try {
    const call = api(server.url, OPERATOR_TOKEN);
    await call('POST', '/api/v1/orgs', { name: 'bench', residency: 'de' });
    await call('POST', '/api/v1/orgs/bench/projects', { name: 'exec' });
    await call('PUT', `/api/v1/projects/bench.exec/quotas/${target.pool}`, {
      guaranteed: target.gpus,
      limit: target.gpus,
    });
    const store = await openStore(join(dataDir, 'fabrik.db'), { migrate: false });
    try {
      // Work is submitted in rounds no larger than the GPUs (one each), and a round starts when the
      // previous one has finished: the rate then measures fabrik and the engine, not the queue.
      const round = target.executor === 'slurm' ? target.gpus : count;
      const lat: number[] = [];
      let spanMs = 0;
      const t0 = Date.now();
      for (let base = 0; base < count; base += round) {
        const ids: string[] = [];
        let next = base;
        const end = Math.min(count, base + round);
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < end) {
              const i = next++;
              const r = await call('POST', '/api/v1/projects/bench.exec/workloads', {
                kind: 'batch',
                name: `job-${i}`,
                resources: { pool: target.pool, gpu: 1 },
                max_duration: '5m',
                run: 'true',
              });
              if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${r.text}`);
              ids.push(r.body.id);
            }
          }),
        );
        await eventually(
          async () => {
            const row = await store.db
              .selectFrom('workloads')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .where('id', 'in', ids)
              .where('status', '=', 'succeeded')
              .executeTakeFirstOrThrow();
            return Number(row.n) >= ids.length ? true : undefined;
          },
          600_000,
          'the round to finish',
        );
        const events = await store.db
          .selectFrom('workload_events')
          .select(['workload_id', 'reason', 'time'])
          .where('workload_id', 'in', ids)
          .where('reason', 'in', ['Submitted', 'Started'])
          .execute();
        const submitted = new Map<string, number>();
        const started = new Map<string, number>();
        for (const e of events) (e.reason === 'Submitted' ? submitted : started).set(e.workload_id, Date.parse(e.time));
        for (const [id, t] of started) lat.push(t - submitted.get(id)!);
        spanMs += Math.max(...started.values()) - Math.min(...submitted.values());
      }
      lat.sort((a, b) => a - b);
      return {
        startP50Ms: pct(lat, 50),
        startP99Ms: pct(lat, 99),
        perSec: Math.round((count / (spanMs / 1000)) * 10) / 10,
        count,
        gpus: target.gpus,
        round,
        wallS: Math.round((Date.now() - t0) / 100) / 10,
      };
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export default async function (args: string[]) {
  const count = arg(args, '--count', 1000);
  const concurrency = arg(args, '--concurrency', 8);
  const local = await measure({ executor: 'local', pool: 'dev', gpus: 16 }, count, concurrency);
  const result: Record<string, unknown> = {
    bench: 'exec',
    machine: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
    local,
    // Launch → the task's first command, isolated (the best level here) against a plain process.
    isolation: await isolationStart(arg(args, '--isolation-count', 200)),
    // Kill -9 of the leader replica (PostgreSQL) → first placement by the other (bench/exec-failover.ts).
    failover: await failoverFigure(arg(args, '--failover-rounds', 1)),
  };
  if (process.env.SLURM_CONF) {
    // Same count through Slurm (4 nodes × 8 GPUs of the dev cluster), and raw sbatch in the same run.
    const slurm = await measure({ executor: 'slurm', pool: 'gpu', gpus: 32 }, count, concurrency);
    const raw = await rawSbatchPerSec(Math.min(count, 500));
    result.slurm = slurm;
    result.rawSbatchPerSec = Math.round(raw * 10) / 10;
    result.slurmStartRateVsRawSbatch = Math.round((slurm.perSec / raw) * 1000) / 1000;
  } else {
    result.slurm = 'skipped: SLURM_CONF not set (scripts/slurm-dev up)';
  }
  return result;
}
