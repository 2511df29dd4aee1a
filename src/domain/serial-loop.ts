// A piece of work that runs on a timer and on demand, never twice at once: calls that arrive
// while it runs fold into one more run right after. The scheduler loop and the reconciler are
// SerialLoops; others pass the work as a function.

export class SerialLoop {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;

  constructor(
    private readonly intervalMs: number,
    private readonly onError: (err: Error) => void = (err) => process.emitWarning(err.message),
    private readonly fn?: () => Promise<void>,
  ) {}

  /** The work of one run; subclasses override it, or pass `fn`. */
  protected work(): Promise<void> {
    if (!this.fn) throw new Error('SerialLoop without work');
    return this.fn();
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.trigger(), this.intervalMs);
    this.timer.unref();
    this.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.settle();
  }

  /** Asks for a run soon. */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.work();
        } catch (err) {
          // A failed run leaves everything as it was (each change is its own transaction); the next retries.
          this.onError(err as Error);
        }
      } while (this.again && !this.stopped);
      this.running = null;
    })();
  }

  /** Resolves when no run is in progress or asked for. */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }
}
