// Offline checking of Merkle proofs given as JSON, for `fabrik audit proof-check`: anyone holding
// a signed tree head and a proof can check it without trusting (or reaching) the server. The input
// is untrusted, so every field is checked and every failure becomes a verdict with a reason,
// never an exception.
import { ProofError, verifyConsistency, verifyInclusion } from './tree.js';

export type Verdict = { valid: true } | { valid: false; error: string };

/** Exit codes of the command: all valid, some invalid, input not a JSON array of checks. */
export const PROOF_CHECK_EXIT = { valid: 0, invalid: 1, badInput: 2 } as const;

/** Thrown while reading one check's fields; becomes that check's verdict. */
class FieldError extends Error {}

/** Verifies one check, `{"type":"inclusion",…}` or `{"type":"consistency",…}`. */
export function checkProof(check: unknown): Verdict {
  try {
    if (typeof check !== 'object' || check === null || Array.isArray(check))
      throw new FieldError('a check must be a JSON object');
    const c = check as Record<string, unknown>;
    const type = field(c, 'type');
    if (type === 'inclusion') {
      verifyInclusion(
        count(c, 'leafIndex'),
        count(c, 'treeSize'),
        hash(c, 'leafHash'),
        hashList(c, 'proof'),
        hash(c, 'rootHash'),
      );
    } else if (type === 'consistency') {
      verifyConsistency(count(c, 'size1'), count(c, 'size2'), hashList(c, 'proof'), hash(c, 'root1'), hash(c, 'root2'));
    } else {
      throw new FieldError(`type must be "inclusion" or "consistency", not ${describe(type)}`);
    }
    return { valid: true };
  } catch (err) {
    if (err instanceof FieldError || err instanceof ProofError) return { valid: false, error: err.message };
    throw err; // a bug here, not bad input: let it show
  }
}

/**
 * The whole command on its input text: one JSON verdict line per check, in order, and the exit
 * code. Input that is not a JSON array gets a single invalid verdict and the bad-input code.
 */
export function runProofCheck(text: string): { lines: string[]; exitCode: number } {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    return badInput(`input is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(input)) return badInput(`input must be a JSON array of checks, not ${describe(input)}`);
  const verdicts = input.map(checkProof);
  return {
    lines: verdicts.map((v) => JSON.stringify(v)),
    exitCode: verdicts.every((v) => v.valid) ? PROOF_CHECK_EXIT.valid : PROOF_CHECK_EXIT.invalid,
  };
}

function badInput(error: string): { lines: string[]; exitCode: number } {
  return { lines: [JSON.stringify({ valid: false, error })], exitCode: PROOF_CHECK_EXIT.badInput };
}

/** A field that must be present. */
function field(c: Record<string, unknown>, name: string): unknown {
  if (c[name] === undefined) throw new FieldError(`${name} is missing`);
  return c[name];
}

function count(c: Record<string, unknown>, name: string): number {
  const v = field(c, name);
  // JSON numbers beyond 2^53 have already lost precision when parsed, so they are refused
  // rather than checked against a size that is not the one written.
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new FieldError(`${name} must be a non-negative integer below 2^53, not ${describe(v)}`);
  return v;
}

function hash(c: Record<string, unknown>, name: string): Buffer {
  return hexBytes(field(c, name), name);
}

function hashList(c: Record<string, unknown>, name: string): Buffer[] {
  const v = field(c, name);
  if (!Array.isArray(v)) throw new FieldError(`${name} must be an array of hex hashes, not ${describe(v)}`);
  return v.map((h, i) => hexBytes(h, `${name}[${i}]`));
}

/** Hex of any even length (the verifiers then say if it is not 32 bytes); either case. */
function hexBytes(v: unknown, name: string): Buffer {
  if (typeof v !== 'string') throw new FieldError(`${name} must be a hex string, not ${describe(v)}`);
  // Buffer.from(…, 'hex') silently stops at the first bad character, so check first.
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(v)) throw new FieldError(`${name} is not hex: ${describe(v)}`);
  return Buffer.from(v, 'hex');
}

/** A short rendering of an unexpected value for an error message. */
function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
