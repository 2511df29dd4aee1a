// A cycle's pending decisions: per-queue lists (each reused from cycle to cycle while its queue
// and answers stay the same), joined into one list only when read. At 100,000 pending workloads
// the join was a fifth of an incremental cycle, and the simulator never reads it.
import type { PendingDecision } from './types.js';

/** A cycle's pending decisions as per-queue lists, made one list on the first read. */
export class PendingList {
  private flat: readonly PendingDecision[] | null = null;
  constructor(
    private readonly segments: readonly (readonly PendingDecision[])[],
    private readonly total: number,
  ) {}

  list(): readonly PendingDecision[] {
    if (!this.flat) {
      const out = new Array<PendingDecision>(this.total);
      let k = 0;
      for (const seg of this.segments) for (let j = 0; j < seg.length; j++) out[k++] = seg[j];
      this.flat = out;
    }
    return this.flat;
  }
}
