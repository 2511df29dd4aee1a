// Keeps the fleet equal to what Slurm says: nodes, GPU counts and states come from `sinfo --json`
// (src/exec/slurm-fleet.ts). Runs at start and on a timer; writes (audited) only when something
// changed, so a quiet cluster leaves no trail of no-op syncs.
import type { Kysely } from 'kysely';
import { canonicalJson } from '../audit/entry.js';
import { type ActorContext, mutate } from '../audit/journal.js';
import { nowIso } from '../domain/ids.js';
import { applyInTrx, nodeView } from '../fleet/inventory.js';
import type { Database } from '../store/schema.js';
import type { SlurmFleet } from './slurm-fleet.js';

const SYNC_ACTOR: ActorContext = { keyId: '', principal: 'system:slurm-sync', requestId: 'slurm-sync' };

/** Applies a fleet read from Slurm; returns whether anything changed. */
export async function syncSlurmFleet(db: Kysely<Database>, fleet: SlurmFleet): Promise<boolean> {
  const current = await db.selectFrom('nodes').selectAll().execute();
  const now = current
    .map((r) => {
      const { createdAt: _c, updatedAt: _u, devGpus: _d, ...n } = nodeView(r);
      return n;
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const wanted = fleet.spec.nodes
    .map((n) => ({ ...n, state: fleet.states.get(n.name) ?? 'ready' }))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (canonicalJson(now) === canonicalJson(wanted)) return false;

  await mutate(db, SYNC_ACTOR, { action: 'fleet.sync-slurm', resource: 'fleet', orgId: '' }, async (trx) => {
    const change = await applyInTrx(trx, fleet.spec, { prune: true });
    for (const n of wanted) {
      await trx
        .updateTable('nodes')
        .set({ state: n.state, updated_at: nowIso() })
        .where('name', '=', n.name)
        .where('state', '!=', n.state)
        .execute();
    }
    return { result: undefined, before: change.before, after: wanted };
  });
  return true;
}
