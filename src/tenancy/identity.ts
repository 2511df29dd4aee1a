// Per-project Unix identities. Every task of a project runs under the project's own uid (= gid),
// never as the server's user, so the kernel keeps tenants' processes and files apart. Ids come from
// a configured range (FABRIK_UID_BASE, default 200000; FABRIK_UID_COUNT ids), are allocated inside
// the project's creating transaction (serialised by the audit head lock, backed by a unique index),
// and are not reused while a deleted project's files still wait for removal.
import { sql } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import type { ProjectsTable } from '../store/schema.js';

import { type ProjectIdentity, identityOf } from '../domain/identity.js';

export { type ProjectIdentity, identityOf };

/** How long a deleted project's directories are kept, so an accidental delete can be recovered by an operator. */
export const DEFAULT_RETENTION_S = 7 * 24 * 3600;

export interface IdRange {
  readonly base: number;
  readonly count: number;
}

export function idRange(env: NodeJS.ProcessEnv = process.env): IdRange {
  const base = Number(env.FABRIK_UID_BASE ?? 200_000);
  const count = Number(env.FABRIK_UID_COUNT ?? 1_000_000);
  // Below 1000 are system accounts; 2^31-1 is the largest id every tool accepts.
  if (!Number.isInteger(base) || base < 1000 || !Number.isInteger(count) || count < 1 || base + count > 2 ** 31 - 1) {
    throw new Error(`FABRIK_UID_BASE/FABRIK_UID_COUNT must give a range of ids within 1000..2147483646`);
  }
  return { base, count };
}

/** The next free uid: one above the highest held by a project or by a deleted project not yet purged. */
export async function allocateUid(trx: Trx, range: IdRange = idRange()): Promise<number> {
  const live = await trx.selectFrom('projects').select(sql<number>`max(uid)`.as('m')).executeTakeFirst();
  const dead = await trx
    .selectFrom('project_tombstones')
    .select(sql<number>`max(uid)`.as('m'))
    .where('purged_at', '=', '')
    .executeTakeFirst();
  const highest = Math.max(Number(live?.m ?? 0), Number(dead?.m ?? 0));
  const uid = Math.max(range.base, highest + 1);
  if (uid >= range.base + range.count) {
    throw new AppError('CONFLICT', `no free project identity left in ${range.base}..${range.base + range.count - 1}`);
  }
  return uid;
}

/** Records a deleted project so that its directories and identity are removed after the retention period. */
export async function tombstone(trx: Trx, project: ProjectsTable, retentionS = retentionSeconds()): Promise<void> {
  const now = new Date();
  await trx
    .insertInto('project_tombstones')
    .values({
      project_id: project.id,
      uid: project.uid,
      deleted_at: now.toISOString(),
      purge_after: new Date(now.getTime() + retentionS * 1000).toISOString(),
      purged_at: '',
    })
    .execute();
}

export function retentionSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.FABRIK_PROJECT_RETENTION_S;
  if (v === undefined) return DEFAULT_RETENTION_S;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`FABRIK_PROJECT_RETENTION_S must be a whole number of seconds`);
  return n;
}

export function markPurged(trx: Trx, projectId: string) {
  return trx
    .updateTable('project_tombstones')
    .set({ purged_at: nowIso() })
    .where('project_id', '=', projectId)
    .execute();
}
