// Sovereignty policies: the set in force, its history, and loading a new version (operators).
// Anyone signed in may read them: tenants and their auditors see the rules their work runs under.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireOperatorTo } from '../../app/context.js';
import { AppError } from '../../domain/errors.js';
import { MAX_POLICY_BYTES } from '../../policy/cedar.js';
import { POLICY_RESOURCE, policyVersions } from '../../policy/versions.js';
import { loadPolicies } from '../../workload/policy-load.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };

const PolicyVersion = T.Object({
  version: T.Integer(),
  hash: T.String({ description: 'SHA-256 hex of the policy text; decisions and audit entries name it' }),
  policyIds: T.Array(T.String()),
  createdAt: T.String(),
  createdBy: T.String(),
});
const PolicyVersionText = T.Composite([PolicyVersion, T.Object({ policies: T.String({ description: 'Cedar text' }) })]);
const Breach = T.Object({
  workload: T.String({ description: 'org.project/name' }),
  node: T.String(),
  policy: T.String({ description: 'the forbidding policies @ the set' }),
});
const PolicyLoadBody = T.Object(
  {
    policies: T.String({ maxLength: MAX_POLICY_BYTES, description: 'Cedar policy text' }),
    dryRun: T.Optional(T.Boolean({ description: 'check and report breaches only' })),
    acceptBreaches: T.Optional(T.Boolean({ description: 'apply although running work would be in breach' })),
  },
  { additionalProperties: false },
);
const PolicyLoadResult = T.Object({
  applied: T.Boolean(),
  hash: T.String(),
  policyIds: T.Array(T.String()),
  version: T.Optional(PolicyVersion),
  breaches: T.Array(Breach),
});
const VersionParams = T.Object({
  version: T.Union([T.Literal('latest'), T.String({ pattern: '^[1-9][0-9]{0,8}$' })]),
});

export async function policyRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/policies',
    {
      schema: {
        tags: ['policies'],
        summary: 'Versions of the sovereignty policies, newest (in force) first',
        response: { 200: T.Object({ items: T.Array(PolicyVersion) }), ...errors },
      },
    },
    async (req) => {
      return { items: await policyVersions(ctxOf(req, deps).db).list() };
    },
  );
  r.get(
    '/policies/:version',
    {
      schema: {
        tags: ['policies'],
        summary: 'One version of the policies with its text (`latest`: the one in force)',
        params: VersionParams,
        response: { 200: PolicyVersionText, ...errors },
      },
    },
    async (req) => {
      const v = req.params.version;
      return policyVersions(ctxOf(req, deps).db).get(v === 'latest' ? 'latest' : Number(v));
    },
  );
  r.post(
    '/policies',
    {
      bodyLimit: MAX_POLICY_BYTES * 2,
      preParsing: async (req, _reply, payload) => {
        await requireOperatorTo(
          ctxOf(req, deps),
          { action: 'policy.load', resource: POLICY_RESOURCE, orgId: '' },
          'loading sovereignty policies',
        );
        return payload;
      },
      schema: {
        tags: ['policies'],
        summary: 'Load a new version of the policies (operators): validated, checked against running work',
        body: PolicyLoadBody,
        response: { 200: PolicyLoadResult, 201: PolicyLoadResult, ...errors },
      },
    },
    async (req, reply) => {
      if (req.body.dryRun && req.body.acceptBreaches)
        throw new AppError('INVALID_ARGUMENT', 'dryRun and acceptBreaches exclude each other');
      const result = await loadPolicies(ctxOf(req, deps), req.body.policies, req.body);
      // New rules change what may be placed where: the scheduler looks again.
      if (result.applied) deps.onStateChange?.();
      reply.status(result.applied ? 201 : 200);
      return result;
    },
  );
}
