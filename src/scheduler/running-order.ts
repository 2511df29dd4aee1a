// The state's indexes of a pool's running work, kept in step with every start and finish: by
// account (and per account by charge), by account and class oldest first (the victim order read
// backwards), by end (the backfill timeline), and the preemptible GPUs per account.
import type { PoolState, RunningRec } from './pool-state.js';

function endBefore(a: RunningRec, b: RunningRec): boolean {
  return a.end < b.end || (a.end === b.end && a.w.id < b.w.id);
}

/**
 * Started earlier, or at the same time with the greater id: the reverse of victim order's
 * "youngest first, then id" (preemption.ts), a strict total order since ids are unique.
 */
export function olderFirst(a: RunningRec, b: RunningRec): boolean {
  const sa = a.w.startedAt;
  const sb = b.w.startedAt;
  return sa < sb || (sa === sb && a.w.id > b.w.id);
}

/** Where `rec` is (or would go) in a list sorted by `before`. */
function sortedIndex(
  list: readonly RunningRec[],
  rec: RunningRec,
  before: (a: RunningRec, b: RunningRec) => boolean,
): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid], rec)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A pool's running work gained `rec` (its GPUs and quota usage are the caller's). */
export function indexRunning(pool: PoolState, rec: RunningRec): void {
  const { w, account, shape } = rec;
  pool.running.add(rec);
  let mine = pool.byAccount.get(account);
  if (!mine) {
    mine = new Set();
    pool.byAccount.set(account, mine);
  }
  mine.add(rec);
  let counts = pool.charges.get(account);
  if (!counts) {
    counts = new Map();
    pool.charges.set(account, counts);
  }
  counts.set(shape.charge, (counts.get(shape.charge) ?? 0) + 1);
  let ages = pool.byAge.get(account);
  if (!ages) {
    ages = [];
    pool.byAge.set(account, ages);
  }
  while (ages.length <= rec.rank) ages.push([]);
  const list = ages[rec.rank];
  // Work usually starts after everything already running: the insertion is an append.
  if (list.length === 0 || olderFirst(list[list.length - 1], rec)) list.push(rec);
  else list.splice(sortedIndex(list, rec, olderFirst), 0, rec);
  if (pool.byEnd) pool.byEnd.splice(sortedIndex(pool.byEnd, rec, endBefore), 0, rec);
  if (w.terminating) pool.terminating++;
  if (w.priority === 'preemptible') {
    pool.preemptible++;
    if (!w.terminating && rec.nodes.length > 0) {
      pool.preemptibleGpus.set(account, (pool.preemptibleGpus.get(account) ?? 0) + shape.charge);
    }
    if ((w.preemptions ?? 0) > 0) pool.restarted.add(rec);
  }
}

/** `rec` left the pool's running work. */
export function unindexRunning(pool: PoolState, rec: RunningRec): void {
  const { w, account, shape } = rec;
  pool.running.delete(rec);
  pool.byAccount.get(account)?.delete(rec);
  const counts = pool.charges.get(account);
  const left = (counts?.get(shape.charge) ?? 0) - 1;
  if (left > 0) counts?.set(shape.charge, left);
  else counts?.delete(shape.charge);
  const list = pool.byAge.get(account)?.[rec.rank];
  if (list) {
    const k = sortedIndex(list, rec, olderFirst);
    if (list[k] === rec) list.splice(k, 1);
  }
  const byEnd = pool.byEnd;
  if (byEnd) {
    const k = sortedIndex(byEnd, rec, endBefore);
    if (byEnd[k] === rec) byEnd.splice(k, 1);
    else pool.byEnd = null;
  }
  if (w.terminating) pool.terminating--;
  if (w.priority === 'preemptible') {
    pool.preemptible--;
    if (!w.terminating && rec.nodes.length > 0) {
      const gpus = (pool.preemptibleGpus.get(account) ?? 0) - shape.charge;
      if (gpus > 0) pool.preemptibleGpus.set(account, gpus);
      else pool.preemptibleGpus.delete(account);
    }
    pool.restarted.delete(rec);
  }
}

/** Running work of a pool by (end, id): the order GPUs come back in, for backfill reservations. */
export function runningByEnd(pool: PoolState): RunningRec[] {
  if (!pool.byEnd) pool.byEnd = [...pool.running].sort((a, b) => (endBefore(a, b) ? -1 : endBefore(b, a) ? 1 : 0));
  return pool.byEnd;
}
