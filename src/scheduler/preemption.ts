// Victim selection. Two kinds of claim may preempt:
//   - a claim within the claimant's guarantee takes back GPUs that other projects borrowed:
//     only from projects whose running work is above their own guarantee, and only while it
//     stays above it, so no one's guarantee is taken to give someone more than theirs (work
//     placed in the same cycle does not count: it is not running yet);
//   - any claim of a higher class than `preemptible` may take GPUs of preemptible workloads.
// Victims are tried in order: priority class (preemptible first), how far the victim's project is
// over its guarantee (most first), youngest first, id. They are released one by one on a copy of
// the capacity until the claimant fits; then only those whose GPUs the placement uses are kept.
import type { Capacity } from './capacity.js';
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

function mayTake(c: Claim, v: RunningRec): boolean {
  if (v.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK) return true;
  return c.withinGuarantee && v.account !== c.account && v.account.base > v.account.guaranteed;
}

export function findVictims(
  cap: Capacity,
  poolTopo: PoolTopo,
  pool: PoolState,
  c: Claim,
  stamp: number,
): Victims | null {
  const candidates: { rec: RunningRec; over: number }[] = [];
  for (const rec of pool.running) {
    if (rec.victimStamp === stamp || rec.w.terminating || rec.nodes.length === 0) continue;
    if (mayTake(c, rec)) candidates.push({ rec, over: rec.account.base - rec.account.guaranteed });
  }
  if (candidates.length === 0) return null;
  candidates.sort(
    (a, b) =>
      b.rec.rank - a.rec.rank ||
      b.over - a.over ||
      b.rec.w.startedAt - a.rec.w.startedAt ||
      (a.rec.w.id < b.rec.w.id ? -1 : a.rec.w.id > b.rec.w.id ? 1 : 0),
  );
  const sim = cap.clone();
  const released = new Map<Account, number>();
  const taken: RunningRec[] = [];
  for (const { rec } of candidates) {
    // A borrower gives back only while it stays above its guarantee (preemptible work always may).
    const preemptibleVictim = rec.rank === PREEMPTIBLE_RANK && c.rank < PREEMPTIBLE_RANK;
    const gone = released.get(rec.account) ?? 0;
    if (!preemptibleVictim && rec.account.base - gone <= rec.account.guaranteed) continue;
    released.set(rec.account, gone + rec.shape.charge);
    for (let k = 0; k < rec.nodes.length; k++) sim.release(rec.nodes[k], rec.masks[k]);
    taken.push(rec);
    const plan = findPlacement(sim, poolTopo, c.shape, c.eligible);
    if (plan) return { victims: taken.filter((v) => overlaps(v, plan)), plan };
  }
  return null;
}

function overlaps(v: RunningRec, plan: Plan): boolean {
  for (let k = 0; k < v.nodes.length; k++) {
    const j = plan.nodes.indexOf(v.nodes[k]);
    if (j >= 0 && (plan.masks[j] & v.masks[k]) !== 0) return true;
  }
  return false;
}
