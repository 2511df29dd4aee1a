// A cycle's pending decisions: per-queue lists (each reused from cycle to cycle while its queue
// and answers stay the same), joined into one list only when read. At 100,000 pending workloads
// the join was a fifth of an incremental cycle, and the simulator never reads it.
import type { PendingDecision } from './types.js';

/**
 * One of the two arrays that take turns holding a cycle's per-queue lists (no 5,000-entry copy
 * per cycle). `writes` counts the cycles that filled it, so a list can tell it was overwritten.
 */
export class SegmentBuffer {
  readonly lists: (readonly PendingDecision[])[] = [];
  writes = 0;
}

/**
 * A cycle's pending decisions, made one list on the first read. Read it before the state's
 * second cycle after this one (the buffer is then refilled): a later first read throws rather
 * than answer with another cycle's decisions. Callers read a cycle's decisions before the next.
 */
export class PendingList {
  private flat: readonly PendingDecision[] | null = null;
  private readonly writes: number;
  constructor(
    /** The per-queue lists it is joined from. */
    readonly buffer: SegmentBuffer,
    private readonly total: number,
  ) {
    this.writes = buffer.writes;
  }

  list(): readonly PendingDecision[] {
    if (!this.flat) {
      if (this.buffer.writes !== this.writes) {
        throw new Error('pending decisions read after two later cycles: read a cycle’s decisions before the next');
      }
      const out = new Array<PendingDecision>(this.total);
      let k = 0;
      const lists = this.buffer.lists;
      for (let i = 0; i < lists.length; i++) {
        const seg = lists[i];
        for (let j = 0; j < seg.length; j++) out[k++] = seg[j];
      }
      this.flat = out;
    }
    return this.flat;
  }
}
