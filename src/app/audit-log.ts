// Serving the verifiable audit log: the latest checkpoint (cosigned by the witnesses that
// signed it), receipts (an entry with its inclusion proof), consistency proofs, hash tiles
// (C2SP tlog-tiles, immutable once full) and witnesses' cosignatures. Checkpoints, proofs and
// tiles hold hashes only and are public; an entry and its receipt are visible as in the audit
// trail (operators: all; an org's org-wide roles: that org's).
import type { Kysely } from 'kysely';
import { openCheckpoint } from '../audit/checkpoint.js';
import { verifyCosignature } from '../audit/cosignature.js';
import { leafHash } from '../audit/merkle/hash.js';
import { parseTilePath, tileNodeIds } from '../audit/merkle/tiles.js';
import { consistencyProof, inclusionProof } from '../audit/merkle/tree.js';
import { checkpointRow, nodeRange, nodeReader, readState } from '../audit/log/tree-store.js';
import { AppError, notFound } from '../domain/errors.js';
import { orgRole } from '../policy/roles.js';
import type { Database } from '../store/schema.js';
import type { Ctx } from './context.js';

const hex = (b: Buffer) => b.toString('hex');

/** The newest signed checkpoint, with the witnesses' cosignature lines appended (a cosigned note). */
export async function latestCheckpoint(db: Kysely<Database>): Promise<{ size: number; note: string }> {
  const cp = await checkpointRow(db);
  if (!cp) throw new AppError('UNAVAILABLE', 'the audit log has no checkpoint yet');
  const cosigs = await db
    .selectFrom('audit_cosignatures')
    .select('line')
    .where('size', '=', cp.size)
    .orderBy('witness')
    .execute();
  return { size: cp.size, note: cp.note + cosigs.map((c) => `${c.line}\n`).join('') };
}

export interface Receipt {
  readonly seq: number;
  /** The entry exactly as hashed (its canonical JSON). */
  readonly entry: string;
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly leafHash: string;
  readonly proof: string[];
  /** The signed checkpoint of treeSize the proof leads to. */
  readonly checkpoint: string;
}

/** An entry with its inclusion proof against the checkpoint of `size` (default: the newest). */
export async function receipt(ctx: Ctx, seq: number, size?: number): Promise<Receipt> {
  const row = await ctx.db
    .selectFrom('audit_entries')
    .select(['seq', 'org_id', 'canonical'])
    .where('seq', '=', seq)
    .executeTakeFirst();
  // Another org's entry, or a platform one for a tenant, is "not found" like one that does not exist.
  const visible = row && (ctx.caller.operator || (row.org_id !== '' && orgRole(ctx.caller, row.org_id) !== null));
  if (!row || !visible) throw notFound('audit entry', String(seq));
  const cp = await checkpointRow(ctx.db, size);
  if (!cp) throw new AppError('NOT_FOUND', `no checkpoint of size ${size}`, { size });
  if (cp.size < seq)
    throw new AppError(
      'CONFLICT',
      `entry ${seq} is not in the checkpoint of size ${cp.size} yet (merge delay about 1 s)`,
    );
  const proof = await inclusionProof(seq - 1, cp.size, nodeReader(ctx.db));
  return {
    seq,
    entry: row.canonical,
    leafIndex: seq - 1,
    treeSize: cp.size,
    leafHash: hex(leafHash(Buffer.from(row.canonical, 'utf8'))),
    proof: proof.map(hex),
    checkpoint: cp.note,
  };
}

/** The proof that the tree of size `to` extends the tree of size `from` (both integrated). */
export async function consistency(db: Kysely<Database>, from: number, to: number) {
  const { size } = await readState(db);
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to)) || from < 1 || to < from || to > size)
    throw new AppError('INVALID_ARGUMENT', `need 1 ≤ from ≤ to ≤ ${size} (the tree's size); got ${from}, ${to}`);
  const proof = await consistencyProof(from, to, nodeReader(db));
  return { size1: from, size2: to, proof: proof.map(hex) };
}

/** A hash tile's bytes, or undefined when the path is not one or the tree does not have it (yet). */
export async function hashTile(
  db: Kysely<Database>,
  path: string,
): Promise<{ bytes: Buffer; full: boolean } | undefined> {
  const t = parseTilePath(path);
  // Entry bundles hold tenants' entries: not public (an entry is read through its receipt).
  if (t?.kind !== 'tile') return undefined;
  const { size } = await readState(db);
  const width = t.width;
  // Complete nodes at this tile level's tree level (8 · L) in a tree of `size` leaves.
  const have = Math.floor(size / 2 ** (8 * t.level));
  if (t.index * 256 + width > have) return undefined;
  const ids = tileNodeIds(t.level, t.index, width);
  const hashes = await nodeRange(db, ids[0]!.level, ids[0]!.index, ids.length);
  return { bytes: Buffer.concat(hashes), full: width === 256 };
}

/**
 * A witness's cosignature of a checkpoint this log issued: kept when it verifies with a witness
 * key the operator configured, and served with that checkpoint from then on.
 */
export async function addCosignature(
  db: Kysely<Database>,
  logVerifierKey: string,
  witnessKeys: readonly string[],
  body: { checkpoint: string; cosignature: string },
): Promise<{ size: number; witness: string }> {
  let cp: ReturnType<typeof openCheckpoint>;
  try {
    cp = openCheckpoint(body.checkpoint, logVerifierKey);
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `checkpoint: ${(err as Error).message}`);
  }
  const ours = await checkpointRow(db, cp.size);
  if (!ours || ours.root !== hex(cp.rootHash))
    throw new AppError('NOT_FOUND', `this log issued no such checkpoint of size ${cp.size}`);
  const bodyText = ours.note.slice(0, ours.note.indexOf('\n\n') + 1);
  for (const key of witnessKeys) {
    try {
      verifyCosignature(bodyText, body.cosignature.trim(), key);
    } catch {
      continue;
    }
    const witness = key.split('+')[0]!;
    await db
      .insertInto('audit_cosignatures')
      .values({ size: cp.size, witness, line: body.cosignature.trim(), created_at: new Date().toISOString() })
      .onConflict((oc) => oc.columns(['size', 'witness']).doNothing())
      .execute();
    return { size: cp.size, witness };
  }
  throw new AppError('FORBIDDEN', 'the cosignature does not verify with any witness key this log accepts');
}
