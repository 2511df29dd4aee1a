// Routes for orgs, projects, users, service accounts, members and API keys.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  createKey,
  createPlatformKey,
  listKeys,
  listPlatformKeys,
  revokeKey,
  revokePlatformKey,
} from '../../tenancy/keys.js';
import {
  addMember,
  createServiceAccount,
  createUser,
  listMembers,
  listServiceAccounts,
  listUsers,
  removeMember,
} from '../../tenancy/members.js';
import { createOrg, deleteOrg, getOrg, listOrgs, updateOrg } from '../../tenancy/orgs.js';
import { createProject, deleteProject, getProject, listProjects, updateProject } from '../../tenancy/projects.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const OrgParams = T.Object({ org: T.String({ maxLength: 100 }) });
const ProjectParams = T.Object({ project: T.String({ maxLength: 200, description: 'org.project or project id' }) });

export async function tenancyRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/whoami',
    { schema: { tags: ['tenancy'], summary: 'Who the API key acts for', response: { 200: S.WhoAmI, ...errors } } },
    async (req) => {
      const c = ctxOf(req, deps).caller;
      const db = deps.store.db;
      const orgIds = [...new Set(c.grants.map((g) => g.orgId).concat(c.scopeOrgId ? [c.scopeOrgId] : []))];
      const orgs = orgIds.length
        ? await db.selectFrom('orgs').select(['id', 'name']).where('id', 'in', orgIds).execute()
        : [];
      const projIds = [
        ...new Set(
          c.grants
            .map((g) => g.projectId)
            .filter(Boolean)
            .concat(c.scopeProjectId ? [c.scopeProjectId] : []),
        ),
      ];
      const projects = projIds.length
        ? await db.selectFrom('projects').select(['id', 'name']).where('id', 'in', projIds).execute()
        : [];
      const orgName = (id: string) => orgs.find((o) => o.id === id)?.name ?? id;
      const projName = (id: string) => projects.find((p) => p.id === id)?.name ?? id;
      return {
        principal: c.principal,
        keyPrefix: c.keyPrefix,
        operator: c.operator,
        org: c.scopeOrgId ? orgName(c.scopeOrgId) : null,
        project: c.scopeProjectId ? projName(c.scopeProjectId) : null,
        grants: c.grants.map((g) => ({
          org: orgName(g.orgId),
          project: g.projectId ? projName(g.projectId) : null,
          role: g.role,
        })),
      };
    },
  );

  // Organizations
  r.post(
    '/orgs',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['tenancy'],
        summary: 'Create an organization (operators)',
        body: S.OrgCreate,
        response: { 201: S.Org, ...errors },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createOrg(ctxOf(req, deps), req.body);
    },
  );
  r.get(
    '/orgs',
    {
      schema: {
        tags: ['tenancy'],
        summary: 'List organizations you can see',
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.Org), ...errors },
      },
    },
    async (req) => listOrgs(ctxOf(req, deps), req.query),
  );
  r.get(
    '/orgs/:org',
    { schema: { tags: ['tenancy'], params: OrgParams, response: { 200: S.Org, ...errors } } },
    async (req) => getOrg(ctxOf(req, deps), req.params.org),
  );
  r.patch(
    '/orgs/:org',
    { schema: { tags: ['tenancy'], params: OrgParams, body: S.OrgPatch, response: { 200: S.Org, ...errors } } },
    async (req) => updateOrg(ctxOf(req, deps), req.params.org, req.body),
  );
  r.delete(
    '/orgs/:org',
    { schema: { tags: ['tenancy'], params: OrgParams, response: { 204: T.Null(), ...errors } } },
    async (req, reply) => {
      await deleteOrg(ctxOf(req, deps), req.params.org);
      reply.status(204).send(null);
    },
  );

  // Projects
  r.post(
    '/orgs/:org/projects',
    {
      config: { idempotent: 201 },
      schema: { tags: ['tenancy'], params: OrgParams, body: S.ProjectCreate, response: { 201: S.Project, ...errors } },
    },
    async (req, reply) => {
      reply.status(201);
      return createProject(ctxOf(req, deps), req.params.org, req.body);
    },
  );
  r.get(
    '/orgs/:org/projects',
    {
      schema: {
        tags: ['tenancy'],
        params: OrgParams,
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.Project), ...errors },
      },
    },
    async (req) => listProjects(ctxOf(req, deps), req.params.org, req.query),
  );
  r.get(
    '/projects/:project',
    { schema: { tags: ['tenancy'], params: ProjectParams, response: { 200: S.Project, ...errors } } },
    async (req) => getProject(ctxOf(req, deps), req.params.project),
  );
  r.patch(
    '/projects/:project',
    {
      schema: {
        tags: ['tenancy'],
        params: ProjectParams,
        body: S.ProjectPatch,
        response: { 200: S.Project, ...errors },
      },
    },
    async (req) => updateProject(ctxOf(req, deps), req.params.project, req.body),
  );
  r.delete(
    '/projects/:project',
    { schema: { tags: ['tenancy'], params: ProjectParams, response: { 204: T.Null(), ...errors } } },
    async (req, reply) => {
      await deleteProject(ctxOf(req, deps), req.params.project);
      reply.status(204).send(null);
    },
  );

  // Users (platform-wide identities)
  r.post(
    '/users',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['tenancy'],
        summary: 'Create a user (operators)',
        body: S.UserCreate,
        response: { 201: S.User, ...errors },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createUser(ctxOf(req, deps), req.body);
    },
  );
  r.get(
    '/users',
    { schema: { tags: ['tenancy'], querystring: S.PageQuery, response: { 200: S.pageOf(S.User), ...errors } } },
    async (req) => listUsers(ctxOf(req, deps), req.query),
  );

  // Service accounts and members
  r.post(
    '/orgs/:org/serviceaccounts',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['tenancy'],
        params: OrgParams,
        body: S.ServiceAccountCreate,
        response: { 201: S.ServiceAccount, ...errors },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createServiceAccount(ctxOf(req, deps), req.params.org, req.body);
    },
  );
  r.get(
    '/orgs/:org/serviceaccounts',
    {
      schema: {
        tags: ['tenancy'],
        params: OrgParams,
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.ServiceAccount), ...errors },
      },
    },
    async (req) => listServiceAccounts(ctxOf(req, deps), req.params.org, req.query),
  );
  r.post(
    '/orgs/:org/members',
    {
      config: { idempotent: 201 },
      schema: { tags: ['tenancy'], params: OrgParams, body: S.MemberCreate, response: { 201: S.Member, ...errors } },
    },
    async (req, reply) => {
      reply.status(201);
      return addMember(ctxOf(req, deps), req.params.org, req.body);
    },
  );
  r.get(
    '/orgs/:org/members',
    {
      schema: {
        tags: ['tenancy'],
        params: OrgParams,
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.Member), ...errors },
      },
    },
    async (req) => listMembers(ctxOf(req, deps), req.params.org, req.query),
  );
  r.delete(
    '/orgs/:org/members/:member',
    {
      schema: {
        tags: ['tenancy'],
        summary: 'Remove a membership; member is user:NAME or serviceaccount:NAME',
        params: T.Object({
          org: T.String({ maxLength: 100 }),
          member: T.String({ pattern: '^(user|serviceaccount):[a-z0-9-]{1,63}$' }),
        }),
        querystring: S.MemberRemoveQuery,
        response: { 204: T.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const [kind, name] = req.params.member.split(':');
      const sel = kind === 'user' ? { user: name } : { serviceAccount: name };
      await removeMember(ctxOf(req, deps), req.params.org, { ...sel, project: req.query.project });
      reply.status(204).send(null);
    },
  );

  // API keys
  const KeyParams = T.Object({ org: T.String({ maxLength: 100 }), key: T.String({ maxLength: 100 }) });
  r.post(
    '/orgs/:org/keys',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['tenancy'],
        summary: 'Create an API key (the token is shown once)',
        params: OrgParams,
        body: S.KeyCreate,
        response: { 201: S.CreatedApiKey, ...errors },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createKey(ctxOf(req, deps), req.params.org, req.body);
    },
  );
  r.get(
    '/orgs/:org/keys',
    {
      schema: {
        tags: ['tenancy'],
        params: OrgParams,
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.ApiKey), ...errors },
      },
    },
    async (req) => listKeys(ctxOf(req, deps), req.params.org, req.query),
  );
  r.delete(
    '/orgs/:org/keys/:key',
    {
      schema: {
        tags: ['tenancy'],
        summary: 'Revoke an API key (by id or prefix)',
        params: KeyParams,
        response: { 200: S.ApiKey, ...errors },
      },
    },
    async (req) => revokeKey(ctxOf(req, deps), req.params.org, req.params.key),
  );
  r.post(
    '/keys',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['tenancy'],
        summary: 'Create a platform key for an operator (operators)',
        body: S.PlatformKeyCreate,
        response: { 201: S.CreatedApiKey, ...errors },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createPlatformKey(ctxOf(req, deps), req.body);
    },
  );
  r.get(
    '/keys',
    { schema: { tags: ['tenancy'], querystring: S.PageQuery, response: { 200: S.pageOf(S.ApiKey), ...errors } } },
    async (req) => listPlatformKeys(ctxOf(req, deps), req.query),
  );
  r.delete(
    '/keys/:key',
    {
      schema: {
        tags: ['tenancy'],
        params: T.Object({ key: T.String({ maxLength: 100 }) }),
        response: { 200: S.ApiKey, ...errors },
      },
    },
    async (req) => revokePlatformKey(ctxOf(req, deps), req.params.key),
  );
}
