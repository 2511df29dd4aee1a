// Signatures of registry versions, in the format of the OpenSSF model-signing specification v1.0.
//
// Layers, innermost first:
//   - an in-toto Statement v1 whose predicate (`https://model_signing/signature/v1.0`) lists every
//     file as a resource {name, algorithm: "sha256", digest}, sorted by path, and whose single
//     subject is the repo with the root digest: SHA-256 over the raw bytes of the resource digests
//     in that order (what the reference verifier, sigstore/model-transparency, recomputes: it
//     refuses a statement with more than one subject). fabrik's own fields sit under
//     `predicate.fabrik`, which v1.0 verifiers ignore.
//   - a DSSE envelope over the canonical JSON of the statement, signed with Ed25519 over the DSSE
//     pre-authentication encoding (PAE).
// The org-keyed blob ids are never signed: they mean nothing outside this server.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { canonicalJson } from '../audit/entry.js';
import { AppError } from '../domain/errors.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://model_signing/signature/v1.0';

export interface ManifestFile {
  path: string;
  size: number;
  /** Hex SHA-256 of the content. */
  sha256: string;
  /** Org-keyed id of the stored blob; never signed. */
  blobId: string;
}

export interface SignedVersion {
  repo: string;
  kind: 'model' | 'dataset';
  /** 40-hex commit id. */
  commit: string;
  /** '' for a repo's first commit. */
  parent: string;
  files: ManifestFile[];
  producer?: { workloadId: string; attempt: number };
}

export interface DsseSignature {
  keyid: string;
  /** base64 of the 64-byte Ed25519 signature. */
  sig: string;
}

export interface DsseEnvelope {
  payloadType: string;
  /** base64 of the statement's canonical JSON. */
  payload: string;
  signatures: DsseSignature[];
}

export interface SigningKey {
  /** Hex SHA-256 (all 32 bytes) of the DER SubjectPublicKeyInfo. */
  keyid: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

export interface TrustedKey {
  keyid: string;
  /** PEM (SPKI) or a KeyObject. */
  publicKey: string | KeyObject;
}

export type VerifyResult = { ok: true; signers: string[] } | { ok: false; reason: string };

/** The DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

/** Byte order of UTF-8, which is code point order: the order Python sorts names in. */
function byPath(a: { path: string }, b: { path: string }): number {
  return Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8'));
}

/** SHA-256 over the concatenated raw resource digests, in resource order (model-signing v1.0). */
export function rootDigest(sha256s: readonly string[]): string {
  const h = createHash('sha256');
  for (const d of sha256s) h.update(Buffer.from(d, 'hex'));
  return h.digest('hex');
}

/** The in-toto statement that a version's envelope signs. */
export function statementFor(v: SignedVersion): Record<string, unknown> {
  const files = [...v.files].sort(byPath);
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: v.repo, digest: { sha256: rootDigest(files.map((f) => f.sha256)) } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false, ignore_paths: [] },
      resources: files.map((f) => ({ name: f.path, algorithm: 'sha256', digest: f.sha256 })),
      fabrik: {
        repo: v.repo,
        kind: v.kind,
        commit: v.commit,
        parent: v.parent,
        producer: v.producer ? { workloadId: v.producer.workloadId, attempt: v.producer.attempt } : null,
        // Sizes are signed too: the spec's resources carry none, and a size is what clients check first.
        sizes: Object.fromEntries(files.map((f) => [f.path, f.size])),
      },
    },
  };
}

function toKeyObject(key: string | KeyObject, kind: 'private' | 'public'): KeyObject {
  const k = typeof key === 'string' ? (kind === 'private' ? createPrivateKey(key) : createPublicKey(key)) : key;
  if (k.asymmetricKeyType !== 'ed25519') {
    throw new AppError('INVALID_ARGUMENT', `signing keys must be Ed25519, got ${k.asymmetricKeyType ?? k.type}`);
  }
  return k;
}

