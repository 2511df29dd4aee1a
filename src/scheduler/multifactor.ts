// The `slurm-multifactor` baseline: what a site's users get from Slurm with
// PriorityType=priority/multifactor and SchedulerType=sched/backfill, PreemptType=preempt/none.
//
// Priority (Slurm's priority/multifactor plugin, https://slurm.schedmd.com/priority_multifactor.html):
//   priority = PriorityWeightAge × age + PriorityWeightFairshare × fairshare + PriorityWeightJobSize × size
// with every factor normalised to 0..1:
//   - age       = min(wait / PriorityMaxAge, 1), wait since the job became eligible (a requeued job's
//                 eligible time is its requeue, as in Slurm);
//   - fairshare = 2^(−U/S), the classic formula: U the project's share of the recent decayed usage
//                 (the snapshot's `usage`, PriorityDecayHalfLife in the simulator), S its share of the
//                 pool's shares (its guaranteed GPUs, what it bought; weights when nobody has a guarantee);
//   - size      = the job's GPUs / the pool's GPUs (PriorityFavorSmall=NO: bigger jobs rank higher).
// The partition, QOS, association, nice, site and TRES factors are left out (one partition per
// pool, no QOS: PriorityWeightQOS=0 as in the documentation's example).
// Weights (options.ts): PriorityWeightAge=1000, PriorityWeightFairshare=10000,
// PriorityWeightJobSize=1000, the documentation's configuration example, whose fair share dominates as
// at large shared GPU sites (DGX SuperPOD clusters run Slurm with fair share between accounts);
// PriorityMaxAge=7-0 (Slurm's default). Ties: submit time, then id (Slurm: submit time, job id).
//
// Backfill (sched/backfill): the queue in priority order; a job that cannot start now gets a
// reservation at its earliest start if that start lies within bf_window (1 day, Slurm's default) and
// later jobs may not delay it; conservative for the first `bfReservations` blocked jobs (Slurm plans
// every job it tests). The scan bound `maxBlockedPerPool` (500) plays bf_max_job_test (Slurm's
// default 500). Not modelled: bf_interval (Slurm backfills every 30 s; the core at every event),
// bf_resolution, the main scheduler's separate pass (same outcome in priority order).
import type { Account } from './quota.js';
import type { ResolvedOptions } from './options.js';
import { fairShareFactor } from './fair-share.js';

/** What a cycle needs to rank queue heads by multifactor priority. */
export interface MultifactorCycle {
  readonly now: number;
  readonly opts: ResolvedOptions;
  /** GPUs of the pool (the job-size factor's denominator). */
  readonly poolGpus: number;
}

/** Slurm's multifactor job priority from its normalised inputs. */
export function multifactorPriority(
  waitS: number,
  fairShare: number,
  gpus: number,
  poolGpus: number,
  opts: Pick<
    ResolvedOptions,
    'priorityWeightAge' | 'priorityWeightFairshare' | 'priorityWeightJobSize' | 'priorityMaxAgeS'
  >,
): number {
  const age = Math.min(Math.max(0, waitS) / opts.priorityMaxAgeS, 1);
  const size = poolGpus > 0 ? Math.min(gpus / poolGpus, 1) : 0;
  return opts.priorityWeightAge * age + opts.priorityWeightFairshare * fairShare + opts.priorityWeightJobSize * size;
}

/**
 * Sets `fairShare` (0..1) on every account of one pool: 2^(−U/S). With quotas the members are the
 * projects with a row in the pool, their shares the guaranteed GPUs (the weights if no one has a
 * guarantee); without quotas every project that used GPUs recently, with equal shares. Sums run in
 * project order, so the result does not depend on the order accounts were made in.
 */
export function assignFairShare(
  accounts: Iterable<Account>,
  usage: Readonly<Record<string, number>>,
  quotasEnforced: boolean,
): void {
  const all = [...accounts].sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  const used = (p: string): number => Math.max(0, usage[p] ?? 0);
  const members = quotasEnforced ? all.filter((a) => a.hasRow) : all;
  const guaranteed = members.reduce((s, a) => s + a.guaranteed, 0);
  const share = (a: Account): number => (!quotasEnforced ? 1 : guaranteed > 0 ? a.guaranteed : a.weight);
  let shareSum = 0;
  let usageSum = 0;
  if (quotasEnforced) {
    for (const a of members) {
      shareSum += share(a);
      usageSum += used(a.project);
    }
  } else {
    for (const p of Object.keys(usage).sort()) {
      if (used(p) <= 0) continue;
      shareSum += 1;
      usageSum += used(p);
    }
  }
  for (const a of all) {
    if (usageSum <= 0 || (quotasEnforced && !a.hasRow)) {
      a.fairShare = usageSum <= 0 || used(a.project) <= 0 ? 1 : 0;
      continue;
    }
    a.fairShare = fairShareFactor(used(a.project) / usageSum, shareSum > 0 ? share(a) / shareSum : 0);
  }
}
