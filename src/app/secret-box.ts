// Sealing tenant secrets: AES-256-GCM under a key derived from the server's master key.
//
// Each value gets a fresh random 96-bit nonce. The additional authenticated data names where the
// value belongs (org id, project id, secret name), so a row copied or moved to another tenant, or
// renamed, no longer opens. Every sealed value records the id of the key that sealed it, so that a
// later rotation can open old rows with the old key while sealing new ones with the new key.
//
// The master key comes from FABRIK_MASTER_KEY (hex or base64 of 32 bytes) or from a file
// (default <dataDir>/master.key), created on first start with 32 random bytes and mode 0600.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { AppError } from '../domain/errors.js';
import type { Database } from '../store/schema.js';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Domain separation: the master key may later key other things (artifact encryption). */
const HKDF_INFO = 'fabrik secrets aes-256-gcm v1';
const AAD_VERSION = 'fabrik-secret-v1';

/** Where a sealed value belongs. project is '' for an org-wide secret. */
export interface SecretLocation {
  readonly orgId: string;
  readonly projectId: string;
  readonly name: string;
}

/** What is stored: base64 text, so both database dialects hold it alike. */
export interface Sealed {
  readonly keyId: string;
  readonly nonce: string;
  /** Ciphertext followed by the 16-byte GCM tag. */
  readonly ciphertext: string;
}

/** A value that does not open: wrong key, tampered bytes, or a row moved to another place. */
export class SecretOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretOpenError';
  }
}

/** A master key that cannot be used: refused at start, before anything is served. */
export class MasterKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

export interface SecretBox {
  /** Id of the key new values are sealed with. */
  readonly keyId: string;
  seal(value: string, at: SecretLocation): Sealed;
  open(sealed: Sealed, at: SecretLocation): string;
}

/** A public name for a key, derived one-way from it: safe to store beside the ciphertext. */
export function keyIdOf(masterKey: Buffer): string {
  return `mk_${createHmac('sha256', masterKey).update('fabrik key id').digest('hex').slice(0, 16)}`;
}

function aadOf(at: SecretLocation): Buffer {
  // Ids and DNS-label names never contain NUL, so the joined form is unambiguous.
  return Buffer.from([AAD_VERSION, at.orgId, at.projectId, at.name].join('\0'), 'utf8');
}

/**
 * A box that seals with `masterKey` and also opens values sealed with any of `olderKeys`
 * (rotation: re-seal rows at leisure, then drop the old key).
 */
export function createSecretBox(masterKey: Buffer, olderKeys: readonly Buffer[] = []): SecretBox {
  const keys = new Map<string, Buffer>();
  for (const k of [masterKey, ...olderKeys]) {
    if (k.length !== KEY_BYTES) throw new MasterKeyError(`a master key must be ${KEY_BYTES} bytes, got ${k.length}`);
    keys.set(keyIdOf(k), Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), HKDF_INFO, KEY_BYTES)));
  }
  const keyId = keyIdOf(masterKey);
  return {
    keyId,
    seal(value, at) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keys.get(keyId)!, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aadOf(at));
      const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return { keyId, nonce: nonce.toString('base64'), ciphertext: ct.toString('base64') };
    },
    open(sealed, at) {
      const key = keys.get(sealed.keyId);
      if (!key) throw new SecretOpenError(`sealed with key ${sealed.keyId}, which this server does not hold`);
      const nonce = Buffer.from(sealed.nonce, 'base64');
      const data = Buffer.from(sealed.ciphertext, 'base64');
      if (nonce.length !== NONCE_BYTES || data.length < TAG_BYTES) throw new SecretOpenError('malformed sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
        decipher.setAAD(aadOf(at));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        return Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString(
          'utf8',
        );
      } catch {
        throw new SecretOpenError('the sealed value does not open here: altered, or moved from another place');
      }
    },
  };
}

/** 32 bytes from hex (64 digits) or base64 (standard or url-safe); undefined when it is neither. */
export function decodeKeyText(text: string): Buffer | undefined {
  const t = text.trim();
  // Hex first: 64 hex digits are also valid base64, of 48 bytes.
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === KEY_BYTES) return b;
  }
  return undefined;
}

export interface LoadedMasterKey {
  readonly key: Buffer;
  readonly source: 'env' | 'file';
  readonly path?: string;
  /** True when the file was made just now. */
  readonly created: boolean;
}

/**
 * The master key: `envValue` (FABRIK_MASTER_KEY) when given, else the file, created when absent.
 * Refuses a file that others may read, or whose content is not a 32-byte key.
 */
export function loadMasterKey(opts: {
  readonly envValue?: string;
  readonly file: string;
  /** false: the file must exist (a gateway reads the control plane's key, never makes its own). */
  readonly create?: boolean;
}): LoadedMasterKey {
  if (opts.envValue !== undefined && opts.envValue !== '') {
    const key = decodeKeyText(opts.envValue);
    if (!key) throw new MasterKeyError('FABRIK_MASTER_KEY must be 32 bytes as 64 hex digits or base64 (44 characters)');
    return { key, source: 'env', created: false };
  }
  const file = opts.file;
  let created = false;
  if (opts.create === false && !existsSync(file)) {
    throw new MasterKeyError(
      `master key file ${file} does not exist: point at the control plane's key (or set FABRIK_MASTER_KEY)`,
    );
  }
  try {
    // 'wx': never overwrite a key another process made at the same moment.
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(KEY_BYTES));
      fsyncSync(fd);
      created = true;
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new MasterKeyError(`cannot create master key file ${file}: ${(err as Error).message}`);
    }
  }
  const st = statSync(file);
  if (!st.isFile()) throw new MasterKeyError(`master key file ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new MasterKeyError(
      `master key file ${file} is readable or writable by group or others (mode ${mode}); run: chmod 600 ${file}`,
    );
  }
  const bytes = readFileSync(file);
  const key = bytes.length === KEY_BYTES ? bytes : decodeKeyText(bytes.toString('utf8'));
  if (!key) {
    throw new MasterKeyError(
      `master key file ${file} is malformed: expected 32 raw bytes, or 32 bytes as hex or base64 (got ${bytes.length} bytes)`,
    );
  }
  return { key, source: 'file', path: file, created };
}

/** The server's box, found by its database handle (routes and loops get the handle, not the box). */
const boxes = new WeakMap<Kysely<Database>, SecretBox>();

export function attachSecretBox(db: Kysely<Database>, box: SecretBox): void {
  boxes.set(db, box);
}

export function secretBoxFor(db: Kysely<Database>): SecretBox {
  const box = boxes.get(db);
  if (!box) throw new AppError('UNAVAILABLE', 'this server holds no master key, so it cannot store secrets');
  return box;
}
