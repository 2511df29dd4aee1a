// Routes for quotas, the fleet and the audit trail.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { listAuditEntries } from '../../app/audit-trail.js';
import { AppError } from '../../domain/errors.js';
import { FleetFileError, type FleetSpec, parseFleetFile } from '../../fleet/fleet-file.js';
import { applyFleet, getNode, listNodes, listPools, setNodeState } from '../../fleet/inventory.js';
import { requireOperatorTo } from '../../app/context.js';
import { deleteQuota, listProjectQuotas, listQuotas, setQuota } from '../../tenancy/quotas.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const ProjectParams = T.Object({ project: T.String({ maxLength: 200 }) });
const QuotaParams = T.Object({ project: T.String({ maxLength: 200 }), pool: S.DnsLabel });
const NodeParams = T.Object({ node: T.String({ maxLength: 100 }) });

export async function quotaRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/projects/:project/quotas',
    {
      schema: {
        tags: ['quotas'],
        params: ProjectParams,
        response: { 200: T.Object({ items: T.Array(S.Quota) }), ...errors },
      },
    },
    async (req) => ({
      items: await listProjectQuotas(ctxOf(req, deps), req.params.project),
    }),
  );
  r.put(
    '/projects/:project/quotas/:pool',
    {
      schema: {
        tags: ['quotas'],
        summary: "Set a project's quota in a pool (operators)",
        params: QuotaParams,
        body: S.QuotaSet,
        response: { 200: S.Quota, ...errors },
      },
    },
    async (req) => {
      const q = await setQuota(ctxOf(req, deps), req.params.project, req.params.pool, req.body);
      deps.onStateChange?.();
      return q;
    },
  );
  r.delete(
    '/projects/:project/quotas/:pool',
    { schema: { tags: ['quotas'], params: QuotaParams, response: { 204: T.Null(), ...errors } } },
    async (req, reply) => {
      await deleteQuota(ctxOf(req, deps), req.params.project, req.params.pool);
      deps.onStateChange?.();
      reply.status(204).send(null);
    },
  );
  r.get(
    '/quotas',
    {
      schema: {
        tags: ['quotas'],
        summary: 'Quotas you can see (all for operators)',
        querystring: T.Object(
          {
            ...S.PageQuery.properties,
            org: T.Optional(T.String({ maxLength: 100 })),
            pool: T.Optional(T.String({ maxLength: 63 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: S.pageOf(S.Quota), ...errors },
      },
    },
    async (req) => {
      const { org, pool, ...page } = req.query;
      return listQuotas(ctxOf(req, deps), { org, pool }, page);
    },
  );
}

export async function fleetRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post(
    '/fleet/apply',
    {
      bodyLimit: 8 * 1024 * 1024,
      // Operators only, decided before the body is read: a fleet file is megabytes of YAML, and
      // nobody else may make the server parse it (nor learn from a 422 that it got that far).
      preParsing: async (req, _reply, payload) => {
        await requireOperatorTo(
          ctxOf(req, deps),
          { action: 'fleet.apply', resource: 'fleet', orgId: '' },
          'change the fleet',
        );
        return payload;
      },
      schema: {
        tags: ['fleet'],
        summary: 'Apply a fleet file (operators)',
        body: S.FleetApply,
        response: { 200: S.ApplyResult, ...errors },
      },
    },
    async (req) => {
      const ctx = ctxOf(req, deps);
      let spec: FleetSpec;
      try {
        spec = parseFleetFile(req.body.file, req.body.source ?? 'fleet.yaml');
      } catch (err) {
        if (err instanceof FleetFileError) {
          throw new AppError('FLEET_FILE_INVALID', err.message, {
            line: err.line,
            column: err.column,
            path: err.path,
            source: err.source,
          });
        }
        throw err;
      }
      const result = await applyFleet(ctx, spec, { prune: req.body.prune });
      deps.onStateChange?.();
      return result;
    },
  );
  r.get(
    '/fleet/pools',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Pools and their capacity',
        response: { 200: T.Object({ items: T.Array(S.Pool) }), ...errors },
      },
    },
    async (req) => ({
      items: await listPools(ctxOf(req, deps)),
    }),
  );
  r.get(
    '/fleet/nodes',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Nodes (operators)',
        querystring: T.Object(
          {
            ...S.PageQuery.properties,
            pool: T.Optional(T.String({ maxLength: 63 })),
            state: T.Optional(T.String({ maxLength: 20 })),
            pod: T.Optional(T.String({ maxLength: 63 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: S.pageOf(S.Node), ...errors },
      },
    },
    async (req) => {
      const { pool, state, pod, ...page } = req.query;
      const nodes = await listNodes(ctxOf(req, deps), { pool, state, pod }, page);
      const isolation = deps.isolation?.level;
      return isolation ? { ...nodes, items: nodes.items.map((n) => ({ ...n, isolation })) } : nodes;
    },
  );
  r.get(
    '/fleet/nodes/:node',
    { schema: { tags: ['fleet'], params: NodeParams, response: { 200: S.Node, ...errors } } },
    async (req) => getNode(ctxOf(req, deps), req.params.node),
  );
  r.patch(
    '/fleet/nodes/:node',
    {
      schema: {
        tags: ['fleet'],
        summary: "Set a node's state: ready, cordoned, draining, down",
        params: NodeParams,
        body: S.NodeStatePatch,
        response: { 200: S.Node, ...errors },
      },
    },
    async (req) => {
      const n = await setNodeState(ctxOf(req, deps), req.params.node, req.body.state as 'ready');
      deps.onStateChange?.();
      return n;
    },
  );
  for (const [verb, state] of [
    ['cordon', 'cordoned'],
    ['drain', 'draining'],
    ['uncordon', 'ready'],
  ] as const) {
    r.post(
      `/fleet/nodes/:node/${verb}`,
      {
        schema: {
          tags: ['fleet'],
          summary: `${verb[0].toUpperCase()}${verb.slice(1)} a node`,
          params: NodeParams,
          response: { 200: S.Node, ...errors },
        },
      },
      async (req) => {
        const n = await setNodeState(ctxOf(req, deps), req.params.node, state);
        deps.onStateChange?.();
        return n;
      },
    );
  }
}

export async function auditRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/audit/entries',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit entries you may see, oldest first',
        querystring: T.Object(
          {
            ...S.PageQuery.properties,
            org: T.Optional(T.String({ maxLength: 100 })),
            action: T.Optional(T.String({ maxLength: 100 })),
            resource: T.Optional(T.String({ maxLength: 300, description: 'resource prefix' })),
            breakGlass: T.Optional(
              T.Boolean({ description: 'only break-glass entries: grants opened and revoked, and each access' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: S.pageOf(S.AuditEntry), ...errors },
      },
    },
    async (req) => {
      const { org, action, resource, breakGlass, ...page } = req.query;
      return listAuditEntries(ctxOf(req, deps), { org, action, resource, breakGlass }, page);
    },
  );
}
