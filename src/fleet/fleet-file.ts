// Fleet files: the nodes of a site, written short. A node group names many nodes at once with a
// host range and deals them out in order to pods, racks, InfiniBand leaves and spines:
//
//   region: eu-de-muc1
//   pools:
//     - { name: b200, gpuModel: B200, gpuMemoryGiB: 180 }
//   nodeGroups:
//     - names: b200-[0001-0064]
//       pool: b200
//       gpus: 8
//       cpu: 112
//       ramGiB: 2048
//       pod: su[1-2]              # one id, or a range; nodesPerPod nodes each (here 32)
//       nodesPerPod: 32
//       rack: r[01-16]
//       nodesPerRack: 4
//       ibLeaf: leaf-[01-04]      # without nodesPerLeaf the nodes split evenly: 16 each
//       ibSpine: spine-1          # one id: all nodes of the group
//       labels: { nvlink: "5" }
//
// Pure: text in, plain data out, or a FleetFileError saying where and what.
import type { SchedNode } from '../scheduler/types.js';
import {
  DNS_LABEL_RULE,
  dnsLabel,
  fail,
  formatPath,
  formatProblem,
  InputProblem,
  integer,
  isDnsLabel,
  labelMap,
  list,
  type ParsedText,
  type Path,
  parseYamlText,
  record,
  string,
} from '../domain/input.js';
import { expandHostRange, HostRangeError } from './ranges.js';

export interface PoolSpec {
  readonly name: string;
  readonly gpuModel: string;
  readonly gpuMemoryGiB: number;
}

export interface NodeSpec {
  readonly name: string;
  readonly pool: string;
  readonly gpuModel: string;
  readonly gpuCount: number;
  readonly gpuMemoryGiB: number;
  readonly region: string;
  readonly pod: string;
  readonly rack: string;
  readonly ibLeaf: string;
  readonly ibSpine: string;
  readonly cpu: number;
  readonly ramGiB: number;
  readonly labels: Record<string, string>;
}

export interface FleetSpec {
  readonly region?: string;
  readonly pools: PoolSpec[];
  readonly nodes: NodeSpec[];
}

