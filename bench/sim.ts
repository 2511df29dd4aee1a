// `npm run bench -- sim --json`: the public Philly-derived trace on the B200 pool of the Munich
// fleet at 85–90 % offered load (arrivals compressed), under fabrik and the baselines (fifo,
// fifo-backfill, srtf-oracle, slurm-multifactor, tiresias-las), all
// through the real scheduler core. Options: --load X (default 0.875), --policy a,b, --out DIR
// (also writes result.json and report.html), --trace FILE.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { POLICIES, type PolicyName } from '../src/scheduler/types.js';
import { loadFleet, loadTrace, writeOutputs } from '../src/sim/files.js';
import { realCore } from '../src/sim/real-core.js';
import { policyJson, ratiosToFifo } from '../src/sim/report.js';
import { runSimulation } from '../src/sim/simulation.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export default async function (args: string[]): Promise<object> {
  const tracePath = arg(args, '--trace') ?? path.resolve(repoRoot, 'data/traces/philly-vc.csv');
  const fleetPath = path.resolve(repoRoot, 'examples/fleets/munich.yaml');
  if (!existsSync(tracePath)) throw new Error(`trace not found: ${tracePath}`);
  const load = Number(arg(args, '--load') ?? '0.875');
  const policies = (arg(args, '--policy')?.split(',') ?? [...POLICIES]) as PolicyName[];

  const trace = loadTrace(tracePath);
  const nodes = loadFleet(fleetPath);
  const result = runSimulation({
    traceName: trace.name,
    jobs: trace.jobs,
    nodes,
    defaultPool: 'b200',
    policies,
    load,
    driver: realCore(),
  });
  const out = arg(args, '--out');
  if (out) writeOutputs(out, result);

  const perPolicy: Record<string, unknown> = {};
  for (const p of policies) {
    const m = result.policies[p]!;
    const { avgJctS, p99JctS, avgQueueS, p99QueueS, avgBoundedSlowdown, utilization, jain, preemptions } = policyJson(
      m,
    ) as Record<string, number>;
    perPolicy[p] = {
      avgJctS,
      p99JctS,
      avgQueueS,
      p99QueueS,
      avgBoundedSlowdown,
      utilization,
      jain,
      preemptions,
      maxQueueS: m.maxQueueS,
      jobsPerSec: Math.round(m.jobsPerSec),
    };
  }
  const fabrik = result.policies.fabrik;
  const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    bench: 'sim',
    trace: result.trace,
    jobs: result.jobs,
    policies: perPolicy,
    load: round(result.load),
    // Measured on the fabrik policy's run alone (simulated span / wall time of that run).
    simHoursPerSec: fabrik ? Math.round(fabrik.simHoursPerSec) : null,
    // Jobs simulated per wall second of the fabrik run (simulated hours per second depend on the trace).
    jobsPerSec: fabrik ? Math.round(fabrik.jobsPerSec) : null,
    ratiosToFifo: Object.fromEntries(
      Object.entries(ratiosToFifo(result.policies)).map(([p, r]) => [
        p,
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)])),
      ]),
    ),
    capacityGpus: result.capacityGpus,
    simHours: fabrik ? Math.round(fabrik.simHours) : null,
    wallS: Object.fromEntries(policies.map((p) => [p, round(result.policies[p]!.wallS, 2)])),
  };
}
