// How deployments and their replicas are shown (API, CLI): one shape, built from the rows.
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import type { ReplicaState, Runtime } from '../domain/inference-states.js';
import type { WorkloadStatus } from '../domain/workload-states.js';
import type { Database, DeploymentsTable } from '../store/schema.js';

export interface ReplicaView {
  readonly id: string;
  readonly deploymentId: string;
  readonly ordinal: number;
  readonly state: ReplicaState;
  readonly message: string;
  /** The serving workload: its name and status (pending, running, …). */
  readonly workload: string;
  readonly workloadId: string;
  readonly workloadStatus: WorkloadStatus | '';
  readonly attempt: number;
  readonly node: string;
  readonly endpoint: string;
  readonly readyAt: string | null;
  readonly createdAt: string;
}

export interface DeploymentView {
  readonly id: string;
  readonly name: string;
  readonly project: string;
  readonly aliases: string[];
  readonly runtime: Runtime;
  readonly model: { readonly repo: string; readonly revision: string; readonly commit: string } | null;
  readonly modelPath: string | null;
  readonly upstreamUrl: string | null;
  readonly gpu: { readonly model: string | null; readonly perReplica: number };
  readonly replicas: {
    readonly min: number;
    readonly max: number;
    readonly desired: number;
    readonly ready: number;
    readonly total: number;
  };
  readonly contextSize: number;
  readonly threads: number;
  readonly parallel: number;
  readonly targetInflight: number;
  readonly idleTimeoutS: number;
  readonly storePrompts: boolean;
  readonly replicaList: ReplicaView[];
  /** Summed over the gateways' fresh reports (describe only). */
  readonly load?: { readonly inflight: number; readonly queued: number; readonly lastRequestAt: number | null };
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
}

export function deploymentView(r: DeploymentsTable, project: string, replicas: ReplicaView[]): DeploymentView {
  return {
    id: r.id,
    name: r.name,
    project,
    aliases: JSON.parse(r.aliases) as string[],
    runtime: r.runtime,
    model: r.model_repo ? { repo: r.model_repo, revision: r.model_revision, commit: r.model_commit } : null,
    modelPath: r.model_path || null,
    upstreamUrl: r.upstream_url || null,
    gpu: { model: r.gpu_model || null, perReplica: r.gpus_per_replica },
    replicas: {
      min: r.min_replicas,
      max: r.max_replicas,
      desired: r.desired_replicas,
      ready: r.runtime === 'external' ? 1 : replicas.filter((x) => x.state === 'ready').length,
      total: r.runtime === 'external' ? 1 : replicas.length,
    },
    contextSize: r.context_size,
    threads: r.threads,
    parallel: r.parallel,
    targetInflight: r.target_inflight,
    idleTimeoutS: r.idle_timeout_s,
    storePrompts: r.store_prompts === 1,
    replicaList: replicas,
    createdAt: r.created_at,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
  };
}

/** Replicas of the given deployments with their workloads, by ordinal. */
export async function listReplicaViews(
  db: Kysely<Database> | Trx,
  deploymentIds: readonly string[],
): Promise<ReplicaView[]> {
  if (deploymentIds.length === 0) return [];
  const rows = await db
    .selectFrom('deployment_replicas as r')
    .leftJoin('workloads as w', 'w.id', 'r.workload_id')
    .selectAll('r')
    .select(['w.name as w_name', 'w.status as w_status', 'w.attempts as w_attempts'])
    .where('r.deployment_id', 'in', [...deploymentIds])
    .orderBy('r.deployment_id')
    .orderBy('r.ordinal')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    deploymentId: r.deployment_id,
    ordinal: r.ordinal,
    state: r.state,
    message: r.message,
    workload: r.w_name ?? '',
    workloadId: r.workload_id,
    workloadStatus: r.w_status ?? '',
    attempt: r.w_attempts ?? 0,
    node: r.node,
    endpoint: r.host ? `http://${r.host}:${r.port}` : '',
    readyAt: r.ready_at || null,
    createdAt: r.created_at,
  }));
}

/** Gateway load reports older than this are ignored: that gateway is gone. */
export const LOAD_FRESH_MS = 10_000;

/** A deployment's load as the gateways reported it in the last LOAD_FRESH_MS (`gateway_load`). */
export async function deploymentLoad(db: Kysely<Database> | Trx, deploymentId: string, now = Date.now()) {
  const rows = await db
    .selectFrom('gateway_load')
    .select(['inflight', 'queued', 'last_request_at'])
    .where('deployment_id', '=', deploymentId)
    .where('updated_at', '>', now - LOAD_FRESH_MS)
    .execute();
  const last = Math.max(0, ...rows.map((r) => Number(r.last_request_at)));
  return {
    inflight: rows.reduce((n, r) => n + r.inflight, 0),
    queued: rows.reduce((n, r) => n + r.queued, 0),
    lastRequestAt: last > 0 ? last : null,
  };
}
