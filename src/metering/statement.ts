// Monthly statements: an org's hourly usage rollups priced at the version valid at each hour
// (so work spanning a price change, or a month boundary, is split at the hour). A line is one item
// at one price version: its quantity is the sum of its rollup rows, its amount that quantity × the
// unit price in integer micro-EUR (rounded once), then cents; the total is the exact sum of the
// lines, so totals reconcile with the usage records. The month is read in segments between price
// changes, summed by the database. Energy and CO2 come from the same rollups, labelled estimated.
import { type Ctx, findOrg } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { monthRange } from '../domain/time-arg.js';
import { visibleProjects } from '../policy/roles.js';
import { CURRENCY, PRICE_UNITS, type Price, PriceBook, type PriceItem, formatMicros, loadPrices } from './prices.js';
import { GB_MONTH_BYTE_SECONDS, HOUR_MS, type UsageMetric, type UsageRecord } from './types.js';

/** How a billed metric becomes an item: the rollup quantity divided by `per` is the count of units. */
export const BILLED: Readonly<Partial<Record<UsageMetric, { item: PriceItem; per: number }>>> = {
  gpu_seconds: { item: 'gpu-hour', per: 3600 },
  tokens_in: { item: 'tokens-in', per: 1_000_000 },
  tokens_out: { item: 'tokens-out', per: 1_000_000 },
  stored_byte_seconds: { item: 'gb-month', per: GB_MONTH_BYTE_SECONDS },
};
const ITEM_ORDER: readonly PriceItem[] = ['gpu-hour', 'tokens-in', 'tokens-out', 'gb-month'];

export interface StatementLine {
  /** `org.project` */
  project: string;
  item: PriceItem;
  /** What the line is, in words: "GPU-hours b200 (normal)", "tokens in llama-3 (acme.web/chat)". */
  description: string;
  pool: string;
  priority: string;
  deployment: string;
  model: string;
  /** Units billed (GPU-hours, millions of tokens, GB-months). */
  quantity: number;
  unit: string;
  /** The rollup metric and the sum of its rows' quantities (GPU-seconds, tokens, byte-seconds). */
  usageMetric: UsageMetric;
  usageQuantity: number;
  /** Rollup rows priced into this line, and the hours they span [from, to). */
  records: number;
  from: string;
  to: string;
  priceId: string | null;
  /** Decimal EUR per unit; null: no price was valid (the line is not charged). */
  unitPrice: string | null;
  /** round(usageQuantity / units × unit price) in micro-EUR: exact, the line's price times its quantity. */
  amountMicros: number;
  /** The line's amount in cents (rounded once, half up), and as decimal EUR. */
  amountCents: number;
  amount: string;
}

export interface Footprint {
  project: string;
  energyKWh: number;
  co2Kg: number;
  /** Some of the energy is estimated (TDP × utilisation, no power measurement). */
  estimated: boolean;
}

export interface Statement {
  org: string;
  /** YYYY-MM (UTC) */
  month: string;
  from: string;
  to: string;
  currency: 'EUR';
  /** The month is not over: figures grow until it is. */
  provisional: boolean;
  generatedAt: string;
  lines: StatementLine[];
  projects: { project: string; amountCents: number; amount: string }[];
  footprint: Footprint[];
  totals: {
    amountCents: number;
    amountMicros: number;
    amount: string;
    energyKWh: number;
    co2Kg: number;
    estimated: boolean;
  };
  /** Lines with usage but no valid price (not charged): the catalogue has a gap. */
  unpriced: number;
}

/** A month that has begun by `now`, and whether it is still running; 400 otherwise. */
export function checkMonth(month: string, now: number): { from: number; to: number; provisional: boolean } {
  const r = monthRange(month);
  if (!r) throw new AppError('VALIDATION_FAILED', `month: "${month}" is not YYYY-MM`, { field: 'month' });
  if (r.from > now)
    throw new AppError('MONTH_IN_FUTURE', `month ${month} has not begun: statements exist from its first day on`, {
      month,
    });
  return { ...r, provisional: now < r.to };
}

/** Cents of an exact micro-EUR amount, rounded half up (away from zero). */
export function centsOf(micros: number): number {
  return Math.sign(micros) * Math.floor((Math.abs(micros) + 5000) / 10_000);
}

export function formatCents(cents: number): string {
  return formatMicros(cents * 10_000, 2);
}

/** The amount of a quantity (in rollup units, `per` of them a billed unit) at a unit price: integer micro-EUR. */
export function rowMicros(quantity: number, per: number, unitPriceMicros: number): number {
  return Math.round((quantity * unitPriceMicros) / per);
}

/** Rollup rows, or sums of rows within one price segment (then `records` rows up to `lastHour`). */
export type UsageSum = UsageRecord & { readonly records?: number; readonly lastHour?: string };

