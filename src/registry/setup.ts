// Building the registry at server start: the blob stores (files under the data directory, or
// S3-compatible object storage; the default one and named ones, each in a region), the orgs' keys under the master key, the platform's signing key;
// and the housekeeping loop (abandoned uploads, deleted repos past their retention).
import { join, resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import type { Kysely } from 'kysely';
import { SYSTEM_ACTOR, mutate } from '../audit/journal.js';
import { SerialLoop } from '../domain/serial-loop.js';
import { nowIso } from '../domain/ids.js';
import { siteRegion } from '../policy/sovereignty.js';
import type { Database } from '../store/schema.js';
import type { BlobStore } from './blob-store.js';
import { localKms } from './crypto.js';
import { FsBlobStore } from './fs-store.js';
import { OrgKeys } from './keys.js';
import { type NamedStore, type Registry, type RegistryLimits, createRegistry, uploadTokens } from './registry.js';
import { S3BlobStore } from './s3-store.js';
import { S3_SPEC, parseBlobStoreSpec } from './store-spec.js';
import { loadOrCreateSigningKey } from './signing.js';
import { collectExpiredUploads } from './uploads.js';

export interface RegistrySetup {
  readonly dataDir: string;
  readonly masterKey: Buffer;
  readonly db: Kysely<Database>;
  /** `fs` (default: <dataDir>/registry) or `s3://bucket[/prefix]` (endpoint and credentials from the environment). */
  readonly blobStore?: string;
  /** The site's region: the default blob store's. */
  readonly region?: string;
  /**
   * Further stores, in order: `<name>=<fs[:DIR]|s3://bucket[/prefix]>@<region>` (see
   * parseBlobStoreSpec). An upload goes to the first store, the default one first, that the org's
   * sovereignty policy allows.
   */
  readonly blobStores?: readonly string[];
  readonly limits?: Partial<RegistryLimits>;
}

/**
 * S3: FABRIK_S3_ENDPOINT (e.g. a Ceph RGW or MinIO address; unset for AWS), AWS_REGION (default
 * eu-central-1), and the SDK's usual credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
 */
export function blobStoreFrom(spec: string | undefined, dataDir: string): BlobStore {
  if (!spec || spec === 'fs') return new FsBlobStore(join(dataDir, 'registry'));
  const m = S3_SPEC.exec(spec);
  if (!m) throw new Error(`--blob-store must be fs or s3://<bucket>[/<prefix>], not ${spec}`);
  return s3Store(m[1]!, m[2]);
}

/** Every store: the default (`--blob-store`, in the site's region) first, then `specs` in order. */
export function openBlobStores(
  s: Pick<RegistrySetup, 'blobStore' | 'blobStores' | 'dataDir' | 'region'>,
  flag = '--blob-store-at',
): NamedStore[] {
  const dflt = blobStoreFrom(s.blobStore, s.dataDir);
  const stores: NamedStore[] = [
    {
      name: '',
      region: s.region ?? siteRegion(),
      store: dflt,
      where: !s.blobStore || s.blobStore === 'fs' ? resolve(s.dataDir, 'registry') : s.blobStore,
    },
  ];
  for (const text of s.blobStores ?? []) {
    const spec = parseBlobStoreSpec(text, flag);
    if (stores.some((x) => x.name === spec.name))
      throw new Error(`${flag}: the store name "${spec.name}" is given twice`);
    let store: BlobStore;
    let where: string;
    if (spec.kind === 'fs') {
      // A relative directory lies under the data directory.
      where = resolve(s.dataDir, spec.location === '' ? `registry-${spec.name}` : spec.location);
      store = new FsBlobStore(where);
    } else {
      const m = S3_SPEC.exec(spec.location)!;
      store = s3Store(m[1]!, m[2]);
      where = spec.location;
    }
    const same = stores.find((x) => x.where === where);
    if (same)
      throw new Error(
        `${flag}: store "${spec.name}" is at ${where}, where store "${same.name || 'default'}" is already`,
      );
    stores.push({ name: spec.name, region: spec.region, store, where });
  }
  return stores;
}

function s3Store(bucket: string, prefixPath: string | undefined): BlobStore {
  const endpoint = process.env.FABRIK_S3_ENDPOINT;
  const client = new S3Client({
    region: process.env.AWS_REGION ?? 'eu-central-1',
    // No aws-chunked trailing checksums: several S3-compatible stores mishandle that framing.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
  });
  const prefix = prefixPath ? `${prefixPath.replace(/\/+$/, '')}/` : '';
  return new S3BlobStore({ client, bucket, prefix });
}

export function openRegistry(s: RegistrySetup): Registry {
  const stores = openBlobStores(s);
  return createRegistry({
    store: stores[0]!.store,
    stores,
    keys: new OrgKeys(s.db, localKms(s.masterKey)),
    signer: loadOrCreateSigningKey(join(s.dataDir, 'registry-signing.key')),
    uploadTokens: uploadTokens(s.masterKey),
    limits: s.limits,
  });
}

/** Collects expired uploads and purges deleted repos whose retention has passed. */
export class RegistryHousekeeping extends SerialLoop {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly reg: Registry,
    private readonly fence?: (trx: never) => Promise<void>,
    intervalMs = 60_000,
  ) {
    super(intervalMs, (err) => process.emitWarning(`registry housekeeping failed: ${err.message}`));
  }

  protected override async work(): Promise<void> {
    await collectExpiredUploads(this.db, this.reg);
    await this.purgeRepos();
  }

  /** Versions of deleted repos go after the retention; blobs no version of the project holds leave the quota. */
  async purgeRepos(now = nowIso()): Promise<number> {
    const due = await this.db
      .selectFrom('repos')
      .selectAll()
      .where('deleted_at', '!=', '')
      .where('purge_after', '<=', now)
      .where('purge_after', '!=', '')
      .execute();
    for (const r of due) {
      await mutate(
        this.db,
        { ...SYSTEM_ACTOR, fence: this.fence as never },
        { action: `${r.kind}.purge`, resource: `repos/${r.id}`, orgId: r.org_id, projectId: r.project_id },
        async (trx) => {
          await trx.deleteFrom('repo_refs').where('repo_id', '=', r.id).execute();
          await trx.deleteFrom('commits').where('repo_id', '=', r.id).execute();
          await trx.updateTable('repos').set({ purge_after: '' }).where('id', '=', r.id).execute();
          // Recount what the project still holds from its remaining versions.
          const held = new Set<string>();
          const commits = await trx
            .selectFrom('commits')
            .innerJoin('repos', 'repos.id', 'commits.repo_id')
            .select('commits.manifest')
            .where('repos.project_id', '=', r.project_id)
            .execute();
          for (const c of commits) for (const f of JSON.parse(c.manifest) as { blobId: string }[]) held.add(f.blobId);
          const rows = await trx
            .selectFrom('project_blobs')
            .select('blob_id')
            .where('project_id', '=', r.project_id)
            .execute();
          for (const b of rows)
            if (!held.has(b.blob_id))
              await trx
                .deleteFrom('project_blobs')
                .where('project_id', '=', r.project_id)
                .where('blob_id', '=', b.blob_id)
                .execute();
          return { result: undefined, before: { versions: 'retained' }, after: { versions: 'purged' } };
        },
      );
    }
    return due.length;
  }
}
