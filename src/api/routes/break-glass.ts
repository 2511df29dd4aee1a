// Routes for break-glass grants of an org: open (operators), list (operators, the org's owners and
// admins), revoke (the org's owner, or the operator who opened it). The service is
// src/app/break-glass.ts; using a grant is src/app/tenant-data.ts.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { listBreakGlass, openBreakGlass, revokeBreakGlass } from '../../app/break-glass.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const OrgParams = T.Object({ org: T.String({ maxLength: 100 }) });
const GrantParams = T.Object({ org: T.String({ maxLength: 100 }), id: T.String({ maxLength: 100 }) });

export async function breakGlassRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post(
    '/orgs/:org/break-glass',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['break-glass'],
        summary: "Open a break-glass grant on an org's data (operators): a reason and an expiry of at most 24h",
        params: OrgParams,
        body: S.BreakGlassOpen,
        response: { 201: S.BreakGlassGrant, ...errors },
      },
    },
    async (req, reply) => {
      const grant = await openBreakGlass(ctxOf(req, deps), req.params.org, req.body);
      reply.status(201);
      return grant;
    },
  );
  r.get(
    '/orgs/:org/break-glass',
    {
      schema: {
        tags: ['break-glass'],
        summary: "An org's break-glass grants, active and past, newest first (operators, the org's owners and admins)",
        params: OrgParams,
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.BreakGlassGrant), ...errors },
      },
    },
    async (req) => listBreakGlass(ctxOf(req, deps), req.params.org, req.query),
  );
  r.delete(
    '/orgs/:org/break-glass/:id',
    {
      schema: {
        tags: ['break-glass'],
        summary: "Revoke a break-glass grant now (the org's owner, or the operator who opened it)",
        params: GrantParams,
        response: { 200: S.BreakGlassGrant, ...errors },
      },
    },
    async (req) => revokeBreakGlass(ctxOf(req, deps), req.params.org, req.params.id),
  );
}
