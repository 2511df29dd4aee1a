// Leadership among control-plane replicas. On PostgreSQL any number of `fabrik server` processes
// share the database and all serve the API; the control loops (scheduler, reconciler, purge,
// Slurm fleet sync) run only on the replica that holds the lease `control-loops`.
//
// - A lease is a row (name, holder, epoch, expires_at). Acquiring and renewing are conditional
//   UPDATEs (holder = me, or expired), atomic on both dialects; expiry is measured by the
//   database's clock, so replicas' clocks do not matter.
// - The epoch is incremented on every acquisition: it is the fencing token. `fence(trx)` checks,
//   inside a write's transaction, that this replica still holds the lease with its epoch (on
//   PostgreSQL with a share lock on the row, so a takeover waits for that write to commit, and the
//   new leader reads it). A replica that lost the lease gets FencedError, and nothing is written.
// - A replica that fails to renew (database unreachable, lease taken) stops its loops at once and
//   tries to acquire again later. Renewal every 2 s, expiry after 6 s, and the others try to take
//   it every 0.5 s: after a kill -9 of the leader another replica takes over within about 6.5 s.
//
// SQLite serves one replica only: `lockSqliteDatabase()` holds `<db>.lock` for the process's
// lifetime (an exclusive SQLite lock, an fcntl lock the kernel drops when the process dies, so a
// kill -9 never leaves a stale lock), and a second server on the same file refuses to start.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import { type Dialect, isPostgresUrl } from '../store/db.js';
import type { Database } from '../store/schema.js';

/** The lease whose holder runs the control loops. */
export const CONTROL_LOOPS_LEASE = 'control-loops';
export const LEASE_TTL_MS = 6000;
export const LEASE_RENEW_MS = 2000;

/** A write of a replica that no longer holds its lease: refused, nothing written. */
export class FencedError extends AppError {
  constructor(lease: string, epoch: number | null, why: string) {
    super(
      'UNAVAILABLE',
      `this replica no longer holds the lease "${lease}"${epoch === null ? '' : ` (epoch ${epoch})`}: ${why}; the write was refused`,
      { lease, epoch },
    );
    this.name = 'FencedError';
  }
}

