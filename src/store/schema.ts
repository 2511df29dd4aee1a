// Table shapes, as Kysely sees them. One schema for SQLite and PostgreSQL: text timestamps
// (RFC 3339), integers, JSON as text. '' stands for "none" in key columns so that unique
// indexes behave the same in both dialects.
import type { ReplicaState, Runtime } from '../domain/inference-states.js';
import type { AttemptState, EndReason, StopReason, WorkloadStatus } from '../domain/workload-states.js';

export interface OrgsTable {
  id: string;
  name: string;
  display_name: string;
  residency: string;
  status: string;
  created_at: string;
  updated_at: string;
}

export interface ProjectsTable {
  id: string;
  org_id: string;
  name: string;
  display_name: string;
  /** The project's own Unix identity (uid = gid) that every task of it runs under. */
  uid: number;
  created_at: string;
  updated_at: string;
}

/** A deleted project whose directories wait for removal until `purge_after`. */
export interface ProjectTombstonesTable {
  project_id: string;
  uid: number;
  deleted_at: string;
  purge_after: string;
  /** '' until the directories are gone. */
  purged_at: string;
}

export interface PrincipalsTable {
  id: string;
  /** 'user' | 'service_account' */
  kind: string;
  name: string;
  /** Owning org of a service account; '' for users (people can belong to several orgs). */
  org_id: string;
  /** 'operator' or ''. */
  platform_role: string;
  created_at: string;
}

