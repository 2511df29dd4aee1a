// The two reads both sides of an invariant need: the GPUs a pool has, and those it guaranteed to
// projects. Quotas (tenancy) may not guarantee more than a pool holds, and a fleet change may not
// shrink a pool below its guarantees; the queries live here, below both, so neither imports the other.
import type { Kysely } from 'kysely';
import type { Trx } from './db.js';
import type { Database } from './schema.js';

/** Sum of the guarantees in `pool`, leaving out one project's (the one being changed). */
export async function guaranteedInPool(
  db: Kysely<Database> | Trx,
  pool: string,
  exceptProjectId = '',
): Promise<number> {
  const row = await db
    .selectFrom('quotas')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('guaranteed'), eb.lit(0)).as('gpus'))
    .where('pool', '=', pool)
    .where('project_id', '!=', exceptProjectId)
    .executeTakeFirstOrThrow();
  return Number(row.gpus);
}

/** GPUs of a pool's nodes; undefined when there is no such pool. */
export async function poolCapacity(db: Kysely<Database> | Trx, pool: string): Promise<number | undefined> {
  const p = await db.selectFrom('pools').select('name').where('name', '=', pool).executeTakeFirst();
  if (!p) return undefined;
  const row = await db
    .selectFrom('nodes')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('gpu_count'), eb.lit(0)).as('gpus'))
    .where('pool', '=', pool)
    .executeTakeFirstOrThrow();
  return Number(row.gpus);
}
