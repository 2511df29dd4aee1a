// Routes for workloads: submit a spec, list (with the pending reason), inspect with events, cancel.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import { openLogs } from '../../workload/logs.js';
import { cancelWorkload, getWorkload, listWorkloads, submitWorkload } from '../../workload/service.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const ProjectParams = T.Object({ project: T.String({ maxLength: 200 }) });
const WorkloadParams = T.Object({ project: T.String({ maxLength: 200 }), workload: T.String({ maxLength: 100 }) });
const ListQuery = T.Object(
  {
    ...S.PageQuery.properties,
    status: T.Optional(
      T.String({
        maxLength: 64,
        description: 'pending, running, succeeded, failed, cancelled or preempted (others: 400 with the list)',
      }),
    ),
    all: T.Optional(T.Boolean({ description: 'include ended workloads' })),
    endedWithin: T.Optional(
      T.Integer({ minimum: 0, maximum: 2_592_000, description: 'also those that ended within this many seconds' }),
    ),
  },
  { additionalProperties: false },
);

export async function workloadRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post(
    '/projects/:project/workloads',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['workloads'],
        summary: 'Submit a workload spec (validated against the fleet; infeasible specs are refused)',
        params: ProjectParams,
        body: S.WorkloadSpecBody,
        response: { 201: S.SubmittedWorkload, ...errors },
      },
    },
    async (req, reply) => {
      const w = await submitWorkload(ctxOf(req, deps), req.params.project, req.body, {
        workdirRoot: deps.workdirRoot,
        gate: deps.submissionGate,
      });
      deps.onStateChange?.();
      reply.status(201);
      return w;
    },
  );
  r.get(
    '/projects/:project/workloads',
    {
      schema: {
        tags: ['workloads'],
        params: ProjectParams,
        querystring: ListQuery,
        response: { 200: S.pageOf(S.Workload), ...errors },
      },
    },
    async (req) => {
      const { status, all, endedWithin, ...page } = req.query;
      const filter = { project: req.params.project, status, all, endedWithinS: endedWithin };
      return listWorkloads(ctxOf(req, deps), filter, page);
    },
  );
  r.get(
    '/workloads',
    {
      schema: {
        tags: ['workloads'],
        summary: 'Workloads of every project you can see',
        querystring: ListQuery,
        response: { 200: S.pageOf(S.Workload), ...errors },
      },
    },
    async (req) => {
      const { status, all, endedWithin, ...page } = req.query;
      return listWorkloads(ctxOf(req, deps), { status, all, endedWithinS: endedWithin }, page);
    },
  );
  r.get(
    '/projects/:project/workloads/:workload',
    {
      schema: {
        tags: ['workloads'],
        summary: 'A workload (by name or id) with its events',
        params: WorkloadParams,
        response: { 200: S.WorkloadDetail, ...errors },
      },
    },
    async (req) => getWorkload(ctxOf(req, deps), req.params.project, req.params.workload),
  );
  r.get(
    '/projects/:project/workloads/:workload/logs',
    {
      schema: {
        tags: ['workloads'],
        summary: "A task's log as text; with follow=true, streamed while the attempt runs",
        params: WorkloadParams,
        querystring: T.Object(
          {
            task: T.Optional(T.Integer({ minimum: 0, maximum: 999 })),
            attempt: T.Optional(T.Integer({ minimum: 1, maximum: 10000 })),
            tail: T.Optional(T.Integer({ minimum: 0, maximum: 100000 })),
            follow: T.Optional(T.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: T.String({ description: 'text/plain' }), ...errors },
      },
    },
    async (req, reply) => {
      if (!deps.logs) throw new AppError('UNAVAILABLE', 'this server has no executor, so there are no logs');
      const stream = await openLogs(ctxOf(req, deps), deps.logs, req.params.project, req.params.workload, req.query);
      reply.type('text/plain; charset=utf-8');
      return reply.send(stream as never);
    },
  );
  r.post(
    '/projects/:project/workloads/:workload/cancel',
    { schema: { tags: ['workloads'], params: WorkloadParams, response: { 200: S.Workload, ...errors } } },
    async (req) => {
      const w = await cancelWorkload(ctxOf(req, deps), req.params.project, req.params.workload);
      deps.onStateChange?.();
      deps.onCancelled?.(w.id);
      return w;
    },
  );
}
