// Victim selection. Two kinds of claim may preempt:
//   - a claim within the claimant's guarantee takes back GPUs that other projects borrowed:
//     only from projects whose running work is above their own guarantee, and only while it
//     stays above it, so no one's guarantee is taken to give someone more than theirs (work
//     placed in the same cycle does not count: it is not running yet);
//   - any claim of a higher class than `preemptible` may take GPUs of preemptible workloads.
// A preemptible workload that was preempted before and has run less than preemptionCooldownS
// since is not taken by a rank claim (one outside its guarantee): otherwise requeued work is
// placed and preempted again within seconds.
// Victims are tried in order: priority class (preemptible first), how far the victim's project is
// over its guarantee (most first), youngest first, id; within a class, victims no bigger than the
// claim go through that order before bigger ones. They are released one by one on a copy of
// the capacity until the claimant fits; then only those whose GPUs the placement uses are kept.
import type { Capacity } from './capacity.js';
import { PREEMPTIBLE_RANK } from './options.js';
import { findPlacement, type Plan } from './placement.js';
import type { Account } from './quota.js';
import type { Shape } from './shape.js';
import { youngestFirst } from './running-order.js';
import type { PoolState, RunningRec } from './state.js';
import type { PoolTopo } from './topology.js';

export interface Claim {
  readonly account: Account;
  readonly rank: number;
  readonly withinGuarantee: boolean;
  readonly shape: Shape;
  readonly eligible: Uint8Array | null;
}

export interface Victims {
  readonly victims: readonly RunningRec[];
  readonly plan: Plan;
}

/** Whether a claim (within its guarantee or not, of class `rank`) may preempt anything in the pool. */
export function canPreempt(withinGuarantee: boolean, rank: number, pool: PoolState): boolean {
  return withinGuarantee || (rank < PREEMPTIBLE_RANK && pool.preemptible > 0);
}

interface AccountRoom {
  /** Most GPUs the guarantee rule can take from this account (upper bound). */
  borrowed: number;
  /** GPUs of its preemptible work, all of it and what the cooldown does not protect. */
  preemptible: number;
  preemptibleWarm: number;
}

/**
 * Per pool and cycle: running work in victim order, sorted once (not once per claim), what each
 * account could give at most, and the claims already found impossible. Evictions change the
 * order's "how far over" and the accounts' room, so the cycle invalidates it after each.
 */
export class VictimSearch {
  private room: Map<Account, AccountRoom> | null = null;
  private tiers: { all: Account[][]; above: Account[][] } | null = null;
  /** Claim key → capacity `grown` when no victims sufficed (valid until GPUs come back). */
  private readonly failed = new Map<string, number>();

  constructor(
    readonly pool: PoolState,
    readonly stamp: number,
    readonly now: number,
    readonly cooldownS: number,
  ) {}

  /** Victims this search handed out this cycle (they still run in the state until it applies them). */
  readonly taken: RunningRec[] = [];

  /** An eviction happened in this cycle: the cross-cycle memo neither answers nor learns. */
  evicted = false;

  invalidate(): void {
    this.evicted = true;
    this.room = null;
    this.tiers = null;
    this.failed.clear();
  }

  /** Work preempted before that restarted less than the cooldown ago is left alone by rank claims. */
  cooling(v: RunningRec): boolean {
    return (v.w.preemptions ?? 0) > 0 && this.now - v.w.startedAt < this.cooldownS;
  }

  /**
   * Running work in victim order, produced lazily: per class (preemptible first), accounts by how
   * far they are over their guarantee (most first; every account for preemptible work, only those
   * above it otherwise), victims no bigger than the claim before bigger ones (within a class),
   * youngest first. The state keeps each account's work of each class oldest first (`byAge`), so
   * a group is an array read backwards (merged when several accounts are equally far over): a
   * claim costs the victims it looks at, not a heap of all running work. Why: failed claims walked
   * every borrower's work through one heap per group and that was the simulator's largest cost.
   * "No bigger first" within a class: "youngest first" alone let 1-GPU reclaims evict whole
   * 8-GPU jobs (7 GPUs freed for nothing, the node broken up again); on the Philly bench those
   * were the bursting projects' freshly started whole-node jobs, and this order cut fabrik's p99
   * queueing delay (docs/scheduler.md).
   */
  *victims(fits: number, claim?: Claim): Generator<RunningRec> {
    if (claim && claim.rank >= PREEMPTIBLE_RANK && !claim.withinGuarantee) return;
    const { all, above } = this.groups();
    const top = this.pool.preemptible > 0 ? PREEMPTIBLE_RANK : PREEMPTIBLE_RANK - 1;
    const bottom = claim && !claim.withinGuarantee ? PREEMPTIBLE_RANK : 0;
    // Work of other classes is taken only by the guarantee rule, never from the claimant's own
    // project (mayTake): the claimant's account is left out of `above` here.
    const own = claim?.account;
    for (let rank = top; rank >= bottom; rank--) {
      const groups = rank === PREEMPTIBLE_RANK ? all : above;
      for (const small of [true, false]) {
        for (const group of groups) {
          const lists: RunningRec[][] = [];
          for (const a of group) {
            if (groups === above && a === own) continue;
            const list = this.pool.byAge.get(a)?.[rank];
            if (list && list.length > 0) lists.push(list);
          }
          if (lists.length === 0) continue;
          for (const rec of youngestFirst(lists)) if (this.takes(rec, fits, small)) yield rec;
        }
      }
    }
  }

