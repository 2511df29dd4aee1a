// The order in which a cycle looks at pending work, per policy. Pending workloads live in small
// queues, one per (pool, project, shape), each sorted by a static key; a cycle merges the queue
// heads with a heap. Workloads of one queue fit or fail together, so a cycle can settle a whole
// queue with one answer instead of looking at every workload in it.
//
// fabrik's key, smaller first:
//   1. priority class (critical > high > normal > preemptible);
//   2. claims within the project's guarantee before borrowing ones;
//   3. submittedAt + min(agingHorizonS, GPUs × maxRuntimeS / 8) — small and short work first,
//      yet nothing is passed by work submitted more than agingHorizonS after it (aging);
//      borrowers add their fair-share push-back (fair-share.ts, at most fairShareHorizonS).
//   So within a class, a workload is ranked ahead of everything submitted more than
//   agingHorizonS + fairShareHorizonS after it.
//   Overdue: once now ≥ submittedAt + size push-back + overdueAfterS (at most agingHorizonS +
//   overdueAfterS after submission) a workload moves to the front tier of its class, ordered by
//   its static key: waiting beats the size and fair-share push-backs (Slurm's age factor, with
//   a cap), and the first blocked ones hold backfill reservations (cycle.ts).
// fifo, fifo-backfill: submittedAt. srtf-oracle: oracleRuntimeS (maxRuntimeS if absent).
// slurm-multifactor: submittedAt within a queue; queue heads by multifactor priority, highest first
//   (multifactor.ts: age, fair share and size; within one project and shape the older is ahead).
// tiresias-las: LAS queue of the attained service, then submittedAt; one ShapeQueue per LAS queue
//   (queueTag), so promotion after STARVELIMIT (a prefix in submit order) only changes the head's key.
// Ties: submittedAt, then id.
import { type MultifactorCycle, multifactorPriority } from './multifactor.js';
import type { ResolvedOptions } from './options.js';
import { PRIORITY_RANK } from './options.js';
import { type Account, type QuotaLedger, withinGuarantee } from './quota.js';
import type { Shape } from './shape.js';
import { lasLevel } from './las.js';
import type { PendingDecision, PendingReason, PolicyName, WorkloadRequest } from './types.js';

export interface Verdict {
  readonly reason: PendingReason;
  readonly message: string;
  readonly estimatedStart?: number;
}

export interface QueueEntry {
  readonly req: WorkloadRequest;
  readonly shape: Shape;
  readonly rank: number;
  readonly k1: number;
  readonly k2: number;
  readonly queue: ShapeQueue;
  /** Cycle that examined this entry (its `own` verdict is valid for that cycle only). */
  stamp: number;
  own: Verdict | null;
  placedStamp: number;
  /** Last pending decision handed out and the verdict it came from, reused while unchanged. */
  cached: PendingDecision | null;
  cachedVerdict: Verdict | null;
}

export function orderKeys(
  policy: PolicyName,
  req: WorkloadRequest,
  shape: Shape,
  opts: ResolvedOptions,
): [number, number] {
  switch (policy) {
    case 'fifo':
    case 'fifo-backfill':
      return [0, req.submittedAt];
    case 'srtf-oracle':
      return [0, req.oracleRuntimeS ?? req.maxRuntimeS];
    case 'slurm-multifactor':
      return [0, req.submittedAt];
    case 'tiresias-las':
      return [lasLevel(req.attainedGpuS ?? 0, opts.lasThresholdsGpuS), req.submittedAt];
    case 'fabrik':
      return [
        PRIORITY_RANK[req.priority],
        req.submittedAt + Math.min(opts.agingHorizonS, (shape.charge * req.maxRuntimeS) / 8),
      ];
  }
}

/** Splits a (project, shape) queue further where a policy needs it: tiresias-las, per LAS queue. */
export function queueTag(policy: PolicyName, req: WorkloadRequest, opts: ResolvedOptions): string {
  return policy === 'tiresias-las' ? `\u0000L${lasLevel(req.attainedGpuS ?? 0, opts.lasThresholdsGpuS)}` : '';
}

