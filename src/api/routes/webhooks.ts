// Routes for an org's webhook subscriptions: create (the signing secret is shown once), list,
// inspect, delete, and the deliveries of one (attempts, last status code, next try).
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks } from '../../app/webhooks.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };
const OrgParams = T.Object({ org: T.String({ maxLength: 100 }) });
const HookParams = T.Object({ org: T.String({ maxLength: 100 }), webhook: T.String({ maxLength: 100 }) });

export async function webhookRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post(
    '/orgs/:org/webhooks',
    {
      config: { idempotent: 201 },
      schema: {
        tags: ['webhooks'],
        summary: "Subscribe a URL to the org's events (org admins); the signing secret is shown once",
        params: OrgParams,
        body: S.WebhookCreate,
        response: { 201: S.CreatedWebhook, ...errors },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createWebhook(ctxOf(req, deps), req.params.org, req.body);
    },
  );
  r.get(
    '/orgs/:org/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: "The org's webhook subscriptions (org admins)",
        params: OrgParams,
        querystring: S.PageQuery,
        response: { 200: S.pageOf(S.Webhook), ...errors },
      },
    },
    async (req) => listWebhooks(ctxOf(req, deps), req.params.org, req.query),
  );
  r.get(
    '/orgs/:org/webhooks/:webhook',
    {
      schema: { tags: ['webhooks'], params: HookParams, response: { 200: S.Webhook, ...errors } },
    },
    async (req) => getWebhook(ctxOf(req, deps), req.params.org, req.params.webhook),
  );
  r.delete(
    '/orgs/:org/webhooks/:webhook',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Delete a subscription and its deliveries',
        params: HookParams,
        response: { 204: T.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await deleteWebhook(ctxOf(req, deps), req.params.org, req.params.webhook);
      reply.status(204).send(null);
    },
  );
  r.get(
    '/orgs/:org/webhooks/:webhook/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: "A subscription's deliveries, newest event first: status, attempts, last status code, next try",
        params: HookParams,
        querystring: T.Object(
          {
            ...S.PageQuery.properties,
            status: T.Optional(T.String({ maxLength: 20, description: 'pending, delivered or failed' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: S.pageOf(S.WebhookDelivery), ...errors },
      },
    },
    async (req) => {
      const { status, ...page } = req.query;
      return listDeliveries(ctxOf(req, deps), req.params.org, req.params.webhook, { status }, page);
    },
  );
}
