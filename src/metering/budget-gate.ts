// The budget gate at submit: inside the submission's own audited transaction, a project whose
// monthly budget is used up (spend read from the rollups now) gets its budget's action: `block`
// refuses with 402 BUDGET_EXCEEDED, `preemptible` lowers the new workload to priority preemptible
// (the audited state says so, the response warns, the workload's events record why), `notify`
// lets it through.
import { AppError } from '../domain/errors.js';
import type { PriorityClass } from '../scheduler/types.js';
import type { Trx } from '../store/db.js';
import type { GateOutcome, PreparedSubmission, SubmissionGate } from '../workload/service.js';
import { type BudgetAction, type BudgetUnit, budgetAction, budgetUnit, isExceeded, projectSpend } from './budgets.js';

export type GateDecision =
  | { readonly kind: 'admit' }
  | { readonly kind: 'block'; readonly message: string }
  | { readonly kind: 'lower'; readonly message: string };

/** Pure: what a submission at `priority` gets from a budget with `spent` of `amount` used. */
export function gateDecision(
  budget: {
    readonly project: string;
    readonly unit: BudgetUnit;
    readonly amount: number;
    readonly action: BudgetAction;
  },
  spent: number,
  priority: PriorityClass,
): GateDecision {
  if (!isExceeded(spent, budget.amount) || budget.action === 'notify') return { kind: 'admit' };
  const used = `the monthly budget of ${budget.project} (${budget.amount} ${budget.unit}) is used up: ${round(spent)} ${budget.unit} spent`;
  if (budget.action === 'block')
    return { kind: 'block', message: `${used}; new submissions are refused until next month or a higher budget` };
  if (priority === 'preemptible') return { kind: 'admit' };
  return { kind: 'lower', message: `${used}; priority lowered from ${priority} to preemptible` };
}

function round(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/**
 * The project's budget as a submission gate (src/workload/service.ts `SubmissionGate`), in the
 * submission's own transaction: refused (402 BUDGET_EXCEEDED), lowered to preemptible, or admitted.
 */
export const budgetGate: SubmissionGate = async (trx, p) => gateAt(trx, p, Date.now());

export async function gateAt(trx: Trx, p: PreparedSubmission, now: number): Promise<GateOutcome> {
  const row = await trx.selectFrom('budgets').selectAll().where('project_id', '=', p.projectId).executeTakeFirst();
  if (!row) return { kind: 'admit' };
  const unit = budgetUnit(row.unit);
  const spent = await projectSpend(trx, { orgId: p.orgId, projectId: p.projectId, unit }, now);
  const budget = { project: p.projectRef, unit, amount: Number(row.amount), action: budgetAction(row.action) };
  const d = gateDecision(budget, spent, p.spec.priority);
  if (d.kind === 'block')
    throw new AppError('BUDGET_EXCEEDED', d.message, {
      project: p.projectRef,
      unit,
      amount: budget.amount,
      spent,
      action: 'block',
    });
  if (d.kind === 'admit') return { kind: 'admit' };
  return { kind: 'lower', priority: 'preemptible', reason: 'BudgetExceeded', message: d.message };
}
