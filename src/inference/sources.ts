// The gateway's ports over the database: the routing table (deployments and ready replicas, read
// every 250 ms or at once after a change), API keys (the tenancy authenticator and its 1 s cache),
// limits (inference_limits, cached), token usage (batched upserts off the hot path) and the
// gateway's load reports for the autoscaler. Used by the server's /v1 and by `fabrik gateway`.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { projectRole, roleRank } from '../policy/roles.js';
import type { Database } from '../store/schema.js';
import type { Authenticator } from '../tenancy/authn.js';
import { replicaToken } from './replica-spec.js';
import type {
  CallLimits,
  DeploymentLoad,
  GatewayCaller,
  KeyVerifier,
  LimitSource,
  RouteDeployment,
  RoutingSource,
  RoutingTable,
  UsageRecord,
  UsageSink,
} from './types.js';

export interface DbRoutingOptions {
  readonly tokenKey: Buffer;
  readonly refreshMs?: number;
  /** In the server: the controller hears of demand and failures at once. */
  readonly onDemand?: (deploymentId: string) => void;
  readonly onReplicaDown?: (replicaId: string) => void;
}

export class DbRoutingSource implements RoutingSource {
  private table: RoutingTable = { version: 0, deployments: [] };
  private digest = '';
  private readonly listeners = new Set<(t: RoutingTable) => void>();
  private timer?: NodeJS.Timeout;
  private loading?: Promise<void>;
  /** Project id → org id, for the callers' grants. */
  orgOfProject = new Map<string, string>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: DbRoutingOptions,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), this.opts.refreshMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  current(): RoutingTable {
    return this.table;
  }

  subscribe(listener: (t: RoutingTable) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  demand(deploymentId: string): void {
    this.opts.onDemand?.(deploymentId);
  }

  replicaFailed(_deploymentId: string, replicaId: string): void {
    this.opts.onReplicaDown?.(replicaId);
  }

  /** Reads the table; publishes a new version only when something changed. */
  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    const rows = await this.db
      .selectFrom('deployments as d')
      .innerJoin('projects as p', 'p.id', 'd.project_id')
      .innerJoin('orgs as o', 'o.id', 'd.org_id')
      .selectAll('d')
      .select(['p.name as p_name', 'o.name as o_name'])
      .where('d.deleted_at', '=', '')
      .where('o.status', '=', 'active')
      .orderBy('d.id')
      .execute();
    const replicas = rows.length
      ? await this.db
          .selectFrom('deployment_replicas')
          .selectAll()
          .where(
            'deployment_id',
            'in',
            rows.map((r) => r.id),
          )
          .orderBy('id')
          .execute()
      : [];
    const deployments: RouteDeployment[] = rows.map((d) => ({
      id: d.id,
      orgId: d.org_id,
      projectId: d.project_id,
      project: `${d.o_name}.${d.p_name}`,
      name: d.name,
      aliases: JSON.parse(d.aliases) as string[],
      runtime: d.runtime,
      contextSize: d.context_size,
      minReplicas: d.min_replicas,
      maxReplicas: d.max_replicas,
      storePrompts: d.store_prompts === 1,
      createdAt: Date.parse(d.created_at),
      replicas:
        d.runtime === 'external'
          ? [
              {
                id: `${d.id}-upstream`,
                url: d.upstream_url.replace(/\/+$/, '').replace(/\/v1$/, ''),
                node: 'external',
                state: 'ready',
              },
            ]
          : replicas
              .filter((r) => r.deployment_id === d.id && r.host)
              .map((r) => ({
                id: r.id,
                url: `http://${r.host}:${r.port}`,
                token: replicaToken(this.opts.tokenKey, r.id),
                node: r.node,
                state: r.state,
              })),
    }));
    const digest = createHash('sha256').update(JSON.stringify(deployments)).digest('hex');
    if (digest === this.digest) return;
    this.digest = digest;
    this.orgOfProject = new Map(deployments.map((d) => [d.projectId, d.orgId]));
    this.table = { version: this.table.version + 1, deployments };
    for (const l of this.listeners) l(this.table);
  }
}

/** Keys through the tenancy authenticator: a key may call a project's models with member or more. */
export class DbKeyVerifier implements KeyVerifier {
  constructor(
    private readonly authn: Authenticator,
    private readonly orgOf: (projectId: string) => string | undefined,
  ) {}

