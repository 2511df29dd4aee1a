// Where a shape fits now: gangs all or nothing, whole nodes for whole-node shapes, one pod and
// the fewest leaf switches for multi-node shapes, best fit for small ones so whole nodes stay
// free. Pure over a Capacity; ties go to the lowest node index, so the answer depends on the
// state only.
import { type Capacity, bitIndexes, fullMask, lowestBits, popcount } from './capacity.js';
import type { Shape } from './shape.js';
import { MAX_GPUS_PER_NODE, type LeafTopo, type PodTopo, type PoolTopo, type Topology } from './topology.js';
import type { Placement } from './types.js';

export interface Plan {
  readonly pod: number;
  readonly nodes: readonly number[];
  /** GPUs taken on each node (all of them for whole-node shapes). */
  readonly masks: readonly number[];
  readonly leaves: readonly number[];
}

export function findPlacement(cap: Capacity, pool: PoolTopo, shape: Shape, eligible: Uint8Array | null): Plan | null {
  // Not `charge`: an exclusive gang is charged whole nodes of the pool's biggest model, yet may
  // fit on smaller nodes of a mixed pool.
  if (cap.poolFree[pool.index] < shape.nodes * shape.gpusPerNode) return null;
  if (shape.whole && cap.poolWhole[pool.index] < shape.nodes) return null;
  if (shape.nodes === 1)
    return shape.whole ? singleWhole(cap, pool, shape, eligible) : singlePartial(cap, pool, shape, eligible);
  return multiNode(cap, pool, shape, eligible);
}

/** Node `i` could hold one member of the gang right now. */
export function nodeSuits(cap: Capacity, i: number, shape: Shape, eligible: Uint8Array | null): boolean {
  const topo = cap.topo;
  if (topo.schedulable[i] === 0 || (eligible !== null && eligible[i] === 0)) return false;
  const g = topo.gpus[i];
  if (shape.whole) return cap.freeCount[i] === g && g >= shape.gpusPerNode;
  return cap.freeCount[i] >= shape.gpusPerNode;
}

function maskFor(cap: Capacity, i: number, shape: Shape): number {
  return shape.whole ? fullMask(cap.topo.gpus[i]) : lowestBits(cap.free[i], shape.gpusPerNode);
}

/** Whole-node counters answer for every node of a leaf when nothing else narrows the choice. */
function countersSuffice(pool: PoolTopo, shape: Shape, eligible: Uint8Array | null): boolean {
  return shape.whole && eligible === null && pool.homogeneous && pool.nodeGpus >= shape.gpusPerNode;
}

function leafCount(
  cap: Capacity,
  leaf: LeafTopo,
  shape: Shape,
  eligible: Uint8Array | null,
  counters: boolean,
): number {
  if (counters) return cap.leafWhole[leaf.index];
  let c = 0;
  for (let i = leaf.start; i < leaf.end; i++) if (nodeSuits(cap, i, shape, eligible)) c++;
  return c;
}

/** Best fit: the node with the fewest free GPUs that still has enough. */
function singlePartial(cap: Capacity, pool: PoolTopo, shape: Shape, eligible: Uint8Array | null): Plan | null {
  const { words, buckets, topo } = cap;
  const w0 = pool.start >>> 5;
  const w1 = (pool.end - 1) >>> 5;
  for (let k = shape.gpusPerNode; k <= MAX_GPUS_PER_NODE; k++) {
    const base = k * words;
    for (let w = w0; w <= w1; w++) {
      let bits = buckets[base + w];
      while (bits !== 0) {
        const low = bits & -bits;
        const i = (w << 5) + (31 - Math.clz32(low));
        bits = (bits ^ low) >>> 0;
        if (i < pool.start || i >= pool.end) continue;
        if (eligible !== null && eligible[i] === 0) continue;
        return plan(topo, [i], [maskFor(cap, i, shape)]);
      }
    }
  }
  return null;
}

/** A whole node from the leaf with the fewest whole free nodes, keeping big free blocks intact. */
function singleWhole(cap: Capacity, pool: PoolTopo, shape: Shape, eligible: Uint8Array | null): Plan | null {
  const counters = countersSuffice(pool, shape, eligible);
  let best: LeafTopo | null = null;
  let bestCount = Number.POSITIVE_INFINITY;
  for (const leaf of pool.leaves) {
    if (cap.leafWhole[leaf.index] === 0) continue;
    const c = leafCount(cap, leaf, shape, eligible, counters);
    if (c > 0 && c < bestCount) {
      best = leaf;
      bestCount = c;
    }
  }
  if (!best) return null;
  for (let i = best.start; i < best.end; i++) {
    if (nodeSuits(cap, i, shape, eligible)) return plan(cap.topo, [i], [maskFor(cap, i, shape)]);
  }
  return null;
}

