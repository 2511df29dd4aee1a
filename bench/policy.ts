// Sovereignty policy benchmark: what Cedar costs per decision, and what placement under policies
// costs a scheduling cycle. The Munich fleet (examples/fleets/munich.yaml) with its pods split
// between a German and a French region, 40 orgs (half `de`, half `eu`), 200 projects, a queue of
// mixed classifications. Measures, in the same run:
//   - decisionUs: one Cedar placement decision (preparsed set, entities built per call), p50;
//   - allowancesMs: the allowances of the whole queue from a cold memo (one per kind of workload);
//   - allowancesWarmMs: the same in the next cycle (decisions are kept while the set is in force);
//   - scheduleMs / scheduleWithPolicyMs: schedule(snapshot) without and with the allowances;
//     ratio = with / without.
// Options: --pending N (default 20000), --seed N.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseFleetFile, toSchedNodes } from '../src/fleet/fleet-file.js';
import { compilePolicies } from '../src/policy/cedar.js';
import { DEFAULT_POLICIES } from '../src/policy/default-policies.js';
import { PlacementPolicy, type PolicyNode } from '../src/policy/placement.js';
import { decidePlacement } from '../src/policy/sovereignty.js';
import { checkFeasible, schedule } from '../src/scheduler/index.js';
import { int, pick, rng } from '../src/scheduler/random-snapshot.js';
import type { PoolQuota, WorkloadRequest } from '../src/scheduler/types.js';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
}
const round = (x: number) => Math.round(x * 100) / 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export default async function (args: string[]): Promise<object> {
  const target = flag(args, 'pending', 20_000);
  const r = rng(flag(args, 'seed', 11));
  const path = fileURLToPath(new URL('../examples/fleets/munich.yaml', import.meta.url));
  const spec = parseFleetFile(readFileSync(path, 'utf8'), path);
  const pods = [...new Set(spec.nodes.map((n) => n.pod))];
  // Every third pod is in Paris, the rest in Munich.
  const regionOf = (pod: string) => (pods.indexOf(pod) % 3 === 2 ? 'eu-fr-par1' : 'eu-de-muc1');
  const policyNodes: PolicyNode[] = spec.nodes.map((n) => ({
    name: n.name,
    region: regionOf(n.pod),
    pool: n.pool,
    gpuModel: n.gpuModel,
    labels: pods.indexOf(n.pod) % 4 === 0 ? { ...n.labels, exclusive: 'true' } : n.labels,
  }));
  const nodes = toSchedNodes(spec.nodes);
  const c = compilePolicies(DEFAULT_POLICIES);
  if (!c.ok) throw new Error('default policies do not compile');
  const policies = c.policies;

  // 1. One decision, uncached.
  const times: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t0 = performance.now();
    decidePlacement(
      policies,
      {
        org: `org${i % 40}`,
        project: `p${i}`,
        residency: i % 2 ? 'de' : 'eu',
        classification: 'internal',
        kind: 'training',
      },
      { region: i % 3 ? 'eu-de-muc1' : 'eu-fr-par1', pool: 'b200', gpuModel: 'B200', exclusive: i % 5 === 0 },
    );
    times.push((performance.now() - t0) * 1000);
  }

  // 2. A queue of the tenants' work.
  const orgs = Array.from({ length: 40 }, (_, k) => ({ name: `org${k}`, residency: k % 2 ? 'de' : 'eu' }));
  const projects = Array.from({ length: 200 }, (_, k) => ({ ref: `org${k % 40}.p${k}`, org: orgs[k % 40]! }));
  const quotas: PoolQuota[] = [];
  for (const pool of ['b200', 'rtxpro6000']) {
    const cap = nodes.filter((n) => n.pool === pool).reduce((s, n) => s + n.gpus, 0);
    for (const p of projects) quotas.push({ project: p.ref, pool, guaranteed: 0, limit: Math.floor(cap / 4) });
  }
  const classes = ['public', 'internal', 'internal', 'confidential', 'restricted'];
  const pending: (WorkloadRequest & { classification: string; org: { name: string; residency: string } })[] = [];
  while (pending.length < target) {
    const p = pick(r, projects);
    const classification = pick(r, classes);
    const gpusPerNode = pick(r, [1, 2, 4, 8, 8]);
    const w = {
      id: `w${pending.length}`,
      project: p.ref,
      pool: r() < 0.8 ? 'b200' : 'rtxpro6000',
      kind: 'training' as const,
      priority: 'normal' as const,
      nodes: gpusPerNode === 8 && r() < 0.2 ? int(r, 2, 8) : 1,
      gpusPerNode,
      maxRuntimeS: pick(r, [600, 3600, 4 * 3600]),
      submittedAt: int(r, 0, 86_400),
      ...(classification === 'restricted' ? { exclusive: true } : {}),
      classification,
      org: p.org,
    };
    if (checkFeasible(w, nodes).ok) pending.push(w);
  }

  // 3. Allowances for the whole queue, cold.
  const t1 = performance.now();
  const rules = new PlacementPolicy(policies, policyNodes);
  const withPolicy = pending.map((w) => {
    const allowedNodes = rules.allowanceFor({
      org: w.org.name,
      project: w.project,
      residency: w.org.residency,
      classification: w.classification,
      kind: w.kind,
    });
    return allowedNodes ? { ...w, allowedNodes } : w;
  });
  const allowancesMs = performance.now() - t1;
  // The next cycle: decisions are kept per policy set, only the node lists are rebuilt.
  const t2 = performance.now();
  const again = new PlacementPolicy(policies, policyNodes);
  for (const w of pending)
    again.allowanceFor({
      org: w.org.name,
      project: w.project,
      residency: w.org.residency,
      classification: w.classification,
      kind: w.kind,
    });
  const allowancesWarmMs = performance.now() - t2;
  const kinds = new Set(withPolicy.map((w) => w.allowedNodes?.key ?? '')).size;

  // 4. A cycle without and with the allowances, alternating (same machine load for both).
  const base = { now: 86_400, nodes, quotas, running: [], policy: 'fabrik' as const };
  const plain: number[] = [];
  const policed: number[] = [];
  let placedPlain = 0;
  let placedPoliced = 0;
  for (let k = 0; k < 3; k++) {
    let t0 = performance.now();
    placedPlain = schedule({ ...base, pending }).place.length;
    plain.push(performance.now() - t0);
    t0 = performance.now();
    placedPoliced = schedule({ ...base, pending: withPolicy }).place.length;
    policed.push(performance.now() - t0);
  }
  const scheduleMs = median(plain);
  const scheduleWithPolicyMs = median(policed);
  return {
    bench: 'policy',
    decisionUs: round(median(times)),
    allowancesMs: round(allowancesMs),
    allowancesWarmMs: round(allowancesWarmMs),
    kindsOfWorkload: kinds,
    scheduleMs: round(scheduleMs),
    scheduleWithPolicyMs: round(scheduleWithPolicyMs),
    ratio: round(scheduleWithPolicyMs / scheduleMs),
    placed: placedPlain,
    placedWithPolicy: placedPoliced,
    nodes: nodes.length,
    pending: pending.length,
    load: round(loadavg()[0]!),
  };
}
