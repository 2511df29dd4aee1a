// Witness cosignatures (c2sp.org/tlog-cosignature, the Ed25519 "cosignature/v1" type): a
// witness's statement that, as of a time, this checkpoint is the largest consistent tree head it
// has seen for the log. The witness signs, with its own Ed25519 key,
//
//   cosignature/v1\ntime <POSIX seconds>\n<the whole checkpoint body, extension lines included>
//
// and the note signature line it adds to the checkpoint is
//
//   — <witness name> base64(key id ‖ 8-byte big-endian timestamp ‖ 64-byte Ed25519 signature)
//
// with key id = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]. A witness's keys are written in the
// signed-note key formats with signature type 0x04, as the spec allows for verifier keys and as
// transparency-dev/formats reads signer keys:
//
//   verifier key  <name>+<key id>+<base64(0x04 ‖ public key)>
//   signer key    PRIVATE+KEY+<name>+<key id>+<base64(0x04 ‖ seed)>
//
// The type byte keeps a witness key from being mistaken for a log key (and a cosignature for a
// plain note signature): the message signed here is not the note text.
import { sign, verify } from 'node:crypto';
import { parseCheckpoint } from './checkpoint.js';
import {
  NoteError,
  SIG_COSIGNATURE_V1,
  type SignerKey,
  type VerifierKey,
  generateSigner,
  parseSignatureLine,
  parseSignerKey,
  parseVerifierKey,
  signatureLine,
} from './note.js';

const HEADER = 'cosignature/v1\n';
/** key id (4) ‖ timestamp (8) ‖ Ed25519 signature (64). */
const COSIGNATURE_BYTES = 4 + 8 + 64;

/** A new witness key pair (signature type 0x04) as signer and verifier key texts. */
export function generateWitnessKey(name: string): { signerKey: string; verifierKey: string } {
  return generateSigner(name, SIG_COSIGNATURE_V1);
}

export function parseWitnessVerifierKey(text: string): VerifierKey {
  return parseVerifierKey(text, SIG_COSIGNATURE_V1);
}

export function parseWitnessSignerKey(text: string): SignerKey {
  return parseSignerKey(text, SIG_COSIGNATURE_V1);
}

/** The bytes a witness signs for `checkpointBody` at `time`. */
export function cosignedMessage(checkpointBody: string, time: number): Buffer {
  return Buffer.from(`${HEADER}time ${time}\n${checkpointBody}`, 'utf8');
}

/**
 * The witness's signature line for a checkpoint body (the note text, not the signed note), at
 * `time` in POSIX seconds. The line has no trailing newline; add one to append it to the note.
 */
export function cosign(checkpointBody: string, witnessSignerKey: string | SignerKey, time: number): string {
  const key = typeof witnessSignerKey === 'string' ? parseWitnessSignerKey(witnessSignerKey) : witnessSignerKey;
  if (key.type !== SIG_COSIGNATURE_V1) throw new NoteError('bad-key', `${key.name}: not a witness (type 0x04) key`);
  checkTime(time);
  // Refuse to vouch for something that is not a checkpoint (throws 'malformed-checkpoint').
  parseCheckpoint(checkpointBody);
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigUInt64BE(BigInt(time));
  const signature = sign(null, cosignedMessage(checkpointBody, time), key.key);
  return signatureLine(key.name, key.keyId, Buffer.concat([timestamp, signature])).slice(0, -1);
}

/** A cosignature line taken apart, unverified: whose it is and when it says it was made. */
export function parseCosignature(line: string): { name: string; keyId: string; time: number; signature: Buffer } {
  const sig = parseSignatureLine(line.endsWith('\n') ? line.slice(0, -1) : line);
  if (sig.signature.length !== COSIGNATURE_BYTES - 4)
    throw new NoteError(
      'malformed',
      `cosignature of ${sig.name}: ${sig.signature.length + 4} bytes, not ${COSIGNATURE_BYTES}`,
    );
  const time = sig.signature.readBigUInt64BE(0);
  // The spec caps the timestamp at 2^63 - 1; a JS number is exact up to 2^53 - 1, far enough.
  if (time > BigInt(Number.MAX_SAFE_INTEGER))
    throw new NoteError('malformed', `cosignature of ${sig.name}: timestamp out of range`);
  return { name: sig.name, keyId: sig.keyId, time: Number(time), signature: sig.signature.subarray(8) };
}

/**
 * Verifies a witness's cosignature line of `checkpointBody` with its verifier key; returns the
 * time it states. Throws NoteError: 'unverified' for another key's line, 'bad-signature' when the
 * key's signature does not verify, 'malformed'/'bad-base64'/'bad-name' for what is not a line.
 */
export function verifyCosignature(
  checkpointBody: string,
  line: string,
  witnessVerifierKey: string | VerifierKey,
): { time: number } {
  const key = typeof witnessVerifierKey === 'string' ? parseWitnessVerifierKey(witnessVerifierKey) : witnessVerifierKey;
  if (key.type !== SIG_COSIGNATURE_V1) throw new NoteError('bad-key', `${key.name}: not a witness (type 0x04) key`);
  const cs = parseCosignature(line);
  if (cs.name !== key.name || cs.keyId !== key.keyId)
    throw new NoteError('unverified', `cosignature by ${cs.name}+${cs.keyId}, not by ${key.name}+${key.keyId}`);
  if (!verify(null, cosignedMessage(checkpointBody, cs.time), key.key, cs.signature))
    throw new NoteError('bad-signature', `invalid cosignature for key ${key.name}+${key.keyId}`);
  return { time: cs.time };
}

function checkTime(time: number): void {
  if (!Number.isSafeInteger(time) || time < 0) throw new NoteError('malformed', `time ${time} is not POSIX seconds`);
}
