// Flow control shared by push and pull: how many things run at once, how fast bytes go (one
// budget per call, like curl --limit-rate), and streams that count bytes as they pass.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** At most `n` of the functions run at once. */
export function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Runs `fn` over the items, `n` at a time; stops starting new ones at the first failure. */
export async function forEachLimit<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(n, items.length)) }, async () => {
      while (!failed && next < items.length) {
        const item = items[next++];
        try {
          await fn(item);
        } catch (err) {
          failed ??= { err };
        }
      }
    }),
  );
  if (failed) throw failed.err;
}

/** A shared byte budget per second over every stream of one push or pull. */
export class RateLimit {
  private t0 = Date.now();
  private used = 0;
  constructor(private readonly bytesPerSecond: number) {}
  async take(n: number): Promise<void> {
    this.used += n;
    const due = this.t0 + (this.used / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) {
      // Idle for a while: do not let the budget pile up into a burst.
      this.t0 = Date.now();
      this.used = 0;
    }
  }
}

/** Yields the chunks of `source`, counting each (and waiting on the rate limit) as it passes. */
export async function* countChunks(
  source: AsyncIterable<Uint8Array>,
  onChunk: (n: number, chunk: Uint8Array) => void,
  limit?: RateLimit,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (limit) await limit.take(chunk.length);
    onChunk(chunk.length, chunk);
    yield chunk;
  }
}

export function readChunk(limited: boolean): number {
  return limited ? 256 * 1024 : 1024 * 1024;
}

export function secondsSince(t0: number): number {
  return Math.round(performance.now() - t0) / 1000;
}
