// C2SP checkpoints (c2sp.org/tlog-checkpoint): the signed statement "this log, at this size, has
// this Merkle root". The note text is exactly
//
//   <origin>\n<tree size, decimal>\n<base64 of the 32-byte RFC 6962 root>\n[<extension line>\n…]
//
// and parsing is strict (no leading zeros, no sign, a root of exactly 32 bytes in canonical
// base64): two texts for one tree head would let a log show different bytes to different people.
import {
  NoteError,
  type OpenedNote,
  type SignerKey,
  type VerifierKey,
  openNote,
  parseVerifierKey,
  signNote,
} from './note.js';

export const ROOT_HASH_SIZE = 32;

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** Extension lines (opaque, discouraged by the spec): none in fabrik's own checkpoints. */
  readonly extensions?: readonly string[];
}

export interface OpenedCheckpoint extends Required<Checkpoint> {
  /** The checkpoint body (the signed note text). */
  readonly body: string;
  /** The note as opened: signatures verified with the log key, and the others (cosignatures). */
  readonly note: OpenedNote;
}

/** The note text of a checkpoint; throws NoteError('malformed-checkpoint') on what cannot be one. */
export function formatCheckpoint(cp: Checkpoint): string {
  const extensions = cp.extensions ?? [];
  if (!validLine(cp.origin)) throw bad('the origin must be a non-empty line');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw bad(`tree size ${cp.size} is not a non-negative integer`);
  if (!((cp.rootHash as unknown) instanceof Uint8Array) || cp.rootHash.length !== ROOT_HASH_SIZE)
    throw bad(`the root hash must be ${ROOT_HASH_SIZE} bytes`);
  if (!extensions.every(validLine)) throw bad('extension lines must be non-empty lines');
  const root = Buffer.from(cp.rootHash).toString('base64');
  return [cp.origin, String(cp.size), root, ...extensions].map((l) => `${l}\n`).join('');
}

/** Parses a checkpoint body (the note text, without signatures). */
export function parseCheckpoint(text: string): Required<Checkpoint> {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw bad('a checkpoint must end with a newline');
  if (text.length > 1024 * 1024) throw bad('checkpoint too large');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('a checkpoint has at least three lines: origin, size, root hash');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (!validLine(origin)) throw bad('the origin line is empty or has control characters');
  // Decimal, no sign, no leading zeros ("0" for the empty tree), and exact as a JS number.
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText)))
    throw bad(`tree size ${JSON.stringify(sizeText.slice(0, 40))} is not a decimal without leading zeros`);
  const rootHash = Buffer.from(rootText, 'base64');
  if (rootHash.length !== ROOT_HASH_SIZE || rootHash.toString('base64') !== rootText)
    throw bad(`the root hash is not the base64 of ${ROOT_HASH_SIZE} bytes`);
  if (!extensions.every(validLine)) throw bad('extension lines must be non-empty');
  return { origin, size: Number(sizeText), rootHash, extensions };
}

/** The checkpoint as a note signed by the log's signer key. */
export function signCheckpoint(cp: Checkpoint, signerKey: string | SignerKey): string {
  return signNote(formatCheckpoint(cp), signerKey);
}

/**
 * Opens a checkpoint note: it must be signed by the log's key (other signatures, such as
 * witnesses' cosignatures, are left for the caller), be a well-formed body, and, when `origin`
 * is given, be that log's.
 */
export function openCheckpoint(
  noteText: string,
  logVerifierKey: string | VerifierKey,
  opts: { origin?: string } = {},
): OpenedCheckpoint {
  const key = typeof logVerifierKey === 'string' ? parseVerifierKey(logVerifierKey) : logVerifierKey;
  const note = openNote(noteText, [key]);
  const cp = parseCheckpoint(note.text);
  if (opts.origin !== undefined && cp.origin !== opts.origin)
    throw new NoteError(
      'wrong-origin',
      `checkpoint of ${JSON.stringify(cp.origin.slice(0, 200))}, expected ${JSON.stringify(opts.origin)}`,
    );
  return { ...cp, body: note.text, note };
}

function validLine(line: unknown): line is string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a line holds no control characters, newline included
  return typeof line === 'string' && line.length > 0 && !/[\u0000-\u001f]/.test(line);
}

function bad(message: string): NoteError {
  return new NoteError('malformed-checkpoint', message);
}