  /** The pool's accounts in tiers by how far over their guarantee (all, and those above it): kept until an eviction. */
  private groups(): { all: Account[][]; above: Account[][] } {
    if (!this.tiers) {
      const accounts = [...this.pool.byAge.keys()];
      this.tiers = { all: tiers(accounts), above: tiers(accounts.filter((a) => a.base > a.guaranteed)) };
    }
    return this.tiers;
  }

  private takes(rec: RunningRec, fits: number, small: boolean): boolean {
    return (
      rec.victimStamp !== this.stamp && !rec.w.terminating && rec.nodes.length > 0 && rec.shape.charge <= fits === small
    );
  }

  private rooms(): Map<Account, AccountRoom> {
    if (!this.room && this.pool.preemptible === 0) {
      // Without preemptible work only the guarantee rule gives: per account above its guarantee,
      // over plus its biggest running workload (from the per-charge counts: no scan of running
      // work; work evicted or stopping this cycle still counts, which only loosens the bound).
      const room = new Map<Account, AccountRoom>();
      for (const [a, counts] of this.pool.charges) {
        const over = a.base - a.guaranteed;
        if (over <= 0 || counts.size === 0) continue;
        let maxCharge = 0;
        for (const charge of counts.keys()) if (charge > maxCharge) maxCharge = charge;
        room.set(a, { borrowed: Math.min(a.base, over + maxCharge), preemptible: 0, preemptibleWarm: 0 });
      }
      this.room = room;
    }
    if (!this.room) {
      // With preemptible work: the state's per-account preemptible GPUs, less what the cooldown
      // protects and what this search already took (no pass over running work: it was redone
      // after every eviction). Work stopping or evicted by other searches this cycle still
      // counts, which only loosens the bound.
      const room = new Map<Account, AccountRoom>();
      for (const [a, counts] of this.pool.charges) {
        const over = a.base - a.guaranteed;
        const pre = this.pool.preemptibleGpus.get(a) ?? 0;
        if ((over <= 0 && pre === 0) || counts.size === 0) continue;
        let maxCharge = 0;
        for (const charge of counts.keys()) if (charge > maxCharge) maxCharge = charge;
        room.set(a, {
          borrowed: over > 0 ? Math.min(a.base, over + maxCharge) : 0,
          preemptible: pre,
          preemptibleWarm: pre,
        });
      }
      for (const rec of this.pool.restarted) {
        if (rec.w.terminating || rec.nodes.length === 0 || rec.victimStamp === this.stamp) continue;
        const r = room.get(rec.account);
        if (r && this.cooling(rec)) r.preemptibleWarm -= rec.shape.charge;
      }
      for (const rec of this.taken) {
        const r = room.get(rec.account);
        if (!r || rec.rank !== PREEMPTIBLE_RANK || rec.w.terminating || rec.nodes.length === 0) continue;
        r.preemptible -= rec.shape.charge;
        if (!this.cooling(rec)) r.preemptibleWarm -= rec.shape.charge;
      }
      this.room = room;
    }
    return this.room;
  }

  /** Cheap necessary condition: could free GPUs plus everything this claim may take cover it? */
  mightSuffice(c: Claim, free: number): boolean {
    // GPUs the gang needs at least (its charge may count whole nodes of a bigger model).
    const need = c.shape.nodes * c.shape.gpusPerNode;
    let total = free;
    const rank = c.rank < PREEMPTIBLE_RANK;
    for (const [a, r] of this.rooms()) {
      let give = 0;
      if (c.withinGuarantee && a !== c.account) give = r.borrowed;
      if (rank) give += c.withinGuarantee ? r.preemptible : r.preemptibleWarm;
      if (c.withinGuarantee && a !== c.account && rank) give = Math.min(a.base, give);
      total += give;
      if (total >= need) return true;
    }
    return total >= need;
  }

  failedAt(key: string): number | undefined {
    return this.failed.get(key);
  }

  fail(key: string, grown: number): void {
    this.failed.set(key, grown);
  }
}

/** Accounts grouped by how far they are over their guarantee, most first. */
function tiers(accounts: readonly Account[]): Account[][] {
  const sorted = [...accounts].sort((a, b) => b.base - b.guaranteed - (a.base - a.guaranteed));
  const out: Account[][] = [];
  for (const a of sorted) {
    const last = out[out.length - 1];
    if (last && last[0].base - last[0].guaranteed === a.base - a.guaranteed) last.push(a);
    else out.push([a]);
  }
  return out;
}

function mayTake(s: VictimSearch, c: Claim, v: RunningRec): boolean {
  // Claims within the guarantee ignore the cooldown: the guarantee is obtainable within a cycle.
  if (v.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK && (c.withinGuarantee || !s.cooling(v))) return true;
  return c.withinGuarantee && v.account !== c.account && v.account.base > v.account.guaranteed;
}