export interface MembershipsTable {
  id: string;
  principal_id: string;
  org_id: string;
  /** '' for an org-wide role; a project id for a project-scoped grant. */
  project_id: string;
  role: string;
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  prefix: string;
  secret_hash: string;
  name: string;
  principal_id: string;
  /** '' for a platform (operator) key. */
  org_id: string;
  project_id: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface PoolsTable {
  name: string;
  gpu_model: string;
  gpu_memory_gib: number;
  created_at: string;
  updated_at: string;
}

export interface NodesTable {
  name: string;
  pool: string;
  region: string;
  pod: string;
  rack: string;
  ib_leaf: string;
  ib_spine: string;
  gpu_model: string;
  gpu_count: number;
  gpu_memory_gib: number;
  cpu: number;
  ram_gib: number;
  labels: string;
  state: string;
  dev_gpus: number;
  created_at: string;
  updated_at: string;
}

export interface QuotasTable {
  project_id: string;
  pool: string;
  guaranteed: number;
  gpu_limit: number;
  created_at: string;
  updated_at: string;
}

export interface AuditEntriesTable {
  seq: number;
  time: string;
  org_id: string;
  action: string;
  resource: string;
  request_id: string;
  actor_key_id: string;
  actor_principal: string;
  before_digest: string | null;
  after_digest: string | null;
  outcome: string;
  /** The entry serialised canonically (RFC 8785): the exact bytes a Merkle log will hash. */
  canonical: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
}

export interface IdempotencyKeysTable {
  key_id: string;
  idem_key: string;
  method: string;
  path: string;
  body_hash: string;
  status: number;
  response: string;
  created_at: string;
}

export interface WorkloadsTable {
  id: string;
  org_id: string;
  project_id: string;
  name: string;
  kind: string;
  pool: string;
  priority: string;
  nodes: number;
  gpus_per_node: number;
  max_runtime_s: number;
  /** The validated spec as JSON. */
  spec: string;
  status: WorkloadStatus;
  /** Why pending (a PendingReason), or the last transition's reason. */
  reason: string;
  message: string;
  estimated_start: string | null;
  /** Placement JSON while running. */
  placement: string | null;
  borrowed: number;
  attempts: number;
  preemptions: number;
  submitted_at: string;
  started_at: string | null;
  finished_at: string | null;
  created_by: string;
  updated_at: string;
  executor: string | null;
  // exec_handle (a column of 0003) is no longer used: handles live on workload_attempts.
  not_before: string | null;
  exit_code: number | null;
  /** When it (re)entered the queue; the scheduler's order key. */
  queued_at: string | null;
}

/** One launch of a workload on a placement (src/workload/lifecycle.ts owns its states). */
export interface WorkloadAttemptsTable {
  /** `<workload id>.<number>` */
  id: string;
  workload_id: string;
  org_id: string;
  project_id: string;
  number: number;
  state: AttemptState;
  /** Placement JSON: nodes, GPU indexes, pod, leaves. */
  placement: string;
  pool: string;
  gpu_model: string;
  gpus: number;
  executor: string;
  /** The executor's handle (JSON) once the engine took it; '' before. */
  handle: string;
  created_at: string;
  /** Times are '' until they happen. */
  launched_at: string;
  started_at: string;
  stopping_since: string;
  killed_at: string;
  ended_at: string;
  exit_code: number | null;
  end_reason: EndReason | '';
  stop_reason: StopReason | '';
  message: string;
}

export interface WorkloadEventsTable {
  id: string;
  workload_id: string;
  time: string;
  /** Normal | Warning */
  type: string;
  reason: string;
  message: string;
}

/** Registry keys of an org: purpose 'data' (encrypts blobs) or 'blob-id' (keys blob ids). */
export interface RegistryKeysTable {
  org_id: string;
  key_id: string;
  purpose: 'data' | 'blob-id';
  /** The key wrapped by the KMS (text the KMS made). */
  wrapped: string;
  created_at: string;
  /** '' while current. */
  retired_at: string;
}

export type RepoKind = 'model' | 'dataset';

export interface ReposTable {
  id: string;
  org_id: string;
  project_id: string;
  kind: RepoKind;
  name: string;
  /** 1 or 0. Every repo is visible only inside its org; this is the Hub's flag, kept for clients. */
  private: number;
  created_at: string;
  created_by: string;
  updated_at: string;
  /** '' while live. */
  deleted_at: string;
  /** '' while live; when the retention of a deleted repo ends. */
  purge_after: string;
}

export interface CommitsTable {
  /** 40 hex digits: the commit oid shown by the Hub protocol. */
  id: string;
  repo_id: string;
  /** '' for the first commit. */
  parent_id: string;
  /** 1, 2, ... per repo. */
  seq: number;
  summary: string;
  description: string;
  /** Canonical JSON: ManifestFile[] sorted by path. */
  manifest: string;
  total_bytes: number;
  file_count: number;
  /** JSON of the structured model card ('{}' without one). */
  card: string;
  /** JSON: what was read from safetensors/GGUF headers, per file. */
  formats: string;
  /** JSON of the DSSE envelope signing the manifest. */
  envelope: string;
  /** '' unless a workload attempt produced this version. */
  producer_workload_id: string;
  producer_attempt: number;
  created_at: string;
  created_by: string;
}

export interface RepoRefsTable {
  repo_id: string;
  name: string;
  kind: 'branch' | 'tag';
  commit_id: string;
  updated_at: string;
  updated_by: string;
}

export interface BlobsTable {
  org_id: string;
  blob_id: string;
  sha256: string;
  size: number;
  storage_key: string;
  key_id: string;
  /** base64 of the per-object salt the object key is derived with. */
  salt: string;
  created_at: string;
  /** The blob store holding it, by name ('' = the default store). */
  store: string;
}

export interface ProjectBlobsTable {
  project_id: string;
  blob_id: string;
  size: number;
}

export type UploadStatus = 'open' | 'complete' | 'aborted';

export interface UploadsTable {
  id: string;
  org_id: string;
  project_id: string;
  sha256: string;
  size: number;
  /** Plaintext bytes per part (a multiple of the encryption segment). */
  chunk_size: number;
  storage_key: string;
  store_handle: string;
  /** The blob store it is written to, by name ('' = the default store). */
  store: string;
  key_id: string;
  salt: string;
  status: UploadStatus;
  created_at: string;
  created_by: string;
  expires_at: string;
}

/** A part of an upload the store holds whole (a confirmed part). */
export interface UploadPartsTable {
  upload_id: string;
  part: number;
  etag: string;
  /** Plaintext bytes. */
  size: number;
  created_at: string;
}

export interface StorageQuotasTable {
  project_id: string;
  limit_bytes: number;
  updated_at: string;
}

export type LineageNodeKind = 'commit' | 'attempt' | 'deployment';

export interface LineageEdgesTable {
  id: string;
  org_id: string;
  from_kind: LineageNodeKind;
  from_id: string;
  to_kind: LineageNodeKind;
  to_id: string;
  created_at: string;
}

export interface Database {
  workloads: WorkloadsTable;
  workload_events: WorkloadEventsTable;
  workload_attempts: WorkloadAttemptsTable;
  orgs: OrgsTable;
  projects: ProjectsTable;
  project_tombstones: ProjectTombstonesTable;
  principals: PrincipalsTable;
  memberships: MembershipsTable;
  api_keys: ApiKeysTable;
  pools: PoolsTable;
  nodes: NodesTable;
  quotas: QuotasTable;
  audit_entries: AuditEntriesTable;
  audit_head: AuditHeadTable;
  idempotency_keys: IdempotencyKeysTable;
  fabrik_meta: { key: string; value: string };
  secrets: SecretsTable;
  registry_keys: RegistryKeysTable;
  repos: ReposTable;
  commits: CommitsTable;
  repo_refs: RepoRefsTable;
  blobs: BlobsTable;
  project_blobs: ProjectBlobsTable;
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  storage_quotas: StorageQuotasTable;
  lineage_edges: LineageEdgesTable;
  leases: LeasesTable;
  fair_share_usage: FairShareUsageTable;
  events: EventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  deployments: DeploymentsTable;
  deployment_replicas: DeploymentReplicasTable;
  token_usage: TokenUsageTable;
  inference_limits: InferenceLimitsTable;
  gateway_load: GatewayLoadTable;
  audit_log_nodes: AuditLogNodesTable;
  audit_log_state: AuditLogStateTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_cosignatures: AuditCosignaturesTable;
  policy_versions: PolicyVersionsTable;
  break_glass_grants: BreakGlassGrantsTable;
  usage_hourly: UsageHourlyTable;
  attempt_power_samples: AttemptPowerSamplesTable;
  stored_bytes_samples: StoredBytesSamplesTable;
  console_sessions: ConsoleSessionsTable;
  oidc_identities: OidcIdentitiesTable;
  oidc_logins: OidcLoginsTable;
  prices: PricesTable;
  budgets: BudgetsTable;
  budget_alerts: BudgetAlertsTable;
}

/** One version of the sovereignty policy set (src/policy/versions.ts owns it). */
export interface PolicyVersionsTable {
  version: number;
  /** SHA-256 hex of the policy text as loaded. */
  hash: string;
  policies: string;
  /** JSON array of the policies' ids (their `@id` annotations), in file order. */
  policy_ids: string;
  created_at: string;
  created_by: string;
}

/** An operator's break-glass access to one org's data (src/policy/break-glass.ts owns it). */
export interface BreakGlassGrantsTable {
  id: string;
  org_id: string;
  principal_id: string;
  /** e.g. `user:ops`. */
  principal: string;
  reason: string;
  created_at: string;
  expires_at: string;
  /** '' while in force (until expires_at). */
  revoked_at: string;
  revoked_by: string;
}

export interface SecretsTable {
  id: string;
  org_id: string;
  /** '' for an org-wide secret. */
  project_id: string;
  name: string;
  /** Which master key sealed it (rotation). */
  key_id: string;
  /** base64 of the 96-bit GCM nonce. */
  nonce: string;
  /** base64 of the AES-256-GCM ciphertext and tag; the AAD binds it to org, project and name. */
  ciphertext: string;
  created_at: string;
  updated_at: string;
  created_by: string;
  updated_by: string;
}

/** A lease among replicas (src/app/lease.ts); 'control-loops' decides who runs the loops. */
export interface LeasesTable {
  name: string;
  /** The holding replica: `host:pid:random` (random: unique per process). */
  holder: string;
  /** The fencing token: incremented on every acquisition. */
  epoch: number;
  /** Milliseconds since 1970 by the database's clock; 0 when released. */
  expires_at: number;
  acquired_at: string;
}

/** The scheduler's fair-share memory: one row (id 1), usage per project ref as JSON. */
export interface FairShareUsageTable {
  id: number;
  /** JSON `{ "<org>.<project>": decayed GPU-seconds }`. */
  usage: string;
  /** When the usage was last decayed to (RFC 3339, milliseconds). */
  updated_at: string;
}

/** The event outbox (src/app/events.ts): one CloudEvents record per change applications see. */
export interface EventsTable {
  /** The audit entry's sequence number: the order of events is commit order. */
  seq: number;
  type: string;
  source: string;
  subject: string;
  time: string;
  /** '' for platform events (operators only). */
  org_id: string;
  /** '' for events of the org itself (org-wide roles see them). */
  project_id: string;
  /** '' for everyone who sees the org or project; 'admin' for org-wide admins and owners only. */
  audience: string;
  /** The event's data as JSON: views that carry no secret values. */
  data: string;
}

/** A webhook subscription of an org (src/app/webhooks.ts). */
export interface WebhooksTable {
  id: string;
  org_id: string;
  url: string;
  /** JSON array of event types (or `prefix.*`); [] for all. */
  types: string;
  description: string;
  /** The signing secret, sealed (see src/tenancy/secret-box.ts): master key id, nonce, ciphertext. */
  key_id: string;
  nonce: string;
  ciphertext: string;
  /** The last event seq already turned into deliveries. */
  cursor: number;
  /** Until when one replica holds the subscription for a request; '' when none. */
  lease_until: string;
  created_at: string;
  created_by: string;
}

/** One event for one subscription: delivered at least once, in event order per subscription. */
export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_seq: number;
  event_type: string;
  /** pending | delivered | failed (given up) */
  status: string;
  attempts: number;
  /** The HTTP status of the last attempt; null when none came back. */
  last_status: number | null;
  last_error: string;
  /** When the next attempt is due (pending only). */
  next_attempt_at: string;
  created_at: string;
  updated_at: string;
  /** '' until delivered. */
  delivered_at: string;
}