/** keyid of a public key: hex SHA-256 of its DER SubjectPublicKeyInfo. */
export function keyIdOf(publicKey: string | KeyObject): string {
  const der = toKeyObject(publicKey, 'public').export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

function signPae(envelope: Pick<DsseEnvelope, 'payloadType' | 'payload'>, key: KeyObject): string {
  const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  return sign(null, message, key).toString('base64');
}

/** The platform's envelope for a version. */
export function signVersion(v: SignedVersion, key: SigningKey): DsseEnvelope {
  const payload = Buffer.from(canonicalJson(statementFor(v)), 'utf8').toString('base64');
  const unsigned = { payloadType: IN_TOTO_PAYLOAD_TYPE, payload };
  return { ...unsigned, signatures: [{ keyid: key.keyid, sig: signPae(unsigned, key.privateKey) }] };
}

/** The envelope with one more signature (a tenant's or an auditor's) over the same payload. */
export function countersign(envelope: DsseEnvelope, privateKey: string | KeyObject, keyid: string): DsseEnvelope {
  if (envelope.signatures.some((s) => s.keyid === keyid)) {
    throw new AppError('CONFLICT', `the envelope already carries a signature by key ${keyid}`, { keyid });
  }
  const sig = signPae(envelope, toKeyObject(privateKey, 'private'));
  return { ...envelope, signatures: [...envelope.signatures, { keyid, sig }] };
}

/** The statement inside an envelope, without checking any signature. */
export function decodeStatement(envelope: DsseEnvelope): Record<string, any> {
  try {
    const s = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
    if (typeof s === 'object' && s !== null && !Array.isArray(s)) return s;
  } catch {
    // fall through
  }
  throw new AppError('SIGNATURE_INVALID', 'the envelope payload is not a JSON statement');
}

/**
 * Checks an envelope. `trusted[0]` is the platform key: its signature must be present and valid.
 * Every other signature by a trusted key must be valid too; signatures by unknown keys are
 * ignored (they are not counted among the signers). With `expected`, the signed resources must be
 * exactly those files with those digests, and the signed commit that commit.
 */
export function verifyEnvelope(
  envelope: DsseEnvelope,
  trusted: readonly TrustedKey[],
  expected?: { files: readonly Pick<ManifestFile, 'path' | 'sha256'>[]; commit: string },
): VerifyResult {
  const fail = (reason: string): VerifyResult => ({ ok: false, reason });
  if (!isEnvelope(envelope)) return fail('malformed envelope: expected {payloadType, payload, signatures[]}');
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return fail(`unexpected payloadType ${envelope.payloadType}`);
  if (trusted.length === 0) return fail('no trusted keys given');

  const signers: string[] = [];
  for (const s of envelope.signatures) {
    const key = trusted.find((t) => t.keyid === s.keyid);
    if (!key) continue;
    let good: boolean;
    try {
      const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
      good = verify(null, message, toKeyObject(key.publicKey, 'public'), Buffer.from(s.sig, 'base64'));
    } catch {
      good = false;
    }
    if (!good) return fail(`signature by key ${s.keyid} does not verify`);
    signers.push(s.keyid);
  }
  if (!signers.includes(trusted[0].keyid)) return fail(`no signature by the platform key ${trusted[0].keyid}`);

  let statement: Record<string, any>;
  try {
    statement = decodeStatement(envelope);
  } catch (err) {
    return fail((err as Error).message);
  }
  const shape = checkStatement(statement);
  if (shape) return fail(shape);
  if (expected) {
    const mismatch = compareFiles(statement.predicate.resources, expected.files);
    if (mismatch) return fail(mismatch);
    const commit = statement.predicate.fabrik?.commit;
    if (commit !== expected.commit) return fail(`the envelope signs commit ${commit}, not ${expected.commit}`);
  }
  return { ok: true, signers };
}

function isEnvelope(e: unknown): e is DsseEnvelope {
  const x = e as DsseEnvelope;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.payloadType === 'string' &&
    typeof x.payload === 'string' &&
    Array.isArray(x.signatures) &&
    x.signatures.every((s) => typeof s?.keyid === 'string' && typeof s?.sig === 'string')
  );
}

/** Why a statement is not a model-signing v1.0 statement, or undefined when it is one. */
function checkStatement(s: Record<string, any>): string | undefined {
  if (s._type !== STATEMENT_TYPE) return `unexpected statement type ${s._type}`;
  if (s.predicateType !== PREDICATE_TYPE) return `unexpected predicateType ${s.predicateType}`;
  const resources = s.predicate?.resources;
  if (!Array.isArray(resources)) return 'the statement lists no resources';
  for (const r of resources) {
    if (typeof r?.name !== 'string' || r.algorithm !== 'sha256' || !/^[0-9a-f]{64}$/.test(r.digest)) {
      return `malformed resource ${JSON.stringify(r)}`;
    }
  }
  if (!Array.isArray(s.subject) || s.subject.length !== 1) return 'the statement must have exactly one subject';
  const root = rootDigest(resources.map((r: { digest: string }) => r.digest));
  if (s.subject[0]?.digest?.sha256 !== root) return 'the subject digest does not match the resources';
  return undefined;
}

/** A reason naming the first path that differs, or undefined when the sets are equal. */
function compareFiles(
  resources: readonly { name: string; digest: string }[],
  files: readonly Pick<ManifestFile, 'path' | 'sha256'>[],
): string | undefined {
  const signed = new Map(resources.map((r) => [r.name, r.digest]));
  const actual = new Map(files.map((f) => [f.path, f.sha256]));
  for (const f of [...files].sort(byPath)) {
    const d = signed.get(f.path);
    if (d === undefined) return `file ${f.path} is not covered by the signature`;
    if (d !== f.sha256) return `file ${f.path} has digest ${f.sha256}, the signature says ${d}`;
  }
  for (const r of resources) {
    if (!actual.has(r.name)) return `file ${r.name} is signed but missing`;
  }
  return undefined;
}

/** A signing key file that cannot be used: refused at start, before anything is served. */
export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

/**
 * The platform's Ed25519 signing key, stored as PKCS8 PEM with mode 0600; created when absent.
 * Refuses a file that others may read or write, or that holds no Ed25519 private key.
 */
export function loadOrCreateSigningKey(file: string): SigningKey {
  try {
    // 'wx': never overwrite a key another process made at the same moment.
    const fd = openSync(file, 'wx', 0o600);
    try {
      const { privateKey } = generateKeyPairSync('ed25519');
      writeSync(fd, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new SigningKeyError(`cannot create signing key file ${file}: ${(err as Error).message}`);
    }
  }
  const st = statSync(file);
  if (!st.isFile()) throw new SigningKeyError(`signing key file ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new SigningKeyError(
      `signing key file ${file} is readable or writable by group or others (mode ${mode}); run: chmod 600 ${file}`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SigningKeyError(`signing key file ${file} holds no PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new SigningKeyError(`signing key file ${file} holds a ${privateKey.asymmetricKeyType} key, not Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  return {
    keyid: keyIdOf(publicKey),
    privateKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
