// Removal of a deleted project's files after the retention period (FABRIK_PROJECT_RETENTION_S,
// default 7 days, so that an operator can still recover an accidental delete): the project's
// directory under the workloads root (every workload's work dir, logs and outputs) and, where an
// engine needed one, its account. Each purge is an audited change; the uid is free again after it.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { SYSTEM_ACTOR, type Trx, mutate } from '../audit/journal.js';
import { nowIso } from '../domain/ids.js';
import { SerialLoop } from '../domain/serial-loop.js';
import type { Database } from '../store/schema.js';
import { type ProjectIdentity, identityOf, markPurged } from './identity.js';

export interface PurgeOptions {
  readonly workloadsDir: string;
  readonly intervalMs?: number;
  /** Removes the identity's account where one was created (Slurm needs passwd entries). */
  readonly removeIdentity?: (identity: ProjectIdentity) => Promise<void>;
  /** The lease check of this replica's writes (src/app/lease.ts): a replica that lost it writes nothing. */
  readonly fence?: (trx: Trx) => Promise<void>;
}

export class ProjectPurger extends SerialLoop {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: PurgeOptions,
  ) {
    super(opts.intervalMs ?? 60_000, (err) => process.emitWarning(`project purge failed: ${err.message}`));
  }

  protected override async work(): Promise<void> {
    await this.purgeDue();
  }

  /** Purges every tombstone whose retention has passed; returns the purged project ids. */
  async purgeDue(now = nowIso()): Promise<string[]> {
    const due = await this.db
      .selectFrom('project_tombstones')
      .selectAll()
      .where('purged_at', '=', '')
      .where('purge_after', '<=', now)
      .execute();
    for (const t of due) {
      rmSync(join(this.opts.workloadsDir, t.project_id), { recursive: true, force: true });
      await this.opts.removeIdentity?.(identityOf(t.uid));
      await mutate(
        this.db,
        { ...SYSTEM_ACTOR, fence: this.opts.fence },
        { action: 'project.purge', resource: `projects/${t.project_id}`, orgId: '' },
        async (trx) => {
          await markPurged(trx, t.project_id);
          return { result: undefined, before: { files: 'retained' }, after: { files: 'removed', uid: t.uid } };
        },
      );
    }
    return due.map((t) => t.project_id);
  }
}
