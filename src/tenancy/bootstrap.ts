// First start: create the platform operator `admin` and its key, so there is someone to set up the
// factory. The key is printed once (or taken from FABRIK_BOOTSTRAP_TOKEN for automation).
import { SYSTEM_ACTOR, mutate } from '../audit/journal.js';
import { newId, nowIso } from '../domain/ids.js';
import type { Store } from '../store/db.js';
import { keyFromToken, mintKey } from './api-key.js';

export interface BootstrapResult {
  /** The new operator key's token: set only on the start that created it and only when minted here. */
  readonly mintedToken?: string;
  readonly created: boolean;
}

export async function bootstrapOperator(store: Store, envToken?: string): Promise<BootstrapResult> {
  const existing = await store.db
    .selectFrom('principals')
    .select('id')
    .where('platform_role', '=', 'operator')
    .executeTakeFirst();
  if (existing) return { created: false };

  const fromEnv = envToken ? keyFromToken(envToken) : null;
  if (envToken && !fromEnv) {
    throw new Error('FABRIK_BOOTSTRAP_TOKEN must be 32–256 printable characters without spaces');
  }
  const key = fromEnv ?? mintKey();
  await mutate(
    store.db,
    SYSTEM_ACTOR,
    { action: 'bootstrap.operator', resource: 'users/admin', orgId: '' },
    async (trx) => {
      const now = nowIso();
      const userId = newId('usr');
      await trx
        .insertInto('principals')
        .values({ id: userId, kind: 'user', name: 'admin', org_id: '', platform_role: 'operator', created_at: now })
        .execute();
      await trx
        .insertInto('api_keys')
        .values({
          id: newId('key'),
          prefix: key.prefix,
          secret_hash: key.secretHash,
          name: 'bootstrap',
          principal_id: userId,
          org_id: '',
          project_id: '',
          created_at: now,
          created_by: SYSTEM_ACTOR.principal,
          expires_at: null,
          revoked_at: null,
          last_used_at: null,
        })
        .execute();
      return { result: undefined, after: { user: 'admin', operator: true, keyPrefix: key.prefix } };
    },
  );
  return { created: true, mintedToken: fromEnv ? undefined : key.token };
}
