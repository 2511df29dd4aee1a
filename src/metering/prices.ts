// The price catalogue: what a GPU-hour (by pool and priority class), 1M tokens in or out (by
// deployment or model) and a GB-month cost, in EUR, as versions valid over whole hours. Operators
// set it (every version through write(): audited, atomic); every caller may read it. Prices are
// integer micro-EUR so that amounts are exact integers; the pure PriceBook picks the version valid
// at an hour, the most specific selector winning.
import { AppError, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { type Ctx, requireOperatorTo, write } from '../app/context.js';
import { canSeeOrg, visibleProjects } from '../policy/roles.js';
import { PRIORITY_CLASSES, type PriorityClass } from '../scheduler/types.js';
import type { PricesTable } from '../store/schema.js';
import { HOUR_MS } from './types.js';

export const PRICE_ITEMS = ['gpu-hour', 'tokens-in', 'tokens-out', 'gb-month'] as const;
export type PriceItem = (typeof PRICE_ITEMS)[number];
export const CURRENCY = 'EUR';

/** What one unit of an item is, as statements print it. */
export const PRICE_UNITS: Readonly<Record<PriceItem, string>> = {
  'gpu-hour': 'GPU-hour',
  'tokens-in': '1M tokens',
  'tokens-out': '1M tokens',
  'gb-month': 'GB-month',
};

export interface Price {
  id: string;
  item: PriceItem;
  /** '' = any pool (gpu-hour only). */
  pool: string;
  /** '' = any priority class (gpu-hour only). */
  priority: PriorityClass | '';
  /** `org.project/name` of the deployment ('' = any; tokens only). */
  deployment: string;
  deploymentId: string;
  /** The model ref ('' = any; tokens only). */
  model: string;
  unit: string;
  /** Decimal EUR per unit, e.g. "2.1". */
  unitPrice: string;
  unitPriceMicros: number;
  currency: 'EUR';
  validFrom: string;
  /** null: open-ended. */
  validTo: string | null;
  createdAt: string;
  createdBy: string;
}

export interface PriceInput {
  item: string;
  unitPrice: string;
  validFrom: string;
  validTo?: string | null;
  pool?: string;
  priority?: string;
  /** `org.project/name` */
  deployment?: string;
  model?: string;
  /** End an open-ended version of the same item that starts earlier at this one's validFrom. */
  supersede?: boolean;
}

// ---- pure rules ----

/** "2.10" → 2_100_000 micro-EUR; at most 6 decimals, never negative. */
export function parseEur(s: string): number | undefined {
  const m = /^(\d{1,9})(?:\.(\d{1,6}))?$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
}

/** 2_100_000 → "2.1"; integer micro-EUR as a decimal without trailing zeros. */
export function formatMicros(micros: number, minDecimals = 0): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / 1_000_000);
  let frac = String(abs % 1_000_000)
    .padStart(6, '0')
    .replace(/0+$/, '');
  if (frac.length < minDecimals) frac = frac.padEnd(minDecimals, '0');
  return `${sign}${whole}${frac ? `.${frac}` : ''}`;
}

/** An RFC 3339 time on a whole hour, as stored (toISOString), or undefined. */
export function wholeHour(s: string): string | undefined {
  const ms = Date.parse(s);
  if (!Number.isFinite(ms) || ms % HOUR_MS !== 0 || !/^\d{4}-\d{2}-\d{2}T/.test(s)) return undefined;
  return new Date(ms).toISOString();
}

/** What makes two versions the same item: they may not overlap in time. */
export function selectorKey(p: Pick<Price, 'item' | 'pool' | 'priority' | 'deploymentId' | 'model'>): string {
  return [p.item, p.pool, p.priority, p.deploymentId, p.model].join('\u0000');
}

/** Whether [aFrom, aTo) and [bFrom, bTo) share an instant ('' or null = open). */
export function overlaps(aFrom: string, aTo: string | null, bFrom: string, bTo: string | null): boolean {
  return (!bTo || aFrom < bTo) && (!aTo || bFrom < aTo);
}