export const NODE_STATES = ['ready', 'cordoned', 'draining', 'down'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export class FleetFileError extends Error {
  readonly code = 'FLEET_FILE_INVALID';
  readonly status = 400;
  constructor(
    message: string,
    readonly source: string,
    readonly line: number,
    readonly column: number,
    /** Where in the file's structure, e.g. `nodeGroups[2].gpus`; empty for the whole file. */
    readonly path: string,
  ) {
    super(message);
    this.name = 'FleetFileError';
  }
}

// Limits that catch typos (an extra zero) long before they reach the scheduler.
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_NODES = 100_000;
const MAX_GPUS_PER_NODE = 16;
const MAX_CPU = 4096;
const MAX_RAM_GIB = 65_536;
const MAX_GPU_MEMORY_GIB = 4096;

const TOP_FIELDS = ['region', 'pools', 'nodeGroups'];
const POOL_FIELDS = ['name', 'gpuModel', 'gpuMemoryGiB'];
const GROUP_FIELDS = [
  'names',
  'pool',
  'region',
  'gpus',
  'cpu',
  'ramGiB',
  'pod',
  'nodesPerPod',
  'rack',
  'nodesPerRack',
  'ibLeaf',
  'nodesPerLeaf',
  'ibSpine',
  'nodesPerSpine',
  'labels',
];
const GROUP_REQUIRED = ['names', 'pool', 'gpus', 'cpu', 'ramGiB', 'pod', 'rack', 'ibLeaf', 'ibSpine'];

/** The topology levels a group deals its nodes out to, with the field that sets how many per id. */
const LEVELS = [
  { field: 'pod', per: 'nodesPerPod', what: 'pod' },
  { field: 'rack', per: 'nodesPerRack', what: 'rack' },
  { field: 'ibLeaf', per: 'nodesPerLeaf', what: 'leaf' },
  { field: 'ibSpine', per: 'nodesPerSpine', what: 'spine' },
] as const;

export function parseFleetFile(text: string, source = 'fleet.yaml'): FleetSpec {
  let parsed: ParsedText | undefined;
  try {
    if (text.length > MAX_FILE_BYTES) fail([], `file is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`);
    parsed = parseYamlText(text);
    return readFleet(parsed);
  } catch (e) {
    if (!(e instanceof InputProblem)) throw e;
    const pos = e.position ?? parsed?.locate(e.path, e.atKey) ?? { line: 1, column: 1 };
    throw new FleetFileError(
      formatProblem(source, pos, e.path, e.message),
      source,
      pos.line,
      pos.column,
      formatPath(e.path),
    );
  }

  function readFleet(doc: ParsedText): FleetSpec {
    if (doc.value === null || doc.value === undefined) fail([], 'the file is empty; expected pools and nodeGroups');
    const top = record(doc.value, [], TOP_FIELDS, ['pools', 'nodeGroups']);
    const region = top.region === undefined ? undefined : dnsLabel(top.region, ['region'], 'region');

    const pools = readPools(top.pools);
    const poolByName = new Map(pools.map((p) => [p.name, p]));

    const nodes: NodeSpec[] = [];
    const seen = new Map<string, number>(); // node name → group index
    const owner = new Topology(doc);
    const groups = list(top.nodeGroups, ['nodeGroups'], 1, 10_000);
    groups.forEach((raw, gi) => {
      const at: Path = ['nodeGroups', gi];
      const g = record(raw, at, GROUP_FIELDS, GROUP_REQUIRED);
      const names = expand(g.names, [...at, 'names']);
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        if (!isDnsLabel(name)) fail([...at, 'names'], `node name ${JSON.stringify(name)} is not ${DNS_LABEL_RULE}`);
        const prev = seen.get(name);
        if (prev !== undefined) {
          const where =
            prev === gi
              ? 'twice in this group'
              : `also in nodeGroups[${prev}].names at ${lineOf(doc, ['nodeGroups', prev, 'names'])}`;
          fail([...at, 'names'], `duplicate node name "${name}": listed ${where}`);
        }
        seen.set(name, gi);
      }
      if (nodes.length + names.length > MAX_NODES) fail([...at, 'names'], `more than ${MAX_NODES} nodes in the file`);

      const poolName = dnsLabel(g.pool, [...at, 'pool'], 'pool');
      const pool = poolByName.get(poolName);
      if (!pool) fail([...at, 'pool'], `unknown pool "${poolName}"; known: ${[...poolByName.keys()].join(', ')}`);
      const nodeRegion = g.region === undefined ? region : dnsLabel(g.region, [...at, 'region'], 'region');
      if (nodeRegion === undefined) fail(at, 'no region: set "region" at the top of the file or in this group');
      const gpus = integer(g.gpus, [...at, 'gpus'], 1, MAX_GPUS_PER_NODE);
      const cpu = integer(g.cpu, [...at, 'cpu'], 1, MAX_CPU);
      const ramGiB = integer(g.ramGiB, [...at, 'ramGiB'], 1, MAX_RAM_GIB);
      const labels = g.labels === undefined ? {} : labelMap(g.labels, [...at, 'labels']);
      const [podOf, rackOf, leafOf, spineOf] = LEVELS.map((l) => dealer(g, at, l, names.length));

      for (let i = 0; i < names.length; i++) {
        const node: NodeSpec = {
          name: names[i]!,
          pool: pool.name,
          gpuModel: pool.gpuModel,
          gpuCount: gpus,
          gpuMemoryGiB: pool.gpuMemoryGiB,
          region: nodeRegion,
          pod: podOf!(i),
          rack: rackOf!(i),
          ibLeaf: leafOf!(i),
          ibSpine: spineOf!(i),
          cpu,
          ramGiB,
          labels: { ...labels },
        };
        owner.check(node, at);
        nodes.push(node);
      }
    });
    return region === undefined ? { pools, nodes } : { region, pools, nodes };
  }
}

function readPools(raw: unknown): PoolSpec[] {
  const pools: PoolSpec[] = [];
  list(raw, ['pools'], 1, 256).forEach((p, i) => {
    const at: Path = ['pools', i];
    const r = record(p, at, POOL_FIELDS, POOL_FIELDS);
    const name = dnsLabel(r.name, [...at, 'name'], 'pool name');
    if (pools.some((q) => q.name === name)) fail([...at, 'name'], `duplicate pool name "${name}"`);
    const gpuModel = string(r.gpuModel, [...at, 'gpuModel'], 64);
    if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/.test(gpuModel)) {
      fail(
        [...at, 'gpuModel'],
        `GPU model ${JSON.stringify(gpuModel)} may hold letters, digits, spaces, '.', '_', '-'`,
      );
    }
    const gpuMemoryGiB = integer(r.gpuMemoryGiB, [...at, 'gpuMemoryGiB'], 1, MAX_GPU_MEMORY_GIB);
    pools.push({ name, gpuModel, gpuMemoryGiB });
  });
  return pools;
}

