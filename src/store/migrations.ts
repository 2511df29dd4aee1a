// The one migration history, shared by SQLite and PostgreSQL. Append new migrations; never edit
// an applied one. Kysely records what ran in its own tables.
import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_foundation': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('orgs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('residency', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('projects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('projects_org_name', ['org_id', 'name'])
        .execute();

      await db.schema
        .createTable('principals')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('platform_role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('principals_kind_org_name', ['kind', 'org_id', 'name'])
        .execute();

      await db.schema
        .createTable('memberships')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.id'))
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('memberships_scope', ['principal_id', 'org_id', 'project_id'])
        .execute();
      await db.schema.createIndex('memberships_org').on('memberships').columns(['org_id']).execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('prefix', 'text', (c) => c.notNull().unique())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.id'))
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('api_keys_org').on('api_keys').columns(['org_id']).execute();

      await db.schema
        .createTable('pools')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('gpu_model', 'text', (c) => c.notNull())
        .addColumn('gpu_memory_gib', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('nodes')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('pool', 'text', (c) => c.notNull().references('pools.name'))
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('pod', 'text', (c) => c.notNull())
        .addColumn('rack', 'text', (c) => c.notNull())
        .addColumn('ib_leaf', 'text', (c) => c.notNull())
        .addColumn('ib_spine', 'text', (c) => c.notNull())
        .addColumn('gpu_model', 'text', (c) => c.notNull())
        .addColumn('gpu_count', 'integer', (c) => c.notNull())
        .addColumn('gpu_memory_gib', 'integer', (c) => c.notNull())
        .addColumn('cpu', 'integer', (c) => c.notNull())
        .addColumn('ram_gib', 'integer', (c) => c.notNull())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('dev_gpus', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('nodes_pool').on('nodes').columns(['pool', 'name']).execute();

      await db.schema
        .createTable('quotas')
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
        .addColumn('pool', 'text', (c) => c.notNull().references('pools.name'))
        .addColumn('guaranteed', 'integer', (c) => c.notNull())
        .addColumn('gpu_limit', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('quotas_pk', ['project_id', 'pool'])
        .execute();

      await db.schema
        .createTable('audit_entries')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('actor_key_id', 'text', (c) => c.notNull())
        .addColumn('actor_principal', 'text', (c) => c.notNull())
        .addColumn('before_digest', 'text')
        .addColumn('after_digest', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('canonical', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_entries_org').on('audit_entries').columns(['org_id', 'seq']).execute();

      // A single row whose update serialises writers, so sequence numbers have no gaps.
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('audit_head').values({ id: 1, seq: 0 }).execute();

      await db.schema
        .createTable('idempotency_keys')
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('idem_key', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('body_hash', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('response', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['key_id', 'idem_key'])
        .execute();

      await db.schema
        .createTable('fabrik_meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

migrations['0002_workloads'] = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('workloads')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('pool', 'text', (c) => c.notNull())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('nodes', 'integer', (c) => c.notNull())
      .addColumn('gpus_per_node', 'integer', (c) => c.notNull())
      .addColumn('max_runtime_s', 'integer', (c) => c.notNull())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('estimated_start', 'text')
      .addColumn('placement', 'text')
      .addColumn('borrowed', 'integer', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('preemptions', 'integer', (c) => c.notNull())
      .addColumn('submitted_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('workloads_status').on('workloads').columns(['status', 'submitted_at']).execute();
    await db.schema.createIndex('workloads_project').on('workloads').columns(['project_id', 'name']).execute();

    await db.schema
      .createTable('workload_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workload_id', 'text', (c) => c.notNull().references('workloads.id'))
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('workload_events_workload')
      .on('workload_events')
      .columns(['workload_id', 'time'])
      .execute();
  },
};

migrations['0003_execution'] = {
  async up(db: Kysely<any>) {
    // Which executor runs the workload, and how to find it again after a restart.
    await db.schema.alterTable('workloads').addColumn('executor', 'text').execute();
    await db.schema.alterTable('workloads').addColumn('exec_handle', 'text').execute();
    // Retries wait: a failed attempt is not scheduled again before this time.
    await db.schema.alterTable('workloads').addColumn('not_before', 'text').execute();
    await db.schema.alterTable('workloads').addColumn('exit_code', 'integer').execute();
  },
};

migrations['0004_queued_at'] = {
  async up(db: Kysely<any>) {
    // When the workload (re)entered the queue: its submit time, or when it was requeued after a
    // preemption, loss or failed attempt. The scheduler orders by it, as Slurm resets a requeued
    // job's eligible time, so requeued work does not jump ahead of its own project's waiting work.
    await db.schema.alterTable('workloads').addColumn('queued_at', 'text').execute();
    await db.updateTable('workloads').set({ queued_at: sql`submitted_at` }).execute();
  },
};

migrations['0005_isolation'] = {
  async up(db: Kysely<any>) {
    // Every project runs its tasks under its own Unix identity (uid = gid), allocated once from a
    // configured range and never reused while a deleted project's files still wait for removal.
    await db.schema
      .alterTable('projects')
      .addColumn('uid', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    const rows = await db.selectFrom('projects').select('id').orderBy('created_at').orderBy('id').execute();
    let next = 200000;
    for (const r of rows) await db.updateTable('projects').set({ uid: next++ }).where('id', '=', r.id).execute();
    await db.schema.createIndex('projects_uid').on('projects').column('uid').unique().execute();
    // Deleted projects whose directories (workloads, logs, outputs) are removed after a retention period.
    await db.schema
      .createTable('project_tombstones')
      .addColumn('project_id', 'text', (c) => c.primaryKey())
      .addColumn('uid', 'integer', (c) => c.notNull())
      .addColumn('deleted_at', 'text', (c) => c.notNull())
      .addColumn('purge_after', 'text', (c) => c.notNull())
      .addColumn('purged_at', 'text', (c) => c.notNull().defaultTo(''))
      .execute();
  },
};

migrations['0004_secrets'] = {
  async up(db: Kysely<any>) {
    // Tenant secrets, sealed (see src/tenancy/secret-box.ts): never a plaintext value in a column.
    // project_id is '' for an org-wide secret; a project's secret of the same name shadows it.
    // No foreign keys: deleting an org or project must not fail on its secrets (they are removed
    // with it; a leftover row cannot open anywhere, its AAD names ids that are never reused).
    await db.schema
      .createTable('secrets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('ciphertext', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull())
      .addUniqueConstraint('secrets_scope_name', ['org_id', 'project_id', 'name'])
      .execute();
  },
};

migrations['0006_attempts'] = {
  async up(db: Kysely<any>) {
    // One row per launch of a workload: what billing and `describe` read, and how a restarted
    // control plane knows what it launched (the intent is committed before the engine is touched).
    await db.schema
      .createTable('workload_attempts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workload_id', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('number', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('placement', 'text', (c) => c.notNull())
      .addColumn('pool', 'text', (c) => c.notNull())
      .addColumn('gpu_model', 'text', (c) => c.notNull())
      .addColumn('gpus', 'integer', (c) => c.notNull())
      .addColumn('executor', 'text', (c) => c.notNull())
      .addColumn('handle', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('launched_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('stopping_since', 'text', (c) => c.notNull())
      .addColumn('killed_at', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'text', (c) => c.notNull())
      .addColumn('exit_code', 'integer')
      .addColumn('end_reason', 'text', (c) => c.notNull())
      .addColumn('stop_reason', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addUniqueConstraint('workload_attempts_number', ['workload_id', 'number'])
      .execute();
    await db.schema.createIndex('workload_attempts_state').on('workload_attempts').columns(['state']).execute();
    // Running work of an older version: its handle becomes the current attempt's.
    const running = await db.selectFrom('workloads').selectAll().where('status', '=', 'running').execute();
    for (const w of running) {
      const now = new Date().toISOString();
      const placement = w.placement ?? '{"pod":"","leaves":[],"nodes":[]}';
      await db
        .insertInto('workload_attempts')
        .values({
          id: `${w.id}.${w.attempts}`,
          workload_id: w.id,
          org_id: w.org_id,
          project_id: w.project_id,
          number: w.attempts,
          state: w.exec_handle ? 'running' : 'launching',
          placement,
          pool: w.pool,
          gpu_model: '',
          gpus: w.nodes * w.gpus_per_node,
          executor: w.executor ?? '',
          handle: w.exec_handle ?? '',
          created_at: w.started_at ?? now,
          launched_at: w.exec_handle ? (w.started_at ?? now) : '',
          started_at: w.exec_handle ? (w.started_at ?? now) : '',
          stopping_since: '',
          killed_at: '',
          ended_at: '',
          exit_code: null,
          end_reason: '',
          stop_reason: '',
          message: '',
        })
        .execute();
    }
  },
};

migrations['0007_leases'] = {
  async up(db: Kysely<any>) {
    // Leadership of the control loops among replicas (src/app/lease.ts): one row per lease, its
    // holder, the fencing epoch (incremented on every takeover) and the expiry in milliseconds by
    // the database's clock, so replicas' clocks do not matter.
    await db.schema
      .createTable('leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('epoch', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('acquired_at', 'text', (c) => c.notNull())
      .execute();
    // The scheduler's fair-share memory (decayed GPU-seconds per project), one JSON row, so that a
    // restarted or new leader continues from it.
    await db.schema
      .createTable('fair_share_usage')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('usage', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
};

migrations['0008_events'] = {
  async up(db: Kysely<any>) {
    // The event outbox (src/app/events.ts): one CloudEvents record per audited change that
    // applications care about, written in the change's transaction. `seq` is the audit entry's, so
    // the order is commit order. org_id/project_id ('' for none) and audience scope who sees it.
    await db.schema
      .createTable('events')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('audience', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('events_org').on('events').columns(['org_id', 'seq']).execute();
    await db.schema.createIndex('events_project').on('events').columns(['project_id', 'seq']).execute();

    // Webhook subscriptions of an org. The signing secret is sealed like tenant secrets; `cursor`
    // is the last event seq already turned into deliveries; the lease keeps one replica (and one
    // request) at a time per subscription.
    await db.schema
      .createTable('webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('types', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('ciphertext', 'text', (c) => c.notNull())
      .addColumn('cursor', 'bigint', (c) => c.notNull())
      .addColumn('lease_until', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('webhooks_org').on('webhooks').columns(['org_id']).execute();
    await db.schema
      .createTable('webhook_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('webhook_id', 'text', (c) => c.notNull())
      .addColumn('event_seq', 'bigint', (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('last_status', 'integer')
      .addColumn('last_error', 'text', (c) => c.notNull())
      .addColumn('next_attempt_at', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('delivered_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('webhook_deliveries_event', ['webhook_id', 'event_seq'])
      .execute();
    await db.schema
      .createIndex('webhook_deliveries_status')
      .on('webhook_deliveries')
      .columns(['webhook_id', 'status', 'event_seq'])
      .execute();
  },
};

migrations['0009_registry'] = {
  async up(db: Kysely<any>) {
    // Keys of an org for the registry (src/registry/keys.ts): data keys that encrypt blobs (one
    // current, older ones kept to read old blobs) and the key that makes blob ids. Only wrapped
    // by the KMS (the master key) are they stored.
    await db.schema
      .createTable('registry_keys')
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('wrapped', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('retired_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('registry_keys_pk', ['org_id', 'key_id'])
      .execute();
    // Models and datasets of a project. deleted_at '' while live; purge_after ends the retention.
    await db.schema
      .createTable('repos')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('private', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text', (c) => c.notNull())
      .addColumn('purge_after', 'text', (c) => c.notNull())
      .addUniqueConstraint('repos_name', ['project_id', 'kind', 'name', 'deleted_at'])
      .execute();
    // Immutable versions. id is the 40-hex commit oid the Hub protocol shows; manifest is the
    // canonical JSON of the files; card the structured model card; envelope the DSSE signature.
    await db.schema
      .createTable('commits')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('repo_id', 'text', (c) => c.notNull())
      .addColumn('parent_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('manifest', 'text', (c) => c.notNull())
      .addColumn('total_bytes', 'bigint', (c) => c.notNull())
      .addColumn('file_count', 'integer', (c) => c.notNull())
      .addColumn('card', 'text', (c) => c.notNull())
      .addColumn('formats', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('producer_workload_id', 'text', (c) => c.notNull())
      .addColumn('producer_attempt', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('commits_repo').on('commits').columns(['repo_id', 'seq']).execute();
    // Movable names of commits: branches (main) and tags (v3, prod).
    await db.schema
      .createTable('repo_refs')
      .addColumn('repo_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('commit_id', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('repo_refs_pk', ['repo_id', 'name'])
      .execute();
    // Content of an org, once per blob id (a keyed digest: never comparable across orgs).
    // storage_key names the object in the blob store; key_id/salt open it (src/registry/crypto.ts).
    await db.schema
      .createTable('blobs')
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('blob_id', 'text', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('storage_key', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('salt', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('blobs_pk', ['org_id', 'blob_id'])
      .execute();
    // Which blobs a project's versions hold: what its storage quota counts.
    await db.schema
      .createTable('project_blobs')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('blob_id', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('project_blobs_pk', ['project_id', 'blob_id'])
      .execute();
    // Uploads in progress (LFS basic or multipart), resumable part by part until expires_at.
    await db.schema
      .createTable('uploads')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('chunk_size', 'bigint', (c) => c.notNull())
      .addColumn('storage_key', 'text', (c) => c.notNull())
      .addColumn('store_handle', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('salt', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('upload_parts')
      .addColumn('upload_id', 'text', (c) => c.notNull())
      .addColumn('part', 'integer', (c) => c.notNull())
      .addColumn('etag', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('upload_parts_pk', ['upload_id', 'part'])
      .execute();
    await db.schema.createIndex('uploads_digest').on('uploads').columns(['org_id', 'sha256', 'status']).execute();
    // Storage quota of a project in bytes (no row: the server's default).
    await db.schema
      .createTable('storage_quotas')
      .addColumn('project_id', 'text', (c) => c.primaryKey())
      .addColumn('limit_bytes', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    // Lineage: dataset version -> attempt -> model version -> deployment, as edges.
    await db.schema
      .createTable('lineage_edges')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('from_kind', 'text', (c) => c.notNull())
      .addColumn('from_id', 'text', (c) => c.notNull())
      .addColumn('to_kind', 'text', (c) => c.notNull())
      .addColumn('to_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('lineage_edge', ['from_kind', 'from_id', 'to_kind', 'to_id'])
      .execute();
    await db.schema.createIndex('lineage_to').on('lineage_edges').columns(['to_kind', 'to_id']).execute();
  },
};

migrations['0010_inference'] = {
  async up(db: Kysely<any>) {
    // Deployments of a project (src/inference/deployments.ts). deleted_at '' while live; name is
    // the `model` applications ask for, aliases a JSON array of more names.
    await db.schema
      .createTable('deployments')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('aliases', 'text', (c) => c.notNull())
      .addColumn('runtime', 'text', (c) => c.notNull())
      .addColumn('model_repo', 'text', (c) => c.notNull())
      .addColumn('model_revision', 'text', (c) => c.notNull())
      .addColumn('model_commit', 'text', (c) => c.notNull())
      .addColumn('model_path', 'text', (c) => c.notNull())
      .addColumn('upstream_url', 'text', (c) => c.notNull())
      .addColumn('gpu_model', 'text', (c) => c.notNull())
      .addColumn('gpus_per_replica', 'integer', (c) => c.notNull())
      .addColumn('min_replicas', 'integer', (c) => c.notNull())
      .addColumn('max_replicas', 'integer', (c) => c.notNull())
      .addColumn('desired_replicas', 'integer', (c) => c.notNull())
      .addColumn('context_size', 'integer', (c) => c.notNull())
      .addColumn('threads', 'integer', (c) => c.notNull())
      .addColumn('parallel', 'integer', (c) => c.notNull())
      .addColumn('target_inflight', 'integer', (c) => c.notNull())
      .addColumn('idle_timeout_s', 'integer', (c) => c.notNull())
      .addColumn('store_prompts', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('deployments_name', ['project_id', 'name', 'deleted_at'])
      .execute();
    // Replicas: one serving workload each. port is chosen by the controller, unique among live replicas.
    await db.schema
      .createTable('deployment_replicas')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('deployment_id', 'text', (c) => c.notNull())
      .addColumn('workload_id', 'text', (c) => c.notNull())
      .addColumn('ordinal', 'integer', (c) => c.notNull())
      .addColumn('port', 'integer', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('node', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('ready_at', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('deployment_replicas_port', ['port'])
      .execute();
    await db.schema
      .createIndex('deployment_replicas_dep')
      .on('deployment_replicas')
      .columns(['deployment_id'])
      .execute();
    // Token usage per minute and (key, deployment, replica): written in batches by the gateways.
    await db.schema
      .createTable('token_usage')
      .addColumn('minute', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('deployment_id', 'text', (c) => c.notNull())
      .addColumn('replica_id', 'text', (c) => c.notNull())
      .addColumn('requests', 'bigint', (c) => c.notNull())
      .addColumn('errors', 'bigint', (c) => c.notNull())
      .addColumn('tokens_in', 'bigint', (c) => c.notNull())
      .addColumn('tokens_out', 'bigint', (c) => c.notNull())
      .addColumn('ttft_ms_sum', 'bigint', (c) => c.notNull())
      .addColumn('duration_ms_sum', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('token_usage_pk', ['minute', 'project_id', 'key_id', 'deployment_id', 'replica_id'])
      .execute();
    await db.schema.createIndex('token_usage_project').on('token_usage').columns(['project_id', 'minute']).execute();
    // Rate limits and budgets: scope 'project' (scope_id a project id) or 'key' (an API key id); 0 = none.
    await db.schema
      .createTable('inference_limits')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('scope_id', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('rpm', 'integer', (c) => c.notNull())
      .addColumn('tpm', 'integer', (c) => c.notNull())
      .addColumn('monthly_tokens', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('inference_limits_pk', ['scope', 'scope_id'])
      .execute();
    // What each gateway process sees of a deployment's load, for the autoscaler on the leader.
    await db.schema
      .createTable('gateway_load')
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('deployment_id', 'text', (c) => c.notNull())
      .addColumn('inflight', 'integer', (c) => c.notNull())
      .addColumn('queued', 'integer', (c) => c.notNull())
      .addColumn('last_request_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('gateway_load_pk', ['gateway', 'deployment_id'])
      .execute();
  },
};

migrations['0011_audit_log'] = {
  async up(db: Kysely<any>) {
    // The audit log's Merkle tree (src/audit/log/): every complete (perfect) subtree's hash, by
    // level (0 = leaves: H(0x00 ‖ canonical entry)) and index; leaf n is the entry of seq n + 1.
    await db.schema
      .createTable('audit_log_nodes')
      .addColumn('level', 'integer', (c) => c.notNull())
      .addColumn('idx', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_log_nodes_pk', ['level', 'idx'])
      .execute();
    // The sequencer's state: how many entries are in the tree, and the frontier (the hashes of the
    // perfect subtrees that make it up, largest first) from which the next append continues.
    await db.schema
      .createTable('audit_log_state')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('frontier', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.insertInto('audit_log_state').values({ id: 1, size: 0, frontier: '[]', updated_at: '' }).execute();
    // Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per tree size issued.
    await db.schema
      .createTable('audit_checkpoints')
      .addColumn('size', 'bigint', (c) => c.primaryKey())
      .addColumn('root', 'text', (c) => c.notNull())
      .addColumn('note', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    // Witnesses' cosignatures (C2SP tlog-cosignature lines) of those checkpoints.
    await db.schema
      .createTable('audit_cosignatures')
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('witness', 'text', (c) => c.notNull())
      .addColumn('line', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_cosignatures_pk', ['size', 'witness'])
      .execute();
  },
};

migrations['0012_sovereignty'] = {
  async up(db: Kysely<any>) {
    // Versions of the sovereignty policy set (src/policy/): Cedar text, its SHA-256, who loaded
    // it. The newest version is in force; older ones stay so every recorded hash can be read back.
    await db.schema
      .createTable('policy_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('policies', 'text', (c) => c.notNull())
      .addColumn('policy_ids', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    // Break-glass: an operator's time-boxed access to one org's data, with a reason; the org's
    // owner sees and may revoke it. revoked_at '' while not revoked.
    await db.schema
      .createTable('break_glass_grants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('principal', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('revoked_by', 'text', (c) => c.notNull().defaultTo(''))
      .execute();
    await db.schema
      .createIndex('break_glass_grants_org')
      .on('break_glass_grants')
      .columns(['org_id', 'principal_id', 'expires_at'])
      .execute();
    // Blob stores carry a region: which store holds each object ('' = the default store).
    await db.schema
      .alterTable('blobs')
      .addColumn('store', 'text', (c) => c.notNull().defaultTo(''))
      .execute();
    await db.schema
      .alterTable('uploads')
      .addColumn('store', 'text', (c) => c.notNull().defaultTo(''))
      .execute();
  },
};

migrations['0013_metering'] = {
  async up(db: Kysely<any>) {
    // Hourly usage rollups (src/metering/): derived from attempts, token usage and stored-bytes
    // samples, rebuilt by `recompute()`; long format, '' where a dimension does not apply.
    await db.schema
      .createTable('usage_hourly')
      .addColumn('hour', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('metric', 'text', (c) => c.notNull())
      .addColumn('pool', 'text', (c) => c.notNull())
      .addColumn('gpu_model', 'text', (c) => c.notNull())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('deployment_id', 'text', (c) => c.notNull())
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('quantity', 'double precision', (c) => c.notNull())
      .addColumn('estimated', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('usage_hourly_pk', [
        'hour',
        'project_id',
        'metric',
        'pool',
        'gpu_model',
        'priority',
        'deployment_id',
        'model',
      ])
      .execute();
    await db.schema.createIndex('usage_hourly_org').on('usage_hourly').columns(['org_id', 'hour']).execute();
    await db.schema.createIndex('usage_hourly_project').on('usage_hourly').columns(['project_id', 'hour']).execute();
    // GPU power measured during an attempt (nvidia-smi): the sum over its GPUs at one instant.
    await db.schema
      .createTable('attempt_power_samples')
      .addColumn('attempt_id', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('watts', 'double precision', (c) => c.notNull())
      .addColumn('gpus', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('attempt_power_samples_pk', ['attempt_id', 'at'])
      .execute();
    // A project's stored registry bytes at one instant (the rollup loop samples project_blobs).
    await db.schema
      .createTable('stored_bytes_samples')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('bytes', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('stored_bytes_samples_pk', ['project_id', 'at'])
      .execute();
    await db.schema.createIndex('stored_bytes_samples_at').on('stored_bytes_samples').columns(['at']).execute();
    // The rollup reads the attempts still running (ended_at '') or ended since the hour it re-derives.
    await db.schema.createIndex('workload_attempts_ended').on('workload_attempts').columns(['ended_at']).execute();
  },
};

migrations['0014_billing'] = {
  async up(db: Kysely<any>) {
    // The price catalogue (src/metering/prices.ts): versions of one item never overlap in time;
    // prices are integer micro-EUR per unit, validity [valid_from, valid_to) on whole hours ('' = open).
    await db.schema
      .createTable('prices')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('item', 'text', (c) => c.notNull())
      .addColumn('pool', 'text', (c) => c.notNull())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('deployment_id', 'text', (c) => c.notNull())
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('unit_price_micros', 'bigint', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('valid_from', 'text', (c) => c.notNull())
      .addColumn('valid_to', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('prices_item').on('prices').columns(['item', 'valid_from']).execute();
    // Monthly budgets per project (src/metering/budgets.ts) and the alerts sent (once per threshold and month).
    await db.schema
      .createTable('budgets')
      .addColumn('project_id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('unit', 'text', (c) => c.notNull())
      .addColumn('amount', 'double precision', (c) => c.notNull())
      .addColumn('thresholds', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('budget_alerts')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('month', 'text', (c) => c.notNull())
      .addColumn('threshold', 'integer', (c) => c.notNull())
      .addColumn('spent', 'double precision', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('budget_alerts_pk', ['project_id', 'month', 'threshold'])
      .execute();
  },
};

migrations['0015_console'] = {
  async up(db: Kysely<any>) {
    // Console sign-ins (src/tenancy/sessions.ts): the cookie's token only as its SHA-256.
    await db.schema
      .createTable('console_sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('method', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('key_prefix', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'text', (c) => c.notNull())
      .addColumn('ended_reason', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('console_sessions_principal')
      .on('console_sessions')
      .columns(['principal_id'])
      .execute();
    // OpenID Connect identities (issuer + subject → user) and sign-ins in flight (src/tenancy/oidc.ts).
    await db.schema
      .createTable('oidc_identities')
      .addColumn('issuer', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('principal_id', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_sign_in_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('oidc_identities_pk', ['issuer', 'subject'])
      .execute();
    await db.schema
      .createTable('oidc_logins')
      .addColumn('state_hash', 'text', (c) => c.primaryKey())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('code_verifier', 'text', (c) => c.notNull())
      .addColumn('return_to', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};

export const LATEST_MIGRATION = Object.keys(migrations).sort().at(-1)!;
