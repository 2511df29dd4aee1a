// C2SP signed notes (c2sp.org/signed-note), the envelope of the audit log's checkpoints and of
// witnesses' cosignatures. A note is UTF-8 text ending in a newline, a blank line, then one line
// per signature: `— <key name> <base64(4-byte key id ‖ signature)>`. Keys are written as Go's
// golang.org/x/mod/sumdb/note writes them, so keys and notes interoperate with Go tooling:
//
//   verifier key  <name>+<key id, 8 hex>+<base64(type ‖ public key)>
//   signer key    PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(type ‖ Ed25519 seed)>
//
// where key id = SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]. This module signs and verifies
// type 0x01 (plain Ed25519 over the note text); cosignature.ts reuses the key texts for 0x04.
import {
  type KeyObject,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';

/** Signature types (the byte before the key material), from the signed-note spec. */
export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;

/** The spec asks verifiers to bound a note; these bounds are far above any checkpoint's. */
export const MAX_NOTE_BYTES = 1024 * 1024;
export const MAX_SIGNATURES = 100;

const EM_DASH_SPACE = '\u2014 ';
/** PKCS #8 DER prefix of an Ed25519 private key: the 32-byte seed follows (RFC 8410). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER prefix of an Ed25519 public key: the 32 key bytes follow. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
/** Standard base64 with padding (RFC 4648 §4); Buffer.from(…, 'base64') alone accepts anything. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type NoteErrorReason =
  | 'malformed' // not a note: bad UTF-8, control characters, a line that is not a signature…
  | 'no-blank-line' // no blank line separates the text from the signatures
  | 'bad-base64'
  | 'bad-name' // a key name that is empty or has a space, a plus or a newline
  | 'bad-key' // a key text that does not parse, or whose key id does not match its key
  | 'too-large'
  | 'unverified' // no signature from a known key
  | 'bad-signature' // a known key's signature that does not verify
  | 'malformed-checkpoint' // (checkpoint.ts) the text is not a checkpoint body
  | 'wrong-origin'; // (checkpoint.ts) a checkpoint of another log

export class NoteError extends Error {
  constructor(
    readonly reason: NoteErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'NoteError';
  }
}

export interface VerifierKey {
  readonly name: string;
  /** The 4-byte key id, as 8 lowercase hex digits. */
  readonly keyId: string;
  readonly type: number;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly key: KeyObject;
  /** The key text this was parsed from (or generated as). */
  readonly text: string;
}

export interface SignerKey {
  readonly name: string;
  readonly keyId: string;
  readonly type: number;
  readonly publicKey: Buffer;
  readonly key: KeyObject;
}

export interface SignatureRef {
  readonly name: string;
  readonly keyId: string;
  /** The signature as written in the note: base64(key id ‖ signature). */
  readonly base64: string;
}

export interface OpenedNote {
  /** The signed text, with its final newline. */
  readonly text: string;
  /** Signatures that verified, one per known key. */
  readonly verified: SignatureRef[];
  /** Signatures from keys not given (e.g. witnesses' cosignatures), not checked. */
  readonly unknown: SignatureRef[];
}

/** Key names: non-empty, no Unicode spaces (newlines included) and no plus. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && wellFormed(name) && !/[\p{White_Space}+]/u.test(name);
}

/** SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4] as 8 hex digits. */
export function keyIdOf(name: string, type: number, publicKey: Uint8Array): string {
  return createHash('sha256')
    .update(Buffer.from(`${name}\n`, 'utf8'))
    .update(Buffer.from([type]))
    .update(publicKey)
    .digest()
    .subarray(0, 4)
    .toString('hex');
}

