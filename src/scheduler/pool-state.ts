// A pool's part of the scheduler state and its running records: the shapes state.ts keeps and
// running-order.ts indexes (apart, so that the indexes need not import the state).
import type { Account } from './quota.js';
import type { ShapeQueue, Verdict } from './queue-order.js';
import type { Shape } from './shape.js';
import type { RunningWorkload } from './types.js';

export interface RunningRec {
  readonly w: RunningWorkload;
  readonly pool: PoolState;
  account: Account;
  readonly shape: Shape;
  readonly rank: number;
  /** Node indexes and GPU masks it holds (nodes unknown to the topology are left out). */
  nodes: number[];
  masks: number[];
  /** When its max runtime is up; terminating work is treated as ending now. */
  readonly end: number;
  /** Cycle that picked it as a victim. */
  victimStamp: number;
}

/**
 * Running work split for the starvation drain: work that started starved (waited `drainAfterS`
 * or more) is spared for `graceS` after its start. `open`: the rest, in drain order (lower class
 * first, then youngest, then id); `grace`: the spared, by start (the order their grace ends in),
 * as of `at`. Time moving on only moves work from `grace` to `open`.
 */
export interface DrainIndex {
  readonly drainAfterS: number;
  readonly graceS: number;
  at: number;
  readonly open: RunningRec[];
  readonly grace: RunningRec[];
}

export interface PoolState {
  readonly name: string;
  readonly queues: Map<string, ShapeQueue>;
  /** The same queues sorted by key (see sortedQueues); empty ones stay, they cost little and come back. */
  readonly sorted: ShapeQueue[];
  sortedDirty: boolean;
  readonly running: Set<RunningRec>;
  /** The same running work by project account: victim search looks only at accounts above their guarantee. */
  readonly byAccount: Map<Account, Set<RunningRec>>;
  /** Per account, running workloads by charge (GPUs): its biggest workload without a scan. */
  readonly charges: Map<Account, Map<number, number>>;
  /**
   * Per account and priority rank, running work oldest first (`olderFirst`): read backwards it
   * is the victim order's "youngest first", so a victim search walks an array instead of building
   * and draining a heap of all the account's work for every claim.
   */
  readonly byAge: Map<Account, RunningRec[][]>;
  /** Per account, GPUs charged to its running preemptible work (not terminating, on known nodes). */
  readonly preemptibleGpus: Map<Account, number>;
  /** Running preemptible work that was preempted before: what the preemption cooldown may protect. */
  readonly restarted: Set<RunningRec>;
  /** Running work sorted by (end, id); rebuilt lazily. */
  byEnd: RunningRec[] | null;
  /** What a drain may take (starvation.ts), built on first use and kept through starts and finishes. */
  drain: DrainIndex | null;
  terminating: number;
  preemptible: number;
  /** The array of a cycle's queue heap, reused from cycle to cycle (its contents mean nothing between cycles). */
  readonly heapBuf: ShapeQueue[];
  /**
   * Bumped by every change to the pool's queue or running work, and by fleet changes: a cycle
   * whose pool and `SchedulerState.inputs` versions, time and usage are those of an earlier one
   * may reuse that pool's answer (the dirty-pool idea of issue 12).
   */
  version: number;
  /**
   * Bumped by changes to the pool's running work and by node changes only (not by submissions):
   * what the GPUs in use and the victims depend on.
   */
  runningVersion: number;
  /** Reasons that depend on the fleet only (pool gone, selector, topology), per shape key. */
  readonly staticVerdicts: Map<string, Verdict | null>;
}
