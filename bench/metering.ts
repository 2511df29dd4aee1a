// `npm run bench -- metering --json`: one simulated month (November 2026) of the Munich site
// (examples/fleets/munich.yaml: 8,000 B200 and 2,000 RTX PRO 6000 GPUs) rolled up and billed.
//   attempts   ~250,000 seeded attempts in the site's shape (pools by capacity, 1 to 64 GPUs,
//              hours-long, normal/high/preemptible), split per hour by attemptUsage() (GPU-seconds,
//              estimated energy and CO2), into HourlyRollup
//   tokens     10^8 per-request token records (in, out) of 160 deployments, streamed in chunks of
//              1M generated up front (untimed), each added to HourlyRollup as tokens_in and tokens_out
//   rollup     rollupRecordsPerSec = (attempts + token records) / the time spent adding them
//   write      the rollup rows stored in usage_hourly (a fresh SQLite file): writeMs, rows
//   statement  statementMs: one org's statement for the month from the stored rollups (orgStatement,
//              as GET /orgs/{org}/statements/{month} runs it), median of 5 (first: statementColdMs)
// Goals: rollups ≥ 1M records/s, a statement < 200 ms.
// Options: --records N (token records, default 100,000,000), --attempts N (default 250,000), --seed N.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ctx } from '../src/app/context.js';
import { seededRandom } from '../src/domain/random.js';
import { parseFleetFile } from '../src/fleet/fleet-file.js';
import { attemptUsage } from '../src/metering/attempt-usage.js';
import { defaultEnergySite } from '../src/metering/energy.js';
import { constantGrid } from '../src/metering/grid.js';
import { HourlyRollup } from '../src/metering/rollup.js';
import { orgStatement } from '../src/metering/statement.js';
import { toRow } from '../src/metering/usage-store.js';
import type { PriorityClass } from '../src/scheduler/types.js';
import { openStore } from '../src/store/db.js';