/** A model served for applications (src/inference/deployments.ts owns it). */
export interface DeploymentsTable {
  id: string;
  org_id: string;
  project_id: string;
  name: string;
  /** JSON array of more names applications may use. */
  aliases: string;
  runtime: Runtime;
  /** A registry model (`org.project/name`), its revision as given and the commit it named; '' for none. */
  model_repo: string;
  model_revision: string;
  model_commit: string;
  /** A GGUF on the server's disk (the embedded default); '' for none. */
  model_path: string;
  /** `external` only: the OpenAI-compatible upstream. */
  upstream_url: string;
  /** '' for any. */
  gpu_model: string;
  gpus_per_replica: number;
  min_replicas: number;
  max_replicas: number;
  /** What the autoscaler (or `fabrik scale`) wants now, within min..max. */
  desired_replicas: number;
  context_size: number;
  threads: number;
  parallel: number;
  /** In-flight requests per replica the autoscaler aims at. */
  target_inflight: number;
  /** Idle seconds before scaling to min (to zero when min is 0). */
  idle_timeout_s: number;
  /** 1: the project opted in to keeping prompts and completions. */
  store_prompts: number;
  created_at: string;
  created_by: string;
  updated_at: string;
  deleted_at: string;
}

export interface DeploymentReplicasTable {
  id: string;
  deployment_id: string;
  workload_id: string;
  ordinal: number;
  port: number;
  /** Where the replica listens, from its placement; '' until placed. */
  host: string;
  node: string;
  state: ReplicaState;
  message: string;
  /** The workload attempt last seen ready (a new attempt starts again at `starting`). */
  attempt: number;
  ready_at: string;
  created_at: string;
  updated_at: string;
}

