// A binary min-heap over a "comes before" relation.
export class Heap<T> {
  private readonly a: T[] = [];
  constructor(private readonly before: (x: T, y: T) => boolean) {}

  /** Builds from many items at once, in linear time. */
  static from<T>(items: T[], before: (x: T, y: T) => boolean): Heap<T> {
    const h = new Heap(before);
    h.a.push(...items);
    for (let i = (h.a.length >> 1) - 1; i >= 0; i--) h.down(i);
    return h;
  }

  get size(): number {
    return this.a.length;
  }

  peek(): T | undefined {
    return this.a[0];
  }

  push(x: T): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.down(0);
    }
    return top;
  }

  /** Call after the top's key got worse. */
  fixTop(): void {
    if (this.a.length > 0) this.down(0);
  }

  private down(i: number): void {
    const a = this.a;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.before(a[l], a[m])) m = l;
      if (r < n && this.before(a[r], a[m])) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m], a[i]];
      i = m;
    }
  }
}
