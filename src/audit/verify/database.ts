// Reading the audit entries of a database copy for `fabrik audit verify --database`: read-only,
// in seq order, without migrating or writing anything. SQLite: a file; PostgreSQL: a URL.
import Database from 'better-sqlite3';
import pg from 'pg';

export interface StoredEntry {
  readonly seq: number;
  readonly canonical: string;
}

export async function* storedEntries(database: string): AsyncGenerator<StoredEntry> {
  if (/^postgres(ql)?:\/\//.test(database)) {
    const client = new pg.Client({ connectionString: database });
    // A connection the server ends fails the query in flight; it must not also end the process.
    client.on('error', () => {});
    await client.connect();
    try {
      let after = 0;
      for (;;) {
        const r = await client.query<{ seq: string; canonical: string }>(
          'select seq, canonical from audit_entries where seq > $1 order by seq limit 10000',
          [after],
        );
        for (const row of r.rows) yield { seq: Number(row.seq), canonical: row.canonical };
        if (r.rows.length < 10000) return;
        after = Number(r.rows.at(-1)!.seq);
      }
    } finally {
      await client.end();
    }
  }
  const db = new Database(database, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare('select seq, canonical from audit_entries order by seq')
      .iterate() as IterableIterator<StoredEntry>;
    for (const row of rows) yield { seq: Number(row.seq), canonical: row.canonical };
  } finally {
    db.close();
  }
}
