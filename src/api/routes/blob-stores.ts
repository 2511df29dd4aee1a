// GET /api/v1/blob-stores: the registry's blob stores, their regions and what policies read from
// them (operators only). Without a registry it answers 503.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import { listBlobStores } from '../../registry/store-choice.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

export async function blobStoreRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/blob-stores',
    {
      schema: {
        tags: ['registry'],
        summary: "The registry's blob stores in the order uploads try them, with their regions (operators)",
        response: { 200: S.BlobStoreList, '4xx': S.ErrorBody, 503: S.ErrorBody },
      },
    },
    async (req) => {
      if (!deps.registry) throw new AppError('UNAVAILABLE', 'this server runs without a model and dataset registry');
      return listBlobStores(ctxOf(req, deps), deps.registry);
    },
  );
}
