// A binary min-heap over a "comes before" relation. The array never shrinks (popping only moves
// a count): a cycle pops thousands of queue heads, and shrinking made garbage on every pop.
export class Heap<T> {
  private a: T[] = [];
  private n = 0;
  constructor(private readonly before: (x: T, y: T) => boolean) {}

  /** Builds from many items at once, in linear time. Takes `items` over: the caller must not use it again. */
  static from<T>(items: T[], before: (x: T, y: T) => boolean): Heap<T> {
    const h = new Heap(before);
    h.a = items;
    h.n = items.length;
    for (let i = (h.n >> 1) - 1; i >= 0; i--) h.down(i);
    return h;
  }

  get size(): number {
    return this.n;
  }

  peek(): T | undefined {
    return this.n > 0 ? this.a[0] : undefined;
  }

  push(x: T): void {
    const a = this.a;
    let i = this.n++;
    if (i < a.length) a[i] = x;
    else a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      const t = a[i];
      a[i] = a[p];
      a[p] = t;
      i = p;
    }
  }

  pop(): T | undefined {
    if (this.n === 0) return undefined;
    const a = this.a;
    const top = a[0];
    const n = --this.n;
    if (n > 0) {
      a[0] = a[n];
      this.down(0);
    }
    return top;
  }

  /** Call after the top's key got worse. */
  fixTop(): void {
    if (this.n > 0) this.down(0);
  }

  private down(i: number): void {
    const a = this.a;
    const n = this.n;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.before(a[l], a[m])) m = l;
      if (r < n && this.before(a[r], a[m])) m = r;
      if (m === i) return;
      const t = a[i];
      a[i] = a[m];
      a[m] = t;
      i = m;
    }
  }
}
