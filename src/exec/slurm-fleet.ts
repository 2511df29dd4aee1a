// The fleet of a Slurm-managed cluster, read from Slurm: `sinfo --json` (22.05 has no
// `scontrol --json`) into fabrik's FleetSpec plus node states. Node names stay Slurm's, so a
// placement's nodes are `--nodelist` as they are.
//
//   pool       the node's first partition (`<partition>-<gpu type>` where a partition mixes types)
//   gpus       GRES `gpu:8` or `gpu:h100:8(S:0-1)`; nodes without GPUs are skipped
//   gpu model  the GRES type (upper-cased), or feature `gpu=<model>`, else options.gpuModel
//   topology   features `region=`, `pod=`, `rack=`, `leaf=`, `spine=`; defaults below
//   labels     other features: `k=v` as k: v, a bare feature as name: "true"
//   state      idle/mixed/allocated → ready; DRAIN on a busy node → draining, on an idle one →
//              cordoned; down, error, not responding, future, unknown → down
// The parse functions are pure; importSlurmFleet runs sinfo.
import { isDnsLabel } from '../domain/ids.js';
import type { FleetSpec, NodeSpec, NodeState, PoolSpec } from '../fleet/fleet-file.js';
import { clientEnv, type CommandRunner, execFileRunner, slurmCall } from './slurm-cmd.js';

export interface SlurmFleetOptions {
  /** Region of nodes without a `region=` feature. */
  readonly region?: string;
  /** Model of GPUs whose GRES has no type and no `gpu=` feature. */
  readonly gpuModel?: string;
  /** Memory per GPU where neither a `gpumem=` feature nor the model table says. */
  readonly gpuMemoryGiB?: number;
}

export interface SlurmFleet {
  readonly spec: FleetSpec;
  readonly states: Map<string, NodeState>;
  /** Slurm's reason for nodes that are not ready (drain reason, "Not responding"). */
  readonly reasons: Map<string, string>;
  /** Partition to submit to for each node (its pool's partition). */
  readonly partitionOf: Map<string, string>;
  readonly skipped: { node: string; reason: string }[];
}

const DEFAULT_REGION = 'slurm';
const DEFAULT_MODEL = 'GPU';
const DEFAULT_GPU_MEMORY_GIB = 80;
// Memory per GPU of common models, for a GRES type that says only the model.
const GPU_MEMORY_GIB: Record<string, number> = {
  A100: 80,
  H100: 80,
  H200: 141,
  B200: 180,
  GB200: 186,
  B300: 288,
  L40S: 48,
  L4: 24,
};
const TOPOLOGY_FEATURES = new Set(['region', 'pod', 'rack', 'leaf', 'ibleaf', 'spine', 'ibspine', 'gpu', 'gpumem']);
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const MODEL = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

