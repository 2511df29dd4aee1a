// Table shapes, as Kysely sees them. One schema for SQLite and PostgreSQL: text timestamps
// (RFC 3339), integers, JSON as text. '' stands for "none" in key columns so that unique
// indexes behave the same in both dialects.

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
  /** pending | running | succeeded | failed | cancelled | preempted */
  status: string;
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
  /** JSON ExecHandle while the executor holds processes or jobs for it. */
  exec_handle: string | null;
  not_before: string | null;
  exit_code: number | null;
  /** When it (re)entered the queue; the scheduler's order key. */
  queued_at: string | null;
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

export interface Database {
  workloads: WorkloadsTable;
  workload_events: WorkloadEventsTable;
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
