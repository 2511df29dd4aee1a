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
import { Heap } from './heap.js';
import { PREEMPTIBLE_RANK } from './options.js';
import { findPlacement, type Plan } from './placement.js';
import type { Account } from './quota.js';
import type { Shape } from './shape.js';
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

export function canPreempt(c: Claim, pool: PoolState): boolean {
  return c.withinGuarantee || (c.rank < PREEMPTIBLE_RANK && pool.preemptible > 0);
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
  private order: { rank: number; recs: RunningRec[] }[] | null = null;
  private room: Map<Account, AccountRoom> | null = null;
  /** Claim key → capacity `grown` when no victims sufficed (valid until GPUs come back). */
  private readonly failed = new Map<string, number>();

  constructor(
    readonly pool: PoolState,
    readonly stamp: number,
    readonly now: number,
    readonly cooldownS: number,
  ) {}

  invalidate(): void {
    this.order = null;
    this.room = null;
    this.failed.clear();
  }

  /** Work preempted before that restarted less than the cooldown ago is left alone by rank claims. */
  cooling(v: RunningRec): boolean {
    return (v.w.preemptions ?? 0) > 0 && this.now - v.w.startedAt < this.cooldownS;
  }

  /**
   * Running work in victim order, produced lazily: one pass groups it by (class, how far its
   * project is over), groups are visited in order and each yields youngest first from a heap.
   * A claim usually needs a few victims, so sorting every running workload is wasted work.
   */
  *victims(fits: number): Generator<RunningRec> {
    if (this.pool.preemptible === 0) {
      yield* this.borrowedVictims(fits);
      return;
    }
    if (!this.order) {
      const groups = new Map<number, { rank: number; over: number; recs: RunningRec[] }>();
      for (const rec of this.candidates()) {
        if (rec.victimStamp === this.stamp || rec.w.terminating || rec.nodes.length === 0) continue;
        const over = rec.account.base - rec.account.guaranteed;
        // Never a victim (mayTake): neither preemptible nor of a project above its guarantee.
        // Leaving these out keeps a claim from walking past most of the running work.
        if (over <= 0 && rec.rank !== PREEMPTIBLE_RANK) continue;
        // Numeric key (a string per record was a visible cost): over is within ±2^20 GPUs.
        const k = rec.rank * 4_194_304 + over;
        let g = groups.get(k);
        if (!g) {
          g = { rank: rec.rank, over, recs: [] };
          groups.set(k, g);
        }
        g.recs.push(rec);
      }
      this.order = [...groups.values()].sort((a, b) => b.rank - a.rank || b.over - a.over);
    }
    // Victims no bigger than the claim first (in group order: class, then overage), then the
    // bigger ones; youngest first within each group. Why: "youngest first" alone let 1-GPU
    // reclaims evict whole 8-GPU jobs (7 GPUs freed for nothing, the node broken up again); on
    // the Philly bench those were the bursting projects' freshly started whole-node jobs, and
    // this order cut fabrik's p99 queueing delay (docs/scheduler.md). Within a class only: a
    // preemptible victim still goes before any borrower.
    const order = this.order;
    for (let from = 0; from < order.length; ) {
      let to = from;
      while (to < order.length && order[to].rank === order[from].rank) to++;
      for (const small of [true, false]) {
        for (let g = from; g < to; g++) {
          const part = order[g].recs.filter((rec) => rec.shape.charge <= fits === small);
          const heap = Heap.from(part, youngerFirst);
          for (let rec = heap.pop(); rec !== undefined; rec = heap.pop()) yield rec;
        }
      }
      from = to;
    }
  }

  /**
   * The same order when the pool runs no preemptible work (only the guarantee rule gives), fully
   * lazy: accounts above their guarantee by overage, and only the records of the groups a claim
   * reaches are looked at (most claims stop in the first group). Why: grouping all running work
   * of every borrower per claim was the largest cost left in the simulator.
   */
  private *borrowedVictims(fits: number): Generator<RunningRec> {
    const accounts = [...this.pool.byAccount.keys()]
      .filter((a) => a.base > a.guaranteed)
      .sort((a, b) => b.base - b.guaranteed - (a.base - a.guaranteed));
    const tiers: Account[][] = [];
    for (const a of accounts) {
      const last = tiers[tiers.length - 1];
      if (last && last[0].base - last[0].guaranteed === a.base - a.guaranteed) last.push(a);
      else tiers.push([a]);
    }
    for (let rank = PREEMPTIBLE_RANK - 1; rank >= 0; rank--) {
      for (const small of [true, false]) {
        for (const tier of tiers) {
          const part: RunningRec[] = [];
          for (const a of tier) {
            for (const rec of this.pool.byAccount.get(a) ?? []) {
              if (rec.rank !== rank || rec.victimStamp === this.stamp || rec.w.terminating) continue;
              if (rec.nodes.length === 0 || rec.shape.charge <= fits !== small) continue;
              part.push(rec);
            }
          }
          const heap = Heap.from(part, youngerFirst);
          for (let rec = heap.pop(); rec !== undefined; rec = heap.pop()) yield rec;
        }
      }
    }
  }

  /**
   * Running work that may be a victim at all: of a project above its guarantee, or preemptible.
   * Without preemptible work in the pool only the accounts above their guarantee are visited.
   * Why: scanning all running work per claim was half of the simulator's time on the Philly bench.
   */
  private *candidates(): Generator<RunningRec> {
    if (this.pool.preemptible > 0) {
      yield* this.pool.running;
      return;
    }
    for (const [a, recs] of this.pool.byAccount) if (a.base > a.guaranteed) yield* recs;
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
      const room = new Map<Account, AccountRoom>();
      const maxCharge = new Map<Account, number>();
      // No order needed for a bound: one pass over the candidates, no sort.
      for (const rec of this.candidates()) {
        if (rec.victimStamp === this.stamp || rec.w.terminating || rec.nodes.length === 0) continue;
        // Gives nothing: not preemptible, and its project is not above its guarantee.
        if (rec.rank !== PREEMPTIBLE_RANK && rec.account.base <= rec.account.guaranteed) continue;
        let r = room.get(rec.account);
        if (!r) {
          r = { borrowed: 0, preemptible: 0, preemptibleWarm: 0 };
          room.set(rec.account, r);
        }
        if (rec.rank === PREEMPTIBLE_RANK) {
          r.preemptible += rec.shape.charge;
          if (!this.cooling(rec)) r.preemptibleWarm += rec.shape.charge;
        }
        maxCharge.set(rec.account, Math.max(maxCharge.get(rec.account) ?? 0, rec.shape.charge));
      }
      for (const [a, r] of room) {
        const over = a.base - a.guaranteed;
        // The guarantee rule takes while the account stays above its guarantee: less than
        // `over` plus one workload.
        r.borrowed = over > 0 ? Math.min(a.base, over + (maxCharge.get(a) ?? 0)) : 0;
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

function youngerFirst(a: RunningRec, b: RunningRec): boolean {
  if (a.w.startedAt !== b.w.startedAt) return a.w.startedAt > b.w.startedAt;
  return a.w.id < b.w.id;
}

function mayTake(s: VictimSearch, c: Claim, v: RunningRec): boolean {
  // Claims within the guarantee ignore the cooldown: the guarantee is obtainable within a cycle.
  if (v.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK && (c.withinGuarantee || !s.cooling(v))) return true;
  return c.withinGuarantee && v.account !== c.account && v.account.base > v.account.guaranteed;
}

export function findVictims(cap: Capacity, poolTopo: PoolTopo, search: VictimSearch, c: Claim): Victims | null {
  // Memo: a claim of this kind found no victims, and no GPUs came back since (placements only
  // make it harder; an eviction invalidates the search).
  const key = `${c.shape.key}\u0000${c.account.project}\u0000${c.rank}\u0000${c.withinGuarantee ? 1 : 0}`;
  if (search.failedAt(key) === cap.grown) return null;
  if (!search.mightSuffice(c, cap.poolFree[poolTopo.index])) {
    search.fail(key, cap.grown);
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
  for (const rec of search.victims(c.shape.charge)) {
    if (rec.victimStamp === search.stamp || !mayTake(search, c, rec)) continue;
    // A borrower gives back only while it stays above its guarantee (preemptible work always may).
    const preemptibleVictim = rec.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK;
    const gone = released.get(rec.account) ?? 0;
    if (!preemptibleVictim && rec.account.base - gone <= rec.account.guaranteed) continue;
    released.set(rec.account, gone + rec.shape.charge);
    if (!sim) sim = cap.clone();
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
    if (plan) return { victims: taken.filter((v) => overlaps(v, plan)), plan };
  }
  search.fail(key, cap.grown);
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