function expand(v: unknown, path: Path): string[] {
  const expr = string(v, path, 10_000);
  try {
    return expandHostRange(expr, MAX_NODES);
  } catch (e) {
    if (e instanceof HostRangeError) fail(path, e.message);
    throw e;
  }
}

/**
 * Maps a node's index within its group to an id of one topology level. The field holds one id
 * (all nodes), or a range of ids that take `nodesPerX` nodes each in order (the last may be short);
 * without `nodesPerX` the nodes split evenly over the ids.
 */
function dealer(
  g: Record<string, unknown>,
  at: Path,
  level: (typeof LEVELS)[number],
  count: number,
): (i: number) => string {
  const path = [...at, level.field];
  const ids = expand(g[level.field], path);
  ids.forEach((id) => {
    if (!isDnsLabel(id)) fail(path, `${level.what} id ${JSON.stringify(id)} is not ${DNS_LABEL_RULE}`);
  });
  if (new Set(ids).size !== ids.length) fail(path, `the ${level.what} ids repeat`);
  let per: number;
  if (g[level.per] !== undefined) {
    per = integer(g[level.per], [...at, level.per], 1, MAX_NODES);
    const need = Math.ceil(count / per);
    if (ids.length !== need && ids.length !== 1) {
      fail(path, `${ids.length} ${level.what} ids for ${count} nodes at ${per} per ${level.what}; need ${need}`);
    }
    if (ids.length === 1 && count > per) {
      fail(path, `1 ${level.what} id for ${count} nodes at ${per} per ${level.what}; need ${need}`);
    }
  } else {
    if (count % ids.length !== 0) {
      fail(path, `${count} nodes do not split evenly over ${ids.length} ${level.what} ids; set ${level.per}`);
    }
    per = count / ids.length;
  }
  return (i) => ids[Math.floor(i / per)]!;
}

/**
 * The tree must be a tree: a rack and a leaf switch sit in one pod, a pod hangs off one spine
 * group and lies in one region. Misaligned sizes (nodesPerLeaf 12 in pods of 32) show up here.
 */
class Topology {
  private readonly parent = new Map<string, { id: string; group: Path }>();
  constructor(private readonly doc: ParsedText) {}

  check(n: NodeSpec, at: Path): void {
    this.link('rack', n.rack, 'pod', n.pod, [...at, 'rack']);
    this.link('leaf', n.ibLeaf, 'pod', n.pod, [...at, 'ibLeaf']);
    this.link('pod', n.pod, 'spine', n.ibSpine, [...at, 'ibSpine']);
    this.link('pod', n.pod, 'region', n.region, [...at, 'pod']);
  }

  private link(what: string, id: string, upWhat: string, up: string, path: Path): void {
    const key = `${what}\0${upWhat}\0${id}`;
    const prev = this.parent.get(key);
    if (!prev) {
      this.parent.set(key, { id: up, group: path });
      return;
    }
    if (prev.id !== up) {
      fail(
        path,
        `${what} "${id}" would be in ${upWhat} "${prev.id}" (${formatPath(prev.group)}, ${lineOf(this.doc, prev.group)}) ` +
          `and in ${upWhat} "${up}"; a ${what} belongs to one ${upWhat}`,
      );
    }
  }
}

function lineOf(doc: ParsedText, path: Path): string {
  const p = doc.locate(path);
  return `line ${p.line}`;
}

/** The scheduler's view of nodes. Nodes without a state are ready; only ready nodes take new work. */
export function toSchedNodes(nodes: readonly NodeSpec[], states?: ReadonlyMap<string, NodeState>): SchedNode[] {
  return nodes.map((n) => ({
    name: n.name,
    pool: n.pool,
    gpuModel: n.gpuModel,
    pod: n.pod,
    rack: n.rack,
    leaf: n.ibLeaf,
    spine: n.ibSpine,
    gpus: n.gpuCount,
    labels: n.labels,
    schedulable: (states?.get(n.name) ?? 'ready') === 'ready',
  }));
}

/** Per pool: how many nodes and the most GPUs one node has, to reject impossible requests at submit. */
export function poolCapacity(nodes: readonly NodeSpec[]): Record<string, { nodes: number; gpusPerNode: number }> {
  const out: Record<string, { nodes: number; gpusPerNode: number }> = {};
  for (const n of nodes) {
    const c = out[n.pool] ?? { nodes: 0, gpusPerNode: 0 };
    out[n.pool] = { nodes: c.nodes + 1, gpusPerNode: Math.max(c.gpusPerNode, n.gpuCount) };
  }
  return out;
}
