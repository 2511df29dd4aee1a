// Calls waiting for a replica: a deployment scaled to zero (or whose replicas all failed or are at
// their cap) holds its calls, a bounded number for a bounded time, until a new routing table (or a
// finished call) gives one a replica. Waiters are served in arrival order.

/** Takes a replica for a waiting call (counting it outstanding), or undefined while none can take it. */
export type Take<S> = (deploymentId: string, key: number) => S | undefined;

export type HoldResult<S> =
  | { readonly kind: 'granted'; readonly slot: S }
  | { readonly kind: 'full' | 'timeout' | 'aborted' };

interface Waiter<S> {
  readonly key: number;
  done(result: HoldResult<S>): void;
}

export class HoldQueues<S> {
  readonly #queues = new Map<string, Waiter<S>[]>();
  readonly #take: Take<S>;
  readonly #max: number;
  readonly #timeoutMs: number;

  constructor(take: Take<S>, opts: { maxHeld: number; timeoutMs: number }) {
    this.#take = take;
    this.#max = opts.maxHeld;
    this.#timeoutMs = opts.timeoutMs;
  }

  /** Calls held for a deployment now. */
  count(deploymentId: string): number {
    return this.#queues.get(deploymentId)?.length ?? 0;
  }

  /** Waits for a replica of the deployment; `signal` aborts the wait (the client went away). */
  hold(deploymentId: string, key: number, signal: AbortSignal): Promise<HoldResult<S>> {
    let queue = this.#queues.get(deploymentId);
    if (!queue) {
      queue = [];
      this.#queues.set(deploymentId, queue);
    }
    if (queue.length >= this.#max) return Promise.resolve({ kind: 'full' });
    const q = queue;
    return new Promise((resolve) => {
      const waiter: Waiter<S> = {
        key,
        done: (result) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve(result);
        },
      };
      const leave = (kind: 'timeout' | 'aborted') => {
        const i = q.indexOf(waiter);
        if (i >= 0) q.splice(i, 1);
        if (q.length === 0 && this.#queues.get(deploymentId) === q) this.#queues.delete(deploymentId);
        waiter.done({ kind });
      };
      const onAbort = () => leave('aborted');
      const timer = setTimeout(() => leave('timeout'), this.#timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      q.push(waiter);
    });
  }

  /** Gives replicas to the deployment's waiters, first come first served, while there are any. */
  drain(deploymentId: string): void {
    const queue = this.#queues.get(deploymentId);
    if (!queue) return;
    while (queue.length > 0) {
      const slot = this.#take(deploymentId, queue[0].key);
      if (slot === undefined) break;
      queue.shift()!.done({ kind: 'granted', slot });
    }
    if (queue.length === 0) this.#queues.delete(deploymentId);
  }

  /** After a new routing table: every deployment's waiters may have replicas now. */
  drainAll(): void {
    for (const id of [...this.#queues.keys()]) this.drain(id);
  }

  /** The gateway closes: every waiter is answered now as if its time were up. */
  releaseAll(): void {
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    for (const q of queues) for (const w of q) w.done({ kind: 'timeout' });
  }

  /** Whether any deployment holds calls (a finished call then checks for waiters). */
  get empty(): boolean {
    return this.#queues.size === 0;
  }
}
