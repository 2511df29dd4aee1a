// Test harness: a real fabrik app on a real database, SQLite or PostgreSQL (a fresh database per
// suite), driven through HTTP with fastify's inject. PostgreSQL tests skip loudly when no server
// answers locally, and fail in CI (CI=true), where .ci/run starts one.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApp } from '../../src/api/app.js';
import type { AuditLogDeps } from '../../src/api/routes/audit-log.js';
import type { DeploymentDeps } from '../../src/inference/deployments.js';
import type { Registry, RegistryLimits } from '../../src/registry/registry.js';
import { openRegistry } from '../../src/registry/setup.js';
import { newId } from '../../src/domain/ids.js';
import { type Store, openStore } from '../../src/store/db.js';
import { bootstrapOperator } from '../../src/tenancy/bootstrap.js';
import { attachSecretBox, createSecretBox } from '../../src/app/secret-box.js';
import type { LogLocator } from '../../src/workload/logs.js';
import { SchedulerLoop } from '../../src/workload/scheduler-loop.js';

export type DialectName = 'sqlite' | 'postgres';
export const DIALECTS: readonly DialectName[] = ['sqlite', 'postgres'];

export const PG_ADMIN_URL = process.env.FABRIK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const OPERATOR_TOKEN = 'test-operator-token-0123456789abcdefghijkl';

let pgChecked: Promise<boolean> | undefined;

/** Whether PostgreSQL answers; in CI its absence is an error, not a skip. */
export function postgresAvailable(): Promise<boolean> {
  pgChecked ??= (async () => {
    // A busy 2-core machine (the suites run two at a time) can be slow to answer: try a few times.
    let last: unknown;
    for (let i = 0; i < 3; i++) {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
      try {
        await c.connect();
        await c.end();
        return true;
      } catch (err) {
        last = err;
        await c.end().catch(() => undefined);
      }
    }
    const why = (last as Error).message;
    if (process.env.CI === 'true')
      throw new Error(`PostgreSQL is required in CI but ${PG_ADMIN_URL} does not answer: ${why}`);
    console.warn(`\n*** SKIPPING PostgreSQL tests: ${PG_ADMIN_URL} does not answer (${why}) ***\n`);
    return false;
  })();
  return pgChecked;
}

/** The reason to skip a dialect's suite, or false to run it. */
export async function skipReason(dialect: DialectName): Promise<string | false> {
  if (dialect === 'sqlite') return false;
  return (await postgresAvailable()) ? false : `PostgreSQL not reachable at ${PG_ADMIN_URL}`;
}

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A new empty database: a temp SQLite file, or a fresh PostgreSQL database dropped afterwards. */
export async function freshDatabase(dialect: DialectName): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-test-'));
    return { url: join(dir, 'fabrik.db'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = newId('fabrik_test').replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface TestApp {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly dialect: DialectName;
  readonly dbUrl: string;
  /** The scheduling loop on this database, not started: tests run cycles explicitly with `cycle()`. */
  readonly scheduler: SchedulerLoop;
  /** The registry, when asked for one, and its data directory. */
  readonly registry?: Registry;
  readonly registryDir?: string;
  /** Calls the API with a key (the operator's by default). */
  call(
    method: string,
    url: string,
    opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Reply>;
  close(): Promise<void>;
}

export interface Reply {
  readonly status: number;
  readonly body: any;
  readonly headers: Record<string, unknown>;
}

export async function startTestApp(
  dialect: DialectName,
  opts: {
    rateLimitPerMinute?: number;
    authCacheTtlMs?: number;
    logs?: LogLocator;
    /** A model and dataset registry on a temporary directory (or the given store spec). */
    registry?: {
      limits?: Partial<RegistryLimits>;
      blobStore?: string;
      dataDir?: string;
      /** Further stores, `<name>=<fs[:DIR]|s3://…>@<region>` (src/registry/store-spec.ts). */
      blobStores?: readonly string[];
      /** The default store's region (default: the site's, eu-de-local). */
      region?: string;
    };
    /** The deployment routes, e.g. `{ runtime: locateReplicaRuntime(), allowModelPaths: true }` (no controller runs). */
    deployments?: DeploymentDeps;
    /** The verifiable audit log's routes (its `flush` may close over a Sequencer made on `store` afterwards). */
    auditLog?: AuditLogDeps;
  } = {},
): Promise<TestApp> {
  const db = await freshDatabase(dialect);
  const store = await openStore(db.url);
  await bootstrapOperator(store, OPERATOR_TOKEN);
  // As the server does at start: a master key (random per app), so that secrets can be stored.
  const masterKey = randomBytes(32);
  attachSecretBox(store.db, createSecretBox(masterKey));
  const registryDir = opts.registry
    ? (opts.registry.dataDir ?? mkdtempSync(join(tmpdir(), 'fabrik-registry-')))
    : undefined;
  const registry =
    opts.registry && registryDir
      ? openRegistry({
          dataDir: registryDir,
          masterKey,
          db: store.db,
          blobStore: opts.registry.blobStore,
          blobStores: opts.registry.blobStores,
          region: opts.registry.region,
          limits: opts.registry.limits,
        })
      : undefined;
  const app = await buildApp({
    registry,
    store,
    rateLimitPerMinute: opts.rateLimitPerMinute,
    authCacheTtlMs: opts.authCacheTtlMs,
    logs: opts.logs,
    deployments: opts.deployments,
    auditLog: opts.auditLog,
  });
  await app.ready();
  return {
    app,
    store,
    dialect,
    dbUrl: db.url,
    scheduler: new SchedulerLoop(store.db),
    async call(method, url, o = {}) {
      const token = o.token === undefined ? OPERATOR_TOKEN : o.token;
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(o.headers ?? {}) },
        ...(o.body === undefined
          ? {}
          : {
              payload: typeof o.body === 'string' ? o.body : JSON.stringify(o.body),
              headers: {
                'content-type': 'application/json',
                ...(token ? { authorization: `Bearer ${token}` } : {}),
                ...(o.headers ?? {}),
              },
            }),
      });
      let body: unknown = res.body;
      try {
        body = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        // not JSON (metrics text): keep the string
      }
      return { status: res.statusCode, body, headers: res.headers as Record<string, unknown> };
    },
    registry,
    registryDir,
    async close() {
      await app.close();
      await store.close();
      await db.drop();
      if (registryDir && !opts.registry?.dataDir) rmSync(registryDir, { recursive: true, force: true });
    },
  };
}

