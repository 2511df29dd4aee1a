// The observable state of a test app's database, for "nothing was written" assertions: every table
// (found by introspection, so new tables are covered without edits) except the append-only records
// that a refused request may legitimately add: audit entries (denials are on record), the audit
// head, and idempotency keys. Columns that reading requests update are left out too.
import type { Kysely } from 'kysely';
import type { TestApp } from './harness.js';

/** Tables that a rejected request may still append to. */
export const UNTRACKED_TABLES: ReadonlySet<string> = new Set(['audit_entries', 'audit_head', 'idempotency_keys']);

/** Columns that change on reads: a key's last use. */
export const VOLATILE_COLUMNS: Readonly<Record<string, readonly string[]>> = { api_keys: ['last_used_at'] };

export type StateSnapshot = Record<string, string[]>;

const tablesOf = new WeakMap<TestApp, Promise<string[]>>();

function trackedTables(t: TestApp): Promise<string[]> {
  let tables = tablesOf.get(t);
  if (!tables) {
    tables = t.store.db.introspection.getTables().then((all) =>
      all
        .map((x) => x.name)
        .filter((n) => !n.startsWith('kysely_') && !UNTRACKED_TABLES.has(n))
        .sort(),
    );
    tablesOf.set(t, tables);
  }
  return tables;
}

/** Every tracked row of every tracked table, each row serialised with sorted keys, rows sorted. */
export async function snapshotState(t: TestApp): Promise<StateSnapshot> {
  const db = t.store.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
  const out: StateSnapshot = {};
  for (const table of await trackedTables(t)) {
    const volatile = VOLATILE_COLUMNS[table] ?? [];
    const rows = await db.selectFrom(table).selectAll().execute();
    out[table] = rows
      .map((row) =>
        JSON.stringify(
          Object.keys(row)
            .filter((k) => !volatile.includes(k))
            .sort()
            .map((k) => [k, row[k]]),
        ),
      )
      .sort();
  }
  return out;
}

/** The tables whose rows differ between two snapshots, with the rows added and removed. */
export function stateDiff(
  before: StateSnapshot,
  after: StateSnapshot,
): Record<string, { added: string[]; removed: string[] }> {
  const diff: Record<string, { added: string[]; removed: string[] }> = {};
  for (const table of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = new Set(before[table] ?? []);
    const a = new Set(after[table] ?? []);
    const added = [...a].filter((r) => !b.has(r));
    const removed = [...b].filter((r) => !a.has(r));
    if (added.length || removed.length) diff[table] = { added, removed };
  }
  return diff;
}