export interface TokenUsageTable {
  /** RFC 3339 minute, e.g. 2026-12-01T12:05:00.000Z */
  minute: string;
  org_id: string;
  project_id: string;
  key_id: string;
  deployment_id: string;
  replica_id: string;
  requests: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  ttft_ms_sum: number;
  duration_ms_sum: number;
}

export type LimitScope = 'project' | 'key';

export interface InferenceLimitsTable {
  scope: LimitScope;
  scope_id: string;
  org_id: string;
  /** 0 = no limit. */
  rpm: number;
  tpm: number;
  monthly_tokens: number;
  updated_at: string;
}

export interface GatewayLoadTable {
  gateway: string;
  deployment_id: string;
  inflight: number;
  queued: number;
  last_request_at: number;
  updated_at: number;
}

/** A complete subtree's hash in the audit log's Merkle tree (src/audit/log/ owns these tables). */
export interface AuditLogNodesTable {
  level: number;
  idx: number;
  /** 64 hex digits. */
  hash: string;
}

export interface AuditLogStateTable {
  id: number;
  /** Entries in the tree (leaves); the next to integrate is seq size + 1. */
  size: number;
  /** JSON array of hex hashes of the perfect subtrees making up the tree, largest first. */
  frontier: string;
  updated_at: string;
}