const MONTH = '2026-11';
const FROM = Date.parse('2026-11-01T00:00:00Z');
const TO = Date.parse('2026-12-01T00:00:00Z');
const ORGS = 40;
const PROJECTS_PER_ORG = 3;
const DEPLOYMENTS = 160;
const CHUNK = 1_000_000;

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name}: "${args[i + 1]}" is not a whole number`);
  return v;
}

export default async function run(args: string[]): Promise<Record<string, unknown>> {
  const tokenRecords = flag(args, '--records', 100_000_000);
  const attempts = flag(args, '--attempts', 250_000);
  const rng = seededRandom(flag(args, '--seed', 13));
  const fleet = parseFleetFile(readFileSync(new URL('../examples/fleets/munich.yaml', import.meta.url), 'utf8'));
  const pools = fleet.pools.map((p) => ({
    name: p.name,
    gpuModel: p.gpuModel,
    gpus: fleet.nodes.filter((n) => n.pool === p.name).reduce((s, n) => s + n.gpuCount, 0),
  }));
  const totalGpus = pools.reduce((s, p) => s + p.gpus, 0);
  const site = defaultEnergySite({ grid: constantGrid(380) });
  const projects = Array.from({ length: ORGS * PROJECTS_PER_ORG }, (_, i) => ({
    orgId: `org_${String(Math.floor(i / PROJECTS_PER_ORG)).padStart(2, '0')}`,
    projectId: `prj_${String(i).padStart(3, '0')}`,
    // Most projects use one pool; a project's weight is Zipf-like (a few big tenants).
    home: rng() < pools[0]!.gpus / totalGpus ? 0 : 1,
    weight: 1 / (1 + (i % 37)),
  }));
  const weightSum = projects.reduce((s, p) => s + p.weight, 0);
  const pickProject = () => {
    let x = rng() * weightSum;
    for (const p of projects) {
      x -= p.weight;
      if (x <= 0) return p;
    }
    return projects[projects.length - 1]!;
  };
  const rollup = new HourlyRollup();

  // --- attempts: facts generated (untimed) per chunk, then split and added (timed) ---
  const SIZES = [1, 1, 2, 4, 8, 8, 8, 16, 32, 64];
  const PRIORITIES: PriorityClass[] = ['normal', 'normal', 'normal', 'high', 'preemptible', 'preemptible'];
  let rollupMs = 0;
  let rollupCpuMs = 0;
  let attemptHours = 0;
  for (let done = 0; done < attempts; ) {
    const n = Math.min(50_000, attempts - done);
    const batch = Array.from({ length: n }, () => {
      const p = pickProject();
      const pool = pools[rng() < 0.9 ? p.home : 1 - p.home]!;
      const gpus = SIZES[Math.floor(rng() * SIZES.length)]!;
      const start = FROM + rng() * (TO - FROM);
      const hours = -Math.log(1 - rng()) * 3.5 + 0.05;
      const nodes = Array.from({ length: Math.ceil(gpus / 8) }, (_, k) => ({
        node: `${pool.name}-${k}`,
        gpus: Math.min(8, gpus - k * 8),
        nodeGpus: 8,
      }));
      return {
        p,
        pool,
        priority: PRIORITIES[Math.floor(rng() * PRIORITIES.length)]!,
        facts: {
          startedAt: start,
          endedAt: Math.min(TO, start + hours * 3_600_000),
          gpuModel: pool.gpuModel,
          nodes,
          samples: [],
        },
      };
    });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (const a of batch) {
      const u = attemptUsage(a.facts, site);
      const id = rollup.dimsId(a.p.orgId, a.p.projectId, a.pool.name, a.pool.gpuModel, a.priority);
      for (const h of u.hours) {
        const at = Date.parse(h.hour);
        rollup.addAt(at, 'gpu_seconds', id, h.gpuSeconds);
        rollup.addAt(at, 'energy_wh', id, h.energyWh, h.estimated);
        rollup.addAt(at, 'co2_g', id, h.co2g, h.estimated);
        attemptHours++;
      }
    }
    rollupMs += performance.now() - t0;
    rollupCpuMs += cpuMs(c0);
    done += n;
  }
  const attemptMs = rollupMs;

  // --- token records: 1M at a time into typed columns (untimed), then added (timed) ---
  const deployments = Array.from({ length: DEPLOYMENTS }, (_, i) => {
    const p = projects[i % projects.length]!;
    return rollup.dimsId(p.orgId, p.projectId, '', '', '', `dep_${i}`, `model-${i % 12}`);
  });
  const at = new Float64Array(CHUNK);
  const dep = new Int32Array(CHUNK);
  const tin = new Int32Array(CHUNK);
  const tout = new Int32Array(CHUNK);
  let tokensIn = 0;
  for (let done = 0; done < tokenRecords; ) {
    const n = Math.min(CHUNK, tokenRecords - done);
    for (let i = 0; i < n; i++) {
      at[i] = FROM + ((done + i) / tokenRecords) * (TO - FROM);
      dep[i] = deployments[Math.floor(rng() * DEPLOYMENTS)]!;
      tin[i] = 50 + Math.floor(rng() * 2000);
      tout[i] = 10 + Math.floor(rng() * 500);
    }
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      rollup.addAt(at[i]!, 'tokens_in', dep[i]!, tin[i]!);
      rollup.addAt(at[i]!, 'tokens_out', dep[i]!, tout[i]!);
      tokensIn += tin[i]!;
    }
    rollupMs += performance.now() - t0;
    rollupCpuMs += cpuMs(c0);
    done += n;
  }
  const records = attempts + tokenRecords;
  const rows = rollup.rows(new Date(TO).toISOString());

  // --- stored: a fresh database with the orgs, projects and a price catalogue ---
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-bench-metering-'));
  const store = await openStore(join(dir, 'fabrik.db'));
  try {
    const now = new Date(TO).toISOString();
    await store.db
      .insertInto('orgs')
      .values(
        Array.from({ length: ORGS }, (_, i) => ({
          id: `org_${String(i).padStart(2, '0')}`,
          name: `org-${String(i).padStart(2, '0')}`,
          display_name: '',
          residency: 'de',
          status: 'active',
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
    await store.db
      .insertInto('projects')
      .values(
        projects.map((p, i) => ({
          id: p.projectId,
          org_id: p.orgId,
          name: `p${i}`,
          display_name: '',
          uid: 200_000 + i,
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
    const price = (
      id: string,
      item: string,
      micros: number,
      over: { pool?: string; priority?: string; from?: string; to?: string } = {},
    ) => ({
      id,
      item,
      pool: over.pool ?? '',
      priority: over.priority ?? '',
      deployment_id: '',
      model: '',
      org_id: '',
      unit_price_micros: micros,
      currency: 'EUR',
      valid_from: over.from ?? '2026-01-01T00:00:00.000Z',
      valid_to: over.to ?? '',
      created_at: now,
      created_by: 'bench',
    });
    await store.db
      .insertInto('prices')
      .values([
        // A price change mid-month: the statement splits the B200 lines at the hour.
        price('p1', 'gpu-hour', 2_900_000, { pool: 'b200', to: '2026-11-16T00:00:00.000Z' }),
        price('p2', 'gpu-hour', 3_100_000, { pool: 'b200', from: '2026-11-16T00:00:00.000Z' }),
        price('p3', 'gpu-hour', 1_150_000, { pool: 'b200', priority: 'preemptible' }),
        price('p4', 'gpu-hour', 1_400_000, { pool: 'rtxpro6000' }),
        price('p5', 'tokens-in', 150_000),
        price('p6', 'tokens-out', 600_000),
        price('p7', 'gb-month', 20_000),
      ])
      .execute();
    const t0 = performance.now();
    await store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += 1000) {
        const values = rows.slice(i, i + 1000).map(toRow);
        await trx.insertInto('usage_hourly').values(values).execute();
      }
    });
    const writeMs = performance.now() - t0;

    // The biggest org (most rows) is the one billed.
    const perOrg = new Map<string, number>();
    for (const r of rows) perOrg.set(r.orgId, (perOrg.get(r.orgId) ?? 0) + 1);
    const [orgId, orgRows] = [...perOrg].sort((a, b) => b[1] - a[1])[0]!;
    const ctx: Ctx = {
      db: store.db,
      requestId: 'bench',
      caller: {
        keyId: '',
        keyPrefix: '',
        principalId: '',
        principal: 'bench',
        operator: true,
        scopeOrgId: '',
        scopeProjectId: '',
        grants: [],
      },
    };
    const orgName = `org-${orgId.slice(4)}`;
    const times: number[] = [];
    const cpuTimes: number[] = [];
    let statement: Awaited<ReturnType<typeof orgStatement>> | undefined;
    for (let i = 0; i < 5; i++) {
      const s0 = performance.now();
      const c0 = process.cpuUsage();
      statement = await orgStatement(ctx, orgName, MONTH, { now: TO + 3_600_000 });
      times.push(performance.now() - s0);
      cpuTimes.push(cpuMs(c0));
    }
    const statementMs = median(times);
    const rollupRecordsPerSec = Math.round(records / (rollupMs / 1000));
    const result = {
      bench: 'metering',
      records,
      rollupRecordsPerSec,
      statementMs: Math.round(statementMs * 10) / 10,
      attempts,
      attemptHours,
      attemptRollupMs: Math.round(attemptMs),
      tokenRecords,
      tokensIn,
      rollupMs: Math.round(rollupMs),
      // CPU time of this process in the same spans: on a shared, loaded machine wall time includes waiting for a core.
      rollupCpuMs: Math.round(rollupCpuMs),
      rollupRecordsPerCpuSec: Math.round(records / (rollupCpuMs / 1000)),
      statementCpuMs: Math.round(median(cpuTimes) * 10) / 10,
      loadAverage: loadavg()[0],
      cpus: cpus().length,
      rollupRows: rows.length,
      writeMs: Math.round(writeMs),
      statementColdMs: Math.round(times[0]! * 10) / 10,
      statementOrg: orgName,
      statementOrgRows: orgRows,
      statementLines: statement?.lines.length ?? 0,
      statementTotalEur: statement?.totals.amount ?? '',
      gpus: totalGpus,
      goals: { rollupRecordsPerSec: rollupRecordsPerSec >= 1_000_000, statementMs: statementMs < 200 },
    };
    if (!args.includes('--json')) process.stderr.write(`${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
