// In-browser verification of an audit entry's receipt, with the CLI's own code: the checkpoint is
// parsed by src/audit/checkpoint.ts, signature lines and key ids by src/audit/note.ts, and the
// inclusion proof checked by `checkReceipt` of `fabrik audit verify` (src/audit/verify/verify.ts,
// over src/audit/merkle/). Only the Ed25519 signature check itself is WebCrypto's, since the
// browser has no synchronous Ed25519; it checks the same bytes the CLI checks.
import '../shims/buffer-global.js';
import { parseCheckpoint } from '../../../src/audit/checkpoint.js';
import { SIG_ED25519, decodeBase64, isValidKeyName, keyIdOf, parseSignatureLine } from '../../../src/audit/note.js';
import { type Finding, type ReceiptLike, checkReceipt } from '../../../src/audit/verify/verify.js';

export interface Receipt extends ReceiptLike {
  readonly checkpoint: string;
}

export interface Verification {
  readonly ok: boolean;
  readonly findings: readonly Finding[];
  readonly origin?: string;
  readonly treeSize?: number;
}

interface LogKey {
  readonly name: string;
  readonly keyId: string;
  readonly publicKey: Uint8Array;
}

/** `<name>+<key id>+<base64(0x01 ‖ Ed25519 public key)>`, with the key id checked as note.ts does. */
export function parseLogKey(text: string): LogKey {
  // The base64 part may itself hold '+': split at the first two only (as note.ts does).
  const t = text.trim();
  const a = t.indexOf('+');
  const b = a < 0 ? -1 : t.indexOf('+', a + 1);
  if (b < 0) throw new Error('malformed verifier key');
  const [name, id, b64] = [t.slice(0, a), t.slice(a + 1, b), t.slice(b + 1)];
  const material = decodeBase64(b64);
  if (!isValidKeyName(name) || !/^[0-9a-fA-F]{8}$/.test(id) || !material) throw new Error('malformed verifier key');
  if (material[0] !== SIG_ED25519 || material.length !== 33)
    throw new Error(`verifier key ${name}: not an Ed25519 key`);
  const publicKey = new Uint8Array(material.subarray(1));
  if (keyIdOf(name, SIG_ED25519, publicKey) !== id.toLowerCase())
    throw new Error(`verifier key ${name}: key id mismatch`);
  return { name, keyId: id.toLowerCase(), publicKey };
}

/** The note's text when the log key signed it (WebCrypto Ed25519), else a failed finding's message. */
export async function verifyNoteSignature(
  note: string,
  key: LogKey,
  subtle: SubtleCrypto = crypto.subtle,
): Promise<string> {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const lines = note
    .slice(split + 2)
    .replace(/\n$/, '')
    .split('\n');
  const mine = lines.map((l) => parseSignatureLine(l)).find((s) => s.name === key.name && s.keyId === key.keyId);
  if (!mine) throw new Error(`the checkpoint carries no signature of ${key.name}+${key.keyId}`);
  const k = await subtle.importKey('raw', key.publicKey as BufferSource, { name: 'Ed25519' }, false, ['verify']);
  const ok = await subtle.verify(
    { name: 'Ed25519' },
    k,
    new Uint8Array(mine.signature) as BufferSource,
    new TextEncoder().encode(text) as BufferSource,
  );
  if (!ok) throw new Error(`invalid signature for key ${key.name}+${key.keyId}`);
  return text;
}

export async function verifyReceipt(
  receipt: Receipt,
  logKeyText: string,
  subtle?: SubtleCrypto,
): Promise<Verification> {
  let text: string;
  try {
    text = await verifyNoteSignature(receipt.checkpoint, parseLogKey(logKeyText), subtle);
  } catch (e) {
    return { ok: false, findings: [{ check: 'signature', ok: false, message: (e as Error).message }] };
  }
  let cp: ReturnType<typeof parseCheckpoint>;
  try {
    cp = parseCheckpoint(text);
  } catch (e) {
    return { ok: false, findings: [{ check: 'signature', ok: false, message: (e as Error).message }] };
  }
  const signature: Finding = {
    check: 'signature',
    ok: true,
    message: `checkpoint of ${cp.origin} at ${cp.size} entries, signed by the log key`,
  };
  const inclusion = checkReceipt(receipt, {
    origin: cp.origin,
    size: cp.size,
    rootHash: cp.rootHash,
    note: receipt.checkpoint,
  });
  return { ok: inclusion.ok, findings: [signature, inclusion], origin: cp.origin, treeSize: cp.size };
}