export function entryBefore(a: QueueEntry, b: QueueEntry): boolean {
  if (a.k1 !== b.k1) return a.k1 < b.k1;
  if (a.k2 !== b.k2) return a.k2 < b.k2;
  if (a.req.submittedAt !== b.req.submittedAt) return a.req.submittedAt < b.req.submittedAt;
  return a.req.id < b.req.id;
}

export class ShapeQueue {
  /** Sorted by entryBefore. */
  readonly items: QueueEntry[] = [];
  /** Bumped by insert and remove. */
  version = 0;
  /** Pending decisions of the last cycle for this queue, and what they were made from. */
  segment: PendingDecision[] = [];
  segVersion = -1;
  segOwn: (Verdict | null)[] = [];
  segRest: Verdict | null = null;
  // Per-cycle state.
  cursor = 0;
  stamp = 0;
  verdict: Verdict | null = null;
  /** After the cycle: the answer for every entry it did not examine. */
  rest: Verdict | null = null;
  // Heap key of the head, refreshed by refreshKey.
  hk1 = 0;
  htier = 0;
  hk2 = 0;

  /** Orders queues within a pool for the decisions' `pending` list. */
  readonly key: string;

  constructor(
    readonly pool: string,
    readonly project: string,
    readonly shape: Shape,
    public account: Account,
    tag = '',
  ) {
    this.key = `${project}\u0000${shape.key}${tag}`;
  }

  insert(e: QueueEntry): void {
    this.items.splice(this.lowerBound(e), 0, e);
    this.version++;
  }

  remove(e: QueueEntry): boolean {
    const at = this.lowerBound(e);
    if (this.items[at] !== e) return false;
    this.items.splice(at, 1);
    this.version++;
    return true;
  }

  /** The first position whose entry does not go before `e` (binary search; items stay sorted). */
  private lowerBound(e: QueueEntry): number {
    const items = this.items;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entryBefore(items[mid], e)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  head(): QueueEntry {
    return this.items[this.cursor];
  }
}

/**
 * Recomputes the head's heap key from the project's current usage. Returns true when it changed:
 * a project that just placed work may have left its guarantee, so its other queues move back.
 * fabrik tiers within a class: 0 starved (k2 ≤ starveCutoff: waited drainAfterS past its key; it
 * may drain the GPUs it needs, starvation.ts), 1 overdue (k2 ≤ overdueCutoff: waited
 * overdueAfterS past its key), both by key without fair-share push-back; 2 claims within the
 * guarantee, 3 borrowing claims (key + fair-share push-back). A queue is sorted by k2, so its
 * starved and overdue entries are prefixes and its head is always the right one to look at.
 */
export function refreshKey(
  q: ShapeQueue,
  policy: PolicyName,
  ledger: QuotaLedger,
  overdueCutoff: number,
  mf?: MultifactorCycle,
  starveCutoff = Number.NEGATIVE_INFINITY,
): boolean {
  const h = q.head();
  let tier = 0;
  let k1 = h.k1;
  let k2 = h.k2;
  if (policy === 'fabrik') {
    if (k2 <= starveCutoff) tier = 0;
    else if (k2 <= overdueCutoff) tier = 1;
    else if (withinGuarantee(ledger, q.account, q.shape.charge)) tier = 2;
    else {
      tier = 3;
      k2 += q.account.penalty;
    }
  } else if (policy === 'tiresias-las') {
    // Promoted (waited STARVELIMIT since its last run; the cycle passes now − STARVELIMIT): Q0.
    if (k1 > 0 && h.req.submittedAt <= overdueCutoff) k1 = 0;
  } else if (policy === 'slurm-multifactor' && mf) {
    const gpus = h.req.nodes * h.req.gpusPerNode;
    k2 = -multifactorPriority(mf.now - h.req.submittedAt, q.account.fairShare, gpus, mf.poolGpus, mf.opts);
  }
  const changed = q.hk1 !== k1 || q.htier !== tier || q.hk2 !== k2;
  q.hk1 = k1;
  q.htier = tier;
  q.hk2 = k2;
  return changed;
}

export function queueBefore(a: ShapeQueue, b: ShapeQueue): boolean {
  if (a.hk1 !== b.hk1) return a.hk1 < b.hk1;
  if (a.htier !== b.htier) return a.htier < b.htier;
  if (a.hk2 !== b.hk2) return a.hk2 < b.hk2;
  return entryBefore(a.head(), b.head());
}
