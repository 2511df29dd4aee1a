// Routes for inference: deployments of a project (deploy, list, describe, scale, undeploy), its
// rate limits and budgets, and its token usage. The deployment routes exist only on a server that
// runs replicas (deps.deployments); limits and usage are plain database reads and writes.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  createDeployment,
  deleteDeployment,
  getDeployment,
  listDeployments,
  scaleDeployment,
} from '../../inference/deployments.js';
import { deleteInferenceLimits, getInferenceLimits, setInferenceLimits } from '../../inference/limits.js';
import { tokenUsage } from '../../inference/usage.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';
import * as I from '../schemas-inference.js';

const errors = { '4xx': S.ErrorBody };
const Project = T.String({ maxLength: 200, description: 'org.project or project id' });
const ProjectParams = T.Object({ project: Project });
const DeploymentParams = T.Object({ project: Project, name: T.String({ maxLength: 100 }) });

export async function deploymentRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['inference'];
  const dd = deps.deployments;
  if (dd) {
    r.post(
      '/projects/:project/deployments',
      {
        config: { idempotent: 201 },
        schema: {
          tags,
          summary: 'Deploy a model (members): a registry version, a GGUF on the server, or an external upstream',
          params: ProjectParams,
          body: I.DeployBody,
          response: { 201: I.Deployment, ...errors },
        },
      },
      async (req, reply) => {
        const d = await createDeployment(ctxOf(req, deps), req.params.project, req.body, dd);
        deps.onStateChange?.();
        reply.status(201);
        return d;
      },
    );
    r.get(
      '/projects/:project/deployments',
      {
        schema: {
          tags,
          summary: 'Deployments of a project with their replicas',
          params: ProjectParams,
          response: { 200: I.DeploymentList, ...errors },
        },
      },
      async (req) => ({ items: await listDeployments(ctxOf(req, deps), req.params.project) }),
    );
    r.get(
      '/deployments',
      {
        schema: {
          tags,
          summary: 'Deployments of every project you can see',
          response: { 200: I.DeploymentList, ...errors },
        },
      },
      async (req) => ({ items: await listDeployments(ctxOf(req, deps)) }),
    );
    r.get(
      '/projects/:project/deployments/:name',
      {
        schema: {
          tags,
          summary: 'A deployment with its replicas (state, workload, node, endpoint)',
          params: DeploymentParams,
          response: { 200: I.Deployment, ...errors },
        },
      },
      async (req) => getDeployment(ctxOf(req, deps), req.params.project, req.params.name),
    );
    r.patch(
      '/projects/:project/deployments/:name',
      {
        schema: {
          tags,
          summary: 'Scale a deployment (members): a new replica range; the controller moves toward it',
          params: DeploymentParams,
          body: I.ScaleBody,
          response: { 200: I.Deployment, ...errors },
        },
      },
      async (req) => {
        const d = await scaleDeployment(ctxOf(req, deps), req.params.project, req.params.name, req.body.replicas);
        deps.onStateChange?.();
        return d;
      },
    );
    r.delete(
      '/projects/:project/deployments/:name',
      {
        schema: {
          tags,
          summary: 'Undeploy (members): the name is free at once, the replicas stop',
          params: DeploymentParams,
          response: { 200: I.Deployment, ...errors },
        },
      },
      async (req) => {
        const d = await deleteDeployment(ctxOf(req, deps), req.params.project, req.params.name);
        deps.onStateChange?.();
        return d;
      },
    );
  }

  r.get(
    '/projects/:project/inference-limits',
    {
      schema: {
        tags,
        summary: "A project's inference rate limits and monthly budget, and its keys' limits",
        params: ProjectParams,
        response: { 200: I.InferenceLimits, ...errors },
      },
    },
    async (req) => getInferenceLimits(ctxOf(req, deps), req.params.project),
  );
  r.put(
    '/projects/:project/inference-limits',
    {
      schema: {
        tags,
        summary: "Set a project's inference limits, or one key's with `key` (project admins); absent fields stay",
        params: ProjectParams,
        body: I.LimitsPut,
        response: { 200: I.InferenceLimits, ...errors },
      },
    },
    async (req) => setInferenceLimits(ctxOf(req, deps), req.params.project, req.body),
  );
  r.delete(
    '/projects/:project/inference-limits',
    {
      schema: {
        tags,
        summary: "Remove a project's inference limits, or one key's with ?key= (project admins)",
        params: ProjectParams,
        querystring: I.LimitsDeleteQuery,
        response: { 204: T.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await deleteInferenceLimits(ctxOf(req, deps), req.params.project, { key: req.query.key });
      reply.status(204).send(null);
    },
  );
  r.get(
    '/projects/:project/usage/tokens',
    {
      schema: {
        tags,
        summary: 'Token usage of a project over a time range, by deployment, key, replica or time bucket',
        params: ProjectParams,
        querystring: I.UsageQuery,
        response: { 200: I.TokenUsage, ...errors },
      },
    },
    async (req) => tokenUsage(ctxOf(req, deps), req.params.project, req.query),
  );
}
