// The scheduler's fair-share memory, persisted: decayed GPU-seconds per project (by its
// `org.project` ref) and the time they were decayed to, one JSON row. A restarted server, or a new
// leader among replicas, continues from it instead of from zero.
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import type { Database } from '../store/schema.js';

export interface StoredUsage {
  readonly usage: Record<string, number>;
  /** Seconds since 1970: the time `usage` was decayed to. */
  readonly at: number;
}

/** The stored usage, or undefined when none was stored yet (or the row is unreadable). */
export async function loadUsage(db: Kysely<Database> | Trx): Promise<StoredUsage | undefined> {
  const row = await db.selectFrom('fair_share_usage').selectAll().where('id', '=', 1).executeTakeFirst();
  if (!row) return undefined;
  const at = Date.parse(row.updated_at) / 1000;
  let parsed: unknown;
  try {
    parsed = JSON.parse(row.usage);
  } catch {
    return undefined;
  }
  if (!Number.isFinite(at) || typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const usage: Record<string, number> = {};
  for (const [project, u] of Object.entries(parsed)) {
    if (typeof u === 'number' && Number.isFinite(u) && u > 0) usage[project] = u;
  }
  return { usage, at };
}

/** Stores `usage` as decayed to `at` (seconds since 1970), replacing what was stored. */
export async function saveUsage(db: Kysely<Database> | Trx, usage: Record<string, number>, at: number): Promise<void> {
  const values = { usage: JSON.stringify(usage), updated_at: new Date(at * 1000).toISOString() };
  await db
    .insertInto('fair_share_usage')
    .values({ id: 1, ...values })
    .onConflict((oc) => oc.column('id').doUpdateSet(values))
    .execute();
}
