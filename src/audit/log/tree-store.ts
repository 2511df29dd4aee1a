// The audit log's Merkle tree in the database: complete subtree hashes in `audit_log_nodes`, the
// sequencer's frontier in `audit_log_state`. Reads serve proofs and tiles in one query each.
import { type Kysely, PostgresAdapter, sql } from 'kysely';
import type { Trx } from '../journal.js';
import type { Database } from '../../store/schema.js';
import type { NodeId, NodeReader } from '../merkle/tree.js';

export type Db = Kysely<Database> | Trx;

export interface TreeState {
  readonly size: number;
  readonly frontier: Buffer[];
}

export async function readState(db: Db, forUpdate = false): Promise<TreeState> {
  let q = db.selectFrom('audit_log_state').select(['size', 'frontier']).where('id', '=', 1);
  if (forUpdate) q = q.forUpdate();
  const row = await q.executeTakeFirstOrThrow();
  return { size: Number(row.size), frontier: (JSON.parse(row.frontier) as string[]).map((h) => Buffer.from(h, 'hex')) };
}

/** A NodeReader over the table: every id in one query; a missing node is an error (the tree is incomplete). */
export function nodeReader(db: Db): NodeReader {
  return async (ids: readonly NodeId[]) => {
    if (ids.length === 0) return [];
    // PostgreSQL: two array parameters joined against the key, one plan shape for every proof
    // (about twice as fast as an OR of pairs there); SQLite plans the OR as key lookups anyway.
    const rows =
      db.getExecutor().adapter instanceof PostgresAdapter
        ? (
            await sql<{ level: number; idx: number | string; hash: string }>`select n.level, n.idx, n.hash
              from unnest(${ids.map((i) => i.level)}::int[], ${ids.map((i) => i.index)}::bigint[]) as k(level, idx)
              join audit_log_nodes n on n.level = k.level and n.idx = k.idx`.execute(db)
          ).rows
        : await db
            .selectFrom('audit_log_nodes')
            .select(['level', 'idx', 'hash'])
            .where((eb) => eb.or(ids.map((id) => eb.and([eb('level', '=', id.level), eb('idx', '=', id.index)]))))
            .execute();
    const byId = new Map(rows.map((r) => [`${r.level}/${Number(r.idx)}`, r.hash]));
    return ids.map((id) => {
      const h = byId.get(`${id.level}/${id.index}`);
      if (h === undefined) throw new Error(`audit log node ${id.level}/${id.index} is missing`);
      return Buffer.from(h, 'hex');
    });
  };
}

/** Hashes of consecutive nodes of one level (a tile's content), in order. */
export async function nodeRange(db: Db, level: number, from: number, count: number): Promise<Buffer[]> {
  const rows = await db
    .selectFrom('audit_log_nodes')
    .select(['idx', 'hash'])
    .where('level', '=', level)
    .where('idx', '>=', from)
    .where('idx', '<', from + count)
    .orderBy('idx')
    .execute();
  if (rows.length !== count)
    throw new Error(`audit log level ${level} has ${rows.length} of ${count} nodes from ${from}`);
  return rows.map((r) => Buffer.from(r.hash, 'hex'));
}

/** Stores new complete nodes (chunked: a batch of 5,000 leaves makes about 10,000 rows). */
export async function insertNodes(trx: Trx, nodes: readonly { id: NodeId; hash: Buffer }[]): Promise<void> {
  for (let i = 0; i < nodes.length; i += 500) {
    await trx
      .insertInto('audit_log_nodes')
      .values(
        nodes.slice(i, i + 500).map((n) => ({ level: n.id.level, idx: n.id.index, hash: n.hash.toString('hex') })),
      )
      .execute();
  }
}

export async function writeState(trx: Trx, state: TreeState): Promise<void> {
  await trx
    .updateTable('audit_log_state')
    .set({
      size: state.size,
      frontier: JSON.stringify(state.frontier.map((h) => h.toString('hex'))),
      updated_at: new Date().toISOString(),
    })
    .where('id', '=', 1)
    .execute();
}

/** The newest checkpoint, or the one of exactly `size`. */
export async function checkpointRow(db: Db, size?: number) {
  let q = db.selectFrom('audit_checkpoints').selectAll();
  q = size === undefined ? q.orderBy('size', 'desc').limit(1) : q.where('size', '=', size);
  const row = await q.executeTakeFirst();
  return row ? { ...row, size: Number(row.size) } : undefined;
}
