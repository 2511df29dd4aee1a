// Billing routes (src/metering/): the price catalogue (operators set it, every caller reads it),
// an org's monthly statement as JSON, CSV or PDF, and a project's monthly budget. Thin adapters:
// the services authorise, validate and write through the audited path.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type TSchema, Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BUDGET_ACTIONS, BUDGET_UNITS, deleteBudget, getBudget, setBudget } from '../../metering/budgets.js';
import { PRICE_ITEMS, createPrice, endPrice, listPrices } from '../../metering/prices.js';
import { STATEMENT_FORMATS, statementCsv, statementPdf } from '../../metering/statement-render.js';
import { orgStatement } from '../../metering/statement.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const strict = { additionalProperties: false } as const;
const Nullable = <X extends TSchema>(s: X) => T.Union([s, T.Null()]);
const Hour = T.String({ maxLength: 40, description: 'RFC 3339 on a whole hour, e.g. 2026-12-01T00:00:00Z' });

export const Price = T.Object({
  id: T.String(),
  item: S.oneOf(PRICE_ITEMS),
  pool: T.String({ description: "'' = any pool (gpu-hour)" }),
  priority: T.String({ description: "'' = any priority class (gpu-hour)" }),
  deployment: T.String({ description: "org.project/name, '' = any (tokens)" }),
  deploymentId: T.String(),
  model: T.String({ description: "model ref, '' = any (tokens)" }),
  unit: T.String({ description: 'GPU-hour, 1M tokens, GB-month' }),
  unitPrice: T.String({ description: 'decimal EUR per unit' }),
  unitPriceMicros: T.Integer({ description: 'micro-EUR per unit (exact)' }),
  currency: T.Literal('EUR'),
  validFrom: T.String(),
  validTo: Nullable(T.String({ description: 'exclusive; null = open-ended' })),
  createdAt: T.String(),
  createdBy: T.String(),
});

export const PriceCreate = T.Object(
  {
    item: T.String({ maxLength: 40, description: PRICE_ITEMS.join(' | ') }),
    unitPrice: T.String({ maxLength: 40, description: 'decimal EUR per unit, at most 6 decimals: "2.10"' }),
    validFrom: Hour,
    validTo: T.Optional(Nullable(Hour)),
    pool: T.Optional(T.String({ maxLength: 63 })),
    priority: T.Optional(T.String({ maxLength: 20 })),
    deployment: T.Optional(T.String({ maxLength: 200, description: 'org.project/name' })),
    model: T.Optional(T.String({ maxLength: 300 })),
    supersede: T.Optional(
      T.Boolean({ description: 'end an open-ended earlier version of the same item at validFrom (atomically)' }),
    ),
  },
  strict,
);

const Line = T.Object({
  project: T.String(),
  item: S.oneOf(PRICE_ITEMS),
  description: T.String(),
  pool: T.String(),
  priority: T.String(),
  deployment: T.String(),
  model: T.String(),
  quantity: T.Number(),
  unit: T.String(),
  usageMetric: T.String(),
  usageQuantity: T.Number(),
  records: T.Integer(),
  from: T.String(),
  to: T.String(),
  priceId: Nullable(T.String()),
  unitPrice: Nullable(T.String({ description: 'null: no valid price, not charged' })),
  amountMicros: T.Integer(),
  amountCents: T.Integer(),
  amount: T.String(),
});

export const Statement = T.Object({
  org: T.String(),
  month: T.String(),
  from: T.String(),
  to: T.String(),
  currency: T.Literal('EUR'),
  provisional: T.Boolean({ description: 'the month is not over' }),
  generatedAt: T.String(),
  lines: T.Array(Line),
  projects: T.Array(T.Object({ project: T.String(), amountCents: T.Integer(), amount: T.String() })),
  footprint: T.Array(
    T.Object({ project: T.String(), energyKWh: T.Number(), co2Kg: T.Number(), estimated: T.Boolean() }),
  ),
  totals: T.Object({
    amountCents: T.Integer({ description: 'the exact sum of the lines' }),
    amountMicros: T.Integer(),
    amount: T.String(),
    energyKWh: T.Number(),
    co2Kg: T.Number(),
    estimated: T.Boolean(),
  }),
  unpriced: T.Integer(),
});

export const BudgetPut = T.Object(
  {
    unit: T.String({ maxLength: 20, description: BUDGET_UNITS.join(' | ') }),
    amount: T.Number({ description: 'per calendar month (UTC), 0 or more' }),
    thresholds: T.Optional(T.Array(T.Number(), { maxItems: 20, description: 'percentages; default [50, 80, 100]' })),
    action: T.Optional(T.String({ maxLength: 20, description: `at 100 %: ${BUDGET_ACTIONS.join(' | ')}` })),
  },
  strict,
);

