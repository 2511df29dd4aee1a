// Routes for secrets of an org or a project: create or replace (PUT, the value in the body),
// list names, delete. No route returns a value.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type TProperties, Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { type SecretScope, deleteSecret, listSecrets, putSecret } from '../../tenancy/secrets.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };

/** The same three routes for either scope. */
interface ScopeRoutes {
  readonly path: string;
  readonly params: TProperties;
  readonly scope: (params: Record<string, string>) => SecretScope;
  readonly what: string;
}

const scopes: readonly ScopeRoutes[] = [
  {
    path: '/orgs/:org/secrets',
    params: { org: T.String({ maxLength: 100 }) },
    scope: (p) => ({ org: p.org }),
    what: 'an org (org admins write; members list)',
  },
  {
    path: '/projects/:project/secrets',
    params: { project: T.String({ maxLength: 200, description: 'org.project or project id' }) },
    scope: (p) => ({ project: p.project }),
    what: 'a project (project admins write; members list)',
  },
];

export async function secretRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  for (const s of scopes) {
    const Params = T.Object(s.params);
    const NamedParams = T.Object({ ...s.params, name: S.DnsLabel });
    r.put(
      `${s.path}/:name`,
      {
        schema: {
          tags: ['secrets'],
          summary: `Create or replace a secret of ${s.what}; the value is sealed and never returned`,
          params: NamedParams,
          body: S.SecretPut,
          response: { 200: S.Secret, 201: S.Secret, ...errors },
        },
      },
      async (req, reply) => {
        const { name, ...rest } = req.params as Record<string, string>;
        const out = await putSecret(ctxOf(req, deps), s.scope(rest), name, req.body.value);
        reply.status(out.created ? 201 : 200);
        return out.secret;
      },
    );
    r.get(
      s.path,
      {
        schema: {
          tags: ['secrets'],
          summary: `Secret names of ${s.what}, never values`,
          params: Params,
          response: { 200: S.pageOf(S.Secret), ...errors },
        },
      },
      async (req) => listSecrets(ctxOf(req, deps), s.scope(req.params as Record<string, string>)),
    );
    r.delete(
      `${s.path}/:name`,
      {
        schema: {
          tags: ['secrets'],
          summary: `Delete a secret of ${s.what}`,
          params: NamedParams,
          response: { 204: T.Null(), ...errors },
        },
      },
      async (req, reply) => {
        const { name, ...rest } = req.params as Record<string, string>;
        await deleteSecret(ctxOf(req, deps), s.scope(rest), name);
        reply.status(204).send(null);
      },
    );
  }
}
