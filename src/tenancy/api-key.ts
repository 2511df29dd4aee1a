// API key tokens: `fbk_<prefix>_<secret>`. The secret is 32 random bytes; only its SHA-256 is
// stored. The prefix is public (shown in listings, logs and audit entries) and finds the row.
// A salted slow hash is not needed: the secret has 256 bits of entropy, so it cannot be guessed.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface MintedKey {
  readonly token: string;
  readonly prefix: string;
  readonly secretHash: string;
}

const TOKEN = /^fbk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export function mintKey(): MintedKey {
  const prefix = randomBytes(9)
    .toString('base64url')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '0')
    .slice(0, 12);
  const secret = randomBytes(32).toString('base64url');
  return { token: `fbk_${prefix}_${secret}`, prefix, secretHash: hashSecret(secret) };
}

/**
 * Splits a token into its lookup prefix and secret. Tokens minted here have the `fbk_` form; an
 * operator-chosen FABRIK_BOOTSTRAP_TOKEN may be any 32–256 printable characters, in which case the
 * prefix is derived from its hash.
 */
export function parseToken(token: string): { prefix: string; secret: string } | null {
  const m = TOKEN.exec(token);
  if (m) return { prefix: m[1], secret: m[2] };
  if (/^[\x21-\x7e]{32,256}$/.test(token)) {
    return { prefix: `b${createHash('sha256').update(token).digest('hex').slice(0, 11)}`, secret: token };
  }
  return null;
}

/** The stored form of a given token (for FABRIK_BOOTSTRAP_TOKEN). */
export function keyFromToken(token: string): MintedKey | null {
  const p = parseToken(token);
  return p ? { token, prefix: p.prefix, secretHash: hashSecret(p.secret) } : null;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
