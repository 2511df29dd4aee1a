// Monthly budgets per project, in EUR or GPU-hours: alerts at chosen thresholds (events, so webhooks
// deliver them; once per threshold and month), and at 100 % an action that the submit gate applies
// (budget-gate.ts): notify only, block new submissions, or lower them to preemptible. Spend is read
// from the hourly rollups, priced like the statement, so a budget and a statement never disagree.
import { mutate } from '../audit/journal.js';
import { type Ctx, findProject, requireRole, write } from '../app/context.js';
import { AppError, notFound } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import type { Trx } from '../store/db.js';
import type { BudgetsTable } from '../store/schema.js';
import { type Price, PriceBook, loadPrices } from './prices.js';
import { monthOf, monthRange } from '../domain/time-arg.js';
import { centsOf, priceUsage } from './statement.js';
import { readUsage } from './usage.js';

export const BUDGET_UNITS = ['EUR', 'gpu-hours'] as const;
export type BudgetUnit = (typeof BUDGET_UNITS)[number];
export const BUDGET_ACTIONS = ['notify', 'block', 'preemptible'] as const;
export type BudgetAction = (typeof BUDGET_ACTIONS)[number];

/** A stored unit or action read back: a row that holds anything else is corrupt, not a default. */
export function budgetUnit(v: string): BudgetUnit {
  if ((BUDGET_UNITS as readonly string[]).includes(v)) return v as BudgetUnit;
  throw new Error(`budgets: stored unit "${v}" is not one of ${BUDGET_UNITS.join(', ')}`);
}

export function budgetAction(v: string): BudgetAction {
  if ((BUDGET_ACTIONS as readonly string[]).includes(v)) return v as BudgetAction;
  throw new Error(`budgets: stored action "${v}" is not one of ${BUDGET_ACTIONS.join(', ')}`);
}
export const DEFAULT_THRESHOLDS = [50, 80, 100] as const;

export interface BudgetInput {
  unit: string;
  amount: number;
  thresholds?: number[];
  action?: string;
}

export interface Budget {
  project: string;
  unit: BudgetUnit;
  amount: number;
  thresholds: number[];
  action: BudgetAction;
  createdAt: string;
  updatedAt: string;
}

/** A budget with where the current month stands. */
export interface BudgetStatus extends Budget {
  month: string;
  spent: number;
  /** spent / amount × 100 (null for a zero budget with no spend). */
  percent: number | null;
  /** Thresholds already alerted this month. */
  alerted: number[];
  exceeded: boolean;
}

type Db = Ctx['db'] | Trx;

// ---- pure rules ----

function invalid(message: string, field: string): AppError {
  return new AppError('BUDGET_INVALID', message, { field });
}

/** 400 BUDGET_INVALID for a negative amount, an unknown unit or action, or thresholds out of 1..1000. */
export function checkBudgetInput(input: BudgetInput): Omit<Budget, 'project' | 'createdAt' | 'updatedAt'> {
  if (!(BUDGET_UNITS as readonly string[]).includes(input.unit))
    throw invalid(`unit: "${input.unit}" is not one of ${BUDGET_UNITS.join(', ')}`, 'unit');
  if (!Number.isFinite(input.amount) || input.amount < 0)
    throw invalid(`amount: ${input.amount} is below zero; a budget is 0 or more`, 'amount');
  if (input.unit === 'EUR' && Math.round(input.amount * 100) !== Number((input.amount * 100).toFixed(6)))
    throw invalid(`amount: ${input.amount} EUR has more than 2 decimals`, 'amount');
  const thresholds = [...new Set(input.thresholds ?? DEFAULT_THRESHOLDS)].sort((a, b) => a - b);
  if (thresholds.length === 0 || thresholds.some((t) => !Number.isInteger(t) || t < 1 || t > 1000))
    throw invalid('thresholds: whole percentages from 1 to 1000, e.g. [50, 80, 100]', 'thresholds');
  const action = input.action ?? 'notify';
  if (!(BUDGET_ACTIONS as readonly string[]).includes(action))
    throw invalid(`action: "${action}" is not one of ${BUDGET_ACTIONS.join(', ')}`, 'action');
  return { unit: input.unit as BudgetUnit, amount: input.amount, thresholds, action: action as BudgetAction };
}

