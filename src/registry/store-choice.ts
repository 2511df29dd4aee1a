// Which blob store an org's new bytes go to: the first configured store (the default one first,
// then the named ones in the order given) whose region the sovereignty policy in force allows for
// the org (src/policy/sovereignty.ts decideStorage). None allowed, or no policy set that can be
// read: the write is refused (fail closed). Every way bytes come in (Hub LFS batch, inline files
// of a commit, server-side ingestion) starts its upload through here; the upload row keeps the
// store, the blob row inherits it, and every later read goes to that store.
import type { Kysely } from 'kysely';
import { type Ctx, requireOperator } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import type { EntryFacts } from '../audit/entry.js';
import { AppError } from '../domain/errors.js';
import type { CompiledPolicies } from '../policy/cedar.js';
import { type PolicyVerdict, decideStorage, jurisdictionOf } from '../policy/sovereignty.js';
import { policyVersions } from '../policy/versions.js';
import type { Database } from '../store/schema.js';
import { type NamedStore, type Registry, storeLabel, storeNamed } from './registry.js';

export interface ChosenStore {
  readonly store: NamedStore;
  readonly verdict: PolicyVerdict;
}

interface OrgFacts {
  readonly name: string;
  readonly residency: string;
}

async function orgFacts(db: Kysely<Database> | Trx, orgId: string): Promise<OrgFacts> {
  const org = await db.selectFrom('orgs').select(['name', 'residency']).where('id', '=', orgId).executeTakeFirst();
  if (!org) throw new AppError('NOT_FOUND', `org ${orgId} not found`);
  return org;
}

/** The policy set in force, or a refusal: without one nothing is written. */
async function policiesInForce(db: Kysely<Database>): Promise<CompiledPolicies> {
  try {
    return await policyVersions(db).current();
  } catch (err) {
    throw new AppError(
      'POLICY_DENIED',
      `no sovereignty policy set can be read (${(err as Error).message}); artifacts are not written until one can`,
      { policyIds: [], policyHash: '' },
    );
  }
}

/** The store new bytes of the org go to, with the verdict that allowed it; POLICY_DENIED when none may hold them. */
export async function chooseStore(db: Kysely<Database>, reg: Registry, orgId: string): Promise<ChosenStore> {
  const org = await orgFacts(db, orgId);
  const policies = await policiesInForce(db);
  const refused: { store: NamedStore; verdict: PolicyVerdict }[] = [];
  for (const store of reg.stores) {
    const verdict = decideStorage(policies, org, store.region);
    if (verdict.allowed) return { store, verdict };
    refused.push({ store, verdict });
  }
  const policyIds = [...new Set(refused.flatMap((r) => r.verdict.policyIds))];
  const each = refused
    .map(
      (r) =>
        `${storeLabel(r.store.name)} (${r.store.region}): ${
          r.verdict.policyIds.length > 0 ? `forbidden by ${r.verdict.policyIds.join(', ')}` : 'no policy permits it'
        }`,
    )
    .join('; ');
  throw new AppError(
    'POLICY_DENIED',
    `org ${org.name} has residency "${org.residency}" and no configured blob store may hold its artifacts: ${each}`,
    { policyIds, policyHash: policies.hash },
  );
}

/**
 * What an audited write of blobs records: where they are (the stores in configured order; with
 * several, the first as `location` and the others under `location.also`) and the policy set in
 * force now with the policies that decided about those stores. Stores no longer allowed are still
 * recorded as they are: the bytes were written under the policy of their upload.
 */
export async function locationFacts(
  db: Kysely<Database>,
  reg: Registry,
  orgId: string,
  blobIds: readonly string[],
): Promise<EntryFacts | undefined> {
  if (blobIds.length === 0) return undefined;
  const names = new Set<string>();
  const unique = [...new Set(blobIds)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db
      .selectFrom('blobs')
      .select('store')
      .distinct()
      .where('org_id', '=', orgId)
      .where('blob_id', 'in', unique.slice(i, i + 500))
      .execute();
    for (const r of rows) names.add(r.store);
  }
  if (names.size === 0) return undefined;
  const stores = [...names]
    .map((n) => storeNamed(reg, n))
    .sort((a, b) => reg.stores.indexOf(a) - reg.stores.indexOf(b));
  const org = await orgFacts(db, orgId);
  const policies = await policiesInForce(db);
  const ids = new Set<string>();
  for (const s of stores) for (const id of decideStorage(policies, org, s.region).policyIds) ids.add(id);
  const [first, ...rest] = stores.map((s) => ({ store: storeLabel(s.name), region: s.region }));
  return {
    location: { ...first!, ...(rest.length > 0 ? { also: rest } : {}) },
    policy: { hash: policies.hash, ids: [...ids] },
  };
}

export interface BlobStoreView {
  name: string;
  kind: 'fs' | 's3';
  region: string;
  /** Read from the region as policies read it; '' when it names no country. */
  country: string;
  inEU: boolean;
  /** The `--blob-store` store (name `default`, '' in the database). */
  default: boolean;
  /** A directory or s3://bucket/prefix. */
  location: string;
}

/** The configured stores in the order uploads try them (operators only). */
export function listBlobStores(ctx: Ctx, reg: Registry): { items: BlobStoreView[] } {
  requireOperator(ctx, 'list blob stores');
  return {
    items: reg.stores.map((s) => {
      const where = jurisdictionOf(s.region);
      return {
        name: storeLabel(s.name),
        kind: s.store.kind,
        region: s.region,
        country: where.country,
        inEU: where.inEU,
        default: s.name === '',
        location: s.where,
      };
    }),
  };
}