/** Fewest leaves needed to collect `n` nodes from leaves holding `counts` usable nodes. */
function leavesNeeded(counts: readonly number[], n: number): number {
  const sorted = [...counts].sort((a, b) => b - a);
  let sum = 0;
  for (let k = 0; k < sorted.length; k++) {
    sum += sorted[k];
    if (sum >= n) return k + 1;
  }
  return Number.POSITIVE_INFINITY;
}

function multiNode(cap: Capacity, pool: PoolTopo, shape: Shape, eligible: Uint8Array | null): Plan | null {
  const counters = countersSuffice(pool, shape, eligible);
  const n = shape.nodes;
  let best: { pod: PodTopo; counts: number[]; leaves: number } | null = null;
  let bestTotal = Number.POSITIVE_INFINITY;
  for (const pod of pool.pods) {
    if (pod.end - pod.start < n) continue;
    if (shape.whole && cap.podWhole[pod.index] < n) continue;
    const counts = pod.leaves.map((leaf) => leafCount(cap, leaf, shape, eligible, counters));
    let total = 0;
    for (const c of counts) total += c;
    if (total < n) continue;
    const leaves = leavesNeeded(counts, n);
    // Fewest leaves first; then the tightest pod, so roomier pods stay free for bigger gangs.
    if (!best || leaves < best.leaves || (leaves === best.leaves && total < bestTotal)) {
      best = { pod, counts, leaves };
      bestTotal = total;
    }
  }
  if (!best) return null;
  const { pod, counts, leaves } = best;
  const order = pod.leaves.map((_, k) => k).sort((a, b) => counts[b] - counts[a] || a - b);
  const takes = new Array<number>(pod.leaves.length).fill(0);
  let remaining = n;
  for (let k = 0; k < leaves - 1; k++) {
    takes[order[k]] = counts[order[k]];
    remaining -= counts[order[k]];
  }
  // The last leaf: the smallest one that still covers the rest (best fit at leaf level).
  let last = -1;
  for (let k = leaves - 1; k < order.length; k++) {
    const c = counts[order[k]];
    if (c >= remaining && (last < 0 || c < counts[last] || (c === counts[last] && order[k] < last))) last = order[k];
  }
  takes[last] = remaining;
  const nodes: number[] = [];
  const masks: number[] = [];
  for (let k = 0; k < pod.leaves.length; k++) {
    if (takes[k] === 0) continue;
    for (const i of pickNodes(cap, pod.leaves[k], takes[k], shape, eligible)) {
      nodes.push(i);
      masks.push(maskFor(cap, i, shape));
    }
  }
  return plan(cap.topo, nodes, masks);
}

function pickNodes(cap: Capacity, leaf: LeafTopo, take: number, shape: Shape, eligible: Uint8Array | null): number[] {
  const usable: number[] = [];
  for (let i = leaf.start; i < leaf.end; i++) if (nodeSuits(cap, i, shape, eligible)) usable.push(i);
  if (!shape.whole) usable.sort((a, b) => cap.freeCount[a] - cap.freeCount[b] || a - b);
  return usable.slice(0, take).sort((a, b) => a - b);
}

function plan(topo: Topology, nodes: number[], masks: number[]): Plan {
  const leaves = [...new Set(nodes.map((i) => topo.nodeLeaf[i]))].sort((a, b) => a - b);
  return { pod: topo.nodePod[nodes[0]], nodes, masks, leaves };
}

/** GPU indexes given to the workload: an exclusive one holds the whole node but uses only what it asked for. */
export function toPlacement(topo: Topology, p: Plan, shape: Shape): Placement {
  return {
    pod: topo.pods[p.pod].name,
    nodes: p.nodes.map((i, k) => {
      const m =
        shape.exclusive && popcount(p.masks[k]) > shape.gpusPerNode
          ? lowestBits(p.masks[k], shape.gpusPerNode)
          : p.masks[k];
      return { node: topo.nodes[i].name, gpuIndexes: bitIndexes(m) };
    }),
    leaves: p.leaves.map((l) => topo.leaves[l].name),
  };
}
