// What the registry's services need at run time, built once by the server: the blob store, the
// orgs' keys, the platform's signing key, the key of upload tokens, and the limits. Services take
// it as a plain argument; routes get it through their dependencies.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
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

export interface Registry {
  readonly store: BlobStore;
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

export function createRegistry(parts: Omit<Registry, 'limits'> & { limits?: Partial<RegistryLimits> }): Registry {
  const limits = { ...DEFAULT_LIMITS, ...parts.limits };
  if (limits.chunkBytes % SEGMENT_BYTES !== 0) {
    throw new Error(`registry chunk size ${limits.chunkBytes} is not a multiple of ${SEGMENT_BYTES}`);
  }
  return { ...parts, limits };
}
