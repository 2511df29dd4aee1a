// Free GPUs per node as bitmasks, plus the counters placement needs to answer most questions
// without scanning nodes: whole free nodes per leaf, pod and pool, free GPUs per pool, and per
// free-GPU count a bitset of nodes (best fit = lowest non-empty bucket). Only schedulable nodes
// are counted; GPUs of cordoned nodes are still tracked so running work keeps its indexes.
import { MAX_GPUS_PER_NODE, type Topology } from './topology.js';

export function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function fullMask(gpus: number): number {
  return gpus >= 32 ? 0xffffffff : ((1 << gpus) - 1) >>> 0;
}

/** The `count` lowest set bits of `mask`. */
export function lowestBits(mask: number, count: number): number {
  let out = 0;
  let m = mask >>> 0;
  for (let k = 0; k < count && m !== 0; k++) {
    const bit = m & -m;
    out |= bit;
    m = (m ^ bit) >>> 0;
  }
  return out >>> 0;
}

export function bitIndexes(mask: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < 32; b++) if ((mask >>> b) & 1) out.push(b);
  return out;
}

/** `cycle`: a cycle's working capacity; `search`: a victim, drain or terminating-work trial. */
export type ScratchSlot = 'cycle' | 'search';
const scratches: Partial<Record<ScratchSlot, Capacity>> = {};

export class Capacity {
  readonly topo: Topology;
  readonly words: number;
  readonly free: Uint32Array;
  readonly freeCount: Uint8Array;
  readonly leafWhole: Int32Array;
  readonly podWhole: Int32Array;
  readonly poolWhole: Int32Array;
  readonly poolFree: Int32Array;
  /** (MAX_GPUS_PER_NODE + 1) bitsets over nodes: bucket k holds schedulable nodes with k free GPUs. */
  readonly buckets: Uint32Array;
  /** Bumped by every change; "fits" memos are valid while it stays. */
  version = 0;
  /** Bumped when GPUs are released; "does not fit" memos are valid while it stays. */
  grown = 0;

  /** Every array above is a view of this one buffer: a copy is one allocation and one memcpy, not seven. */
  private readonly bytes: Uint8Array;

  private constructor(topo: Topology, src?: Capacity) {
    this.topo = topo;
    const n = topo.nodes.length;
    this.words = (n + 31) >>> 5;
    // Layout: the 4-byte arrays first (aligned), the per-node counts last.
    const sizes = [n, (MAX_GPUS_PER_NODE + 1) * this.words, topo.leaves.length, topo.pods.length, topo.pools.length];
    const ints = sizes.reduce((a, b) => a + b, 0) + topo.pools.length;
    const buf = src ? src.bytes.buffer.slice(0) : new ArrayBuffer(4 * ints + n);
    let at = 0;
    const take = (len: number): number => {
      const from = at;
      at += 4 * len;
      return from;
    };
    this.free = new Uint32Array(buf, take(n), n);
    this.buckets = new Uint32Array(buf, take(sizes[1]), sizes[1]);
    this.leafWhole = new Int32Array(buf, take(sizes[2]), sizes[2]);
    this.podWhole = new Int32Array(buf, take(sizes[3]), sizes[3]);
    this.poolWhole = new Int32Array(buf, take(sizes[4]), sizes[4]);
    this.poolFree = new Int32Array(buf, take(topo.pools.length), topo.pools.length);
    this.freeCount = new Uint8Array(buf, at, n);
    this.bytes = new Uint8Array(buf);
    if (src) {
      this.version = src.version;
      this.grown = src.grown;
      return;
    }
    for (let i = 0; i < n; i++) {
      this.free[i] = fullMask(topo.gpus[i]);
      this.freeCount[i] = topo.gpus[i];
      if (topo.schedulable[i]) this.index(i);
    }
  }

  /** All GPUs free. */
  static empty(topo: Topology): Capacity {
    return new Capacity(topo);
  }

  clone(): Capacity {
    return new Capacity(this.topo, this);
  }

  /** Becomes a copy of `src` (same topology) without allocating: for scratch copies made often. */
  copyFrom(src: Capacity): void {
    if (src.topo !== this.topo) throw new Error('Capacity.copyFrom: another topology');
    this.bytes.set(src.bytes);
    this.version = src.version;
    this.grown = src.grown;
  }

  /**
   * A copy of this capacity in a scratch buffer kept per slot (one per topology): the cycle's
   * working copy and the searches' trial copies, each dead when its (synchronous) user returns.
   * Why: a fresh copy per cycle and per victim or drain search was a tenth of the simulator's
   * time in allocation and garbage collection.
   */
  scratch(slot: ScratchSlot): Capacity {
    const kept = scratches[slot];
    if (kept && kept.topo === this.topo) {
      kept.copyFrom(this);
      return kept;
    }
    const copy = this.clone();
    scratches[slot] = copy;
    return copy;
  }

  isWholeFree(i: number): boolean {
    return this.freeCount[i] === this.topo.gpus[i];
  }

  allocate(i: number, mask: number): void {
    const m = (mask & this.free[i]) >>> 0;
    if (m === 0) return;
    const sched = this.topo.schedulable[i] === 1;
    if (sched) this.unindex(i);
    this.free[i] = (this.free[i] & ~m) >>> 0;
    this.freeCount[i] -= popcount(m);
    if (sched) this.index(i);
    this.version++;
  }

  release(i: number, mask: number): void {
    const m = (mask & fullMask(this.topo.gpus[i]) & ~this.free[i]) >>> 0;
    if (m === 0) return;
    const sched = this.topo.schedulable[i] === 1;
    if (sched) this.unindex(i);
    this.free[i] = (this.free[i] | m) >>> 0;
    this.freeCount[i] += popcount(m);
    if (sched) this.index(i);
    this.version++;
    this.grown++;
  }

  setSchedulable(i: number, schedulable: boolean): void {
    const v = schedulable ? 1 : 0;
    if (this.topo.schedulable[i] === v) return;
    if (this.topo.schedulable[i]) this.unindex(i);
    this.topo.schedulable[i] = v;
    if (v) this.index(i);
    this.version++;
    this.grown++;
  }

  private index(i: number): void {
    const c = this.freeCount[i];
    this.buckets[c * this.words + (i >>> 5)] |= 1 << (i & 31);
    this.poolFree[this.topo.nodePool[i]] += c;
    if (c === this.topo.gpus[i] && c > 0) {
      this.leafWhole[this.topo.nodeLeaf[i]]++;
      this.podWhole[this.topo.nodePod[i]]++;
      this.poolWhole[this.topo.nodePool[i]]++;
    }
  }

  private unindex(i: number): void {
    const c = this.freeCount[i];
    this.buckets[c * this.words + (i >>> 5)] &= ~(1 << (i & 31));
    this.poolFree[this.topo.nodePool[i]] -= c;
    if (c === this.topo.gpus[i] && c > 0) {
      this.leafWhole[this.topo.nodeLeaf[i]]--;
      this.podWhole[this.topo.nodePod[i]]--;
      this.poolWhole[this.topo.nodePool[i]]--;
    }
  }
}
