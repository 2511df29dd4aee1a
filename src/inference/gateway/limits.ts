// Rate limits and budgets of inference calls: requests and tokens per window for the key and for
// the project, and tokens per calendar month (UTC) for the project.
//
// Reserve, then reconcile. Before a call goes upstream the limiter reserves 1 request and the
// call's token estimate on every applicable counter at once — all or nothing — so concurrent calls
// cannot together overshoot a limit. When the call ends, `reconcile` replaces the estimate with the
// real usage (gives back or adds the difference); a call that never reached a replica is
// `release`d (everything given back, its request too).
//
// Windows are fixed: window w covers [w·windowMs, (w+1)·windowMs) of the gateway's clock
// (windowMs = 60 s for "per minute"; tests shorten it). A fixed window admits at most the limit
// within each window (up to twice the limit across one boundary) and needs one counter per limit,
// which is what lets the Redis limiter check all counters in one script. The month counter resets
// at 00:00 UTC on the first of the month.
//
// Two implementations: MemoryLimiter (one process) here, RedisLimiter (any number of gateway
// processes sharing one Redis) in ./limits-redis.ts; both plan their counters with `plan()`.
import type { CallLimits } from '../types.js';

export type LimitKind = 'requests' | 'tokens' | 'budget';

export interface LimitRequest {
  readonly keyId: string;
  readonly projectId: string;
  readonly limits: CallLimits;
  /** The token estimate to reserve. */
  readonly tokens: number;
}

/** One counter a call is charged on. */
export interface Charge {
  /** Counter name, window included (e.g. `k:<keyId>:tpm:<window>`). */
  readonly key: string;
  readonly kind: LimitKind;
  readonly scope: 'key' | 'project';
  readonly limit: number;
  /** What this call adds: 1 for requests, the estimate for tokens. */
  readonly amount: number;
  /** Unix ms when the counter's window ends (its TTL). */
  readonly resetsAt: number;
}

export interface Reservation {
  readonly ok: true;
  readonly charges: readonly Charge[];
  /** The tokens reserved (the estimate). */
  readonly tokens: number;
}

export interface Rejection {
  readonly ok: false;
  /** `unavailable`: the limiter could not decide (Redis down, fail-closed). */
  readonly kind: LimitKind | 'unavailable';
  readonly scope?: 'key' | 'project';
  readonly limit?: number;
  /** When trying again can succeed. */
  readonly retryAfterMs: number;
}

export interface Limiter {
  reserve(r: LimitRequest): Promise<Reservation | Rejection>;
  /** The call ended with `actualTokens` used: settle the reserved estimate. Never throws. */
  reconcile(r: Reservation, actualTokens: number): void;
  /** The call was not served (no replica, upstream failed): give back all it reserved. Never throws. */
  release(r: Reservation): void;
  close(): Promise<void>;
}

export const MINUTE_MS = 60_000;

/** Unix ms of the start of the next calendar month (UTC) after `now`, and the month's name. */
export function monthWindow(now: number): { name: string; endsAt: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return { name: `${y}-${String(m + 1).padStart(2, '0')}`, endsAt: Date.UTC(y, m + 1, 1) };
}

/** The counters a call is charged on, at time `now`. Empty when no limit applies. */
export function plan(r: LimitRequest, now: number, windowMs: number): Charge[] {
  const charges: Charge[] = [];
  const w = Math.floor(now / windowMs);
  const resetsAt = (w + 1) * windowMs;
  const { key, project } = r.limits;
  const k = `k:${r.keyId}`;
  const p = `p:${r.projectId}`;
  if (key.rpm !== undefined)
    charges.push({ key: `${k}:rpm:${w}`, kind: 'requests', scope: 'key', limit: key.rpm, amount: 1, resetsAt });
  if (project.rpm !== undefined)
    charges.push({ key: `${p}:rpm:${w}`, kind: 'requests', scope: 'project', limit: project.rpm, amount: 1, resetsAt });
  if (key.tpm !== undefined)
    charges.push({ key: `${k}:tpm:${w}`, kind: 'tokens', scope: 'key', limit: key.tpm, amount: r.tokens, resetsAt });
  if (project.tpm !== undefined)
    charges.push({
      key: `${p}:tpm:${w}`,
      kind: 'tokens',
      scope: 'project',
      limit: project.tpm,
      amount: r.tokens,
      resetsAt,
    });
  if (project.monthlyTokens !== undefined) {
    const month = monthWindow(now);
    charges.push({
      key: `${p}:month:${month.name}`,
      kind: 'budget',
      scope: 'project',
      limit: project.monthlyTokens,
      amount: r.tokens,
      resetsAt: month.endsAt,
    });
  }
  return charges;
}

/** The rejection for the charge that did not fit. */
export function rejection(c: Charge, now: number): Rejection {
  return { ok: false, kind: c.kind, scope: c.scope, limit: c.limit, retryAfterMs: Math.max(1, c.resetsAt - now) };
}

/** What reconcile adds to each charge: the token counters get (actual − estimate), request counters 0. */
export function reconcileDeltas(r: Reservation, actualTokens: number): number[] {
  return r.charges.map((c) => (c.kind === 'requests' ? 0 : actualTokens - r.tokens));
}

export interface MemoryLimiterOptions {
  /** Length of the rate windows (default 60 s: requests and tokens per minute). */
  readonly windowMs?: number;
  /** The clock (Unix ms); tests move it. */
  readonly now?: () => number;
}

/**
 * Counters in this process's memory: exact for one gateway process, nothing shared. Counters of
 * ended windows are swept once a window.
 */
export class MemoryLimiter implements Limiter {
  readonly #counters = new Map<string, { value: number; resetsAt: number }>();
  readonly #windowMs: number;
  readonly #now: () => number;
  #nextSweep = 0;

  constructor(opts: MemoryLimiterOptions = {}) {
    this.#windowMs = opts.windowMs ?? MINUTE_MS;
    this.#now = opts.now ?? Date.now;
  }

  reserve(r: LimitRequest): Promise<Reservation | Rejection> {
    const now = this.#now();
    if (now >= this.#nextSweep) this.#sweep(now);
    const charges = plan(r, now, this.#windowMs);
    for (const c of charges) {
      const current = this.#counters.get(c.key)?.value ?? 0;
      if (current + c.amount > c.limit) return Promise.resolve(rejection(c, now));
    }
    for (const c of charges) {
      const counter = this.#counters.get(c.key);
      if (counter) counter.value += c.amount;
      else this.#counters.set(c.key, { value: c.amount, resetsAt: c.resetsAt });
    }
    return Promise.resolve({ ok: true, charges, tokens: r.tokens });
  }

  reconcile(r: Reservation, actualTokens: number): void {
    const deltas = reconcileDeltas(r, actualTokens);
    for (let i = 0; i < r.charges.length; i++) this.#add(r.charges[i].key, deltas[i]);
  }

  release(r: Reservation): void {
    for (const c of r.charges) this.#add(c.key, -c.amount);
  }

  async close(): Promise<void> {
    this.#counters.clear();
  }

  /** Adds to a counter of a window still open (an ended window's counter is gone: nothing to fix). */
  #add(key: string, delta: number): void {
    const counter = this.#counters.get(key);
    if (counter) counter.value = Math.max(0, counter.value + delta);
  }

  #sweep(now: number): void {
    for (const [key, c] of this.#counters) if (c.resetsAt <= now) this.#counters.delete(key);
    this.#nextSweep = now + Math.min(this.#windowMs, MINUTE_MS);
  }
}