export const BudgetStatus = T.Object({
  project: T.String(),
  unit: S.oneOf(BUDGET_UNITS),
  amount: T.Number(),
  thresholds: T.Array(T.Number()),
  action: S.oneOf(BUDGET_ACTIONS),
  createdAt: T.String(),
  updatedAt: T.String(),
  month: T.String(),
  spent: T.Number(),
  percent: Nullable(T.Number()),
  alerted: T.Array(T.Number()),
  exceeded: T.Boolean(),
});

/** CSV and PDF go out as they are rendered, as a download. */
function sendFile(reply: FastifyReply, type: string, filename: string, body: string | Buffer) {
  return reply.type(type).header('content-disposition', `attachment; filename="${filename}"`).send(body);
}

const ProjectParams = T.Object({ project: T.String({ maxLength: 200 }) });

export async function billingRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/prices',
    {
      schema: {
        tags: ['billing'],
        summary: 'The price catalogue: every version, or those valid at a time',
        querystring: T.Object(
          { item: T.Optional(T.String({ maxLength: 40 })), at: T.Optional(T.String({ maxLength: 40 })) },
          strict,
        ),
        response: { 200: T.Object({ items: T.Array(Price) }), ...errors },
      },
    },
    async (req) => ({ items: await listPrices(ctxOf(req, deps), req.query) }),
  );
  r.post(
    '/prices',
    {
      schema: {
        tags: ['billing'],
        summary: 'A new price version (operators); 409 PRICE_OVERLAP when its validity overlaps another',
        body: PriceCreate,
        response: { 201: Price, ...errors },
      },
    },
    async (req, reply) => {
      const p = await createPrice(ctxOf(req, deps), req.body);
      reply.status(201);
      return p;
    },
  );
  r.post(
    '/prices/:id/end',
    {
      schema: {
        tags: ['billing'],
        summary: 'Ends a price version at a whole hour (operators)',
        params: T.Object({ id: T.String({ maxLength: 60 }) }),
        body: T.Object({ validTo: Hour }, strict),
        response: { 200: Price, ...errors },
      },
    },
    async (req) => endPrice(ctxOf(req, deps), req.params.id, req.body.validTo),
  );
  r.get(
    '/orgs/:org/statements/:month',
    {
      schema: {
        tags: ['billing'],
        summary: "An org's monthly statement (YYYY-MM, UTC): JSON, CSV or PDF; the current month is provisional",
        params: T.Object({ org: T.String({ maxLength: 100 }), month: T.String({ maxLength: 20 }) }),
        querystring: T.Object({ format: T.Optional(S.oneOf(STATEMENT_FORMATS)) }, strict),
        response: { 200: Statement, ...errors, 503: S.ErrorBody },
      },
    },
    async (req, reply) => {
      const s = await orgStatement(ctxOf(req, deps), req.params.org, req.params.month);
      const format = req.query.format ?? 'json';
      if (format === 'json') return s;
      const name = `statement-${s.org}-${s.month}`;
      const body = format === 'csv' ? statementCsv(s) : await statementPdf(s);
      return sendFile(
        reply,
        format === 'csv' ? 'text/csv; charset=utf-8' : 'application/pdf',
        `${name}.${format}`,
        body,
      );
    },
  );
  r.get(
    '/projects/:project/budget',
    {
      schema: {
        tags: ['billing'],
        summary: "A project's monthly budget and this month's spend",
        params: ProjectParams,
        response: { 200: BudgetStatus, ...errors },
      },
    },
    async (req) => getBudget(ctxOf(req, deps), req.params.project),
  );
  r.put(
    '/projects/:project/budget',
    {
      schema: {
        tags: ['billing'],
        summary: "Sets a project's monthly budget (admins): EUR or gpu-hours, thresholds, action at 100 %",
        params: ProjectParams,
        body: BudgetPut,
        response: { 200: BudgetStatus, ...errors },
      },
    },
    async (req) => setBudget(ctxOf(req, deps), req.params.project, req.body),
  );
  r.delete(
    '/projects/:project/budget',
    {
      schema: {
        tags: ['billing'],
        summary: "Removes a project's budget (admins)",
        params: ProjectParams,
        response: { 204: T.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await deleteBudget(ctxOf(req, deps), req.params.project);
      reply.status(204).send(null);
    },
  );
}
