// Signing of compliance documents: the document's canonical JSON (RFC 8785, as audit entries are
// serialised) is hashed and signed with the platform's Ed25519 key, the one that signs registry
// versions (GET /api/v1/registry/signing-key publishes it). The signed shape carries the key id,
// the digest and the signature next to the document, so anyone holding the public key can check
// it offline (`fabrik compliance verify FILE`); Markdown and PDF renderings repeat the same three.
import { createHash, sign, verify } from 'node:crypto';
import { canonicalJson } from '../audit/entry.js';
import { keyIdOf } from '../registry/signing.js';
import type { SigningKey } from '../registry/signing.js';

export const SIGNATURE_ALGORITHM = 'ed25519';
export const CANONICALIZATION = 'RFC8785';

export interface DocumentSignature {
  readonly algorithm: typeof SIGNATURE_ALGORITHM;
  readonly canonicalization: typeof CANONICALIZATION;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo of the signing key (as registry signatures name it). */
  readonly keyid: string;
  /** `sha256:<hex>` of the document's canonical JSON. */
  readonly digest: string;
  /** base64 Ed25519 signature over the canonical JSON bytes. */
  readonly sig: string;
}

export interface Signed<D> {
  readonly document: D;
  readonly signature: DocumentSignature;
}

export type VerifyOutcome = { ok: true; keyid: string; digest: string } | { ok: false; reason: string };

export function documentDigest(document: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(document), 'utf8').digest('hex')}`;
}

export function signDocument<D>(document: D, key: SigningKey): Signed<D> {
  const bytes = Buffer.from(canonicalJson(document), 'utf8');
  return {
    document,
    signature: {
      algorithm: SIGNATURE_ALGORITHM,
      canonicalization: CANONICALIZATION,
      keyid: key.keyid,
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      sig: sign(null, bytes, key.privateKey).toString('base64'),
    },
  };
}

/** Checks a signed document against a trusted public key (PEM, SPKI); every failure names its reason. */
export function verifyDocument(signed: unknown, publicKeyPem: string): VerifyOutcome {
  if (typeof signed !== 'object' || signed === null || !('document' in signed) || !('signature' in signed))
    return { ok: false, reason: 'not a signed document: expected {"document", "signature"}' };
  const { document, signature } = signed as { document: unknown; signature: Partial<DocumentSignature> | null };
  if (typeof signature !== 'object' || signature === null) return { ok: false, reason: 'the signature is missing' };
  if (signature.algorithm !== SIGNATURE_ALGORITHM)
    return { ok: false, reason: `unsupported algorithm ${JSON.stringify(signature.algorithm)}` };
  let keyid: string;
  try {
    keyid = keyIdOf(publicKeyPem);
  } catch (err) {
    return { ok: false, reason: `the trusted key is not an Ed25519 public key: ${(err as Error).message}` };
  }
  if (signature.keyid !== keyid)
    return { ok: false, reason: `signed by key ${String(signature.keyid)}, not the trusted key ${keyid}` };
  let bytes: Buffer;
  try {
    bytes = Buffer.from(canonicalJson(document), 'utf8');
  } catch {
    return { ok: false, reason: 'the document cannot be serialised canonically' };
  }
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (signature.digest !== digest)
    return { ok: false, reason: `the document's digest is ${digest}, not the signed one` };
  let good = false;
  try {
    good = verify(null, bytes, publicKeyPem, Buffer.from(String(signature.sig), 'base64'));
  } catch {
    good = false;
  }
  return good ? { ok: true, keyid, digest } : { ok: false, reason: 'the Ed25519 signature does not verify' };
}
