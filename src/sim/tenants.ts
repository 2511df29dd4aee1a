// Per-project quotas for a simulation: a tenants file, or a rule derived from the trace.
//
// Tenants file (YAML):
//   projects:
//     - name: vc-11cb48
//       quotas:
//         b200: { guaranteed: 800, limit: 8000, weight: 2 }
//
// Without a file, every project of the trace gets, in each pool it uses:
//   guaranteed = floor(share × pool GPUs), share = its GPU-seconds / all GPU-seconds in that pool;
//   limit = pool GPUs (it may borrow all idle capacity); weight = 1.
// That is what an operator would sell if each tenant bought capacity for its own steady load,
// and the floors keep the guarantees' sum within the pool.
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { PoolQuota } from '../scheduler/types.js';
import { SimInputError } from './errors.js';

/** Reads a tenants file. `poolGpus` lists the fleet's pools and their GPU counts. */
export function parseTenantsFile(
  text: string,
  poolGpus: ReadonlyMap<string, number>,
  source = 'tenants.yaml',
): PoolQuota[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new SimInputError(`${source}:${lc.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  }
  const lineOf = (n: Node | null | undefined): string => {
    const at = n?.range ? lc.linePos(n.range[0]).line : 1;
    return `${source}:${at}`;
  };
  const root = doc.contents;
  const projects = isMap(root) ? root.get('projects', true) : undefined;
  if (!isSeq(projects)) throw new SimInputError(`${lineOf(root as Node)}: projects: expected a list of projects`);

  const out: PoolQuota[] = [];
  const names = new Set<string>();
  projects.items.forEach((item, i) => {
    const where = `projects[${i}]`;
    if (!isMap(item))
      throw new SimInputError(`${lineOf(item as Node)}: ${where}: expected a mapping with name and quotas`);
    const nameNode = item.get('name', true);
    const name = isScalar(nameNode) ? String(nameNode.value ?? '').trim() : '';
    if (name === '') throw new SimInputError(`${lineOf(item)}: ${where}.name: missing`);
    if (names.has(name)) throw new SimInputError(`${lineOf(nameNode)}: ${where}.name: "${name}" appears twice`);
    names.add(name);
    const quotas = item.get('quotas', true);
    if (!isMap(quotas)) throw new SimInputError(`${lineOf(item)}: ${where}.quotas: expected a mapping of pool → quota`);
    for (const pair of quotas.items) {
      const pool = isScalar(pair.key) ? String(pair.key.value) : '';
      const at = lineOf(pair.key as Node);
      const cap = poolGpus.get(pool);
      if (cap === undefined) {
        throw new SimInputError(
          `${at}: ${where}.quotas: pool "${pool}" is not in the fleet (${[...poolGpus.keys()].join(', ')})`,
        );
      }
      const q = pair.value;
      if (!isMap(q)) throw new SimInputError(`${at}: ${where}.quotas.${pool}: expected { guaranteed, limit, weight }`);
      const field = (key: string, dflt: number | undefined, integer: boolean): number => {
        const n = q.get(key, true);
        if (n === undefined) {
          if (dflt === undefined) throw new SimInputError(`${lineOf(q)}: ${where}.quotas.${pool}.${key}: missing`);
          return dflt;
        }
        const v = isScalar(n) ? n.value : undefined;
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
          const what = integer ? 'a non-negative integer' : 'a non-negative number';
          throw new SimInputError(
            `${lineOf(n)}: ${where}.quotas.${pool}.${key}: ${JSON.stringify(v ?? null)} is not ${what}`,
          );
        }
        return v;
      };
      const guaranteed = field('guaranteed', 0, true);
      const limit = field('limit', cap, true);
      const weight = field('weight', 1, false);
      if (guaranteed > limit) {
        throw new SimInputError(
          `${lineOf(q)}: ${where}.quotas.${pool}: guaranteed ${guaranteed} is above limit ${limit}`,
        );
      }
      if (weight <= 0) throw new SimInputError(`${lineOf(q)}: ${where}.quotas.${pool}.weight: must be greater than 0`);
      out.push({ project: name, pool, guaranteed, limit, weight });
    }
  });
  for (const [pool, cap] of poolGpus) {
    const sum = out.filter((q) => q.pool === pool).reduce((s, q) => s + q.guaranteed, 0);
    if (sum > cap) {
      throw new SimInputError(
        `${source}: guaranteed quotas in pool "${pool}" sum to ${sum}, more than its ${cap} GPUs`,
      );
    }
  }
  return out;
}

export interface JobDemand {
  readonly project: string;
  readonly pool: string;
  readonly gpus: number;
  readonly durationS: number;
}

/** The rule used without a tenants file (see the file comment). */
export function quotasFromTrace(jobs: readonly JobDemand[], poolGpus: ReadonlyMap<string, number>): PoolQuota[] {
  const byPool = new Map<string, Map<string, number>>();
  for (const j of jobs) {
    let m = byPool.get(j.pool);
    if (!m) {
      m = new Map();
      byPool.set(j.pool, m);
    }
    m.set(j.project, (m.get(j.project) ?? 0) + j.gpus * j.durationS);
  }
  const out: PoolQuota[] = [];
  for (const [pool, m] of [...byPool].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const cap = poolGpus.get(pool) ?? 0;
    const total = [...m.values()].reduce((s, x) => s + x, 0);
    for (const [project, w] of [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      out.push({ project, pool, guaranteed: Math.floor((w / total) * cap), limit: cap, weight: 1 });
    }
  }
  return out;
}
