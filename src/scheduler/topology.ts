// The fleet as index ranges. Nodes are sorted by (pool, pod, leaf, name), so every pool, pod
// and leaf switch is a contiguous range of node indexes and "lowest index" means "same pod,
// same leaf" when placement breaks ties. Built once per node set; only labels and the
// schedulable flag change in place.
import type { NodeAllowance, SchedNode } from './types.js';

/** GPUs of a node are tracked as bits of a 32-bit word. */
export const MAX_GPUS_PER_NODE = 32;

export interface LeafTopo {
  readonly name: string;
  readonly index: number;
  readonly pod: number;
  readonly start: number;
  readonly end: number;
}

export interface PodTopo {
  readonly name: string;
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly leaves: readonly LeafTopo[];
}

export interface PoolTopo {
  readonly name: string;
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly pods: readonly PodTopo[];
  readonly leaves: readonly LeafTopo[];
  /** GPUs of the pool's largest node. */
  readonly nodeGpus: number;
  /** Every node has nodeGpus GPUs: whole-node counters then answer fit questions alone. */
  readonly homogeneous: boolean;
}

function compareNodes(a: SchedNode, b: SchedNode): number {
  return cmp(a.pool, b.pool) || cmp(a.pod, b.pod) || cmp(a.leaf, b.leaf) || cmp(a.name, b.name);
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Topology {
  readonly nodes: SchedNode[];
  readonly byName = new Map<string, number>();
  readonly gpus: Uint8Array;
  readonly nodeLeaf: Int32Array;
  readonly nodePod: Int32Array;
  readonly nodePool: Int32Array;
  /** 1 when the node takes new work. Mutable: see Capacity.setSchedulable. */
  readonly schedulable: Uint8Array;
  readonly pools: PoolTopo[] = [];
  readonly poolByName = new Map<string, PoolTopo>();
  readonly pods: PodTopo[] = [];
  readonly leaves: LeafTopo[] = [];
  private readonly eligibleBySelector = new Map<string, Uint8Array>();

  constructor(input: readonly SchedNode[]) {
    const nodes = [...input].sort(compareNodes);
    const n = nodes.length;
    this.nodes = nodes;
    this.gpus = new Uint8Array(n);
    this.nodeLeaf = new Int32Array(n);
    this.nodePod = new Int32Array(n);
    this.nodePool = new Int32Array(n);
    this.schedulable = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const node = nodes[i];
      if (this.byName.has(node.name)) throw new Error(`duplicate node name "${node.name}"`);
      if (!Number.isInteger(node.gpus) || node.gpus < 0 || node.gpus > MAX_GPUS_PER_NODE) {
        throw new Error(`node "${node.name}" has ${node.gpus} GPUs; the scheduler handles 0 to ${MAX_GPUS_PER_NODE}`);
      }
      this.byName.set(node.name, i);
      this.gpus[i] = node.gpus;
      this.schedulable[i] = node.schedulable ? 1 : 0;
    }
    let i = 0;
    while (i < n) {
      const pool = nodes[i].pool;
      const poolStart = i;
      const pods: PodTopo[] = [];
      const poolLeaves: LeafTopo[] = [];
      let nodeGpus = 0;
      let minGpus = MAX_GPUS_PER_NODE;
      while (i < n && nodes[i].pool === pool) {
        const pod = nodes[i].pod;
        const podStart = i;
        const podIndex = this.pods.length;
        const leaves: LeafTopo[] = [];
        while (i < n && nodes[i].pool === pool && nodes[i].pod === pod) {
          const leaf = nodes[i].leaf;
          const leafStart = i;
          while (i < n && nodes[i].pool === pool && nodes[i].pod === pod && nodes[i].leaf === leaf) {
            nodeGpus = Math.max(nodeGpus, nodes[i].gpus);
            minGpus = Math.min(minGpus, nodes[i].gpus);
            this.nodePod[i] = podIndex;
            this.nodeLeaf[i] = this.leaves.length;
            this.nodePool[i] = this.pools.length;
            i++;
          }
          const lt: LeafTopo = { name: leaf, index: this.leaves.length, pod: podIndex, start: leafStart, end: i };
          this.leaves.push(lt);
          leaves.push(lt);
          poolLeaves.push(lt);
        }
        const pt: PodTopo = { name: pod, index: podIndex, start: podStart, end: i, leaves };
        this.pods.push(pt);
        pods.push(pt);
      }
      const p: PoolTopo = {
        name: pool,
        index: this.pools.length,
        start: poolStart,
        end: i,
        pods,
        leaves: poolLeaves,
        nodeGpus,
        homogeneous: minGpus === nodeGpus,
      };
      this.pools.push(p);
      this.poolByName.set(pool, p);
    }
  }

  /** Nodes whose labels match the selector (1) or not (0); null when there is no selector. */
  eligible(selector: Readonly<Record<string, string>> | undefined, selectorKey: string): Uint8Array | null {
    if (!selector) return null;
    let e = this.eligibleBySelector.get(selectorKey);
    if (!e) {
      e = new Uint8Array(this.nodes.length);
      const keys = Object.keys(selector);
      for (let i = 0; i < this.nodes.length; i++) {
        const labels = this.nodes[i].labels;
        e[i] = keys.every((k) => labels[k] === selector[k]) ? 1 : 0;
      }
      this.eligibleBySelector.set(selectorKey, e);
    }
    return e;
  }

  /** Nodes a shape may use: its selector's and its policy allowance's (null when neither limits it). */
  eligibleFor(shape: {
    readonly selector: Readonly<Record<string, string>> | undefined;
    readonly selectorKey: string;
    readonly allowed: NodeAllowance | undefined;
  }): Uint8Array | null {
    const bySelector = this.eligible(shape.selector, shape.selectorKey);
    if (!shape.allowed) return bySelector;
    const key = `${shape.selectorKey}#${shape.allowed.key}`;
    let e = this.eligibleBySelector.get(key);
    if (!e) {
      e = new Uint8Array(this.nodes.length);
      for (const name of shape.allowed.nodes) {
        const i = this.byName.get(name);
        if (i !== undefined && (bySelector === null || bySelector[i])) e[i] = 1;
      }
      this.eligibleBySelector.set(key, e);
    }
    return e;
  }

  /**
   * Replaces a node's labels and schedulable flag in place. Returns false when the change moves
   * the node in the topology (pool, pod, leaf, GPUs): the caller then rebuilds.
   * The schedulable flag itself is changed through Capacity.setSchedulable.
   */
  replaceNode(node: SchedNode): boolean {
    const i = this.byName.get(node.name);
    if (i === undefined) return false;
    const old = this.nodes[i];
    if (old.pool !== node.pool || old.pod !== node.pod || old.leaf !== node.leaf || old.gpus !== node.gpus)
      return false;
    this.nodes[i] = node;
    this.eligibleBySelector.clear();
    return true;
  }
}