/** A claim that found no victims in an earlier cycle: the running work and the free GPUs it saw. */
interface PastFailure {
  readonly running: number;
  readonly now: number;
  readonly free: Uint32Array;
}
const pastFailures = new WeakMap<PoolState, Map<string, PastFailure>>();

/**
 * The claim failed in an earlier cycle with the same running work in the pool (so the same
 * victims, order and accounts), at most the free GPUs it had then, no eviction in this cycle yet,
 * and (with preemptible work, whose cooldown runs out) at the same time: it fails again, since
 * every step of its walk would see a subset of what that walk saw.
 */
function failedBefore(search: VictimSearch, cap: Capacity, poolTopo: PoolTopo, key: string): boolean {
  const past = pastFailures.get(search.pool)?.get(key);
  if (!past || search.evicted || past.running !== search.pool.runningVersion) return false;
  if (search.pool.preemptible > 0 && past.now !== search.now) return false;
  const free = cap.free;
  for (let i = poolTopo.start, k = 0; i < poolTopo.end; i++, k++) if ((free[i] & ~past.free[k]) !== 0) return false;
  return true;
}

function remember(search: VictimSearch, cap: Capacity, poolTopo: PoolTopo, key: string): void {
  if (search.evicted) return;
  let m = pastFailures.get(search.pool);
  if (!m) {
    m = new Map();
    pastFailures.set(search.pool, m);
  }
  if (m.size > 256) m.clear();
  m.set(key, {
    running: search.pool.runningVersion,
    now: search.now,
    free: cap.free.slice(poolTopo.start, poolTopo.end),
  });
}

export function findVictims(cap: Capacity, poolTopo: PoolTopo, search: VictimSearch, c: Claim): Victims | null {
  // Memo: a claim of this kind found no victims, and no GPUs came back since (placements only
  // make it harder; an eviction invalidates the search).
  const key = `${c.shape.key}\u0000${c.account.project}\u0000${c.rank}\u0000${c.withinGuarantee ? 1 : 0}`;
  if (search.failedAt(key) === cap.grown) return null;
  if (failedBefore(search, cap, poolTopo, key)) {
    search.fail(key, cap.grown);
    return null;
  }
  if (!search.mightSuffice(c, cap.poolFree[poolTopo.index])) {
    search.fail(key, cap.grown);
    remember(search, cap, poolTopo, key);
    return null;
  }
  // Victims are released one by one on a copy; a placement is looked for only when a release
  // made a node newly usable for the shape (enough free GPUs on it, or the whole node) and the
  // pool has enough free GPUs in all. Placement depends only on which nodes are usable, so a
  // release that makes no node usable cannot make the claim fit. Why: on the Philly bench a
  // whole-node claim released ~17 victims before fitting and the former per-victim placement
  // search, plus an order-free pre-check over all running work, took most of the simulation.
  const need = c.shape.nodes * c.shape.gpusPerNode;
  const released = new Map<Account, number>();
  const taken: RunningRec[] = [];
  let sim: Capacity | null = null;
  for (const rec of search.victims(c.shape.charge, c)) {
    if (rec.victimStamp === search.stamp || !mayTake(search, c, rec)) continue;
    // A borrower gives back only while it stays above its guarantee (preemptible work always may).
    const preemptibleVictim = rec.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK;
    const gone = released.get(rec.account) ?? 0;
    if (!preemptibleVictim && rec.account.base - gone <= rec.account.guaranteed) continue;
    released.set(rec.account, gone + rec.shape.charge);
    if (!sim) sim = cap.scratch('search');
    let usable = false;
    for (let k = 0; k < rec.nodes.length; k++) {
      const i = rec.nodes[k];
      const before = usableFor(sim, i, c.shape);
      sim.release(i, rec.masks[k]);
      if (!before && usableFor(sim, i, c.shape)) usable = true;
    }
    taken.push(rec);
    if (!usable || sim.poolFree[poolTopo.index] < need) continue;
    const plan = findPlacement(sim, poolTopo, c.shape, c.eligible);
    if (plan) {
      const victims = taken.filter((v) => overlaps(v, plan));
      search.taken.push(...victims);
      return { victims, plan };
    }
  }
  search.fail(key, cap.grown);
  remember(search, cap, poolTopo, key);
  return null;
}

/** Whether node i has room for one node of the shape (whole shapes: all its GPUs free). */
export function usableFor(cap: Capacity, i: number, shape: Shape): boolean {
  return shape.whole ? cap.freeCount[i] === cap.topo.gpus[i] : cap.freeCount[i] >= shape.gpusPerNode;
}

/** Whether running work holds any GPU the plan uses. */
export function overlaps(v: RunningRec, plan: Plan): boolean {
  for (let k = 0; k < v.nodes.length; k++) {
    const j = plan.nodes.indexOf(v.nodes[k]);
    if (j >= 0 && (plan.masks[j] & v.masks[k]) !== 0) return true;
  }
  return false;
}
