// Putting the inference context together over a database: the gateway and its ports (routing
// table, keys, limits, usage), and on the control plane the deployment controller. The server
// (src/server.ts) serves the gateway under /v1; `fabrik gateway` runs it as its own process.
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import type { Database } from '../store/schema.js';
import type { Authenticator } from '../tenancy/authn.js';
import { DeploymentController } from './controller.js';
import { createGateway } from './gateway/index.js';
import { type Limiter, MemoryLimiter } from './gateway/limits.js';
import { RedisLimiter } from './gateway/limits-redis.js';
import { type ReplicaRuntime, replicaTokenKey } from './replica-spec.js';
import { DbKeyVerifier, DbLimitSource, DbRoutingSource, DbUsageSink, reportLoad } from './sources.js';

export interface GatewayStackOptions {
  readonly db: Kysely<Database>;
  readonly masterKey: Buffer;
  readonly authenticator: Authenticator;
  /** redis://… : limits shared (exactly) by every gateway process; absent: this process's memory. */
  readonly redisUrl?: string;
  /** Standalone gateways report their load for the autoscaler under this name. */
  readonly reportAs?: string;
  readonly onDemand?: (deploymentId: string) => void;
  readonly onReplicaDown?: (replicaId: string) => void;
  readonly holdTimeoutMs?: number;
  /** Length of the rate windows (default 60 s: the limits are per minute); tests shorten it. */
  readonly rateWindowMs?: number;
}

export type GatewayStack = Awaited<ReturnType<typeof openGatewayStack>>;

export async function openGatewayStack(opts: GatewayStackOptions) {
  const tokenKey = replicaTokenKey(opts.masterKey);
  let report: (() => void) | undefined;
  const routing = new DbRoutingSource(opts.db, {
    tokenKey,
    onDemand: (id) => {
      opts.onDemand?.(id);
      report?.();
    },
    onReplicaDown: opts.onReplicaDown,
  });
  const limits = new DbLimitSource(opts.db);
  const usage = new DbUsageSink(opts.db);
  const windowMs = opts.rateWindowMs;
  const limiter: Limiter = opts.redisUrl
    ? new RedisLimiter({ url: opts.redisUrl, windowMs })
    : new MemoryLimiter({ windowMs });
  await routing.start();
  await limits.start();
  const gateway = createGateway({
    routing,
    keys: new DbKeyVerifier(opts.authenticator, (projectId) => routing.orgOfProject.get(projectId)),
    limits,
    usage,
    limiter,
    ...(opts.holdTimeoutMs ? { holdTimeoutMs: opts.holdTimeoutMs } : {}),
  });
  // A standalone gateway tells the leader's autoscaler what it sees, every second and on demand.
  let reporter: NodeJS.Timeout | undefined;
  if (opts.reportAs) {
    const name = opts.reportAs;
    const send = () => void reportLoad(opts.db, name, gateway.load()).catch(() => {});
    report = send;
    reporter = setInterval(send, 1000);
    reporter.unref();
  }
  return {
    gateway,
    routing,
    reportedAs: opts.reportAs,
    async close() {
      if (reporter) clearInterval(reporter);
      routing.stop();
      limits.stop();
      await gateway.close();
      await usage.close();
      await (limiter as { close?: () => Promise<void> }).close?.();
    },
  };
}

export interface ControlPlaneInference {
  readonly db: Kysely<Database>;
  readonly masterKey: Buffer;
  readonly executor: 'local' | 'slurm';
  readonly fence?: (trx: Trx) => Promise<void>;
  readonly workdirRoot: string;
  readonly stack: GatewayStack;
  /** Where the replica process's code is (located once at start-up, shared with the deploy checks). */
  readonly runtime: ReplicaRuntime;
  readonly ports?: readonly [number, number];
  readonly onSubmitted?: () => void;
  readonly onCancelled?: () => void;
}

/** The controller on the leader, fed by the in-process gateway's load and refreshing its routing. */
export function deploymentController(o: ControlPlaneInference): DeploymentController {
  const local = o.executor === 'local';
  return new DeploymentController(o.db, {
    runtime: o.runtime,
    tokenKey: replicaTokenKey(o.masterKey),
    bindHost: local ? '127.0.0.1' : '0.0.0.0',
    // The local executor runs every replica on this machine; Slurm nodes are reached by name.
    hostOf: (node) => (local ? '127.0.0.1' : node),
    probePorts: local,
    ports: o.ports,
    fence: o.fence,
    workdirRoot: o.workdirRoot,
    localLoad: () => o.stack.gateway.load(),
    localReportName: o.stack.reportedAs,
    onChange: () => void o.stack.routing.refresh(),
    onSubmitted: o.onSubmitted,
    onCancelled: o.onCancelled,
  });
}

/** `host:pid`: how a gateway process names itself in its load reports (the server's: `server:host:pid`). */
export function gatewayName(): string {
  return `${hostname()}:${process.pid}`;
}
