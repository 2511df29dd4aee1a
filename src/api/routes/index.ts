// Every /api/v1 route group, registered in one place.
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../context.js';
import { deploymentRoutes } from './deployments.js';
import { auditLogRoutes } from './audit-log.js';
import { billingRoutes } from './billing.js';
import { blobStoreRoutes } from './blob-stores.js';
import { breakGlassRoutes } from './break-glass.js';
import { complianceRoutes } from './compliance.js';
import { eventRoutes } from './events.js';
import { auditRoutes, fleetRoutes, quotaRoutes } from './quotas-fleet-audit.js';
import { policyRoutes } from './policies.js';
import { registryRoutes } from './registry.js';
import { secretRoutes } from './secrets.js';
import { tenancyRoutes } from './tenancy.js';
import { webhookRoutes } from './webhooks.js';
import { workloadRoutes } from './workloads.js';
import { usageRoutes } from './usage.js';

export async function registerRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  await tenancyRoutes(app, deps);
  await quotaRoutes(app, deps);
  await fleetRoutes(app, deps);
  await auditRoutes(app, deps);
  await auditLogRoutes(app, deps);
  await workloadRoutes(app, deps);
  await secretRoutes(app, deps);
  await breakGlassRoutes(app, deps);
  await eventRoutes(app, deps);
  await webhookRoutes(app, deps);
  await registryRoutes(app, deps);
  await blobStoreRoutes(app, deps);
  await deploymentRoutes(app, deps);
  await policyRoutes(app, deps);
  await complianceRoutes(app, deps);
  await usageRoutes(app, deps);
  await billingRoutes(app, deps);
}