export interface AuditCheckpointsTable {
  size: number;
  /** 64 hex digits. */
  root: string;
  /** The signed note, as served. */
  note: string;
  created_at: string;
}

export interface AuditCosignaturesTable {
  size: number;
  /** The witness's name (from its key). */
  witness: string;
  /** The cosignature line (`— <name> <base64>`). */
  line: string;
  created_at: string;
}

/** Hourly usage rollups (src/metering/ owns them; '' where a dimension does not apply). */
export interface UsageHourlyTable {
  /** RFC 3339 hour start, e.g. 2026-12-01T13:00:00.000Z */
  hour: string;
  org_id: string;
  project_id: string;
  /** A UsageMetric (src/metering/types.ts). */
  metric: string;
  pool: string;
  gpu_model: string;
  /** The workload's priority class, for GPU metrics. */
  priority: string;
  deployment_id: string;
  /** The deployment's model ref, for token metrics. */
  model: string;
  quantity: number;
  /** 1 where the figure is an estimate (energy without a power measurement). */
  estimated: number;
  updated_at: string;
}

/** GPU power measured during an attempt: the sum over its GPUs at one instant. */
export interface AttemptPowerSamplesTable {
  attempt_id: string;
  at: string;
  watts: number;
  gpus: number;
}

/** A project's stored registry bytes at one instant. */
export interface StoredBytesSamplesTable {
  project_id: string;
  at: string;
  org_id: string;
  bytes: number;
}

/** A console sign-in (src/tenancy/sessions.ts owns it): the cookie's token is stored as its SHA-256. */
export interface ConsoleSessionsTable {
  id: string;
  token_hash: string;
  principal_id: string;
  /** 'api-key' | 'oidc' */
  method: string;
  /** The API key a key session acts with ('' for OIDC): its revocation ends the session. */
  key_id: string;
  key_prefix: string;
  created_at: string;
  expires_at: string;
  /** '' while active. */
  ended_at: string;
  ended_reason: string;
}

/** Who an OpenID Connect identity (issuer + subject) is here. */
export interface OidcIdentitiesTable {
  issuer: string;
  subject: string;
  principal_id: string;
  created_at: string;
  last_sign_in_at: string;
}

/** A sign-in on its way through the identity provider: state (hashed), nonce, PKCE verifier. */
export interface OidcLoginsTable {
  state_hash: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  expires_at: string;
}

/** One version of a price (src/metering/prices.ts owns it); '' where a selector does not apply. */
export interface PricesTable {
  id: string;
  /** A PriceItem: gpu-hour, tokens-in, tokens-out, gb-month. */
  item: string;
  pool: string;
  priority: string;
  deployment_id: string;
  model: string;
  /** The org of the deployment a price names ('' for platform-wide prices): who may read it. */
  org_id: string;
  /** Micro-EUR (10^-6 EUR) per unit: a GPU-hour, 1M tokens, a GB-month. */
  unit_price_micros: number;
  currency: string;
  /** Whole hours, RFC 3339; valid_to '' = open-ended. */
  valid_from: string;
  valid_to: string;
  created_at: string;
  created_by: string;
}

/** A project's monthly budget (src/metering/budgets.ts owns it). */
export interface BudgetsTable {
  project_id: string;
  org_id: string;
  /** 'EUR' | 'gpu-hours' */
  unit: string;
  amount: number;
  /** JSON array of percentages, ascending. */
  thresholds: string;
  /** 'notify' | 'block' | 'preemptible': what applies at 100 %. */
  action: string;
  created_at: string;
  updated_at: string;
}

/** A budget alert sent: at most one per project, month (YYYY-MM) and threshold. */
export interface BudgetAlertsTable {
  project_id: string;
  month: string;
  threshold: number;
  spent: number;
  created_at: string;
}
