// Opens the database named by a URL: a file path or `sqlite:` URL (the embedded default) or
// `postgres://…`. Runs pending migrations before anyone else touches it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Transaction, sql } from 'kysely';
import pg from 'pg';
import { LATEST_MIGRATION, migrationProvider } from './migrations.js';
import type { Database } from './schema.js';

/** A transaction on the fabrik database. */
export type Trx = Transaction<Database>;

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** A description safe to print: never a password. */
  readonly describe: string;
  close(): Promise<void>;
}

// PostgreSQL returns bigint and numeric as strings; our counts and sequence numbers fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** Hides the password of a connection URL. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}

export async function openStore(url: string, opts: { migrate?: boolean } = {}): Promise<Store> {
  let store: Store;
  if (isPostgresUrl(url)) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle connection the server ends (restart, failover, an administrator) is dropped by the
    // pool and replaced on the next query; without a listener its error would end the process.
    pool.on('error', (err) => process.emitWarning(`PostgreSQL dropped an idle connection: ${err.message}`));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    store = { db, dialect: 'postgres', describe: redactUrl(url), close: () => db.destroy() };
  } else {
    const file = url.replace(/^sqlite:(\/\/)?/, '');
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SQLite(file);
    // WAL: readers don't block the writer; a committed transaction survives kill -9 of the process.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
    store = { db, dialect: 'sqlite', describe: `sqlite:${file}`, close: () => db.destroy() };
  }
  if (opts.migrate !== false) await migrate(store);
  return store;
}

/**
 * better-sqlite3 compiles a statement on every prepare(); Kysely prepares every query. Reusing
 * compiled statements by SQL text saves that work on hot paths (auth, lookups). Safe because
 * Kysely runs one query at a time on its single SQLite connection.
 */
function withStatementCache(sqlite: SQLite.Database, max = 1000): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop !== 'prepare') {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      }
      return (sql: string) => {
        let stmt = cache.get(sql);
        if (!stmt) {
          stmt = target.prepare(sql);
          if (cache.size >= max) cache.delete(cache.keys().next().value!);
          cache.set(sql, stmt);
        }
        return stmt;
      };
    },
  });
}

export async function migrate(store: Store): Promise<void> {
  const migrator = new Migrator({ db: store.db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`);
  }
}

/** For /readyz: the database answers and the newest migration is applied. */
export async function readiness(store: Store): Promise<{ ok: boolean; detail: string }> {
  try {
    await sql`select 1`.execute(store.db);
    const row = await sql<{ name: string }>`select name from kysely_migration order by name desc limit 1`.execute(
      store.db,
    );
    const latest = row.rows[0]?.name;
    if (latest !== LATEST_MIGRATION) return { ok: false, detail: `migration ${LATEST_MIGRATION} not applied` };
    return { ok: true, detail: `${store.dialect} at migration ${latest}` };
  } catch (err) {
    return { ok: false, detail: `database unreachable: ${(err as Error).message}` };
  }
}

/** Unique-constraint violations from either dialect, so racing creates still answer 409. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Text PostgreSQL cannot store (a NUL character): bad input, where SQLite would take it. */
export function isUnstorableText(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '22021' || e?.code === '22P05';
}
