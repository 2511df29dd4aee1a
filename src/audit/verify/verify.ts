// `fabrik audit verify`: what a third party checks, trusting only the log's public key. Every
// step is a pure check over what the log (or a mirror) serves and, optionally, a copy of the database:
//   1. the newest checkpoint's signature;
//   2. its consistency with a checkpoint saved earlier (the log only ever grew);
//   3. the inclusion of chosen entries (receipts) in it;
//   4. with a database copy: every stored entry is the leaf the log committed to (hash tiles,
//      checked against the signed root), so a modified, deleted or reordered row shows with its seq.
import { openCheckpoint } from '../checkpoint.js';
import { leafHash } from '../merkle/hash.js';
import { tilePath } from '../merkle/tiles.js';
import { appendLeaves, rootFromFrontier, verifyConsistency, verifyInclusion } from '../merkle/tree.js';

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** The signed note text. */
  readonly note: string;
}

export interface Finding {
  readonly check: 'signature' | 'consistency' | 'inclusion' | 'database';
  readonly ok: boolean;
  readonly message: string;
  /** The entry concerned, when there is one. */
  readonly seq?: number;
}

/** Fetches a path of the log (a mirror will do for the public paths); undefined on 404. */
export type LogFetch = (path: string, as: 'text' | 'bytes' | 'json') => Promise<string | Buffer | unknown | undefined>;

export function openSigned(note: string, verifierKey: string): Checkpoint {
  const cp = openCheckpoint(note, verifierKey);
  return { origin: cp.origin, size: cp.size, rootHash: cp.rootHash, note };
}

/** 2. The saved checkpoint is a prefix of the new one. */
export async function checkConsistency(saved: Checkpoint, now: Checkpoint, fetchLog: LogFetch): Promise<Finding> {
  const fail = (message: string): Finding => ({ check: 'consistency', ok: false, message });
  if (saved.origin !== now.origin) return fail(`the saved checkpoint is of another log (${saved.origin})`);
  if (now.size < saved.size) return fail(`the log shrank: ${saved.size} entries then, ${now.size} now`);
  if (now.size === saved.size) {
    return now.rootHash.equals(saved.rootHash)
      ? { check: 'consistency', ok: true, message: `same tree as saved (${now.size} entries)` }
      : fail(`SPLIT VIEW: two different trees of ${now.size} entries`);
  }
  if (saved.size === 0) return { check: 'consistency', ok: true, message: 'the saved checkpoint was of an empty log' };
  const p = (await fetchLog(`/audit/proof/consistency?from=${saved.size}&to=${now.size}`, 'json')) as
    | { proof: string[] }
    | undefined;
  if (!p || !Array.isArray(p.proof)) return fail('the log served no consistency proof');
  try {
    const proof = p.proof.map(hexBuf);
    verifyConsistency(saved.size, now.size, proof, saved.rootHash, now.rootHash);
  } catch (err) {
    return fail(`not consistent with the saved checkpoint: ${(err as Error).message}`);
  }
  return { check: 'consistency', ok: true, message: `${saved.size} → ${now.size} entries: consistent` };
}

export interface ReceiptLike {
  readonly seq: number;
  readonly entry: string;
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly proof: string[];
}

/** 3. One entry (its canonical JSON) is leaf seq − 1 of the checkpoint's tree. */
export function checkReceipt(r: ReceiptLike, cp: Checkpoint): Finding {
  const fail = (message: string): Finding => ({ check: 'inclusion', ok: false, seq: r.seq, message });
  if (r.treeSize !== cp.size) return fail(`the receipt is for ${r.treeSize} entries, the checkpoint has ${cp.size}`);
  if (r.leafIndex !== r.seq - 1) return fail(`entry ${r.seq} is at leaf ${r.leafIndex}, not ${r.seq - 1}: reordered`);
  try {
    verifyInclusion(r.leafIndex, r.treeSize, leafHash(Buffer.from(r.entry, 'utf8')), r.proof.map(hexBuf), cp.rootHash);
  } catch (err) {
    return fail(`entry ${r.seq} is not in the log as it is: ${(err as Error).message}`);
  }
  return { check: 'inclusion', ok: true, seq: r.seq, message: `entry ${r.seq} is included` };
}

/** The leaf hashes the log committed to, from its level-0 hash tiles, checked against the signed root. */
export async function committedLeaves(cp: Checkpoint, fetchLog: LogFetch): Promise<Buffer[]> {
  const leaves: Buffer[] = [];
  for (let n = 0; n * 256 < cp.size; n++) {
    const width = Math.min(256, cp.size - n * 256);
    const bytes = (await fetchLog(`/audit/${tilePath(0, n, width === 256 ? undefined : width)}`, 'bytes')) as
      | Buffer
      | undefined;
    if (!bytes || bytes.length !== width * 32) throw new Error(`the log served no valid tile 0/${n} (width ${width})`);
    for (let i = 0; i < width; i++) leaves.push(bytes.subarray(i * 32, i * 32 + 32));
  }
  const root = rootFromFrontier(appendLeaves(0, [], leaves).frontier);
  if (!root.equals(cp.rootHash)) throw new Error("the log's hash tiles do not add up to its signed root");
  return leaves;
}

/** 4. Every row of a database copy against the committed leaves: what differs, by seq. */
export async function checkDatabase(
  rows: AsyncIterable<{ seq: number; canonical: string }>,
  committed: readonly Buffer[],
): Promise<{ findings: Finding[]; checked: number; newer: number }> {
  const findings: Finding[] = [];
  let expected = 1;
  let checked = 0;
  let newer = 0;
  const bad = (seq: number, message: string) => findings.push({ check: 'database', ok: false, seq, message });
  for await (const r of rows) {
    for (; expected < r.seq && expected <= committed.length; expected++)
      bad(expected, `entry ${expected} is missing from the database (deleted)`);
    expected = Math.max(expected, r.seq + 1);
    if (r.seq > committed.length) {
      newer++;
      continue;
    }
    checked++;
    if (!leafHash(Buffer.from(r.canonical, 'utf8')).equals(committed[r.seq - 1]!)) {
      const stated = seqInside(r.canonical);
      bad(r.seq, stated !== r.seq ? `row ${r.seq} holds entry ${stated}: reordered` : `entry ${r.seq} was modified`);
    }
  }
  for (; expected <= committed.length; expected++)
    bad(expected, `entry ${expected} is missing from the database (deleted)`);
  return { findings, checked, newer };
}

function seqInside(canonical: string): number | undefined {
  try {
    const v = (JSON.parse(canonical) as { seq?: unknown }).seq;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

function hexBuf(h: string): Buffer {
  if (typeof h !== 'string' || !/^[0-9a-f]{64}$/i.test(h))
    throw new Error(`not a 32-byte hex hash: ${String(h).slice(0, 20)}`);
  return Buffer.from(h, 'hex');
}