export type LeaseLog = (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;

export interface LeaseOptions {
  readonly name?: string;
  readonly ttlMs?: number;
  readonly renewMs?: number;
  /** How often a replica that does not hold the lease tries to take it (default: the lesser of renewMs and 500 ms). */
  readonly acquireMs?: number;
  /** Called on becoming the holder (start the loops); a throw gives the lease up again. */
  readonly onAcquired?: (epoch: number) => Promise<void> | void;
  /** Called on losing it or on stop (stop the loops; resolve when they have stopped). */
  readonly onLost?: (reason: string) => Promise<void> | void;
  readonly log?: LeaseLog;
}

export interface LeaseStatus {
  readonly leader: boolean;
  readonly epoch: number | null;
  readonly holder: string;
}

/** Milliseconds since 1970 by the database's clock. */
function dbNowMs(dialect: Dialect): RawBuilder<number> {
  return dialect === 'postgres'
    ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`
    : sql<number>`cast((julianday('now') - 2440587.5) * 86400000 as integer)`;
}

const defaultLog: LeaseLog = (level, message) => process.stderr.write(`fabrik: ${level}: ${message}\n`);

export class Lease {
  /** This replica: host and pid for people, and a random part unique to this process. */
  readonly holder = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  readonly name: string;
  readonly ttlMs: number;
  readonly renewMs: number;
  readonly acquireMs: number;
  private epochHeld: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  /** Gains and losses, one at a time and in order (a loss by deadline may come during a renewal). */
  private chain: Promise<void> = Promise.resolve();
  /** After stop(): no more attempts (until start() again). */
  private stopped = false;
  private ensured = false;
  private lastError = '';
  /** When the last successful renewal (or the acquisition) was sent. */
  private renewedAt = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly opts: LeaseOptions = {},
  ) {
    this.name = opts.name ?? CONTROL_LOOPS_LEASE;
    this.ttlMs = opts.ttlMs ?? LEASE_TTL_MS;
    this.renewMs = opts.renewMs ?? LEASE_RENEW_MS;
    this.acquireMs = opts.acquireMs ?? Math.min(this.renewMs, 500);
    if (!(this.renewMs > 0 && this.renewMs * 2 <= this.ttlMs))
      throw new Error(`lease: renewal every ${this.renewMs} ms does not fit a ${this.ttlMs} ms lease`);
  }

  get leader(): boolean {
    return this.epochHeld !== null;
  }

  status(): LeaseStatus {
    return { leader: this.leader, epoch: this.epochHeld, holder: this.holder };
  }

  /**
   * Tries to acquire now and every renewal period; renews while held. Resolves when the first
   * attempt is done (and the loops started, when it acquired the lease).
   */
  async start(): Promise<void> {
    if (this.timer) return;
    this.stopped = false;
    this.timer = setInterval(() => this.tick(), this.acquireMs);
    this.timer.unref();
    this.tick();
    while (this.busy) await this.busy;
    await this.chain;
  }

  /**
   * One acquisition or renewal attempt now, and the loops' start or stop it caused, awaited (the
   * server's first attempt, tests).
   */
  async step(): Promise<void> {
    while (this.busy) await this.busy;
    this.tick(true);
    await this.busy;
    await this.chain;
  }

  /** Stops the loops (onLost) and releases the lease, so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.busy) await this.busy;
    const epoch = this.epochHeld;
    await this.lose('this replica is shutting down');
    await this.chain;
    if (epoch !== null) await this.release(epoch).catch(() => undefined);
  }

  /**
   * The fence of the loops' writes: in `trx`, this replica must still hold the lease with its
   * epoch, unexpired. On PostgreSQL the row is share-locked until `trx` ends: a takeover waits for
   * the write, and the new leader sees it.
   */
  readonly fence = async (trx: Trx): Promise<void> => {
    const epoch = this.epochHeld;
    if (epoch === null) throw new FencedError(this.name, null, 'it is not the leader');
    const q = trx
      .selectFrom('leases')
      .select('epoch')
      .where('name', '=', this.name)
      .where('holder', '=', this.holder)
      .where('epoch', '=', epoch)
      .where('expires_at', '>', dbNowMs(this.dialect));
    const row = await (this.dialect === 'postgres' ? q.forShare() : q).executeTakeFirst();
    if (!row) throw new FencedError(this.name, epoch, 'another replica took over, or the lease expired');
  };

  private tick(now = false): void {
    if (this.busy || this.stopped) return;
    this.busy = this.attempt(now)
      .catch((err) => this.log('warn', `lease "${this.name}": ${(err as Error).message}`, {}))
      .finally(() => {
        this.busy = null;
      });
  }

  /** Renews the lease when held, else tries to acquire it. Never waits for the loops. */
  private async attempt(now: boolean): Promise<void> {
    const sent = Date.now();
    const held = this.epochHeld;
    if (held !== null) {
      // The timer runs at the acquisition period; a holder renews every renewMs.
      if (!now && sent - this.renewedAt < this.renewMs - this.acquireMs / 2) return;
      let why = 'another replica holds it, or it expired before it was renewed';
      let renewed = false;
      try {
        renewed = await this.renew(held);
      } catch (err) {
        why = `renewal failed: ${(err as Error).message}`;
      }
      if (this.epochHeld !== held) return; // lost meanwhile (not renewed in time)
      if (renewed) this.arm(sent);
      else void this.lose(why);
      return;
    }
    let epoch: number | undefined;
    try {
      epoch = await this.acquire();
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.lastError) this.log('warn', `lease "${this.name}": cannot acquire: ${msg}`, {});
      this.lastError = msg;
      return;
    }
    this.lastError = '';
    if (epoch === undefined) return;
    if (this.stopped) {
      await this.release(epoch).catch(() => undefined);
      return;
    }
    this.gain(epoch, sent);
  }

  /** Runs the loops' starts and stops one at a time, in the order of gains and losses. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Held from now on (writes pass the fence at once); the loops start after any earlier stop. */
  private gain(epoch: number, sent: number): void {
    this.epochHeld = epoch;
    this.arm(sent);
    this.log('info', `leadership gained: this replica runs the control loops (lease "${this.name}", epoch ${epoch})`, {
      lease: this.name,
      epoch,
      holder: this.holder,
      leader: true,
    });
    void this.serial(async () => {
      if (this.epochHeld !== epoch) return;
      try {
        await this.opts.onAcquired?.(epoch);
      } catch (err) {
        void this.lose(`starting the control loops failed: ${(err as Error).message}`);
        await this.release(epoch).catch(() => undefined);
      }
    });
  }

  /** No longer held from now on (the fence refuses at once); resolves when the loops stopped. */
  private lose(reason: string): Promise<void> {
    const epoch = this.epochHeld;
    if (epoch === null) return this.chain;
    this.epochHeld = null;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
    this.log('warn', `leadership lost: ${reason}; stopping the control loops (lease "${this.name}", epoch ${epoch})`, {
      lease: this.name,
      epoch,
      holder: this.holder,
      leader: false,
    });
    return this.serial(async () => {
      try {
        await this.opts.onLost?.(reason);
      } catch (err) {
        this.log('warn', `stopping the control loops failed: ${(err as Error).message}`, {});
      }
    });
  }

  /**
   * Not renewed by the time the lease may have expired (measured from when the last successful
   * renewal was sent, so never later than the database's expiry): the loops stop, a little before.
   */
  private arm(sent: number): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.renewedAt = sent;
    const margin = Math.min(1000, this.ttlMs / 4);
    const epoch = this.epochHeld;
    this.deadline = setTimeout(
      () => {
        if (this.epochHeld === epoch) void this.lose(`not renewed within ${this.ttlMs} ms`);
      },
      Math.max(0, sent + this.ttlMs - margin - Date.now()),
    );
    this.deadline.unref();
  }

  private async acquire(): Promise<number | undefined> {
    if (!this.ensured) {
      await this.db
        .insertInto('leases')
        .values({ name: this.name, holder: '', epoch: 0, expires_at: 0, acquired_at: '' })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      this.ensured = true;
    }
    const now = dbNowMs(this.dialect);
    const row = await this.db
      .updateTable('leases')
      .set({
        holder: this.holder,
        epoch: sql<number>`epoch + 1`,
        expires_at: sql<number>`${now} + ${sql.lit(this.ttlMs)}`,
        acquired_at: nowIso(),
      })
      .where('name', '=', this.name)
      .where((eb) => eb.or([eb('holder', '=', this.holder), eb('expires_at', '<=', now)]))
      .returning('epoch')
      .executeTakeFirst();
    return row ? Number(row.epoch) : undefined;
  }

  private async renew(epoch: number): Promise<boolean> {
    const now = dbNowMs(this.dialect);
    const row = await this.db
      .updateTable('leases')
      .set({ expires_at: sql<number>`${now} + ${sql.lit(this.ttlMs)}` })
      .where('name', '=', this.name)
      .where('holder', '=', this.holder)
      .where('epoch', '=', epoch)
      .where('expires_at', '>', now)
      .returning('epoch')
      .executeTakeFirst();
    return row !== undefined;
  }

  private async release(epoch: number): Promise<void> {
    await this.db
      .updateTable('leases')
      .set({ expires_at: 0 })
      .where('name', '=', this.name)
      .where('holder', '=', this.holder)
      .where('epoch', '=', epoch)
      .execute();
  }

  private log(level: 'info' | 'warn', message: string, fields: Record<string, unknown>): void {
    (this.opts.log ?? defaultLog)(level, message, fields);
  }
}

export interface DatabaseLock {
  readonly path: string;
  release(): void;
}

/**
 * For a SQLite database (a file path or `sqlite:` URL): holds `<file>.lock` exclusively until
 * release() or the process's end, or refuses with the holder's pid when another process holds
 * it. Undefined for PostgreSQL and `:memory:`.
 */
export function lockSqliteDatabase(url: string): DatabaseLock | undefined {
  if (isPostgresUrl(url)) return undefined;
  const file = url.replace(/^sqlite:(\/\/)?/, '');
  if (file === ':memory:') return undefined;
  const path = `${file}.lock`;
  mkdirSync(dirname(path), { recursive: true });
  const lock = new SQLite(path, { timeout: 0 });
  try {
    // In exclusive locking mode a connection never gives up a lock it took: after this write it
    // holds the file's exclusive lock until it closes (or the process dies).
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.pragma('journal_mode = MEMORY');
    lock.exec('begin exclusive');
    lock.exec('create table if not exists holder (pid integer, host text, since text)');
    lock.exec('delete from holder');
    lock.prepare('insert into holder values (?, ?, ?)').run(process.pid, hostname(), nowIso());
    lock.exec('commit');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    const pid = lockHolderPid(path);
    throw new AppError(
      'UNAVAILABLE',
      `another fabrik server${pid ? ` (pid ${pid})` : ''} is already using the SQLite database ${file} (it holds ${path}). ` +
        'SQLite serves one replica only: stop that server first, or use PostgreSQL (--database postgres://…) to run several replicas',
      { lock: path, ...(pid ? { pid } : {}) },
    );
  }
  return {
    path,
    release: () => {
      if (lock.open) lock.close();
    },
  };
}

/** The process holding a POSIX lock on `path`, from /proc/locks (Linux; undefined elsewhere). */
function lockHolderPid(path: string): number | undefined {
  try {
    const ino = statSync(path).ino;
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      // "1: POSIX  ADVISORY  WRITE 4242 fe:00:2147029 1073741824 1073742335"
      if (f[1] === 'POSIX' && f[5]?.endsWith(`:${ino}`)) return Number(f[4]);
    }
  } catch {
    // not Linux, or gone meanwhile
  }
  return undefined;
}
