// Quota accounting per project and pool: guaranteed, limit, weight and GPUs in use. Knows
// nothing about ordering. When a snapshot carries no quota rows at all, quotas are off: every
// project may use the whole pool and nobody has a guarantee. Otherwise a project without a row
// in a pool has guaranteed 0 and limit 0 there.
import type { PoolQuota } from './types.js';

export interface Account {
  readonly project: string;
  readonly pool: string;
  readonly guaranteed: number;
  readonly limit: number;
  readonly weight: number;
  readonly hasRow: boolean;
  /** GPUs charged to running workloads (and, during a cycle, to those it places). */
  used: number;
  /** GPUs of running workloads only, less this cycle's victims: what preemption may reclaim from. */
  base: number;
  /** fabrik: seconds a borrowing workload of this project is pushed back this cycle. */
  penalty: number;
  /** slurm-multifactor: the project's fair-share factor (0..1) this cycle. */
  fairShare: number;
}

export class QuotaLedger {
  readonly enforced: boolean;
  private readonly byPool = new Map<string, Map<string, Account>>();

  constructor(quotas: readonly PoolQuota[]) {
    this.enforced = quotas.length > 0;
    for (const q of quotas) {
      const guaranteed = Math.max(0, q.guaranteed);
      const acct: Account = {
        project: q.project,
        pool: q.pool,
        guaranteed,
        limit: Math.max(guaranteed, q.limit),
        weight: q.weight !== undefined && q.weight > 0 ? q.weight : 1,
        hasRow: true,
        used: 0,
        base: 0,
        penalty: 0,
        fairShare: 1,
      };
      this.poolMap(q.pool).set(q.project, acct);
    }
  }

  account(pool: string, project: string): Account {
    const m = this.poolMap(pool);
    let a = m.get(project);
    if (!a) {
      a = {
        project,
        pool,
        guaranteed: 0,
        limit: this.enforced ? 0 : Number.POSITIVE_INFINITY,
        weight: 1,
        hasRow: false,
        used: 0,
        base: 0,
        penalty: 0,
        fairShare: 1,
      };
      m.set(project, a);
    }
    return a;
  }

  accounts(pool: string): Iterable<Account> {
    return this.poolMap(pool).values();
  }

  private poolMap(pool: string): Map<string, Account> {
    let m = this.byPool.get(pool);
    if (!m) {
      m = new Map();
      this.byPool.set(pool, m);
    }
    return m;
  }
}

/** Within its guarantee after taking `charge` more GPUs: such a claim may reclaim borrowed GPUs. */
export function withinGuarantee(ledger: QuotaLedger, a: Account, charge: number): boolean {
  return ledger.enforced && a.used + charge <= a.guaranteed;
}

export function exceedsLimit(a: Account, charge: number): boolean {
  return a.used + charge > a.limit;
}