/** GPUs in a GRES string: `gpu:8`, `gpu:h100:8(S:0-1)`, `gpu:a100:2,gpu:a100:2`, `(null)`. */
export function parseGres(gres: string): { count: number; type?: string } {
  let count = 0;
  let type: string | undefined;
  for (const part of gres.split(/,(?![^(]*\))/)) {
    const m = /^gpu(?::([^:(]+))?:(\d+)/.exec(part.trim());
    if (!m) continue;
    count += Number(m[2]);
    type ??= m[1];
  }
  return type === undefined ? { count } : { count, type };
}

/** fabrik's node state from Slurm's base state and flags (22.05: `state` + `state_flags`). */
export function nodeStateOf(state: string | readonly string[], flags: readonly string[] = []): NodeState {
  const all = [...(Array.isArray(state) ? state : [state]), ...flags].map((s) => String(s).toUpperCase());
  const base = all[0] ?? 'UNKNOWN';
  const has = (f: string) => all.includes(f);
  if (['DOWN', 'ERROR', 'FUTURE', 'UNKNOWN'].includes(base) || has('NOT_RESPONDING') || has('FAIL')) return 'down';
  if (has('DRAIN') || has('DRAINING') || has('DRAINED')) return base === 'IDLE' ? 'cordoned' : 'draining';
  if (has('MAINTENANCE')) return 'cordoned';
  return 'ready';
}

/** Features `a=b,nvlink,pod=su1` as key → value ('' for a bare feature). */
function features(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of text.split(',')) {
    const t = f.trim();
    if (!t) continue;
    const eq = t.indexOf('=');
    if (eq < 0) out.set(t, '');
    else out.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return out;
}

function dnsish(s: string): string | undefined {
  const t = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return isDnsLabel(t) ? t : undefined;
}

export function parseSinfoJson(text: string, opts: SlurmFleetOptions = {}): SlurmFleet {
  const doc = JSON.parse(text) as { nodes?: unknown[] };
  if (!Array.isArray(doc.nodes)) throw new Error('sinfo --json: no "nodes" array in the output');
  const states = new Map<string, NodeState>();
  const reasons = new Map<string, string>();
  const partitionOf = new Map<string, string>();
  const skipped: { node: string; reason: string }[] = [];

  interface Draft extends Omit<NodeSpec, 'pool'> {
    readonly partition: string;
  }
  const drafts: Draft[] = [];
  const seen = new Set<string>();
  for (const raw of doc.nodes) {
    const n = raw as Record<string, unknown>;
    const name = String(n.name ?? '');
    if (seen.has(name)) continue; // sinfo may list a node once per partition
    seen.add(name);
    if (!isDnsLabel(name)) {
      skipped.push({ node: name, reason: 'the name is not a DNS label (fabrik uses Slurm node names as they are)' });
      continue;
    }
    const gres = parseGres(String(n.gres ?? ''));
    if (gres.count < 1) {
      skipped.push({ node: name, reason: 'no GPUs in its GRES' });
      continue;
    }
    const partitions = Array.isArray(n.partitions) ? n.partitions.map(String) : [];
    const partition = partitions[0];
    if (!partition || !dnsish(partition)) {
      skipped.push({
        node: name,
        reason: partition ? `partition "${partition}" cannot be a pool name` : 'in no partition',
      });
      continue;
    }
    const f = features(String(n.active_features ?? n.features ?? ''));
    const region = (f.get('region') && dnsish(f.get('region')!)) || opts.region || DEFAULT_REGION;
    const pod = (f.get('pod') && dnsish(f.get('pod')!)) || 'slurm';
    const featureModel = f.get('gpu');
    const model =
      (featureModel && MODEL.test(featureModel) ? featureModel : gres.type?.toUpperCase()) ??
      opts.gpuModel ??
      DEFAULT_MODEL;
    const gpuMem =
      Number(f.get('gpumem')) || GPU_MEMORY_GIB[model.toUpperCase()] || opts.gpuMemoryGiB || DEFAULT_GPU_MEMORY_GIB;
    const labels: Record<string, string> = {};
    for (const [k, v] of f) {
      if (TOPOLOGY_FEATURES.has(k.toLowerCase())) continue;
      const value = v === '' ? 'true' : v;
      if (LABEL_KEY.test(k) && LABEL_VALUE.test(value)) labels[k] = value;
    }
    drafts.push({
      name,
      partition,
      gpuModel: MODEL.test(model) ? model : DEFAULT_MODEL,
      gpuCount: gres.count,
      gpuMemoryGiB: gpuMem,
      region,
      pod,
      // Defaults that keep the topology a tree: a rack and a leaf within their pod.
      rack: (f.get('rack') && dnsish(f.get('rack')!)) || `${pod}-rack`,
      ibLeaf:
        ((f.get('leaf') ?? f.get('ibleaf')) ? dnsish(f.get('leaf') ?? f.get('ibleaf')!) : undefined) || `${pod}-leaf`,
      ibSpine:
        ((f.get('spine') ?? f.get('ibspine')) ? dnsish(f.get('spine') ?? f.get('ibspine')!) : undefined) ||
        'slurm-spine',
      cpu: Math.max(1, Number(n.cpus) || 1),
      ramGiB: Math.max(1, Math.floor((Number(n.real_memory) || 1024) / 1024)),
      labels,
    });
    const flags = Array.isArray(n.state_flags) ? n.state_flags.map(String) : [];
    const st = nodeStateOf(Array.isArray(n.state) ? n.state.map(String) : String(n.state ?? 'unknown'), flags);
    states.set(name, st);
    if (st !== 'ready' && n.reason) reasons.set(name, String(n.reason));
  }

  // A pool has one GPU model: a partition mixing models becomes one pool per model.
  const modelsOf = new Map<string, Set<string>>();
  for (const d of drafts) modelsOf.set(d.partition, (modelsOf.get(d.partition) ?? new Set()).add(d.gpuModel));
  const pools = new Map<string, PoolSpec>();
  const nodes: NodeSpec[] = [];
  for (const { partition, ...d } of drafts) {
    const base = dnsish(partition)!;
    const pool = modelsOf.get(partition)!.size > 1 ? (dnsish(`${base}-${d.gpuModel}`) ?? base) : base;
    if (!pools.has(pool)) pools.set(pool, { name: pool, gpuModel: d.gpuModel, gpuMemoryGiB: d.gpuMemoryGiB });
    const p = pools.get(pool)!;
    nodes.push({ ...d, pool, gpuModel: p.gpuModel, gpuMemoryGiB: p.gpuMemoryGiB });
    partitionOf.set(d.name, partition);
  }
  const spec: FleetSpec = { pools: [...pools.values()], nodes };
  return { spec, states, reasons, partitionOf, skipped };
}

/** Reads the fleet from the cluster that `slurmConf` (or $SLURM_CONF) points at. */
export async function importSlurmFleet(
  opts: SlurmFleetOptions & { slurmConf?: string; commandRunner?: CommandRunner; timeoutMs?: number } = {},
): Promise<SlurmFleet> {
  const text = await slurmCall(opts.commandRunner ?? execFileRunner, 'sinfo', ['--json'], {
    env: clientEnv(opts.slurmConf ?? process.env.SLURM_CONF),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  return parseSinfoJson(text, opts);
}
