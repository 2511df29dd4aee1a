// The limiter for several gateway processes: the counters live in one Redis, and each reserve is
// one Lua script that checks every counter of the call and then increments them all, or none.
// Redis runs a script alone, so however many gateways reserve at once, the admitted total of a
// window never exceeds its limit. Counter keys carry their window and expire with it (PEXPIRE at
// creation), so nothing needs sweeping. Each gateway names the window from its own clock: a
// skewed clock only moves calls near a boundary into the neighbouring window, each window's total
// stays exact. One Redis, not a cluster: a call's counters (key, project) hash to different slots.
//
// Redis unreachable (down, restarting, too slow): the limiter decides at once, without queueing —
// no offline queue, no retries of a command, a short command timeout — in the direction chosen at
// construction:
//   open   (default) the call goes through unlimited; Redis being down should not take inference
//          down with it, and usage is still metered by the UsageSink, so budgets are enforced
//          again (late) once it is back. Like Envoy's rate-limit filter by default.
//   closed the call is refused with 503 (Retry-After 1 s).
// The first failure logs once; the return of Redis logs once. ioredis reconnects by itself, and the
// scripts are sent as EVALSHA with a fallback to EVAL (defineCommand), so a restarted Redis that
// lost its script cache is used again without any action.
import { Redis } from 'ioredis';
import {
  type Limiter,
  type LimitRequest,
  MINUTE_MS,
  type Rejection,
  type Reservation,
  plan,
  reconcileDeltas,
  rejection,
} from './limits.js';

/**
 * KEYS: the counters. ARGV: per key, amount then limit then TTL (ms). Returns 0 when every counter
 * had room and was incremented, else the (1-based) index of the first counter without room.
 */
const RESERVE = `
for i = 1, #KEYS do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then return i end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i]) end
end
return 0`;

/**
 * KEYS: counters, ARGV: a delta each. Only counters that still exist are changed (an expired window
 * stays expired), and none goes below 0 (a counter recreated after a Redis restart must not let
 * more through than its limit).
 */
const RECONCILE = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local v = redis.call('INCRBY', KEYS[i], ARGV[i])
    if v < 0 then redis.call('INCRBY', KEYS[i], -v) end
  end
end
return 0`;

interface ScriptedRedis extends Redis {
  fabrikReserve(numKeys: number, ...args: (string | number)[]): Promise<number>;
  fabrikReconcile(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

export interface RedisLimiterOptions {
  /** redis://host:port/db (default redis://127.0.0.1:6379). */
  readonly url?: string;
  /** Prefix of every key (default `fabrik:gw:`); tests use their own. */
  readonly prefix?: string;
  /** Length of the rate windows (default 60 s). */
  readonly windowMs?: number;
  /** What a call gets while Redis cannot answer (default 'open', see the header). */
  readonly failMode?: 'open' | 'closed';
  /** How long one command may take before the limiter decides without it (default 250 ms). */
  readonly commandTimeoutMs?: number;
  readonly now?: () => number;
  readonly log?: (message: string) => void;
}

export class RedisLimiter implements Limiter {
  readonly #redis: ScriptedRedis;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #failMode: 'open' | 'closed';
  readonly #now: () => number;
  readonly #log: (message: string) => void;
  /** Whether the last attempt failed: log transitions only. */
  #down = false;

  constructor(opts: RedisLimiterOptions = {}) {
    this.#prefix = opts.prefix ?? 'fabrik:gw:';
    this.#windowMs = opts.windowMs ?? MINUTE_MS;
    this.#failMode = opts.failMode ?? 'open';
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? ((m) => process.stderr.write(`fabrik gateway: ${m}\n`));
    this.#redis = new Redis(opts.url ?? 'redis://127.0.0.1:6379', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 250,
      connectTimeout: 1000,
      // Reconnect soon and keep trying: the limiter recovers as soon as Redis is back.
      retryStrategy: (times) => Math.min(50 * times, 1000),
    }) as ScriptedRedis;
    this.#redis.defineCommand('fabrikReserve', { lua: RESERVE });
    this.#redis.defineCommand('fabrikReconcile', { lua: RECONCILE });
    // Connection errors are reported through #failed on use; without a listener ioredis prints them all.
    this.#redis.on('error', () => {});
    this.#redis.on('ready', () => this.#ok());
  }

  /**
   * Resolves true once Redis answers a PING (false after `timeoutMs`): for startup and tests; calls
   * before that follow the fail mode. A PING, not the client's status, which still says ready for
   * a moment after the connection is gone.
   */
  async ready(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      try {
        await this.#redis.ping();
        this.#ok();
        return true;
      } catch {
        if (performance.now() >= until) return false;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async reserve(r: LimitRequest): Promise<Reservation | Rejection> {
    const now = this.#now();
    const charges = plan(r, now, this.#windowMs);
    if (charges.length === 0) return { ok: true, charges, tokens: r.tokens };
    const args: (string | number)[] = [];
    for (const c of charges) args.push(this.#prefix + c.key);
    for (const c of charges) args.push(c.amount, c.limit, Math.max(1, c.resetsAt - now) + 1000);
    try {
      const failed = await this.#redis.fabrikReserve(charges.length, ...args);
      this.#ok();
      if (failed === 0) return { ok: true, charges, tokens: r.tokens };
      return rejection(charges[failed - 1], now);
    } catch (err) {
      this.#failed(err);
      if (this.#failMode === 'closed') return { ok: false, kind: 'unavailable', retryAfterMs: 1000 };
      return { ok: true, charges: [], tokens: r.tokens }; // nothing charged, nothing to reconcile
    }
  }

  reconcile(r: Reservation, actualTokens: number): void {
    const deltas = reconcileDeltas(r, actualTokens);
    const keys: string[] = [];
    const values: number[] = [];
    r.charges.forEach((c, i) => {
      if (deltas[i] === 0) return;
      keys.push(this.#prefix + c.key);
      values.push(deltas[i]);
    });
    this.#adjust(keys, values);
  }

  release(r: Reservation): void {
    this.#adjust(
      r.charges.map((c) => this.#prefix + c.key),
      r.charges.map((c) => -c.amount),
    );
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }

  #adjust(keys: string[], deltas: number[]): void {
    if (keys.length === 0) return;
    this.#redis.fabrikReconcile(keys.length, ...keys, ...deltas).then(
      () => this.#ok(),
      (err) => this.#failed(err), // lost: the counter expires with its window anyway
    );
  }

  #ok(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#log('redis limiter: Redis answers again, limits are enforced');
  }

  #failed(err: unknown): void {
    if (this.#down) return;
    this.#down = true;
    const what = this.#failMode === 'open' ? 'calls pass unlimited' : 'calls are refused with 503';
    this.#log(`redis limiter: Redis unavailable (${(err as Error).message}); ${what} until it answers`);
  }
}