/** A small fleet: two pools, four B200 nodes and two RTX PRO nodes. */
export const SMALL_FLEET = `
region: eu-de-muc1
pools:
  - { name: b200, gpuModel: B200, gpuMemoryGiB: 180 }
  - { name: rtxpro6000, gpuModel: RTX PRO 6000, gpuMemoryGiB: 96 }
nodeGroups:
  - names: b200-[01-04]
    pool: b200
    gpus: 8
    cpu: 112
    ramGiB: 2048
    pod: su01
    rack: r[1-2]
    nodesPerRack: 2
    ibLeaf: leaf1
    ibSpine: spine1
  - names: rtx-[01-02]
    pool: rtxpro6000
    gpus: 8
    cpu: 64
    ramGiB: 512
    pod: su02
    rack: r3
    ibLeaf: leaf2
    ibSpine: spine1
`;

export interface Tenant {
  readonly org: string;
  readonly project: string;
  /** `org.project` */
  readonly ref: string;
  /** Owner key (org-wide). */
  readonly ownerToken: string;
  /** Viewer key (org-wide). */
  readonly viewerToken: string;
}

/** Creates an org with an owner and a viewer (each with a key), a project, and a b200 quota. */
export async function seedTenant(t: TestApp, org: string, quota = { guaranteed: 8, limit: 16 }): Promise<Tenant> {
  const must = (r: Reply, what: string) => {
    if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  must(await t.call('POST', '/api/v1/orgs', { body: { name: org, residency: 'de' } }), 'create org');
  must(await t.call('POST', `/api/v1/orgs/${org}/members`, { body: { user: `${org}-owner`, role: 'owner' } }), 'owner');
  must(
    await t.call('POST', `/api/v1/orgs/${org}/members`, { body: { user: `${org}-viewer`, role: 'viewer' } }),
    'viewer',
  );
  const owner = must(
    await t.call('POST', `/api/v1/orgs/${org}/keys`, { body: { name: 'owner', user: `${org}-owner` } }),
    'owner key',
  );
  const viewer = must(
    await t.call('POST', `/api/v1/orgs/${org}/keys`, { body: { name: 'viewer', user: `${org}-viewer` } }),
    'viewer key',
  );
  must(
    await t.call('POST', `/api/v1/orgs/${org}/projects`, { body: { name: 'train' }, token: owner.token }),
    'project',
  );
  const pools = await t.call('GET', '/api/v1/fleet/pools');
  if (!pools.body.items.some((p: { name: string }) => p.name === 'b200')) {
    must(await t.call('POST', '/api/v1/fleet/apply', { body: { file: SMALL_FLEET } }), 'fleet');
  }
  must(await t.call('PUT', `/api/v1/projects/${org}.train/quotas/b200`, { body: quota }), 'quota');
  return { org, project: 'train', ref: `${org}.train`, ownerToken: owner.token, viewerToken: viewer.token };
}