export interface PricingInput {
  readonly usage: readonly UsageSum[];
  readonly prices: PriceBook;
  /** project id → `org.project` */
  readonly projects: ReadonlyMap<string, string>;
  /** deployment id → `org.project/name` */
  readonly deployments?: ReadonlyMap<string, string>;
}

/** The pure core: usage rows → priced lines and footprint (no totals in cents yet). */
export function priceUsage(input: PricingInput): { lines: StatementLine[]; footprint: Footprint[] } {
  const lines = new Map<string, StatementLine>();
  const prices = new Map<StatementLine, number>();
  const foot = new Map<string, Footprint>();
  for (const r of input.usage) {
    const project = input.projects.get(r.projectId);
    if (project === undefined) continue;
    if (r.metric === 'energy_wh' || r.metric === 'co2_g') {
      let f = foot.get(project);
      if (!f) {
        f = { project, energyKWh: 0, co2Kg: 0, estimated: false };
        foot.set(project, f);
      }
      if (r.metric === 'energy_wh') f.energyKWh += r.quantity / 1000;
      else f.co2Kg += r.quantity / 1000;
      if (r.estimated) f.estimated = true;
      continue;
    }
    const billed = BILLED[r.metric];
    if (!billed) continue;
    const hourMs = Date.parse(r.hour);
    const price: Price | undefined = input.prices.at(billed.item, r, hourMs);
    const gpu = billed.item === 'gpu-hour';
    const tokens = billed.item === 'tokens-in' || billed.item === 'tokens-out';
    const key = [
      project,
      billed.item,
      gpu ? r.pool : '',
      gpu ? r.priority : '',
      tokens ? r.deploymentId : '',
      tokens ? r.model : '',
      price?.id ?? '',
    ].join('\u0000');
    let line = lines.get(key);
    if (!line) {
      const deployment = tokens && r.deploymentId ? (input.deployments?.get(r.deploymentId) ?? r.deploymentId) : '';
      line = {
        project,
        item: billed.item,
        description: describe(billed.item, r, deployment),
        pool: gpu ? r.pool : '',
        priority: gpu ? r.priority : '',
        deployment,
        model: tokens ? r.model : '',
        quantity: 0,
        unit: PRICE_UNITS[billed.item],
        usageMetric: r.metric,
        usageQuantity: 0,
        records: 0,
        from: r.hour,
        to: r.hour,
        priceId: price?.id ?? null,
        unitPrice: price?.unitPrice ?? null,
        amountMicros: 0,
        amountCents: 0,
        amount: '',
      };
      lines.set(key, line);
    }
    line.usageQuantity += r.quantity;
    line.records += r.records ?? 1;
    if (r.hour < line.from) line.from = r.hour;
    const last = r.lastHour ?? r.hour;
    if (last > line.to) line.to = last;
    if (price) prices.set(line, price.unitPriceMicros);
  }
  const out = [...lines.values()];
  for (const l of out) {
    const per = BILLED[l.usageMetric]!.per;
    l.quantity = l.usageQuantity / per;
    l.amountMicros = rowMicros(l.usageQuantity, per, prices.get(l) ?? 0);
    l.to = new Date(Date.parse(l.to) + 3_600_000).toISOString();
    l.amountCents = centsOf(l.amountMicros);
    l.amount = formatCents(l.amountCents);
  }
  out.sort(
    (a, b) =>
      cmp(a.project, b.project) ||
      ITEM_ORDER.indexOf(a.item) - ITEM_ORDER.indexOf(b.item) ||
      cmp(a.pool, b.pool) ||
      cmp(a.priority, b.priority) ||
      cmp(a.deployment, b.deployment) ||
      cmp(a.model, b.model) ||
      cmp(a.from, b.from),
  );
  return { lines: out, footprint: [...foot.values()].sort((a, b) => cmp(a.project, b.project)) };
}