  async verify(authorization: string | undefined): Promise<GatewayCaller | undefined> {
    let caller: Awaited<ReturnType<Authenticator['authenticate']>>;
    try {
      caller = await this.authn.authenticate(authorization);
    } catch {
      return undefined;
    }
    const orgOf = this.orgOf;
    return {
      keyId: caller.keyId,
      orgId: caller.scopeOrgId || caller.grants[0]?.orgId || '',
      principal: caller.principal,
      // Grants only: an operator key without a grant in the tenant's org cannot use its models.
      canUse(projectId: string) {
        const orgId = orgOf(projectId);
        return orgId !== undefined && roleRank(projectRole(caller, orgId, projectId)) >= roleRank('member');
      },
    };
  }
}

/** inference_limits, read every 2 s: per project and per key; 0 means none. */
export class DbLimitSource implements LimitSource {
  private project = new Map<string, CallLimits['project']>();
  private key = new Map<string, CallLimits['key']>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly db: Kysely<Database>) {}

  async start(refreshMs = 2000): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const rows = await this.db.selectFrom('inference_limits').selectAll().execute();
    const some = (n: number) => (n > 0 ? n : undefined);
    this.project = new Map(
      rows
        .filter((r) => r.scope === 'project')
        .map((r) => [
          r.scope_id,
          { rpm: some(r.rpm), tpm: some(r.tpm), monthlyTokens: some(Number(r.monthly_tokens)) },
        ]),
    );
    this.key = new Map(
      rows.filter((r) => r.scope === 'key').map((r) => [r.scope_id, { rpm: some(r.rpm), tpm: some(r.tpm) }]),
    );
  }

  limitsFor(caller: GatewayCaller, deployment: RouteDeployment): CallLimits {
    return { key: this.key.get(caller.keyId) ?? {}, project: this.project.get(deployment.projectId) ?? {} };
  }
}

/** Token usage summed per minute and (key, deployment, replica), written every `flushMs`. */
export class DbUsageSink implements UsageSink {
  private pending = new Map<string, Row>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly db: Kysely<Database>,
    flushMs = 2000,
  ) {
    this.timer = setInterval(
      () => void this.flush().catch((e) => process.emitWarning(`usage flush: ${e.message}`)),
      flushMs,
    );
    this.timer.unref();
  }

  record(r: UsageRecord): void {
    const minute = new Date(Math.floor(r.at / 60_000) * 60_000).toISOString();
    const k = `${minute}|${r.projectId}|${r.keyId}|${r.deploymentId}|${r.replicaId}`;
    const row = this.pending.get(k) ?? {
      minute,
      org_id: r.orgId,
      project_id: r.projectId,
      key_id: r.keyId,
      deployment_id: r.deploymentId,
      replica_id: r.replicaId,
      requests: 0,
      errors: 0,
      tokens_in: 0,
      tokens_out: 0,
      ttft_ms_sum: 0,
      duration_ms_sum: 0,
    };
    row.requests += 1;
    row.errors += r.status >= 400 || r.interrupted ? 1 : 0;
    row.tokens_in += r.tokensIn;
    row.tokens_out += r.tokensOut;
    row.ttft_ms_sum += Math.round(r.ttftMs);
    row.duration_ms_sum += Math.round(r.durationMs);
    this.pending.set(k, row);
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending = new Map();
    await this.db
      .insertInto('token_usage')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['minute', 'project_id', 'key_id', 'deployment_id', 'replica_id']).doUpdateSet((eb) => ({
          requests: eb('token_usage.requests', '+', eb.ref('excluded.requests')),
          errors: eb('token_usage.errors', '+', eb.ref('excluded.errors')),
          tokens_in: eb('token_usage.tokens_in', '+', eb.ref('excluded.tokens_in')),
          tokens_out: eb('token_usage.tokens_out', '+', eb.ref('excluded.tokens_out')),
          ttft_ms_sum: eb('token_usage.ttft_ms_sum', '+', eb.ref('excluded.ttft_ms_sum')),
          duration_ms_sum: eb('token_usage.duration_ms_sum', '+', eb.ref('excluded.duration_ms_sum')),
        })),
      )
      .execute();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}

type Row = Database['token_usage'];

/** A standalone gateway's load, written every second (and at once on demand) for the autoscaler. */
export async function reportLoad(
  db: Kysely<Database>,
  gateway: string,
  loads: readonly DeploymentLoad[],
): Promise<void> {
  const now = Date.now();
  for (const l of loads) {
    await db
      .insertInto('gateway_load')
      .values({
        gateway,
        deployment_id: l.deploymentId,
        inflight: l.inflight,
        queued: l.queued,
        last_request_at: l.lastRequestAt,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['gateway', 'deployment_id']).doUpdateSet({
          inflight: l.inflight,
          queued: l.queued,
          last_request_at: l.lastRequestAt,
          updated_at: now,
        }),
      )
      .execute();
  }
}