export function decodeBase64(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

/** A new Ed25519 key pair as signer and verifier key texts (type 0x01 unless asked otherwise). */
export function generateSigner(name: string, type = SIG_ED25519): { signerKey: string; verifierKey: string } {
  if (!isValidKeyName(name)) throw new NoteError('bad-name', `invalid key name ${JSON.stringify(name)}`);
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const publicKey = rawPublicKey(privateKey);
  const keyId = keyIdOf(name, type, publicKey);
  const b64 = (k: Buffer) => Buffer.concat([Buffer.from([type]), k]).toString('base64');
  return {
    signerKey: `PRIVATE+KEY+${name}+${keyId}+${b64(seed)}`,
    verifierKey: `${name}+${keyId}+${b64(publicKey)}`,
  };
}

/** Parses `<name>+<hex key id>+<base64(type ‖ public key)>`, checking the key id. */
export function parseVerifierKey(text: string, type = SIG_ED25519): VerifierKey {
  const [name, id, b64] = splitKeyText(text, 3);
  const material = decodeBase64(b64);
  if (!isValidKeyName(name) || !/^[0-9a-fA-F]{8}$/.test(id) || !material)
    throw new NoteError('bad-key', 'malformed verifier key');
  if (material[0] !== type || material.length !== 33)
    throw new NoteError('bad-key', `verifier key ${name}: not an Ed25519 key of signature type 0x0${type}`);
  const publicKey = material.subarray(1);
  const keyId = id.toLowerCase();
  if (keyIdOf(name, type, publicKey) !== keyId) throw new NoteError('bad-key', `verifier key ${name}: key id mismatch`);
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
  return { name, keyId, type, publicKey, key, text };
}

/** Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(type ‖ seed)>`, checking the key id. */
export function parseSignerKey(text: string, type = SIG_ED25519): SignerKey {
  const [priv, word, name, id, b64] = splitKeyText(text, 5);
  const material = decodeBase64(b64);
  if (priv !== 'PRIVATE' || word !== 'KEY' || !isValidKeyName(name) || !/^[0-9a-fA-F]{8}$/.test(id) || !material)
    throw new NoteError('bad-key', 'malformed signer key');
  if (material[0] !== type || material.length !== 33)
    throw new NoteError('bad-key', `signer key ${name}: not an Ed25519 key of signature type 0x0${type}`);
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, material.subarray(1)]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = rawPublicKey(key);
  // The key id names the public key, which a signer key does not carry: derive it, then compare.
  const keyId = id.toLowerCase();
  if (keyIdOf(name, type, publicKey) !== keyId) throw new NoteError('bad-key', `signer key ${name}: key id mismatch`);
  return { name, keyId, type, publicKey, key };
}

/** Signs `text` (which must end with a newline) with one or more type 0x01 keys. */
export function signNote(text: string, signerKeys: string | SignerKey | readonly (string | SignerKey)[]): string {
  checkText(text);
  if (!text.endsWith('\n')) throw new NoteError('malformed', 'note text must end with a newline');
  const keys = (Array.isArray(signerKeys) ? signerKeys : [signerKeys]).map((k) =>
    typeof k === 'string' ? parseSignerKey(k) : (k as SignerKey),
  );
  if (keys.length === 0) throw new NoteError('bad-key', 'no signer key');
  const message = Buffer.from(text, 'utf8');
  const lines = keys.map((k) => {
    if (k.type !== SIG_ED25519) throw new NoteError('bad-key', `signer key ${k.name}: not a plain Ed25519 key`);
    return signatureLine(k.name, k.keyId, sign(null, message, k.key));
  });
  return `${text}\n${lines.join('')}`;
}

/** `— <name> <base64(key id ‖ signature)>\n`: how every signature, cosignatures too, is written. */
export function signatureLine(name: string, keyId: string, signature: Uint8Array): string {
  if (!isValidKeyName(name)) throw new NoteError('bad-name', `invalid key name ${JSON.stringify(name)}`);
  return `${EM_DASH_SPACE}${name} ${Buffer.concat([Buffer.from(keyId, 'hex'), signature]).toString('base64')}\n`;
}

/** One signature line (without its newline) taken apart; `signature` is what follows the key id. */
export function parseSignatureLine(line: string): { name: string; keyId: string; base64: string; signature: Buffer } {
  if (!line.startsWith(EM_DASH_SPACE)) throw new NoteError('malformed', 'a signature line must start with "— "');
  const rest = line.slice(EM_DASH_SPACE.length);
  const space = rest.indexOf(' ');
  const name = space < 0 ? rest : rest.slice(0, space);
  const b64 = space < 0 ? '' : rest.slice(space + 1);
  if (!isValidKeyName(name)) throw new NoteError('bad-name', `invalid key name ${JSON.stringify(name.slice(0, 100))}`);
  const bytes = decodeBase64(b64);
  if (!bytes || b64 === '') throw new NoteError('bad-base64', `signature of ${name}: not base64`);
  if (bytes.length < 5) throw new NoteError('malformed', `signature of ${name}: too short`);
  return { name, keyId: bytes.subarray(0, 4).toString('hex'), base64: b64, signature: bytes.subarray(4) };
}