/** The usage dimensions a price is chosen by. */
export interface PriceDims {
  readonly pool: string;
  readonly priority: string;
  readonly deploymentId: string;
  readonly model: string;
}

/** Prices by item, picking the version valid at an hour; the most specific selector that matches wins. */
export class PriceBook {
  private readonly byItem = new Map<PriceItem, { p: Price; from: number; to: number; score: number }[]>();
  private readonly cache = new Map<string, Price | null>();

  constructor(prices: readonly Price[]) {
    for (const p of prices) {
      const list = this.byItem.get(p.item) ?? [];
      const score = (p.pool || p.deploymentId ? 2 : 0) + (p.priority || p.model ? 1 : 0);
      list.push({ p, from: Date.parse(p.validFrom), to: p.validTo ? Date.parse(p.validTo) : Infinity, score });
      this.byItem.set(p.item, list);
    }
    for (const list of this.byItem.values()) list.sort((a, b) => b.score - a.score || a.from - b.from);
  }

  /** The price of `item` for usage with `dims` in the hour starting at `hourMs`, if any. */
  at(item: PriceItem, dims: PriceDims, hourMs: number): Price | undefined {
    const key = `${item}\u0000${dims.pool}\u0000${dims.priority}\u0000${dims.deploymentId}\u0000${dims.model}\u0000${hourMs}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    let found: Price | undefined;
    for (const c of this.byItem.get(item) ?? []) {
      if (hourMs < c.from || hourMs >= c.to) continue;
      const p = c.p;
      if (p.pool && p.pool !== dims.pool) continue;
      if (p.priority && p.priority !== dims.priority) continue;
      if (p.deploymentId && p.deploymentId !== dims.deploymentId) continue;
      if (p.model && p.model !== dims.model) continue;
      found = p;
      break;
    }
    this.cache.set(key, found ?? null);
    return found;
  }
}

function invalid(message: string, field: string): AppError {
  return new AppError('PRICE_INVALID', message, { field });
}

/** Checks an input in itself (not against the catalogue); the deployment is resolved by the caller. */
export function checkPriceInput(input: PriceInput): {
  item: PriceItem;
  micros: number;
  validFrom: string;
  validTo: string;
  pool: string;
  priority: PriorityClass | '';
  model: string;
} {
  if (!(PRICE_ITEMS as readonly string[]).includes(input.item))
    throw invalid(`item: "${input.item}" is not one of ${PRICE_ITEMS.join(', ')}`, 'item');
  const item = input.item as PriceItem;
  const micros = parseEur(input.unitPrice);
  if (micros === undefined)
    throw invalid(
      `unitPrice: "${input.unitPrice}" is not an amount in EUR such as 2.10 (at most 6 decimals, not negative)`,
      'unitPrice',
    );
  const validFrom = wholeHour(input.validFrom);
  if (!validFrom) throw invalid(`validFrom: "${input.validFrom}" is not an RFC 3339 time on a whole hour`, 'validFrom');
  const validTo = input.validTo ? wholeHour(input.validTo) : '';
  if (validTo === undefined)
    throw invalid(`validTo: "${input.validTo}" is not an RFC 3339 time on a whole hour`, 'validTo');
  if (validTo && validTo <= validFrom) throw invalid('validTo must be after validFrom', 'validTo');
  const pool = input.pool ?? '';
  const priority = input.priority ?? '';
  if (priority && !(PRIORITY_CLASSES as readonly string[]).includes(priority))
    throw invalid(`priority: "${priority}" is not one of ${PRIORITY_CLASSES.join(', ')}`, 'priority');
  const model = input.model ?? '';
  const tokens = item === 'tokens-in' || item === 'tokens-out';
  if (item !== 'gpu-hour' && (pool || priority))
    throw invalid(`pool and priority select GPU-hour prices only, not ${item}`, pool ? 'pool' : 'priority');
  if (!tokens && (input.deployment || model))
    throw invalid(`deployment and model select token prices only, not ${item}`, model ? 'model' : 'deployment');
  if (input.deployment && model) throw invalid('give a deployment or a model, not both', 'model');
  return { item, micros, validFrom, validTo, pool, priority: priority as PriorityClass | '', model };
}

// ---- the catalogue ----

type PriceRow = PricesTable & { deployment_ref: string };

function priceView(r: PriceRow): Price {
  const item = r.item as PriceItem;
  const micros = Number(r.unit_price_micros);
  return {
    id: r.id,
    item,
    pool: r.pool,
    priority: r.priority as PriorityClass | '',
    deployment: r.deployment_ref ?? '',
    deploymentId: r.deployment_id,
    model: r.model,
    unit: PRICE_UNITS[item],
    unitPrice: formatMicros(micros),
    unitPriceMicros: micros,
    currency: CURRENCY,
    validFrom: r.valid_from,
    validTo: r.valid_to || null,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

type Reader = Ctx['db'];

/** Every price version (the catalogue is small), in item, selector and time order. */
export async function loadPrices(db: Reader): Promise<Price[]> {
  const rows = await db
    .selectFrom('prices')
    .leftJoin('deployments', 'deployments.id', 'prices.deployment_id')
    .leftJoin('projects', 'projects.id', 'deployments.project_id')
    .leftJoin('orgs', 'orgs.id', 'deployments.org_id')
    .selectAll('prices')
    .select(['orgs.name as o_name', 'projects.name as p_name', 'deployments.name as d_name'])
    .orderBy('item')
    .orderBy('pool')
    .orderBy('priority')
    .orderBy('deployment_id')
    .orderBy('model')
    .orderBy('valid_from')
    .execute();
  return rows.map(({ o_name, p_name, d_name, ...r }) =>
    priceView({
      ...r,
      deployment_ref: r.deployment_id ? `${o_name ?? '?'}.${p_name ?? '?'}/${d_name ?? r.deployment_id}` : '',
    }),
  );
}

/** The catalogue as the caller may see it: platform-wide prices, and those of deployments of visible orgs. */
export async function listPrices(ctx: Ctx, filter: { item?: string; at?: string } = {}): Promise<Price[]> {
  if (filter.item !== undefined && !(PRICE_ITEMS as readonly string[]).includes(filter.item))
    throw invalid(`item: "${filter.item}" is not one of ${PRICE_ITEMS.join(', ')}`, 'item');
  // A deployment's price belongs to its project: a caller sees it only where it sees that project
  // (a key scoped to one project, or a member with a project grant, sees no other project's).
  const rows = await ctx.db
    .selectFrom('prices')
    .leftJoin('deployments', 'deployments.id', 'prices.deployment_id')
    .select(['prices.id as id', 'prices.org_id as org_id', 'deployments.project_id as project_id'])
    .execute();
  const seen = (r: { org_id: string; project_id: string | null }) => {
    if (!r.org_id) return true;
    if (!canSeeOrg(ctx.caller, r.org_id)) return false;
    const projects = visibleProjects(ctx.caller, r.org_id);
    return projects === 'all' || (r.project_id !== null && projects.has(r.project_id));
  };
  const visible = new Set(rows.filter(seen).map((r) => r.id));
  const at = filter.at === undefined ? undefined : Date.parse(filter.at);
  if (at !== undefined && !Number.isFinite(at)) throw invalid(`at: "${filter.at}" is not an RFC 3339 time`, 'at');
  return (await loadPrices(ctx.db)).filter(
    (p) =>
      visible.has(p.id) &&
      (!filter.item || p.item === filter.item) &&
      (at === undefined || (Date.parse(p.validFrom) <= at && (!p.validTo || at < Date.parse(p.validTo)))),
  );
}

/** A new price version (operators): 409 PRICE_OVERLAP when another version of the item overlaps it. */
export async function createPrice(ctx: Ctx, input: PriceInput): Promise<Price> {
  const spec = { action: 'price.create', resource: `prices/${input.item}`, orgId: '' };
  await requireOperatorTo(ctx, spec, 'set prices');
  const c = checkPriceInput(input);
  let deploymentId = '';
  let orgId = '';
  if (input.deployment) {
    const m = /^([^./]+)\.([^/]+)\/([^/]+)$/.exec(input.deployment);
    const d = m
      ? await ctx.db
          .selectFrom('deployments')
          .innerJoin('projects', 'projects.id', 'deployments.project_id')
          .innerJoin('orgs', 'orgs.id', 'deployments.org_id')
          .select(['deployments.id', 'deployments.org_id'])
          .where('orgs.name', '=', m[1]!)
          .where('projects.name', '=', m[2]!)
          .where('deployments.name', '=', m[3]!)
          .executeTakeFirst()
      : undefined;
    if (!d) throw notFound('deployment', input.deployment);
    deploymentId = d.id;
    orgId = d.org_id;
  }
  const id = newId('price');
  const created = await write(ctx, { ...spec, resource: `prices/${id}` }, async (trx) => {
    const same = await trx
      .selectFrom('prices')
      .selectAll()
      .where('item', '=', c.item)
      .where('pool', '=', c.pool)
      .where('priority', '=', c.priority)
      .where('deployment_id', '=', deploymentId)
      .where('model', '=', c.model)
      .execute();
    const ended: { id: string; validTo: string }[] = [];
    for (const o of same) {
      if (!overlaps(o.valid_from, o.valid_to || null, c.validFrom, c.validTo || null)) continue;
      if (input.supersede && !o.valid_to && o.valid_from < c.validFrom) {
        await trx.updateTable('prices').set({ valid_to: c.validFrom }).where('id', '=', o.id).execute();
        ended.push({ id: o.id, validTo: c.validFrom });
        continue;
      }
      throw new AppError(
        'PRICE_OVERLAP',
        `${c.item} price ${o.id} is valid ${o.valid_from} … ${o.valid_to || 'open-ended'}, which overlaps ${c.validFrom} … ${c.validTo || 'open-ended'}${!o.valid_to && o.valid_from < c.validFrom ? '; pass supersede to end it at the new validFrom' : ''}`,
        { conflictsWith: o.id, validFrom: o.valid_from, validTo: o.valid_to || null },
      );
    }
    const row: PricesTable = {
      id,
      item: c.item,
      pool: c.pool,
      priority: c.priority,
      deployment_id: deploymentId,
      model: c.model,
      org_id: orgId,
      unit_price_micros: c.micros,
      currency: CURRENCY,
      valid_from: c.validFrom,
      valid_to: c.validTo,
      created_at: nowIso(),
      created_by: ctx.caller.principal,
    };
    await trx.insertInto('prices').values(row).execute();
    const view = priceView({ ...row, deployment_ref: input.deployment ?? '' });
    return { result: view, before: null, after: { ...view, supersedes: ended } };
  });
  return created;
}

/** Ends an open or later-ending version at `validTo` (operators): hours before it keep their price. */
export async function endPrice(ctx: Ctx, id: string, validTo: string): Promise<Price> {
  const spec = { action: 'price.end', resource: `prices/${id}`, orgId: '' };
  await requireOperatorTo(ctx, spec, 'set prices');
  const to = wholeHour(validTo);
  if (!to) throw invalid(`validTo: "${validTo}" is not an RFC 3339 time on a whole hour`, 'validTo');
  await write(ctx, spec, async (trx) => {
    const before = await trx.selectFrom('prices').selectAll().where('id', '=', id).executeTakeFirst();
    if (!before) throw notFound('price', id);
    if (to <= before.valid_from)
      throw invalid(`validTo must be after the version's validFrom ${before.valid_from}`, 'validTo');
    if (before.valid_to && to > before.valid_to)
      throw invalid(`a version only ends earlier: it ends ${before.valid_to} already`, 'validTo');
    await trx.updateTable('prices').set({ valid_to: to }).where('id', '=', id).execute();
    return { result: undefined, before: { id, validTo: before.valid_to || null }, after: { id, validTo: to } };
  });
  const p = (await loadPrices(ctx.db)).find((x) => x.id === id);
  if (!p) throw notFound('price', id);
  return p;
}
