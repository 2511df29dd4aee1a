// The registry keys of each org, kept wrapped by the KMS in `registry_keys`:
// - data keys (purpose 'data'): one current, which encrypts new blobs; rotation retires it, and
//   retired keys stay, since the blobs they encrypted still need them;
// - the blob-id key (purpose 'blob-id'): makes blob ids from digests. Made once and never rotated,
//   so that an org's id of some content stays the same and dedup survives data key rotation.
//
// Replicas share the table and may race to make an org's first key: keys are inserted under
// deterministic ids with ON CONFLICT DO NOTHING and read back, so every replica ends up with the
// one row that won. Unwrapped keys are cached in memory: they are needed on every request.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AppError } from '../domain/errors.js';
import type { Trx } from '../store/db.js';
import type { Database, RegistryKeysTable } from '../store/schema.js';
import type { Kms } from './crypto.js';

const KEY_BYTES = 32;
/** Data key ids are `dk<generation>`: the first is dk1, each rotation adds one. */
const DATA_KEY_PREFIX = 'dk';
const BLOB_ID_KEY_ID = 'bid';

type Purpose = RegistryKeysTable['purpose'];

export interface DataKey {
  readonly keyId: string;
  readonly key: Buffer;
}

function generationOf(keyId: string): number {
  return Number(keyId.slice(DATA_KEY_PREFIX.length));
}

/** What a wrapped key is bound to: moved to another org, id or purpose, it no longer opens. */
function contextOf(orgId: string, keyId: string, purpose: Purpose): string {
  return `fabrik-registry:${orgId}:${keyId}:${purpose}`;
}

export class OrgKeys {
  private kms: Kms;
  /** Unwrapped keys by `${orgId}\0${keyId}`. Keys never change once made, so nothing goes stale. */
  private readonly cache = new Map<string, Buffer>();

  constructor(
    private readonly db: Kysely<Database>,
    kms: Kms,
  ) {
    this.kms = kms;
  }

  /** The data key new blobs of the org are encrypted with; made on first use. */
  async current(orgId: string): Promise<DataKey> {
    let row = await this.currentRow(this.db, orgId);
    if (!row) {
      await this.insertKey(this.db, orgId, `${DATA_KEY_PREFIX}1`, 'data');
      row = await this.currentRow(this.db, orgId);
      if (!row) throw new AppError('INTERNAL', `org ${orgId} has no current registry data key`);
    }
    return { keyId: row.key_id, key: await this.open(row) };
  }

  /** A data key by id, current or retired (the key an existing blob was encrypted with). */
  async byId(orgId: string, keyId: string): Promise<Buffer> {
    const cached = this.cache.get(`${orgId}\0${keyId}`);
    if (cached) return cached;
    const row = await this.db
      .selectFrom('registry_keys')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('key_id', '=', keyId)
      .where('purpose', '=', 'data')
      .executeTakeFirst();
    if (!row) throw new AppError('INTERNAL', `registry data key ${keyId} of org ${orgId} is missing`);
    return this.open(row);
  }

  /** The org's key for blob ids (crypto.blobIdOf); made on first use. */
  async blobIdKey(orgId: string): Promise<Buffer> {
    const cached = this.cache.get(`${orgId}\0${BLOB_ID_KEY_ID}`);
    if (cached) return cached;
    const find = () =>
      this.db
        .selectFrom('registry_keys')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('key_id', '=', BLOB_ID_KEY_ID)
        .executeTakeFirst();
    let row = await find();
    if (!row) {
      await this.insertKey(this.db, orgId, BLOB_ID_KEY_ID, 'blob-id');
      row = await find();
      if (!row) throw new AppError('INTERNAL', `org ${orgId} has no registry blob-id key`);
    }
    return this.open(row);
  }

  /**
   * Retires the current data key and makes the next one current; returns the new key's id. Old
   * blobs keep opening with their key. Two rotations racing make one new key, not two.
   */
  async rotate(orgId: string, trx?: Trx): Promise<string> {
    const db = trx ?? this.db;
    const row = await this.currentRow(db, orgId);
    const next = `${DATA_KEY_PREFIX}${row ? generationOf(row.key_id) + 1 : 1}`;
    await this.insertKey(db, orgId, next, 'data');
    await db
      .updateTable('registry_keys')
      .set({ retired_at: new Date().toISOString() })
      .where('org_id', '=', orgId)
      .where('purpose', '=', 'data')
      .where('retired_at', '=', '')
      .where('key_id', '!=', next)
      .execute();
    return next;
  }

  /**
   * Master key rotation: wraps every key again with `newKms` (this instance's KMS must still open
   * the old wraps, e.g. localKms(new, [old])), then uses `newKms`. Returns how many rows changed.
   */
  async rewrapAll(newKms: Kms): Promise<number> {
    const rows = await this.db.selectFrom('registry_keys').selectAll().execute();
    let changed = 0;
    for (const row of rows) {
      const context = contextOf(row.org_id, row.key_id, row.purpose);
      const key = await this.kms.unwrap(row.wrapped, context);
      const wrapped = await newKms.wrap(key, context);
      // Guarded on the old text: a row another replica rewrapped meanwhile is left as it is.
      const r = await this.db
        .updateTable('registry_keys')
        .set({ wrapped })
        .where('org_id', '=', row.org_id)
        .where('key_id', '=', row.key_id)
        .where('wrapped', '=', row.wrapped)
        .executeTakeFirst();
      changed += Number(r.numUpdatedRows);
    }
    this.kms = newKms;
    return changed;
  }

  /** The newest unretired data key (two can be unretired for a moment during a rotation). */
  private async currentRow(db: Kysely<Database>, orgId: string): Promise<RegistryKeysTable | undefined> {
    const rows = await db
      .selectFrom('registry_keys')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('purpose', '=', 'data')
      .where('retired_at', '=', '')
      .execute();
    return rows.sort((a, b) => generationOf(b.key_id) - generationOf(a.key_id))[0];
  }

  /** Makes a key under `keyId` unless the row exists already (another replica won the race). */
  private async insertKey(db: Kysely<Database>, orgId: string, keyId: string, purpose: Purpose): Promise<void> {
    const wrapped = await this.kms.wrap(randomBytes(KEY_BYTES), contextOf(orgId, keyId, purpose));
    await db
      .insertInto('registry_keys')
      .values({ org_id: orgId, key_id: keyId, purpose, wrapped, created_at: new Date().toISOString(), retired_at: '' })
      .onConflict((oc) => oc.columns(['org_id', 'key_id']).doNothing())
      .execute();
  }

  private async open(row: RegistryKeysTable): Promise<Buffer> {
    const cacheKey = `${row.org_id}\0${row.key_id}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    const key = await this.kms.unwrap(row.wrapped, contextOf(row.org_id, row.key_id, row.purpose));
    this.cache.set(cacheKey, key);
    return key;
  }
}
