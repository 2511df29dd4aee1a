// A binary min-heap of finish events ordered by (time, job index): the engine's event queue.
// Stale entries (a job preempted before its finish) are skipped by the caller via `gen`.
export interface FinishEvent {
  readonly t: number;
  readonly job: number;
  readonly gen: number;
}

function less(a: FinishEvent, b: FinishEvent): boolean {
  return a.t < b.t || (a.t === b.t && a.job < b.job);
}

export class EventHeap {
  private readonly a: FinishEvent[] = [];

  get size(): number {
    return this.a.length;
  }

  peek(): FinishEvent | undefined {
    return this.a[0];
  }

  push(e: FinishEvent): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): FinishEvent | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l], a[m])) m = l;
        if (r < a.length && less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}
