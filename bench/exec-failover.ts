// Failover of the control loops between two replicas on PostgreSQL: both serve the API, the
// leader runs work; it is killed with SIGKILL, a workload is submitted through the other replica at
// once, and the figure is the time from the kill to that workload's placement (its Scheduled
// event), i.e. lease expiry + the follower's next acquisition attempt + reconcile + one cycle.
// Where the kill falls in the leader's renewal period varies the figure by up to the renewal
// interval; `--failover-rounds N` (default 1) repeats it with fresh replicas and reports each.
// Standalone: `npm run bench -- exec-failover --json`; `npm run bench -- exec` includes it.
import { randomBytes } from 'node:crypto';
import { LEASE_RENEW_MS, LEASE_TTL_MS } from '../src/app/lease.js';
import { openStore } from '../src/store/db.js';
import { api, eventually, startServerProcess } from '../test/helpers/child-server.js';
import { OPERATOR_TOKEN, PG_ADMIN_URL, freshDatabase, postgresAvailable } from '../test/helpers/harness.js';

export interface FailoverFigure {
  readonly toFirstPlacementMs: number;
  readonly leaseTtlMs: number;
  readonly leaseRenewMs: number;
  /** Kill → the other replica's /readyz says `leader: true` (the rest is reconcile and one cycle). */
  readonly toLeaderMs: number;
  readonly rounds: { placement: number; leader: number }[];
}

async function readyz(url: string): Promise<{ leader?: boolean }> {
  return (await fetch(`${url}/readyz`)).json() as Promise<{ leader?: boolean }>;
}

async function oneRound(): Promise<{ placement: number; leader: number }> {
  const db = await freshDatabase('postgres');
  const env = { FABRIK_MASTER_KEY: randomBytes(32).toString('hex'), FABRIK_RATE_LIMIT: '1000000' };
  const start = () => startServerProcess({ database: db.url, bootstrapToken: OPERATOR_TOKEN, devGpus: 8, env });
  const a = await start();
  const b = await start().catch(async (err) => {
    await a.kill9();
    throw err;
  });
  const store = await openStore(db.url, { migrate: false });
  try {
    if (!(await readyz(a.url)).leader) throw new Error('the first replica does not lead');
    const node = await store.db.selectFrom('nodes').select(['pool', 'gpu_count']).executeTakeFirstOrThrow();
    const callA = api(a.url, OPERATOR_TOKEN);
    const callB = api(b.url, OPERATOR_TOKEN);
    await callA('POST', '/api/v1/orgs', { name: 'bench', residency: 'de' });
    await callA('POST', '/api/v1/orgs/bench/projects', { name: 'failover' });
    await callA('PUT', `/api/v1/projects/bench.failover/quotas/${node.pool}`, {
      guaranteed: node.gpu_count,
      limit: node.gpu_count,
    });
    const job = (name: string, run: string) => ({
      kind: 'batch',
      name,
      resources: { pool: node.pool, gpu: 1 },
      max_duration: '5m',
      run,
    });
    // Work running on the leader when it dies (the new leader re-adopts it).
    for (let i = 0; i < Math.min(4, node.gpu_count - 1); i++) {
      const r = await callA('POST', '/api/v1/projects/bench.failover/workloads', job(`running-${i}`, 'sleep 2'));
      if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${r.text}`);
    }
    await eventually(
      async () => {
        const s = await store.db.selectFrom('workload_events').select('id').where('reason', '=', 'Started').execute();
        return s.length > 0 ? true : undefined;
      },
      30_000,
      'work to run on the leader',
    );
    const tKill = Date.now();
    await a.kill9();
    const r = await callB('POST', '/api/v1/projects/bench.failover/workloads', job('after-kill', 'true'));
    if (r.status !== 201) throw new Error(`submit to the other replica failed: ${r.status} ${r.text}`);
    let tLeader = 0;
    const watch = (async () => {
      while (!(await readyz(b.url)).leader) await new Promise((res) => setTimeout(res, 25));
      tLeader = Date.now();
    })();
    const placedAt = await eventually(
      async () => {
        const e = await store.db
          .selectFrom('workload_events')
          .select('time')
          .where('workload_id', '=', r.body.id)
          .where('reason', '=', 'Scheduled')
          .executeTakeFirst();
        return e ? Date.parse(e.time) : undefined;
      },
      60_000,
      'the placement by the other replica',
    );
    await watch;
    return { placement: placedAt - tKill, leader: tLeader - tKill };
  } finally {
    await store.close();
    await b.stop();
    await a.kill9();
    await db.drop();
  }
}

/** The failover figure, or why it was skipped (no PostgreSQL here). */
export async function failoverFigure(rounds = 1): Promise<FailoverFigure | string> {
  const available = await postgresAvailable().catch(() => false);
  if (!available) return `skipped: PostgreSQL not reachable at ${PG_ADMIN_URL} (FABRIK_TEST_PG_URL)`;
  const ms: { placement: number; leader: number }[] = [];
  for (let i = 0; i < rounds; i++) ms.push(await oneRound());
  return {
    // The slowest round: where the kill falls in the renewal period decides most of the spread.
    toFirstPlacementMs: Math.max(...ms.map((m) => m.placement)),
    toLeaderMs: Math.max(...ms.map((m) => m.leader)),
    leaseTtlMs: LEASE_TTL_MS,
    leaseRenewMs: LEASE_RENEW_MS,
    rounds: ms,
  };
}

export default async function (args: string[]) {
  const i = args.indexOf('--failover-rounds');
  return { bench: 'exec-failover', failover: await failoverFigure(i >= 0 ? Number(args[i + 1]) : 1) };
}
