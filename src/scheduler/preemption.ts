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
// over its guarantee (most first), youngest first, id. They are released one by one on a copy of
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
  private order: RunningRec[][] | null = null;
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
  *victims(): Generator<RunningRec> {
    if (!this.order) {
      const groups = new Map<string, { rank: number; over: number; recs: RunningRec[] }>();
      for (const rec of this.pool.running) {
        if (rec.victimStamp === this.stamp || rec.w.terminating || rec.nodes.length === 0) continue;
        const over = rec.account.base - rec.account.guaranteed;
        const k = `${rec.rank}|${over}`;
        let g = groups.get(k);
        if (!g) {
          g = { rank: rec.rank, over, recs: [] };
          groups.set(k, g);
        }
        g.recs.push(rec);
      }
      this.order = [...groups.values()].sort((a, b) => b.rank - a.rank || b.over - a.over).map((g) => g.recs);
    }
    for (const recs of this.order) {
      const heap = Heap.from([...recs], youngerFirst);
      for (let rec = heap.pop(); rec !== undefined; rec = heap.pop()) yield rec;
    }
  }

  private rooms(): Map<Account, AccountRoom> {
    if (!this.room) {
      const room = new Map<Account, AccountRoom>();
      const maxCharge = new Map<Account, number>();
      // No order needed for a bound: one pass over the pool's running work, no sort.
      for (const rec of this.pool.running) {
        if (rec.victimStamp === this.stamp || rec.w.terminating || rec.nodes.length === 0) continue;
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
  // Order-free check first: free GPUs plus everything this claim may take at most (ignoring the
  // stay-above-guarantee rule, which only removes victims). Placement is monotone in free GPUs,
  // so if even that does not fit, no victim order does, and the sort below is skipped.
  let sim: Capacity | null = cap.clone();
  for (const rec of search.pool.running) {
    if (rec.victimStamp === search.stamp || rec.w.terminating || rec.nodes.length === 0) continue;
    if (!mayTake(search, c, rec)) continue;
    for (let k = 0; k < rec.nodes.length; k++) sim.release(rec.nodes[k], rec.masks[k]);
  }
  if (!findPlacement(sim, poolTopo, c.shape, c.eligible)) {
    search.fail(key, cap.grown);
    return null;
  }
  sim = null;
  const released = new Map<Account, number>();
  const taken: RunningRec[] = [];
  for (const rec of search.victims()) {
    if (rec.victimStamp === search.stamp || !mayTake(search, c, rec)) continue;
    // A borrower gives back only while it stays above its guarantee (preemptible work always may).
    const preemptibleVictim = rec.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK;
    const gone = released.get(rec.account) ?? 0;
    if (!preemptibleVictim && rec.account.base - gone <= rec.account.guaranteed) continue;
    released.set(rec.account, gone + rec.shape.charge);
    if (!sim) sim = cap.clone();
    for (let k = 0; k < rec.nodes.length; k++) sim.release(rec.nodes[k], rec.masks[k]);
    taken.push(rec);
    const plan = findPlacement(sim, poolTopo, c.shape, c.eligible);
    if (plan) return { victims: taken.filter((v) => overlaps(v, plan)), plan };
  }
  search.fail(key, cap.grown);
  return null;
}

function overlaps(v: RunningRec, plan: Plan): boolean {
  for (let k = 0; k < v.nodes.length; k++) {
    const j = plan.nodes.indexOf(v.nodes[k]);
    if (j >= 0 && (plan.masks[j] & v.masks[k]) !== 0) return true;
  }
  return false;
}
