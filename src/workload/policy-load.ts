// Loading a new sovereignty policy set, checked against the work already running: a set that would
// leave running workloads on nodes it forbids is reported (dry run, or a 409 listing them) and
// applied only when the operator accepts the breaches, which the load's audit entry then records.
import type { Kysely } from 'kysely';
import { type Ctx, requireOperatorTo } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import type { CompiledPolicies } from '../policy/cedar.js';
import { PlacementPolicy } from '../policy/placement.js';
import { POLICY_RESOURCE, type PolicyBreach, type PolicyVersion, policyVersions } from '../policy/versions.js';
import type { Placement } from '../scheduler/types.js';
import type { Database } from '../store/schema.js';
import { subjectOf } from './placement-policy.js';
import { loadSchedNodes } from './service.js';
import type { WorkloadSpec } from './spec.js';

export interface PolicyLoad {
  readonly applied: boolean;
  readonly hash: string;
  readonly policyIds: string[];
  /** Set when applied. */
  readonly version?: PolicyVersion;
  readonly breaches: PolicyBreach[];
}

/** Running work whose nodes `policies` would not allow. */
export async function breachesUnder(db: Kysely<Database>, policies: CompiledPolicies): Promise<PolicyBreach[]> {
  const rows = await db
    .selectFrom('workload_attempts as a')
    .innerJoin('workloads as w', 'w.id', 'a.workload_id')
    .innerJoin('projects as p', 'p.id', 'w.project_id')
    .innerJoin('orgs as o', 'o.id', 'w.org_id')
    .select(['w.name', 'w.spec', 'a.placement', 'p.name as project', 'o.name as org', 'o.residency'])
    .where('a.state', '!=', 'ended')
    .execute();
  if (rows.length === 0) return [];
  const { specs } = await loadSchedNodes(db);
  const rules = new PlacementPolicy(policies, specs);
  const breaches: PolicyBreach[] = [];
  for (const r of rows) {
    const ref = `${r.org}.${r.project}`;
    const spec = JSON.parse(r.spec) as WorkloadSpec;
    const allowance = rules.allowanceFor(subjectOf({ name: r.org, residency: r.residency }, ref, spec));
    if (!allowance) continue;
    const allowed = new Set(allowance.nodes);
    for (const n of (JSON.parse(r.placement) as Placement).nodes ?? []) {
      if (!allowed.has(n.node)) breaches.push({ workload: `${ref}/${r.name}`, node: n.node, policy: allowance.policy });
    }
  }
  return breaches;
}

export async function loadPolicies(
  ctx: Ctx,
  text: string,
  opts: { readonly dryRun?: boolean; readonly acceptBreaches?: boolean } = {},
): Promise<PolicyLoad> {
  await requireOperatorTo(
    ctx,
    { action: 'policy.load', resource: POLICY_RESOURCE, orgId: '' },
    'loading sovereignty policies',
  );
  const versions = policyVersions(ctx.db);
  const policies = versions.check(text);
  const breaches = await breachesUnder(ctx.db, policies);
  const found = { hash: policies.hash, policyIds: [...policies.ids], breaches };
  if (opts.dryRun) return { applied: false, ...found };
  if (breaches.length > 0 && !opts.acceptBreaches) {
    throw new AppError(
      'POLICY_BREACH',
      `these policies would leave ${breaches.length} running placement${breaches.length === 1 ? '' : 's'} in breach (first: ${breaches[0]!.workload} on ${breaches[0]!.node}, ${breaches[0]!.policy}); not applied. Stop that work first, or load again accepting the breaches`,
      { breaches: breaches.slice(0, 100), count: breaches.length },
    );
  }
  const version = await versions.install(
    text,
    { keyId: ctx.caller.keyId, principal: ctx.caller.principal, requestId: ctx.requestId },
    { acceptedBreaches: breaches },
  );
  return { applied: true, ...found, version };
}
