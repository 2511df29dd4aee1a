// Reading the hourly usage rollups: the one query billing, reporting and `fabrik usage` share.
import type { Kysely } from 'kysely';
import type { Trx } from '../store/db.js';
import type { Database } from '../store/schema.js';
import { type UsageMetric, type UsageRecord, toUsageRecord } from './types.js';

export interface UsageQuery {
  readonly orgId: string;
  readonly projectId?: string;
  /** RFC 3339; hours starting at or after it. */
  readonly from: string;
  /** RFC 3339; hours starting before it. */
  readonly to: string;
  readonly metrics?: readonly UsageMetric[];
}

/** The rollup rows of an org (or one of its projects) for hours in [from, to), in hour order. */
export async function readUsage(db: Kysely<Database> | Trx, q: UsageQuery): Promise<UsageRecord[]> {
  let query = db
    .selectFrom('usage_hourly')
    .selectAll()
    .where('org_id', '=', q.orgId)
    .where('hour', '>=', normalise(q.from))
    .where('hour', '<', normalise(q.to));
  if (q.projectId !== undefined) query = query.where('project_id', '=', q.projectId);
  if (q.metrics?.length) query = query.where('metric', 'in', [...q.metrics]);
  const rows = await query
    .orderBy('hour')
    .orderBy('project_id')
    .orderBy('metric')
    .orderBy('pool')
    .orderBy('gpu_model')
    .orderBy('priority')
    .orderBy('deployment_id')
    .orderBy('model')
    .execute();
  return rows.map(toUsageRecord);
}

/** Hours are stored as `toISOString()` text: compare like with like. */
function normalise(t: string): string {
  const ms = Date.parse(t);
  if (!Number.isFinite(ms)) throw new RangeError(`not an RFC 3339 time: ${t}`);
  return new Date(ms).toISOString();
}