/** Spend as a percentage of the budget; a zero budget is used up by any spend. */
export function percentOf(spent: number, amount: number): number | null {
  if (amount === 0) return spent > 0 ? Infinity : null;
  return (spent / amount) * 100;
}

/** The thresholds reached at `percent` that have not been alerted yet. */
export function newThresholds(
  thresholds: readonly number[],
  percent: number | null,
  alerted: readonly number[],
): number[] {
  if (percent === null) return [];
  return thresholds.filter((t) => percent >= t && !alerted.includes(t));
}

/** Whether spend reached 100 % (the action applies). */
export function isExceeded(spent: number, amount: number): boolean {
  const p = percentOf(spent, amount);
  return p !== null && p >= 100;
}

// ---- spend and storage ----

function budgetView(r: BudgetsTable, project: string): Budget {
  return {
    project,
    unit: budgetUnit(r.unit),
    amount: Number(r.amount),
    thresholds: JSON.parse(r.thresholds) as number[],
    action: budgetAction(r.action),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A project's spend in the month containing `now`: EUR (priced as the statement does) or GPU-hours. */
export async function projectSpend(
  db: Db,
  p: { orgId: string; projectId: string; unit: BudgetUnit },
  now: number,
  prices?: readonly Price[],
): Promise<number> {
  const range = monthRange(monthOf(now))!;
  const usage = await readUsage(db, {
    orgId: p.orgId,
    projectId: p.projectId,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
    metrics: p.unit === 'EUR' ? ['gpu_seconds', 'tokens_in', 'tokens_out', 'stored_byte_seconds'] : ['gpu_seconds'],
  });
  if (p.unit === 'gpu-hours') return usage.reduce((s, r) => s + r.quantity, 0) / 3600;
  const book = new PriceBook(prices ?? (await loadPrices(db)));
  const { lines } = priceUsage({ usage, prices: book, projects: new Map([[p.projectId, p.projectId]]) });
  return lines.reduce((s, l) => s + centsOf(l.amountMicros), 0) / 100;
}

async function alertedIn(db: Db, projectId: string, month: string): Promise<number[]> {
  const rows = await db
    .selectFrom('budget_alerts')
    .select('threshold')
    .where('project_id', '=', projectId)
    .where('month', '=', month)
    .execute();
  return rows.map((r) => Number(r.threshold)).sort((a, b) => a - b);
}

async function statusOf(db: Db, row: BudgetsTable, ref: string, now: number): Promise<BudgetStatus> {
  const b = budgetView(row, ref);
  const month = monthOf(now);
  const spent = await projectSpend(db, { orgId: row.org_id, projectId: row.project_id, unit: b.unit }, now);
  const percent = percentOf(spent, b.amount);
  return {
    ...b,
    month,
    spent,
    percent: percent === Infinity ? null : percent,
    alerted: await alertedIn(db, row.project_id, month),
    exceeded: isExceeded(spent, b.amount),
  };
}

// ---- the service ----

export async function getBudget(ctx: Ctx, projectRef: string, now = Date.now()): Promise<BudgetStatus> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const row = await ctx.db.selectFrom('budgets').selectAll().where('project_id', '=', project.id).executeTakeFirst();
  if (!row) throw notFound('budget', ref);
  return statusOf(ctx.db, row, ref, now);
}

/** Sets (or replaces) a project's budget: its admins and owners, and operators. */
export async function setBudget(
  ctx: Ctx,
  projectRef: string,
  input: BudgetInput,
  now = Date.now(),
): Promise<BudgetStatus> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const spec = { action: 'budget.set', resource: `projects/${ref}/budget`, orgId: org.id, projectId: project.id };
  await requireRole(ctx, spec, 'admin', 'setting budgets', project.id);
  const b = checkBudgetInput(input);
  const row = await write(ctx, spec, async (trx) => {
    const before = await trx.selectFrom('budgets').selectAll().where('project_id', '=', project.id).executeTakeFirst();
    const at = nowIso();
    const next: BudgetsTable = {
      project_id: project.id,
      org_id: org.id,
      unit: b.unit,
      amount: b.amount,
      thresholds: JSON.stringify(b.thresholds),
      action: b.action,
      created_at: before?.created_at ?? at,
      updated_at: at,
    };
    if (before) await trx.updateTable('budgets').set(next).where('project_id', '=', project.id).execute();
    else await trx.insertInto('budgets').values(next).execute();
    // Alerts speak of a budget: a new amount or unit starts this month's thresholds afresh.
    if (!before || before.unit !== next.unit || Number(before.amount) !== next.amount)
      await trx
        .deleteFrom('budget_alerts')
        .where('project_id', '=', project.id)
        .where('month', '=', monthOf(now))
        .execute();
    return { result: next, before: before ? budgetView(before, ref) : null, after: budgetView(next, ref) };
  });
  return statusOf(ctx.db, row, ref, now);
}

