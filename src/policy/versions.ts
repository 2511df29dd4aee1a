// The sovereignty policy set in force, and its history. Owns `policy_versions`. A new version is
// compiled (parse + schema validation, line:column problems) before anything is written, so a
// broken file never replaces the one in force; loading it is one audited mutation whose entry
// records the version's hash. Every server process keeps the compiled set in memory and looks
// for a newer version at most once a second (replicas on PostgreSQL follow each other's loads).
import type { Kysely } from 'kysely';
import { type ActorContext, type Trx, mutate } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import type { Database, PolicyVersionsTable } from '../store/schema.js';
import { type CompiledPolicies, compilePolicies, type PolicyProblem } from './cedar.js';
import { DEFAULT_POLICIES } from './default-policies.js';

export interface PolicyVersion {
  readonly version: number;
  readonly hash: string;
  readonly policyIds: string[];
  readonly createdAt: string;
  readonly createdBy: string;
}

export const POLICY_RESOURCE = 'platform/policies';
const REFRESH_MS = 1000;

const view = (r: PolicyVersionsTable): PolicyVersion => ({
  version: r.version,
  hash: r.hash,
  policyIds: JSON.parse(r.policy_ids) as string[],
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** A refusal at load: every problem with its line and column. */
export function policyInvalid(problems: readonly PolicyProblem[]): AppError {
  const first = problems[0]!;
  return new AppError(
    'POLICY_INVALID',
    `policy file refused at ${first.line}:${first.column}: ${first.message}${
      problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''
    }; the policies in force are unchanged`,
    { problems },
  );
}

/** What a load found that the new set would break: running work it would no longer allow. */
export interface PolicyBreach {
  /** `org.project/name`. */
  readonly workload: string;
  readonly node: string;
  /** The forbidding policies and the set, as in pending reasons. */
  readonly policy: string;
}

export class PolicyVersions {
  private compiled: { version: number; policies: CompiledPolicies } | null = null;
  private checkedAt = 0;
  private loading: Promise<CompiledPolicies> | null = null;

  constructor(private readonly db: Kysely<Database>) {}

  /** The set in force. Throws (so every caller fails closed) if none can be read. */
  async current(): Promise<CompiledPolicies> {
    if (this.compiled && Date.now() - this.checkedAt < REFRESH_MS) return this.compiled.policies;
    this.loading ??= this.refresh().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  /** The set in force if one was loaded in this process, without waiting (the scheduler's cycle reads it async first). */
  latestKnown(): CompiledPolicies | null {
    return this.compiled?.policies ?? null;
  }

  private async refresh(): Promise<CompiledPolicies> {
    const head = await this.db
      .selectFrom('policy_versions')
      .select(['version'])
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!head) {
      await this.install(
        DEFAULT_POLICIES,
        { keyId: '', principal: 'system:fabrik', requestId: 'startup' },
        { onlyIfEmpty: true },
      );
      return this.refresh();
    }
    if (this.compiled?.version !== head.version) {
      const row = await this.db
        .selectFrom('policy_versions')
        .selectAll()
        .where('version', '=', head.version)
        .executeTakeFirstOrThrow();
      const c = compilePolicies(row.policies);
      // Only compiled text is ever stored; a row that no longer compiles was written by hand.
      if (!c.ok) throw policyInvalid(c.problems);
      if (c.policies.hash !== row.hash)
        throw new AppError('INTERNAL', `policy version ${row.version}: stored hash differs from its text`);
      this.compiled = { version: row.version, policies: c.policies };
    }
    this.checkedAt = Date.now();
    return this.compiled.policies;
  }

  /** Compiles without storing: problems with line and column, or the set. */
  check(text: string): CompiledPolicies {
    const c = compilePolicies(text);
    if (!c.ok) throw policyInvalid(c.problems);
    return c.policies;
  }

  /**
   * Stores `text` as the next version (already checked by the caller for breaches). The first
   * version (the defaults) is installed by the system when the table is empty.
   */
  async install(
    text: string,
    actor: ActorContext,
    opts: { readonly onlyIfEmpty?: boolean; readonly acceptedBreaches?: readonly PolicyBreach[] } = {},
  ): Promise<PolicyVersion> {
    const onlyIfEmpty = opts.onlyIfEmpty === true;
    const policies = this.check(text);
    // The same text again is the version in force already: nothing new to record.
    if (!onlyIfEmpty) {
      const inForce = await this.get('latest').catch(() => null);
      if (inForce?.hash === policies.hash) {
        const { policies: _text, ...v } = inForce;
        return v;
      }
    }
    const v = await mutate(
      this.db,
      actor,
      { action: 'policy.load', resource: POLICY_RESOURCE, orgId: '' },
      async (trx: Trx) => {
        const head = await trx
          .selectFrom('policy_versions')
          .select(['version', 'hash'])
          .orderBy('version', 'desc')
          .limit(1)
          .executeTakeFirst();
        if (onlyIfEmpty && head) return { result: null };

        const row: PolicyVersionsTable = {
          version: (head?.version ?? 0) + 1,
          hash: policies.hash,
          policies: text,
          policy_ids: JSON.stringify(policies.ids),
          created_at: nowIso(),
          created_by: actor.principal,
        };
        await trx.insertInto('policy_versions').values(row).execute();
        return {
          result: view(row),
          before: head ? { version: head.version, hash: head.hash } : undefined,
          after: {
            version: row.version,
            hash: row.hash,
            policyIds: policies.ids,
            ...(opts.acceptedBreaches?.length ? { acceptedBreaches: opts.acceptedBreaches } : {}),
          },
          facts: { policy: { hash: row.hash, version: row.version, ids: policies.ids } },
        };
      },
    ).catch((err: unknown) => {
      // Two processes installing the defaults at once: the other one won, which is the same.
      if (onlyIfEmpty) return null;
      throw err;
    });
    this.checkedAt = 0;
    if (v) return v;
    const head = await this.list();
    return head[0]!;
  }

  async list(): Promise<PolicyVersion[]> {
    await this.current();
    const rows = await this.db.selectFrom('policy_versions').selectAll().orderBy('version', 'desc').execute();
    return rows.map(view);
  }

  /** One version with its text; `latest` for the one in force. */
  async get(version: number | 'latest'): Promise<PolicyVersion & { policies: string }> {
    await this.current();
    let q = this.db.selectFrom('policy_versions').selectAll();
    q = version === 'latest' ? q.orderBy('version', 'desc').limit(1) : q.where('version', '=', version);
    const row = await q.executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `policy version ${version} not found`);
    return { ...view(row), policies: row.policies };
  }
}

const byDb = new WeakMap<Kysely<Database>, PolicyVersions>();

/** The one PolicyVersions of a database handle (services, loops and routes share its cache). */
export function policyVersions(db: Kysely<Database>): PolicyVersions {
  let p = byDb.get(db);
  if (!p) {
    p = new PolicyVersions(db);
    byDb.set(db, p);
  }
  return p;
}
