// The sequencer: integrates committed audit entries into the Merkle tree, in seq order, in batches,
// behind the transactions that wrote them (as Trillian and Tessera do), and issues a signed
// checkpoint for each new tree size. It runs with the control loops (on the leader, fenced) every
// 250 ms: an entry is in a signed checkpoint within about 1 s (the maximum merge delay, MMD).
// Appending is O(log n) per entry: it continues from the stored frontier, nothing is recomputed.
import type { Kysely } from 'kysely';
import type { Trx } from '../journal.js';
import { SerialLoop } from '../../domain/serial-loop.js';
import type { Database } from '../../store/schema.js';
import { signCheckpoint } from '../checkpoint.js';
import { leafHash } from '../merkle/hash.js';
import { appendLeaves, rootFromFrontier } from '../merkle/tree.js';
import type { LogKeys } from './keys.js';
import { checkpointRow, insertNodes, readState, writeState } from './tree-store.js';

export const MAX_MERGE_DELAY_MS = 1000;
const BATCH = 5000;

export interface SequencerOptions {
  readonly keys: LogKeys;
  readonly dialect: 'sqlite' | 'postgres';
  readonly intervalMs?: number;
  readonly fence?: (trx: Trx) => Promise<void>;
  /** A new checkpoint was issued. */
  readonly onCheckpoint?: (size: number) => void;
}

export class Sequencer extends SerialLoop {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: SequencerOptions,
  ) {
    super(opts.intervalMs ?? 250, (err) => process.emitWarning(`audit log sequencer: ${err.message}`));
  }

  protected override async work(): Promise<void> {
    await this.flush();
  }

  /** Integrates the next batch of entries; returns how many. Stops before a gap in seq. */
  async integrate(limit = BATCH): Promise<number> {
    return this.db.transaction().execute((trx) => this.integrateIn(trx, limit));
  }

  /** Signs a checkpoint of the tree as it is, unless the newest already covers this size. */
  async checkpoint(): Promise<{ size: number; note: string }> {
    return this.db.transaction().execute((trx) => this.checkpointIn(trx));
  }

  /**
   * On demand (and each tick): everything committed so far, integrated and signed now. The last
   * batch and its checkpoint share one transaction, so a quiet tick takes the write lock once,
   * not twice: on SQLite every commit queues behind the API's writers.
   */
  async flush(): Promise<{ size: number; note: string }> {
    for (;;) {
      const done = await this.db.transaction().execute(async (trx) => {
        // A full batch means a backlog: keep integrating before signing.
        if ((await this.integrateIn(trx, BATCH)) === BATCH) return null;
        return this.checkpointIn(trx);
      });
      if (done) return done;
    }
  }

  private async integrateIn(trx: Trx, limit: number): Promise<number> {
    // On PostgreSQL the state row lock serialises sequencers; SQLite has one writer anyway.
    const state = await readState(trx, this.opts.dialect === 'postgres');
    await this.opts.fence?.(trx);
    const rows = await trx
      .selectFrom('audit_entries')
      .select(['seq', 'canonical'])
      .where('seq', '>', state.size)
      .orderBy('seq')
      .limit(limit)
      .execute();
    let n = 0;
    while (n < rows.length && Number(rows[n]!.seq) === state.size + n + 1) n++;
    if (n === 0) return 0;
    const leaves = rows.slice(0, n).map((r) => leafHash(Buffer.from(r.canonical, 'utf8')));
    const next = appendLeaves(state.size, state.frontier, leaves);
    await insertNodes(trx, next.nodes);
    await writeState(trx, { size: next.size, frontier: next.frontier });
    return n;
  }

  private async checkpointIn(trx: Trx): Promise<{ size: number; note: string }> {
    const state = await readState(trx, this.opts.dialect === 'postgres');
    const last = await checkpointRow(trx);
    if (last && last.size >= state.size) return { size: last.size, note: last.note };
    await this.opts.fence?.(trx);
    const root = rootFromFrontier(state.frontier);
    const note = signCheckpoint(
      { origin: this.opts.keys.origin, size: state.size, rootHash: root },
      this.opts.keys.signerKey,
    );
    await trx
      .insertInto('audit_checkpoints')
      .values({ size: state.size, root: root.toString('hex'), note, created_at: new Date().toISOString() })
      .execute();
    this.opts.onCheckpoint?.(state.size);
    return { size: state.size, note };
  }
}