export async function deleteBudget(ctx: Ctx, projectRef: string): Promise<void> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const spec = { action: 'budget.delete', resource: `projects/${ref}/budget`, orgId: org.id, projectId: project.id };
  await requireRole(ctx, spec, 'admin', 'deleting budgets', project.id);
  await write(ctx, spec, async (trx) => {
    const before = await trx.selectFrom('budgets').selectAll().where('project_id', '=', project.id).executeTakeFirst();
    if (!before) throw notFound('budget', ref);
    await trx.deleteFrom('budgets').where('project_id', '=', project.id).execute();
    return { result: undefined, before: budgetView(before, ref), after: null };
  });
}

/** A budget alert as its event carries it. */
export interface BudgetAlert {
  project: string;
  month: string;
  threshold: number;
  unit: BudgetUnit;
  amount: number;
  spent: number;
  action: BudgetAction;
  /** What happens to new submissions now (at 100 % and above: the action). */
  message: string;
}

/**
 * After each rollup (the leader's UsageRollupLoop.onRollup): every budget's month-to-date spend,
 * and one audited `budget.alert` (event `budget.threshold.reached`) per threshold newly reached.
 */
export async function checkBudgets(
  db: Ctx['db'],
  opts: { now?: number; fence?: (trx: Trx) => Promise<void> } = {},
): Promise<BudgetAlert[]> {
  const now = opts.now ?? Date.now();
  const month = monthOf(now);
  const rows = await db
    .selectFrom('budgets')
    .innerJoin('projects', 'projects.id', 'budgets.project_id')
    .innerJoin('orgs', 'orgs.id', 'budgets.org_id')
    .selectAll('budgets')
    .select(['projects.name as p_name', 'orgs.name as o_name'])
    .execute();
  const prices = await loadPrices(db);
  const sent: BudgetAlert[] = [];
  for (const { p_name, o_name, ...row } of rows) {
    const b = budgetView(row, `${o_name}.${p_name}`);
    const spent = await projectSpend(db, { orgId: row.org_id, projectId: row.project_id, unit: b.unit }, now, prices);
    const due = newThresholds(b.thresholds, percentOf(spent, b.amount), await alertedIn(db, row.project_id, month));
    for (const threshold of due) {
      const alert: BudgetAlert = {
        project: b.project,
        month,
        threshold,
        unit: b.unit,
        amount: b.amount,
        spent,
        action: b.action,
        message: alertMessage(b, threshold, spent),
      };
      const wrote = await mutate(
        db,
        {
          keyId: '',
          principal: 'system:budgets',
          requestId: `budget:${row.project_id}:${month}:${threshold}`,
          fence: opts.fence,
        },
        {
          action: 'budget.alert',
          resource: `projects/${b.project}/budget`,
          orgId: row.org_id,
          projectId: row.project_id,
        },
        async (trx) => {
          // Once per threshold and month, also when two replicas' checks race: the key decides.
          const had = await trx
            .selectFrom('budget_alerts')
            .select('threshold')
            .where('project_id', '=', row.project_id)
            .where('month', '=', month)
            .where('threshold', '=', threshold)
            .executeTakeFirst();
          if (had) return { result: false };
          await trx
            .insertInto('budget_alerts')
            .values({ project_id: row.project_id, month, threshold, spent, created_at: nowIso() })
            .execute();
          return { result: true, before: null, after: alert };
        },
      );
      if (wrote) sent.push(alert);
    }
  }
  return sent;
}

function alertMessage(b: Budget, threshold: number, spent: number): string {
  const of = `${b.project} used ${threshold} % of its ${b.amount} ${b.unit} budget this month (${spent.toFixed(2)} ${b.unit})`;
  if (threshold < 100 || b.action === 'notify') return of;
  return b.action === 'block'
    ? `${of}: new submissions are refused (BUDGET_EXCEEDED) until the month ends or the budget is raised`
    : `${of}: new workloads are lowered to priority preemptible`;
}
