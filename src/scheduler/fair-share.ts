// Fair sharing of idle capacity among borrowers.
//
// Rule: Slurm's classic fair-share factor, F = 2^(-U/S), per pool. U is the project's share of
// the recent usage of all projects with quota in the pool (decayed GPU-seconds, see
// decayUsage), S its share of their weights. F is 1 for a project that used nothing, 0.5 for one
// that used exactly its share, and tends to 0 for heavy users. A borrowing workload is pushed
// back in the queue by fairShareHorizonS × (1 − F) seconds, added to its aging key
// (queue-order.ts).
//
// Why not DRF: each pool is one resource (GPUs of one model), so dominant resource fairness
// reduces to weighted max-min on instantaneous allocation. That forgets history, so a tenant that
// bursts all night is as welcome in the morning as one that waited. Decayed usage remembers,
// and the factor is bounded (0..1), so the push-back is bounded too: a heavy user waits longer
// for idle capacity but never forever, which is the no-starvation bound of the policy.
import type { Account } from './quota.js';

/**
 * Usage after `dtS` more seconds: old usage decays with the half-life, and each project's
 * allocation over the interval adds its GPU-seconds (themselves decayed from the moment they were
 * used). `halfLifeS` <= 0 or infinite means no decay.
 */
export function decayUsage(
  prev: Readonly<Record<string, number>>,
  dtS: number,
  allocatedGpusByProject: Readonly<Record<string, number>>,
  halfLifeS: number,
): Record<string, number> {
  const dt = Math.max(0, dtS);
  const decays = Number.isFinite(halfLifeS) && halfLifeS > 0;
  const lambda = decays ? Math.LN2 / halfLifeS : 0;
  const keep = decays ? Math.exp(-lambda * dt) : 1;
  // Integral over the interval of a constant allocation, decayed to its end.
  const gain = decays ? (1 - keep) / lambda : dt;
  const out: Record<string, number> = {};
  for (const [p, u] of Object.entries(prev)) {
    if (u > 0) out[p] = u * keep;
  }
  for (const [p, gpus] of Object.entries(allocatedGpusByProject)) {
    if (gpus > 0) out[p] = (out[p] ?? 0) + gpus * gain;
  }
  for (const p of Object.keys(out)) {
    if (out[p] < 1e-9) delete out[p];
  }
  return out;
}

/** Slurm's fair-share factor for usage share u and weight share s. */
export function fairShareFactor(u: number, s: number): number {
  if (u <= 0) return 1;
  if (s <= 0) return 0;
  return 2 ** (-u / s);
}

/**
 * Sets `penalty` on every account of one pool. With quotas, the members are the projects with a
 * quota row in the pool, weighted by their rows. Without quotas, every project that has used
 * GPUs recently counts, each with weight 1. Sums run in project order so that the result does
 * not depend on the order accounts were created in.
 */
export function assignPenalties(
  accounts: Iterable<Account>,
  usage: Readonly<Record<string, number>>,
  horizonS: number,
  quotasEnforced: boolean,
): void {
  const all = [...accounts].sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  for (const a of all) a.penalty = 0;
  if (horizonS <= 0) return;
  const used = (p: string): number => Math.max(0, usage[p] ?? 0);
  let weightSum = 0;
  let usageSum = 0;
  if (quotasEnforced) {
    for (const a of all) {
      if (!a.hasRow) continue;
      weightSum += a.weight;
      usageSum += used(a.project);
    }
  } else {
    for (const p of Object.keys(usage).sort()) {
      if (used(p) <= 0) continue;
      weightSum += 1;
      usageSum += used(p);
    }
  }
  if (usageSum <= 0 || weightSum <= 0) return;
  for (const a of all) {
    if (quotasEnforced && !a.hasRow) continue;
    const f = fairShareFactor(used(a.project) / usageSum, (quotasEnforced ? a.weight : 1) / weightSum);
    a.penalty = horizonS * (1 - f);
  }
}