/**
 * Splits a note and verifies the signatures of the given (type 0x01) verifier keys. Succeeds
 * when at least one known key signed and every known key's signature verifies; signatures of
 * other keys are returned unchecked, as the spec requires them to be ignored.
 */
export function openNote(note: string | Uint8Array, verifierKeys: readonly (string | VerifierKey)[]): OpenedNote {
  const raw = typeof note === 'string' ? note : decodeUtf8(note);
  checkText(raw);
  // The text ends at the last blank line: the text itself may hold blank lines, signatures may not.
  const split = raw.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('no-blank-line', 'no blank line before the signatures');
  const text = raw.slice(0, split + 1);
  const block = raw.slice(split + 2);
  if (block === '' || !block.endsWith('\n'))
    throw new NoteError('malformed', 'the signature lines must end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError('too-large', `more than ${MAX_SIGNATURES} signatures`);

  const keys = verifierKeys.map((k) => (typeof k === 'string' ? parseVerifierKey(k) : k));
  const message = Buffer.from(text, 'utf8');
  const verified: SignatureRef[] = [];
  const unknown: SignatureRef[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const sig = parseSignatureLine(line);
    const ref = { name: sig.name, keyId: sig.keyId, base64: sig.base64 };
    const matches = keys.filter((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (matches.length === 0) {
      // Repeated identical lines from an unknown key are listed once.
      if (!unknown.some((u) => u.name === ref.name && u.base64 === ref.base64)) unknown.push(ref);
      continue;
    }
    if (new Set(matches.map((k) => k.publicKey.toString('hex'))).size > 1)
      throw new NoteError('bad-key', `ambiguous key ${sig.name}+${sig.keyId}: two verifier keys share name and id`);
    // One signature per key counts; like Go, a key's later lines are not looked at.
    const id = `${sig.name}+${sig.keyId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (!verify(null, message, matches[0]!.key, sig.signature))
      throw new NoteError('bad-signature', `invalid signature for key ${id}`);
    verified.push(ref);
  }
  if (verified.length === 0) {
    const names = unknown.map((u) => `${u.name}+${u.keyId}`).join(', ');
    throw new NoteError('unverified', `no signature from a known key (signed by: ${names || 'nobody'})`);
  }
  return { text, verified, unknown };
}

/** The size, UTF-8 and control-character rules every note and note text must meet. */
function checkText(text: string): void {
  if (text.length > MAX_NOTE_BYTES || Buffer.byteLength(text, 'utf8') > MAX_NOTE_BYTES)
    throw new NoteError('too-large', `note larger than ${MAX_NOTE_BYTES} bytes`);
  if (!wellFormed(text)) throw new NoteError('malformed', 'note is not valid UTF-8');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) throw new NoteError('malformed', 'note has control characters');
}

/** No lone UTF-16 surrogates: such a string has no UTF-8 encoding (String#isWellFormed is ES2024). */
function wellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

function decodeUtf8(bytes: Uint8Array): string {
  if (bytes.length > MAX_NOTE_BYTES) throw new NoteError('too-large', `note larger than ${MAX_NOTE_BYTES} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new NoteError('malformed', 'note is not valid UTF-8');
  }
}

/** Cuts at the first n-1 plus signs (base64 may itself hold a plus), insisting on n parts. */
function splitKeyText(text: string, n: number): string[] {
  if (typeof text !== 'string' || text.length > 4096) throw new NoteError('bad-key', 'malformed key');
  const parts: string[] = [];
  let rest = text;
  for (let i = 0; i < n - 1; i++) {
    const plus = rest.indexOf('+');
    if (plus < 0) throw new NoteError('bad-key', 'malformed key');
    parts.push(rest.slice(0, plus));
    rest = rest.slice(plus + 1);
  }
  parts.push(rest);
  return parts;
}

function rawPublicKey(privateKey: KeyObject): Buffer {
  return createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
}
