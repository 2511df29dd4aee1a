// `npm run bench -- sim --json`: a trace (default: the public Philly-derived one on the B200 pool
// of the Munich fleet at 87.5 % offered load, arrivals compressed) under fabrik and every baseline
// (fifo, fifo-backfill, srtf-oracle, slurm-multifactor, tiresias-las), all through the real
// scheduler core. Per policy: the metrics, maxQueueS and jobsPerSec (jobs simulated per wall
// second of that policy's run); `ratiosTo[baseline][policy]`: each policy's figures divided by
// each baseline's (below 1 is better, except utilization).
// Options: --trace FILE (any trace), --fleet FILE, --pool NAME (rows without a pool; default
// b200), --tenants FILE, --load X (default 0.875; `none` keeps the trace's timing), --load-mode
// compress|replicate, --seed N, --policy a,b, --drain-after H|off, --out DIR (also writes
// result.json and report.html).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { POLICIES, type PolicyName, type ScheduleOptions } from '../src/scheduler/types.js';
import { loadFleet, loadTenants, loadTrace, writeOutputs } from '../src/sim/files.js';
import type { LoadMode } from '../src/sim/load.js';
import type { PolicyMetrics } from '../src/sim/metrics.js';
import { realCore } from '../src/sim/real-core.js';
import { ratiosToFifo } from '../src/sim/report.js';
import { runSimulation } from '../src/sim/simulation.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function file(args: string[], name: string, dflt?: string): string | undefined {
  const p = arg(args, name) ?? dflt;
  if (p !== undefined && !existsSync(p)) throw new Error(`${name}: not found: ${p}`);
  return p;
}

function drainOption(v: string | undefined): ScheduleOptions | undefined {
  if (v === undefined) return undefined;
  if (v === 'off') return { drainAfterS: Number.POSITIVE_INFINITY };
  const h = Number(v);
  if (!Number.isFinite(h) || h <= 0) throw new Error(`--drain-after: "${v}" is not a positive number of hours or off`);
  return { drainAfterS: h * 3600 };
}

function drainLabel(s: number | undefined): string {
  if (s === undefined) return 'default';
  return Number.isFinite(s) ? `${s / 3600} h` : 'off';
}

const round = (x: number, d = 4) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

/** a / b, with 0 / 0 = 1 (both perfect) and x / 0 = Infinity (JSON: null). */
const div = (a: number, b: number): number => (b === 0 ? (a === 0 ? 1 : Number.POSITIVE_INFINITY) : a / b);

/** Every policy's figures over every other's: ratiosTo[baseline][policy]. */
export function ratiosToEach(
  policies: Partial<Record<PolicyName, PolicyMetrics>>,
): Record<string, Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, Record<string, number>>> = {};
  const entries = Object.entries(policies) as [PolicyName, PolicyMetrics][];
  for (const [base, b] of entries) {
    out[base] = {};
    for (const [name, m] of entries) {
      if (name === base) continue;
      out[base][name] = {
        avgQueue: round(div(m.avgQueueS, b.avgQueueS)),
        p99Queue: round(div(m.p99QueueS, b.p99QueueS)),
        maxQueue: round(div(m.maxQueueS, b.maxQueueS)),
        avgJct: round(div(m.avgJctS, b.avgJctS)),
        p99Jct: round(div(m.p99JctS, b.p99JctS)),
        avgBoundedSlowdown: round(div(m.avgBoundedSlowdown, b.avgBoundedSlowdown)),
        utilization: round(div(m.utilization, b.utilization)),
      };
    }
  }
  return out;
}

export default async function (args: string[]): Promise<object> {
  const tracePath = file(args, '--trace', path.resolve(repoRoot, 'data/traces/philly-vc.csv')) as string;
  const fleetPath = file(args, '--fleet', path.resolve(repoRoot, 'examples/fleets/munich.yaml')) as string;
  const tenantsPath = file(args, '--tenants');
  const loadArg = arg(args, '--load') ?? '0.875';
  const load = loadArg === 'none' ? undefined : Number(loadArg);
  if (load !== undefined && !(load > 0)) throw new Error(`--load: "${loadArg}" is not a positive number or none`);
  const loadMode = (arg(args, '--load-mode') ?? 'compress') as LoadMode;
  if (loadMode !== 'compress' && loadMode !== 'replicate') throw new Error(`--load-mode: "${loadMode}"`);
  const policies = (arg(args, '--policy')?.split(',') ?? [...POLICIES]) as PolicyName[];
  for (const p of policies) if (!POLICIES.includes(p)) throw new Error(`--policy: unknown policy "${p}"`);
  const options = drainOption(arg(args, '--drain-after'));

  const trace = loadTrace(tracePath);
  const nodes = loadFleet(fleetPath);
  const result = runSimulation({
    traceName: trace.name,
    jobs: trace.jobs,
    nodes,
    ...(tenantsPath ? { quotas: loadTenants(tenantsPath, nodes) } : {}),
    defaultPool: arg(args, '--pool') ?? 'b200',
    policies,
    load,
    loadMode,
    seed: Number(arg(args, '--seed') ?? '1'),
    driver: realCore(options ? { options } : {}),
  });
  const out = arg(args, '--out');
  if (out) writeOutputs(out, result);

  const perPolicy: Record<string, unknown> = {};
  for (const p of policies) {
    const m = result.policies[p] as PolicyMetrics;
    perPolicy[p] = {
      avgJctS: m.avgJctS,
      p99JctS: m.p99JctS,
      avgQueueS: m.avgQueueS,
      p99QueueS: m.p99QueueS,
      maxQueueS: m.maxQueueS,
      avgBoundedSlowdown: m.avgBoundedSlowdown,
      utilization: m.utilization,
      jain: m.jain,
      preemptions: m.preemptions,
      cycles: m.cycles,
      wallS: round(m.wallS, 2),
      jobsPerSec: Math.round(m.jobsPerSec),
    };
  }
  const fabrik = result.policies.fabrik;
  return {
    bench: 'sim',
    trace: result.trace,
    jobs: result.jobs,
    rejected: result.rejected,
    pools: result.pools,
    capacityGpus: result.capacityGpus,
    load: round(result.load),
    traceLoad: round(result.traceLoad),
    loadMode: result.loadMode,
    drain: drainLabel(options?.drainAfterS),
    policies: perPolicy,
    // Jobs simulated per wall second of the fabrik run (simulated hours per second depend on the trace).
    jobsPerSec: fabrik ? Math.round(fabrik.jobsPerSec) : null,
    simHoursPerSec: fabrik ? Math.round(fabrik.simHoursPerSec) : null,
    simHours: fabrik ? Math.round(fabrik.simHours) : null,
    ratiosTo: ratiosToEach(result.policies),
    ratiosToFifo: Object.fromEntries(
      Object.entries(ratiosToFifo(result.policies)).map(([p, r]) => [
        p,
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)])),
      ]),
    ),
    wallS: Object.fromEntries(policies.map((p) => [p, round(result.policies[p]?.wallS ?? 0, 2)])),
  };
}
