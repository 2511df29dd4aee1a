// What the registry's services need at run time, built once by the server: the blob stores (each
// with its region; which one an upload goes to is the sovereignty policy's call, store-choice.ts), the
// orgs' keys, the platform's signing key, the key of upload tokens, and the limits. Services take
// it as a plain argument; routes get it through their dependencies.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import { DEFAULT_SITE_REGION } from '../policy/sovereignty.js';
import type { BlobStore } from './blob-store.js';
import { SEGMENT_BYTES } from './crypto.js';
import type { OrgKeys } from './keys.js';
import type { SigningKey } from './signing.js';

export interface RegistryLimits {
  /** Plaintext bytes per multipart part; a multiple of the encryption segment (and >= 5 MiB for S3). */
  readonly chunkBytes: number;
  /** Objects up to this size go up in one basic PUT. */
  readonly basicMaxBytes: number;
  /** How long an unfinished upload can be resumed before it is collected. */
  readonly uploadTtlMs: number;
  /** Storage quota of a project without its own (bytes); 0: none. */
  readonly defaultQuotaBytes: number;
  /** How long a deleted repo's versions are kept before they are purged. */
  readonly retentionMs: number;
  /** The largest inline file of a commit (base64 in the NDJSON body). */
  readonly inlineMaxBytes: number;
  /** Files per version. */
  readonly maxFiles: number;
}

export const DEFAULT_LIMITS: RegistryLimits = {
  chunkBytes: 32 * SEGMENT_BYTES,
  basicMaxBytes: 32 * SEGMENT_BYTES,
  uploadTtlMs: 24 * 3600_000,
  defaultQuotaBytes: 0,
  retentionMs: 7 * 24 * 3600_000,
  inlineMaxBytes: 10 * 1024 * 1024,
  maxFiles: 100_000,
};

/** One configured blob store: where it is and in which region. */
export interface NamedStore {
  /** '' for the default store (`--blob-store`), as the `store` columns of blobs and uploads say. */
  readonly name: string;
  /** The region its bytes are in; policies read the country from it. */
  readonly region: string;
  readonly store: BlobStore;
  /** Where it is, for operators: a directory or `s3://bucket/prefix`. */
  readonly where: string;
}

/** How a store is named in audit entries and listings: the default store is `default`. */
export const storeLabel = (name: string) => name || 'default';

export interface Registry {
  /** The default store (name ''). */
  readonly store: BlobStore;
  /** Every configured store: the default first, then the named ones in the order configured. */
  readonly stores: readonly NamedStore[];
  readonly keys: OrgKeys;
  readonly signer: SigningKey;
  readonly limits: RegistryLimits;
  /** Makes and checks the capability tokens of upload URLs (they carry no Authorization header). */
  readonly uploadTokens: UploadTokens;
}

export interface UploadTokens {
  tokenFor(uploadId: string): string;
  matches(uploadId: string, token: string): boolean;
}

/** Tokens are an HMAC of the upload id under a key derived from the master key: nothing stored. */
export function uploadTokens(masterKey: Buffer): UploadTokens {
  const key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'fabrik upload tokens v1', 32));
  const tokenFor = (id: string) => createHmac('sha256', key).update(id).digest('base64url');
  return {
    tokenFor,
    matches(id, token) {
      const want = Buffer.from(tokenFor(id));
      const got = Buffer.from(token);
      return want.length === got.length && timingSafeEqual(want, got);
    },
  };
}

/**
 * The store an object lives in, by the name on its blob or upload row. Objects stay where they
 * were written: a store that is no longer configured makes its objects unavailable, not lost.
 */
export function storeNamed(reg: Registry, name: string): NamedStore {
  const s = reg.stores.find((x) => x.name === name);
  if (!s) {
    throw new AppError(
      'UNAVAILABLE',
      `blob store "${storeLabel(name)}" holds this object but is not configured on this server (--blob-store-at)`,
      { store: storeLabel(name) },
    );
  }
  return s;
}

/** With `stores`, the default store is their first (`store` is then ignored). */
export function createRegistry(
  parts: Omit<Registry, 'limits' | 'stores'> & { stores?: readonly NamedStore[]; limits?: Partial<RegistryLimits> },
): Registry {
  const limits = { ...DEFAULT_LIMITS, ...parts.limits };
  if (limits.chunkBytes % SEGMENT_BYTES !== 0) {
    throw new Error(`registry chunk size ${limits.chunkBytes} is not a multiple of ${SEGMENT_BYTES}`);
  }
  const stores = parts.stores ?? [
    { name: '', region: DEFAULT_SITE_REGION, store: parts.store, where: parts.store.kind },
  ];
  if (stores[0]?.name !== '') throw new Error('the default blob store (name "") must come first among the stores');
  return { ...parts, store: stores[0].store, stores, limits };
}
