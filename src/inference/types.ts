// The inference context's shared words: deployments and their replicas as the gateway routes to
// them, and the ports the gateway stands on (routing table, key verification, limits, usage).
// Pure types: the control plane (./deployments*.ts, ./controller.ts) fills them from the database,
// tests fill them by hand.

import type { ReplicaState, Runtime } from '../domain/inference-states.js';

export { REPLICA_STATES, RUNTIMES, type ReplicaState, type Runtime } from '../domain/inference-states.js';

export interface RouteReplica {
  readonly id: string;
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:20013 (an external upstream's URL for `external`). */
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>` to the replica; undefined: send none. */
  readonly token?: string;
  readonly node: string;
  readonly state: ReplicaState;
}

export interface RouteDeployment {
  readonly id: string;
  readonly orgId: string;
  readonly projectId: string;
  /** `org.project` */
  readonly project: string;
  /** The `model` applications ask for. */
  readonly name: string;
  readonly aliases: readonly string[];
  readonly runtime: Runtime;
  /** Tokens; `max_tokens` beyond it is refused with 400. */
  readonly contextSize: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Whether prompts and completions may be kept (off unless the project opted in). */
  readonly storePrompts: boolean;
  /** Every replica with its state; only `ready` ones take requests. */
  readonly replicas: readonly RouteReplica[];
  /** Unix ms of creation, shown as `created` in /v1/models. */
  readonly createdAt: number;
}

/** A consistent view of every deployment; replaced as a whole, never mutated. */
export interface RoutingTable {
  readonly version: number;
  readonly deployments: readonly RouteDeployment[];
}

export interface RoutingSource {
  /** The latest table (synchronous: refreshed in the background). */
  current(): RoutingTable;
  /** Called with every new table. Returns an unsubscribe function. */
  subscribe(listener: (table: RoutingTable) => void): () => void;
  /** A request found no ready replica: ask the control plane for one (scale from zero). */
  demand(deploymentId: string): void;
  /** The gateway could not reach a replica (refused, reset before the first byte, 5xx on health). */
  replicaFailed(deploymentId: string, replicaId: string, reason: string): void;
}

/** Who calls the gateway: the owner of a verified fabrik API key. */
export interface GatewayCaller {
  readonly keyId: string;
  readonly orgId: string;
  readonly principal: string;
  /** Whether this key may call deployments of the project (project id). */
  canUse(projectId: string): boolean;
}

export interface KeyVerifier {
  /** The caller for an `Authorization` header value, or undefined when it is missing, unknown, revoked or expired. */
  verify(authorization: string | undefined): Promise<GatewayCaller | undefined>;
}

/** Limits in force for one call; undefined fields are unlimited. */
export interface CallLimits {
  readonly key: { readonly rpm?: number; readonly tpm?: number };
  readonly project: { readonly rpm?: number; readonly tpm?: number; readonly monthlyTokens?: number };
}

export interface LimitSource {
  /** Synchronous (cached): the limits for this key on this deployment's project. */
  limitsFor(caller: GatewayCaller, deployment: RouteDeployment): CallLimits;
}

/** One finished call, for metering; prompts and completions are not part of it. */
export interface UsageRecord {
  /** Unix ms when the call ended. */
  readonly at: number;
  readonly requestId: string;
  readonly keyId: string;
  readonly orgId: string;
  readonly projectId: string;
  readonly deploymentId: string;
  /** '' when no replica answered. */
  readonly replicaId: string;
  readonly endpoint: 'chat.completions' | 'completions' | 'embeddings';
  readonly tokensIn: number;
  readonly tokensOut: number;
  /** Time to the first byte of the answer (first token when streaming), ms. */
  readonly ttftMs: number;
  readonly durationMs: number;
  /** HTTP status returned to the client (200 for a stream that ended with an error event is still 200). */
  readonly status: number;
  readonly streamed: boolean;
  /** Whether a streamed call ended without [DONE] from upstream (error event sent, or client gone). */
  readonly interrupted: boolean;
}

export interface UsageSink {
  /** Off the hot path: buffered, written in batches. Never throws. */
  record(r: UsageRecord): void;
  flush(): Promise<void>;
}

/** What one gateway process sees of a deployment's load, for the autoscaler. */
export interface DeploymentLoad {
  readonly deploymentId: string;
  /** Requests being answered now. */
  readonly inflight: number;
  /** Requests held while no replica is ready (scale from zero) or all are at their load cap. */
  readonly queued: number;
  /** Unix ms of the last request that arrived; 0 for never. */
  readonly lastRequestAt: number;
  /** Requests since the gateway started. */
  readonly requests: number;
}
