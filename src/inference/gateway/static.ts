// In-memory implementations of the gateway's ports, for tests, benchmarks and trying the gateway
// without a control plane (./dev-main.ts). Production uses the database-backed ones
// (../sources.ts). They record what the gateway asked of them, so a test can check it.
import type {
  CallLimits,
  GatewayCaller,
  KeyVerifier,
  LimitSource,
  RouteDeployment,
  RoutingSource,
  RoutingTable,
  UsageRecord,
  UsageSink,
} from '../types.js';

/** A routing table set by hand; `publish` replaces it and tells the subscribers. */
export class StaticRouting implements RoutingSource {
  #table: RoutingTable;
  readonly #listeners = new Set<(t: RoutingTable) => void>();
  readonly demands: string[] = [];
  readonly failures: { deploymentId: string; replicaId: string; reason: string }[] = [];
  /** Called on demand() (a test publishes a ready replica from here). */
  onDemand?: (deploymentId: string) => void;

  constructor(deployments: readonly RouteDeployment[] = []) {
    this.#table = { version: 1, deployments };
  }

  current(): RoutingTable {
    return this.#table;
  }

  subscribe(listener: (table: RoutingTable) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(deployments: readonly RouteDeployment[]): void {
    this.#table = { version: this.#table.version + 1, deployments };
    for (const l of this.#listeners) l(this.#table);
  }

  demand(deploymentId: string): void {
    this.demands.push(deploymentId);
    this.onDemand?.(deploymentId);
  }

  replicaFailed(deploymentId: string, replicaId: string, reason: string): void {
    this.failures.push({ deploymentId, replicaId, reason });
  }
}

export interface StaticKey {
  readonly keyId: string;
  readonly orgId: string;
  /** Project ids the key may call. */
  readonly projects: readonly string[];
}

/** Bearer tokens → callers, from a map. */
export class StaticKeys implements KeyVerifier {
  readonly #keys: Map<string, GatewayCaller>;

  constructor(keys: Readonly<Record<string, StaticKey>>) {
    this.#keys = new Map(
      Object.entries(keys).map(([token, k]) => {
        const projects = new Set(k.projects);
        const caller: GatewayCaller = {
          keyId: k.keyId,
          orgId: k.orgId,
          principal: `key:${k.keyId}`,
          canUse: (projectId) => projects.has(projectId),
        };
        return [token, caller];
      }),
    );
  }

  async verify(authorization: string | undefined): Promise<GatewayCaller | undefined> {
    if (!authorization?.startsWith('Bearer ')) return undefined;
    return this.#keys.get(authorization.slice(7));
  }
}

/** The same limits for every call, or per key id. */
export class StaticLimits implements LimitSource {
  limits: CallLimits;
  readonly perKey = new Map<string, CallLimits>();

  constructor(limits: CallLimits = { key: {}, project: {} }) {
    this.limits = limits;
  }

  limitsFor(caller: GatewayCaller): CallLimits {
    return this.perKey.get(caller.keyId) ?? this.limits;
  }
}

/** Keeps every record (bounded) in memory. */
export class MemoryUsage implements UsageSink {
  readonly records: UsageRecord[] = [];
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  record(r: UsageRecord): void {
    if (this.records.length >= this.#max) this.records.shift();
    this.records.push(r);
  }

  async flush(): Promise<void> {}
}

/** A deployment with every field filled: what tests and benchmarks route to. */
export function deployment(
  fields: Partial<RouteDeployment> & Pick<RouteDeployment, 'id' | 'name' | 'replicas'>,
): RouteDeployment {
  return {
    orgId: 'org-acme',
    projectId: 'prj-chat',
    project: 'acme.chat',
    aliases: [],
    runtime: 'llamacpp',
    contextSize: 4096,
    minReplicas: 0,
    maxReplicas: 4,
    storePrompts: false,
    createdAt: Date.UTC(2025, 0, 1),
    ...fields,
  };
}
