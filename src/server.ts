// Starting the control plane: open the database (migrating it), make sure an operator exists,
// register this machine as a node when asked (or read the fleet from Slurm), then serve HTTP and
// run the two loops: the scheduler (places) and the reconciler (runs on the executor).
import { chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './api/app.js';
import { canonicalJson } from './audit/entry.js';
import { SYSTEM_ACTOR, mutate } from './audit/journal.js';
import { applyInTrx, nodeView } from './fleet/inventory.js';
import { detectLocalNode } from './fleet/local-node.js';
import { siteRegion } from './policy/sovereignty.js';
import { policyVersions } from './policy/versions.js';
import { type Store, openStore } from './store/db.js';
import { bootstrapOperator } from './tenancy/bootstrap.js';
import { attachSecretBox, createSecretBox, loadMasterKey } from './app/secret-box.js';
import { resolveTaskEnv } from './tenancy/secrets.js';
import { SchedulerLoop } from './workload/scheduler-loop.js';
import { LocalExecutor } from './exec/local.js';
import { EXECUTOR_ACTOR, Reconciler } from './workload/reconciler.js';
import { WorkloadArtifacts } from './workload/artifacts/index.js';
import { SlurmExecutor } from './exec/slurm.js';
import { type IdentityKind, identityDirectory } from './exec/identities.js';
import { importSlurmFleet } from './exec/slurm-fleet.js';
import { syncSlurmFleet } from './exec/slurm-sync.js';
import { SerialLoop } from './domain/serial-loop.js';
import { type Isolation, type IsolationLevel, detectIsolation } from './exec/sandbox.js';
import { ensureDir } from './exec/workspace.js';
import { ProjectPurger } from './tenancy/purge.js';
import { Lease, lockSqliteDatabase } from './app/lease.js';
import { WebhookDeliverer } from './app/webhook-delivery.js';
import { RegistryHousekeeping, openRegistry } from './registry/setup.js';
import { Authenticator } from './tenancy/authn.js';
import { type OidcServerSettings, oidcFromSettings } from './tenancy/oidc.js';
import { deploymentController, gatewayName, openGatewayStack } from './inference/setup.js';
import { locateReplicaRuntime } from './inference/replica-spec.js';
import { logKeys } from './audit/log/keys.js';
import { Sequencer } from './audit/log/sequencer.js';
import { configureSiteEnergy, energySiteFromEnv } from './metering/energy.js';
import { UsageRollupLoop } from './metering/rollup-loop.js';
import { checkBudgets } from './metering/budgets.js';
import { localPowerSampler } from './metering/power-sample.js';
import { hostLabel } from './fleet/local-node.js';
import { SiteMetrics } from './metering/site-metrics.js';
import { loadSubprocessors } from './compliance/subprocessors.js';

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  /** postgres://… or a SQLite file; default: <dataDir>/fabrik.db */
  database?: string;
  /** Register this machine as a node (the embedded default). */
  localNode: boolean;
  /** Development GPUs to register when the machine has no NVIDIA GPU. */
  devGpus: number;
  bootstrapToken?: string;
  /** Also write JSON logs to stdout (they always go to <dataDir>/logs/fabrik.log). */
  logStdout?: boolean;
  logLevel?: string;
  rateLimitPerMinute?: number;
  /** Scheduling cycle on a timer (cycles also run on every relevant change). */
  schedulerIntervalMs?: number;
  /** Root of workloads' working directories (default: the current directory). */
  workdirRoot?: string;
  /** Reconciliation with the executor on a timer (also after every placement, cancel and finish). */
  reconcileIntervalMs?: number;
  /** `local` (the embedded default) or `slurm` (the fleet then comes from Slurm and is kept in sync). */
  executor?: 'local' | 'slurm';
  /** slurm.conf for the Slurm clients (default: $SLURM_CONF). */
  slurmConf?: string;
  /** Slurm: who provides the projects' passwd/group entries (`local`: useradd here, the default; `site`: LDAP/SSSD). */
  identities?: IdentityKind;
  /** The master key sealing tenant secrets, unless FABRIK_MASTER_KEY is set (default: <dataDir>/master.key). */
  masterKeyFile?: string;
  /** What keeps local tasks apart (default `auto`: the best this machine allows; a named level is required). */
  isolation?: IsolationLevel | 'auto';
  /**
   * The site's region: the local node's and the default blob store's, and Slurm nodes' without a
   * `region=` feature (default $FABRIK_REGION or eu-de-local). Sovereignty policies read the
   * country from it (src/policy/sovereignty.ts).
   */
  region?: string;
  /** Where the registry keeps blobs: `fs` (default, under <dataDir>/registry) or `s3://bucket[/prefix]`. */
  blobStore?: string;
  /**
   * Further blob stores, in order, each `<name>=<fs[:DIR]|s3://bucket[/prefix]>@<region>` (a relative
   * DIR lies under dataDir; plain `fs` is <dataDir>/registry-<name>). An org's uploads go to the
   * first store, the default one first, that its sovereignty policy allows.
   */
  blobStores?: readonly string[];
  /** Storage quota of a project without its own, in bytes (default: none). */
  storageQuotaBytes?: number;
  /** redis://… : the gateway's rate limits and budgets shared exactly with other gateway processes. */
  redisUrl?: string;
  /** Ports for serving replicas, [first, last] (default 20000-29999). */
  replicaPorts?: readonly [number, number];
  /** The audit log's origin (checkpoints' first line, its key's name); default $FABRIK_AUDIT_ORIGIN or localhost/fabrik-audit. */
  auditOrigin?: string;
  /** Verifier keys of the witnesses whose cosignatures the log keeps (default: $FABRIK_WITNESS_KEYS, comma-separated). */
  witnessKeys?: readonly string[];
  /** Console sign-in through an OpenID Connect provider (src/tenancy/oidc.ts). */
  oidc?: OidcServerSettings;
  /** The URL browsers reach this server at (behind a TLS proxy: https://…): Secure cookies, OIDC redirect URI. */
  publicUrl?: string;
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly url: string;
  readonly bootstrapToken?: string;
  readonly scheduler: SchedulerLoop;
  readonly reconciler: Reconciler;
  readonly isolation: Isolation;
  /** PostgreSQL: the lease that decides whether this replica runs the control loops. */
  readonly lease?: Lease;
  /** Hourly usage rollups on the leader (src/metering/): `onRollup(listener)` runs after each. */
  readonly usageRollup: UsageRollupLoop;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const dataDir = resolve(opts.dataDir);
  // Nothing the server writes is for other users: the database, its WAL, logs and keys are 0600.
  process.umask(0o077);
  const isolation = opts.executor === 'slurm' ? SLURM_ISOLATION : detectIsolation({ want: opts.isolation });
  // Jobs that run as a project uid without a mount namespace (Slurm, or level `uid`) must pass
  // through the data directory to their own: then it is traverse-only (0711), never listable.
  ensureDir(dataDir, opts.executor === 'slurm' || isolation.level === 'uid' ? 0o711 : 0o700);
  ensureDir(join(dataDir, 'logs'), 0o700);
  ensureDir(join(dataDir, 'registry'), 0o700);
  // Before the database: a missing or unsafe master key refuses the start, with the reason.
  const master = loadMasterKey({
    envValue: process.env.FABRIK_MASTER_KEY,
    file: opts.masterKeyFile ?? join(dataDir, 'master.key'),
  });
  const secretBox = createSecretBox(master.key);
  const database = opts.database ?? join(dataDir, 'fabrik.db');
  // SQLite serves one replica: a second server on the same file refuses to start (PostgreSQL: several).
  const dbLock = lockSqliteDatabase(database);
  const store = await openStore(database);
  attachSecretBox(store.db, secretBox);
  const region = opts.region ?? siteRegion();
  const registry = openRegistry({
    dataDir,
    region,
    masterKey: master.key,
    db: store.db,
    blobStore: opts.blobStore,
    blobStores: opts.blobStores,
    limits: opts.storageQuotaBytes ? { defaultQuotaBytes: opts.storageQuotaBytes } : undefined,
  });
  tightenFiles(dataDir);
  // Energy and CO2 configuration (FABRIK_PUE, FABRIK_GRID_INTENSITY, …): a bad value refuses the start.
  const energy = energySiteFromEnv();
  configureSiteEnergy(energy);
  const boot = await bootstrapOperator(store, opts.bootstrapToken);
  // The sovereignty policies in force (version 1, the defaults, on a fresh database), read now so a
  // broken set is reported at start; without one everything they guard stays closed.
  await policyVersions(store.db)
    .current()
    .catch((err: Error) =>
      process.emitWarning(`sovereignty policies: ${err.message}; placement, storage and operator access stay closed`),
    );
  if (opts.localNode) await registerLocalNode(store, opts.devGpus, region);

  const logFile = join(dataDir, 'logs', 'fabrik.log');
  const level = opts.logLevel ?? 'info';
  const workdirRoot = resolve(opts.workdirRoot ?? '.');
  const slurm = opts.executor === 'slurm' ? await connectSlurm(store, join(dataDir, 'workloads'), opts) : undefined;
  const workloadsDir = join(dataDir, 'workloads');
  const executor = slurm?.executor ?? new LocalExecutor({ workloadsDir, isolation });
  // On PostgreSQL every replica serves the API and the loops run on the one holding the lease; their
  // writes are fenced by it. SQLite's single process always runs them.
  const lease =
    store.dialect === 'postgres'
      ? new Lease(store.db, store.dialect, {
          onAcquired: () => startLoops(),
          onLost: () => stopLoops(),
          log: (level, message, fields) => {
            app.log[level](fields, message);
            process.stderr.write(`fabrik: ${message}\n`);
          },
        })
      : undefined;
  const fence = lease?.fence;
  // The scheduler places, the reconciler launches and stops; each wakes the other.
  let reconciler: Reconciler | undefined;
  const siteMetrics = new SiteMetrics(store.db);
  const scheduler = new SchedulerLoop(store.db, {
    onCycle: siteMetrics.cycle,
    intervalMs: opts.schedulerIntervalMs ?? 5000,
    fence,
    onPlaced: () => reconciler?.trigger(),
    onPreempted: () => reconciler?.trigger(),
  });
  reconciler = new Reconciler(store.db, executor, {
    workdirRoot,
    intervalMs: opts.reconcileIntervalMs ?? 2000,
    onPass: siteMetrics.reconciled,
    onCapacityChange: () => {
      scheduler.trigger();
      deployments.trigger();
    },
    actor: { ...EXECUTOR_ACTOR, fence },
    resolveEnv: (row, env) =>
      resolveTaskEnv(store.db, secretBox, { orgId: row.org_id, projectId: row.project_id, env }),
    // Registry inputs are materialized, and outputs read, in the executors' workload directories.
    artifacts: new WorkloadArtifacts({ db: store.db, registry, workloadsDir }),
  });
  // The inference gateway under /v1 (every replica serves it); the controller runs with the loops.
  const auth = new Authenticator(store.db, 1000);
  const inference = await openGatewayStack({
    db: store.db,
    masterKey: master.key,
    authenticator: auth,
    redisUrl: opts.redisUrl,
    // Reported like any gateway's load, for `fabrik describe deployment`; the controller here reads it directly.
    reportAs: `server:${gatewayName()}`,
    rateWindowMs: process.env.FABRIK_RATE_WINDOW_MS ? Number(process.env.FABRIK_RATE_WINDOW_MS) : undefined,
    onDemand: () => deployments.trigger(),
    onReplicaDown: (id) => deployments.reportDown(id),
  });
  const replicaRuntime = locateReplicaRuntime();
  const deployments = deploymentController({
    runtime: replicaRuntime,
    db: store.db,
    masterKey: master.key,
    executor: opts.executor ?? 'local',
    fence,
    workdirRoot,
    stack: inference,
    ports: opts.replicaPorts,
    onSubmitted: () => scheduler.trigger(),
    onCancelled: () => reconciler?.trigger(),
  });
  // The verifiable audit log: entries integrated into the Merkle tree and signed, on the leader.
  const logKeyPair = logKeys(
    master.key,
    opts.auditOrigin ?? (process.env.FABRIK_AUDIT_ORIGIN || 'localhost/fabrik-audit'),
  );
  const sequencer = new Sequencer(store.db, { keys: logKeyPair, dialect: store.dialect, fence });
  const witnessKeys =
    opts.witnessKeys ??
    (process.env.FABRIK_WITNESS_KEYS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
  const app = await buildApp({
    store,
    siteMetrics,
    // A bad sub-processors file refuses the start, with its line:column.
    compliance: { subprocessors: loadSubprocessors() },
    auditLog: { verifierKey: logKeyPair.verifierKey, witnessKeys, flush: () => sequencer.flush() },
    authenticator: auth,
    console: { oidc: opts.oidc && oidcFromSettings(store.db, opts.oidc), publicUrl: opts.publicUrl },
    gateway: { handle: inference.gateway.handle, metrics: inference.gateway.metrics },
    deployments: { runtime: replicaRuntime, allowModelPaths: opts.executor !== 'slurm', workdirRoot },
    workdirRoot,
    logs: (req) => executor.logPath(req),
    rateLimitPerMinute: opts.rateLimitPerMinute,
    isolation,
    registry,
    leadership: () =>
      lease ? { leader: lease.leader, ...(lease.leader ? { epoch: lease.status().epoch! } : {}) } : { leader: true },
    onStateChange: () => scheduler.trigger(),
    onCancelled: () => reconciler?.trigger(),
    logger: {
      level,
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      transport: {
        targets: [
          { target: 'pino/file', level, options: { destination: logFile, mkdir: true } },
          ...(opts.logStdout ? [{ target: 'pino/file', level, options: { destination: 1 } }] : []),
        ],
      },
    },
  });
  const address = await app.listen({ host: opts.host, port: opts.port });
  app.log.info(
    { isolation: isolation.level, cgroups: isolation.cgroups ?? null },
    `task isolation: ${isolation.summary}`,
  );
  // Deleted projects' directories go after the retention period (and, under Slurm, their accounts).
  const purger = new ProjectPurger(store.db, {
    workloadsDir,
    fence,
    removeIdentity: slurm ? (identity) => slurm.identities.remove(identity) : undefined,
  });
  // Events of each org go to its webhook subscriptions.
  const webhooks = new WebhookDeliverer(store.db, secretBox);
  const housekeeping = new RegistryHousekeeping(store.db, registry, fence as never);
  const running: Reconciler = reconciler;
  // Usage rollups, and measured GPU power of attempts on this node where nvidia-smi answers.
  const usageRollup = new UsageRollupLoop(store.db, {
    site: energy,
    fence,
    intervalMs: Number(process.env.FABRIK_ROLLUP_MS ?? 60_000),
    onError: (err) => process.emitWarning(`usage rollup failed: ${err.message}`),
  });
  // Budgets: thresholds reached by the new rollups become alerts (events, webhooks) at once.
  usageRollup.onRollup(async () => {
    await checkBudgets(store.db, { fence });
  });
  const powerSampler =
    opts.localNode && !slurm
      ? await localPowerSampler(store.db, hostLabel(hostname()), {
          fence,
          onError: (err) => process.emitWarning(`GPU power sample failed: ${err.message}`),
        })
      : undefined;
  async function startLoops(): Promise<void> {
    // Reconcile first: after a restart or a takeover the engine's truth is read before anything new is placed.
    await running.reconcile();
    running.start();
    scheduler.start();
    purger.start();
    webhooks.start();
    housekeeping.start();
    slurm?.sync.start();
    deployments.start();
    usageRollup.start();
    powerSampler?.start();
    // Off only to measure what the log costs (bench audit): entries are still written, and a
    // sequencer started later integrates them in order.
    if (process.env.FABRIK_AUDIT_SEQUENCER !== 'off') sequencer.start();
  }
  async function stopLoops(): Promise<void> {
    await sequencer.stop();
    await deployments.stop();
    await powerSampler?.stop();
    await usageRollup.stop();
    await purger.stop();
    await webhooks.stop();
    await housekeeping.stop();
    await slurm?.sync.stop();
    await scheduler.stop();
    await running.stop();
  }
  // A lone replica leads at once; others serve the API and take over when the leader is gone.
  if (lease) await lease.start();
  else await startLoops();
  return {
    app,
    store,
    url: address,
    bootstrapToken: boot.mintedToken,
    scheduler,
    reconciler,
    isolation,
    lease,
    usageRollup,
    close: async () => {
      // Stops the loops; a released lease lets another replica take over at once.
      if (lease) await lease.stop();
      else await stopLoops();
      await app.close();
      await inference.close();
      await store.close();
      dbLock?.release();
    },
  };
}

/** Under Slurm the engine runs each job as its project's identity (sbatch --uid/--gid) with its limits. */
const SLURM_ISOLATION: Isolation = {
  level: 'uid',
  summary: 'uid: Slurm runs every job as its project uid/gid, limits by Slurm',
};

/** Files left by an older version (or created before the umask applied) are made private too. */
function tightenFiles(dataDir: string): void {
  for (const f of ['fabrik.db', 'fabrik.db-wal', 'fabrik.db-shm', join('logs', 'fabrik.log')]) {
    const p = join(dataDir, f);
    if (existsSync(p)) chmodSync(p, 0o600);
  }
}

/**
 * The Slurm executor and the fleet sync that goes with it: the fleet is read from Slurm now (so
 * placements name real Slurm nodes) and every 30 s after.
 */
async function connectSlurm(
  store: Store,
  logDir: string,
  opts: Pick<ServerOptions, 'slurmConf' | 'identities' | 'region'>,
) {
  const conf = opts.slurmConf ?? process.env.SLURM_CONF;
  const read = () => importSlurmFleet({ slurmConf: conf, region: opts.region ?? siteRegion() });
  // Jobs run as project uids: the accounts come from here (also what the purge of a project removes).
  const identities = identityDirectory(opts.identities ?? 'local');
  // First: it makes the data directory passable again for jobs that run on (after a restart).
  const executor = new SlurmExecutor({
    logDir,
    dataDir: dirname(logDir),
    identities,
    slurmConf: conf,
    partition: (req) => fleet.partitionOf.get(req.placement.nodes[0]?.node ?? ''),
  });
  let fleet = await read();
  await syncSlurmFleet(store.db, fleet);
  const sync = new SerialLoop(
    Number(process.env.FABRIK_SLURM_SYNC_MS ?? 30_000),
    (err) => process.emitWarning(`Slurm fleet sync failed: ${err.message}`),
    async () => {
      fleet = await read();
      await syncSlurmFleet(store.db, fleet);
    },
  );
  return { executor, sync, identities };
}

/** Registers (or refreshes) this machine as a node; audited only when something changed. */
async function registerLocalNode(store: Store, devGpus: number, region: string): Promise<void> {
  const node = await detectLocalNode({ devGpus, region });
  if (node.gpuCount === 0) return;
  const { devGpus: isDev, ...spec } = node;
  const current = await store.db.selectFrom('nodes').selectAll().where('name', '=', spec.name).executeTakeFirst();
  if (current) {
    const { state: _s, devGpus: _d, createdAt: _c, updatedAt: _u, ...was } = nodeView(current);
    if (canonicalJson(was) === canonicalJson(spec)) return;
  }
  await mutate(
    store.db,
    SYSTEM_ACTOR,
    { action: 'fleet.register-local-node', resource: `fleet/nodes/${spec.name}`, orgId: '' },
    (trx) =>
      applyInTrx(
        trx,
        { pools: [{ name: spec.pool, gpuModel: spec.gpuModel, gpuMemoryGiB: spec.gpuMemoryGiB }], nodes: [spec] },
        { devGpus: isDev },
      ),
  );
}