function describe(item: PriceItem, r: UsageRecord, deployment: string): string {
  if (item === 'gpu-hour') return `GPU-hours ${r.pool || '-'}${r.priority ? ` (${r.priority})` : ''}`;
  if (item === 'gb-month') return 'registry storage';
  const what = [r.model, deployment ? `(${deployment})` : ''].filter(Boolean).join(' ') || '-';
  return `${item === 'tokens-in' ? 'tokens in' : 'tokens out'} ${what}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lines and footprint → the whole statement, with per-project and grand totals. */
export function assembleStatement(
  head: { org: string; month: string; from: number; to: number; provisional: boolean; generatedAt: string },
  priced: { lines: StatementLine[]; footprint: Footprint[] },
): Statement {
  const byProject = new Map<string, number>();
  let cents = 0;
  let micros = 0;
  for (const l of priced.lines) {
    byProject.set(l.project, (byProject.get(l.project) ?? 0) + l.amountCents);
    cents += l.amountCents;
    micros += l.amountMicros;
  }
  for (const f of priced.footprint) if (!byProject.has(f.project)) byProject.set(f.project, 0);
  return {
    org: head.org,
    month: head.month,
    from: new Date(head.from).toISOString(),
    to: new Date(head.to).toISOString(),
    currency: CURRENCY,
    provisional: head.provisional,
    generatedAt: head.generatedAt,
    lines: priced.lines,
    projects: [...byProject]
      .sort(([a], [b]) => cmp(a, b))
      .map(([project, c]) => ({ project, amountCents: c, amount: formatCents(c) })),
    footprint: priced.footprint,
    totals: {
      amountCents: cents,
      amountMicros: micros,
      amount: formatCents(cents),
      energyKWh: priced.footprint.reduce((s, f) => s + f.energyKWh, 0),
      co2Kg: priced.footprint.reduce((s, f) => s + f.co2Kg, 0),
      estimated: priced.footprint.some((f) => f.estimated),
    },
    unpriced: priced.lines.filter((l) => l.priceId === null).length,
  };
}

/** The hours in [from, to) where some price version starts or ends: prices are constant between them. */
export function priceSegments(range: { from: number; to: number }, prices: readonly Price[]): [number, number][] {
  const cuts = new Set([range.from, range.to]);
  for (const p of prices)
    for (const t of [Date.parse(p.validFrom), p.validTo ? Date.parse(p.validTo) : Number.NaN])
      if (t > range.from && t < range.to) cuts.add(t - (t % HOUR_MS));
  const sorted = [...cuts].sort((a, b) => a - b);
  return sorted.slice(1).map((to, i) => [sorted[i]!, to]);
}

/** An org's rollup rows summed by the database per price segment and dimensions (GPU model aside). */
async function sumUsage(
  db: Ctx['db'],
  orgId: string,
  range: { from: number; to: number },
  prices: readonly Price[],
): Promise<UsageSum[]> {
  const out: UsageSum[] = [];
  for (const [from, to] of priceSegments(range, prices)) {
    const rows = await db
      .selectFrom('usage_hourly')
      .select(['project_id', 'metric', 'pool', 'priority', 'deployment_id', 'model'])
      .select((eb) => [
        eb.fn.sum<number>('quantity').as('quantity'),
        eb.fn.max<number>('estimated').as('estimated'),
        eb.fn.countAll<number>().as('records'),
        eb.fn.min<string>('hour').as('first'),
        eb.fn.max<string>('hour').as('last'),
      ])
      .where('org_id', '=', orgId)
      .where('hour', '>=', new Date(from).toISOString())
      .where('hour', '<', new Date(to).toISOString())
      .groupBy(['project_id', 'metric', 'pool', 'priority', 'deployment_id', 'model'])
      .execute();
    for (const r of rows)
      out.push({
        hour: r.first,
        lastHour: r.last,
        records: Number(r.records),
        orgId,
        projectId: r.project_id,
        metric: r.metric as UsageMetric,
        pool: r.pool,
        gpuModel: '',
        priority: r.priority as UsageRecord['priority'],
        deploymentId: r.deployment_id,
        model: r.model,
        quantity: Number(r.quantity),
        estimated: Number(r.estimated) === 1,
        updatedAt: '',
      });
  }
  return out;
}

/** Project and deployment names of an org, for the lines. */
async function namesOf(db: Ctx['db'], orgId: string, orgName: string) {
  const projects = await db.selectFrom('projects').select(['id', 'name']).where('org_id', '=', orgId).execute();
  const deployments = await db
    .selectFrom('deployments')
    .select(['id', 'name', 'project_id'])
    .where('org_id', '=', orgId)
    .execute();
  const projectRef = new Map(projects.map((p) => [p.id, `${orgName}.${p.name}`]));
  const deploymentRef = new Map(deployments.map((d) => [d.id, `${projectRef.get(d.project_id) ?? orgName}/${d.name}`]));
  return { projectRef, deploymentRef };
}

/**
 * An org's statement for a month: members see the projects they hold a role on (org-wide roles:
 * all), operators any org; another org's is 404. A future month is 400 MONTH_IN_FUTURE.
 */
export async function orgStatement(
  ctx: Ctx,
  orgName: string,
  month: string,
  opts: { now?: number; prices?: readonly Price[] } = {},
): Promise<Statement> {
  const org = await findOrg(ctx, orgName);
  const now = opts.now ?? Date.now();
  const range = checkMonth(month, now);
  const { projectRef, deploymentRef } = await namesOf(ctx.db, org.id, org.name);
  const visible = visibleProjects(ctx.caller, org.id);
  const projects = visible === 'all' ? projectRef : new Map([...projectRef].filter(([id]) => visible.has(id)));
  const catalogue = opts.prices ?? (await loadPrices(ctx.db));
  const usage = await sumUsage(ctx.db, org.id, range, catalogue);
  const prices = new PriceBook(catalogue);
  return assembleStatement(
    { org: org.name, month, ...range, generatedAt: new Date(now).toISOString() },
    priceUsage({ usage, prices, projects, deployments: deploymentRef }),
  );
}
