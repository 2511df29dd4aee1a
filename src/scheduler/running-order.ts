// The state's indexes of a pool's running work, kept in step with every start and finish: by
// account (and per account by charge), by account and class oldest first (the victim order read
// backwards), by end (the backfill timeline), and the preemptible GPUs per account.
import { Heap } from './heap.js';
import type { DrainIndex, PoolState, RunningRec } from './pool-state.js';

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

/** Lower class (greater rank) first, then younger, then the smaller id: the drain's victim order (starvation.ts). */
function drainBefore(a: RunningRec, b: RunningRec): boolean {
  return a.rank > b.rank || (a.rank === b.rank && olderFirst(b, a));
}

/** Where `rec` is (or would go) in a list sorted by `before`. */
function sortedIndex(list: readonly RunningRec[], rec: RunningRec, before: Before): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid], rec)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

type Before = (a: RunningRec, b: RunningRec) => boolean;

/** Puts `rec` in its place in a list sorted by `before` (an append when it goes last, the usual case). */
function insertSorted(list: RunningRec[], rec: RunningRec, before: Before): void {
  if (list.length === 0 || before(list[list.length - 1], rec)) list.push(rec);
  else list.splice(sortedIndex(list, rec, before), 0, rec);
}

/** Takes `rec` out of a list sorted by `before`; false when it was not there. */
function removeSorted(list: RunningRec[], rec: RunningRec, before: Before): boolean {
  const k = sortedIndex(list, rec, before);
  if (list[k] !== rec) return false;
  list.splice(k, 1);
  return true;
}

/** A copy of `items` sorted by `before` (a strict total order). */
function sortedBy(items: Iterable<RunningRec>, before: Before): RunningRec[] {
  return [...items].sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
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
  // Work usually starts after everything already running: the insertion is an append.
  insertSorted(ages[rec.rank], rec, olderFirst);
  if (pool.byEnd) insertSorted(pool.byEnd, rec, endBefore);
  if (pool.drain) addToDrain(pool.drain, rec);
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
  if (list) removeSorted(list, rec, olderFirst);
  if (pool.byEnd && !removeSorted(pool.byEnd, rec, endBefore)) pool.byEnd = null;
  const d = pool.drain;
  if (d && !removeSorted(d.open, rec, drainBefore) && !removeSorted(d.grace, rec, graceEndsFirst)) pool.drain = null;
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

/**
 * What a drain at `now` may take, in drain order (terminating work and work on unknown nodes
 * still included: the caller skips them). Built once, then kept: starts and finishes insert and
 * remove, and a later `now` moves the work whose grace ended from `grace` to `open`. Why: the
 * scheduler bench's running work had nearly all started starved, and filtering all of it each
 * cycle was a quarter of an incremental cycle.
 */
export function drainCandidates(
  pool: PoolState,
  now: number,
  drainAfterS: number,
  graceS: number,
): readonly RunningRec[] {
  let d = pool.drain;
  if (!d || d.drainAfterS !== drainAfterS || d.graceS !== graceS || now < d.at) {
    const open: RunningRec[] = [];
    const grace: RunningRec[] = [];
    const at = { drainAfterS, graceS, at: now };
    for (const rec of pool.running) (inGrace(at, rec) ? grace : open).push(rec);
    d = { ...at, open: sortedBy(open, drainBefore), grace: sortedBy(grace, graceEndsFirst) };
    pool.drain = d;
    return d.open;
  }
  d.at = now;
  let k = 0;
  while (k < d.grace.length && !inGrace(d, d.grace[k])) k++;
  if (k > 0) {
    for (const rec of d.grace.splice(0, k)) insertSorted(d.open, rec, drainBefore);
  }
  return d.open;
}

/** Started starved and started less than graceS before `d.at`. */
function inGrace(d: Pick<DrainIndex, 'drainAfterS' | 'graceS' | 'at'>, rec: RunningRec): boolean {
  return rec.w.startedAt - rec.w.submittedAt >= d.drainAfterS && d.at - rec.w.startedAt < d.graceS;
}

function graceEndsFirst(a: RunningRec, b: RunningRec): boolean {
  return a.w.startedAt < b.w.startedAt || (a.w.startedAt === b.w.startedAt && a.w.id < b.w.id);
}

function addToDrain(d: DrainIndex, rec: RunningRec): void {
  if (inGrace(d, rec)) insertSorted(d.grace, rec, graceEndsFirst);
  else insertSorted(d.open, rec, drainBefore);
}

/** Running work of a pool by (end, id): the order GPUs come back in, for backfill reservations. */
export function runningByEnd(pool: PoolState): RunningRec[] {
  if (!pool.byEnd) pool.byEnd = sortedBy(pool.running, endBefore);
  return pool.byEnd;
}

interface Cursor {
  readonly list: readonly RunningRec[];
  k: number;
}

function cursorYounger(x: Cursor, y: Cursor): boolean {
  return olderFirst(y.list[y.k], x.list[x.k]);
}

/**
 * Lists kept oldest first (`byAge`), merged youngest first (each read backwards, then id): the
 * victim order within a class. Lazy, so a search pays for the work it looks at, not for a sort of
 * everything running.
 */
export function* youngestFirst(lists: readonly (readonly RunningRec[])[]): Generator<RunningRec> {
  if (lists.length === 1) {
    const list = lists[0];
    for (let k = list.length - 1; k >= 0; k--) yield list[k];
    return;
  }
  const cursors: Cursor[] = [];
  for (const list of lists) if (list.length > 0) cursors.push({ list, k: list.length - 1 });
  const heap = Heap.from(cursors, cursorYounger);
  for (let c = heap.peek(); c !== undefined; c = heap.peek()) {
    const rec = c.list[c.k];
    if (--c.k < 0) heap.pop();
    else heap.fixTop();
    yield rec;
  }
}
