// Usage routes (src/metering/): a project's or an org's hourly rollups summed by day, hour, pool,
// model, deployment or project, and one workload's usage per attempt. Reads only: viewers may
// read; another org's project or org is 404. (Token usage per key/replica is /usage/tokens.)
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type TSchema, Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { USAGE_BY, orgUsage, projectUsage, workloadUsage } from '../../metering/usage-report.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const strict = { additionalProperties: false } as const;
const Nullable = <X extends TSchema>(s: X) => T.Union([s, T.Null()]);
const TimeArg = T.String({ minLength: 1, maxLength: 40, description: 'RFC 3339, or a duration ago: 30m, 24h, 7d' });
const Time = T.String({ description: 'RFC 3339' });

export const UsageReportQuery = T.Object(
  {
    from: T.Optional(TimeArg),
    to: T.Optional(TimeArg),
    month: T.Optional(T.String({ pattern: '^\\d{4}-\\d{2}$', description: 'YYYY-MM (UTC), instead of from/to' })),
    by: T.Optional(
      T.Union(
        USAGE_BY.map((b) => T.Literal(b)),
        { description: 'day (project default), hour, pool, model, deployment, project (org default)' },
      ),
    ),
  },
  strict,
);

const Figures = {
  gpuHours: T.Number(),
  tokensIn: T.Number(),
  tokensOut: T.Number(),
  gbMonths: T.Number({ description: 'GB (10^9 bytes) × 730 hours' }),
  energyKWh: T.Number({ description: 'facility energy: (GPU + node share) × PUE' }),
  co2Kg: T.Number(),
  estimated: T.Boolean({ description: 'some energy is estimated from TDP × utilisation (no power measurement)' }),
  energyWhPerToken: Nullable(
    T.Number({ description: "by deployment or model: the replicas' energy per token served" }),
  ),
};

export const UsageReport = T.Object({
  scope: T.String({ description: 'org.project, or the org' }),
  from: Time,
  to: Time,
  by: S.oneOf(USAGE_BY),
  rows: T.Array(T.Object({ group: T.String(), ...Figures })),
  totals: T.Object(Figures),
});

const AttemptFigures = {
  gpuSeconds: T.Number(),
  gpuHours: T.Number(),
  energyWh: T.Number(),
  co2g: T.Number(),
  estimated: T.Boolean(),
};

export const WorkloadUsage = T.Object({
  workload: T.String(),
  attempts: T.Array(
    T.Object({
      number: T.Integer(),
      pool: T.String(),
      gpuModel: T.String(),
      gpus: T.Integer(),
      startedAt: T.String(),
      endedAt: T.String({ description: "'' while it runs: figures up to now" }),
      ...AttemptFigures,
    }),
  ),
  totals: T.Object(AttemptFigures),
});

export async function usageRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['usage'];
  r.get(
    '/projects/:project/usage',
    {
      schema: {
        tags,
        summary: "A project's usage (GPU-hours, tokens, GB-months, energy, CO2) over a range, grouped",
        params: T.Object({ project: T.String({ maxLength: 200 }) }),
        querystring: UsageReportQuery,
        response: { 200: UsageReport, ...errors },
      },
    },
    async (req) => projectUsage(ctxOf(req, deps), req.params.project, req.query),
  );
  r.get(
    '/orgs/:org/usage',
    {
      schema: {
        tags,
        summary: "An org's usage over a range, by project (default) or day, hour, pool, model, deployment",
        params: T.Object({ org: T.String({ maxLength: 100 }) }),
        querystring: UsageReportQuery,
        response: { 200: UsageReport, ...errors },
      },
    },
    async (req) => orgUsage(ctxOf(req, deps), req.params.org, req.query),
  );
  r.get(
    '/projects/:project/workloads/:workload/usage',
    {
      schema: {
        tags,
        summary: "A workload's usage per attempt: GPU-seconds, energy, CO2, and whether estimated",
        params: T.Object({
          project: T.String({ maxLength: 200 }),
          workload: T.String({ maxLength: 100, description: 'name or id' }),
        }),
        response: { 200: WorkloadUsage, ...errors },
      },
    },
    async (req) => workloadUsage(ctxOf(req, deps), req.params.project, req.params.workload),
  );
}
