// The one check before tenant data (task logs, artifact content, secrets) is read by a platform
// operator who holds no role in the tenant's org. The sovereignty policy decides (action `access`,
// context.breakGlass = whether the operator holds an active break-glass grant on the org), failing
// closed: no readable policy set, no access. A refusal is 403 BREAK_GLASS_REQUIRED (or
// POLICY_DENIED when a policy forbids even under a grant) with a bounded `denied` entry; an access
// is one audit entry in the org (`break-glass.access`, the resource read, the grant and its reason,
// the deciding policies). Callers with a role in the org are not asked: their roles decide.
import { type ActorContext, mutate, recordDenied } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { activeGrant } from '../policy/break-glass.js';
import { type PolicyVerdict, type TenantDataKind, decideOperatorAccess } from '../policy/sovereignty.js';
import { policyVersions } from '../policy/versions.js';
import type { BreakGlassGrantsTable } from '../store/schema.js';
import type { Ctx } from './context.js';

export const BREAK_GLASS_ACCESS = 'break-glass.access';

/** Whether this caller is an operator reaching into an org it holds no role in. */
export function operatorOutsideOrg(ctx: Ctx, orgId: string): boolean {
  return ctx.caller.operator && !ctx.caller.grants.some((g) => g.orgId === orgId);
}

const actorOf = (ctx: Ctx): ActorContext => ({
  keyId: ctx.caller.keyId,
  principal: ctx.caller.principal,
  requestId: ctx.requestId,
});

/**
 * How a read of tenant data is allowed: by the caller's own roles (not an operator, or one with
 * a role in the org: the caller checks them as before), or by the sovereignty policy for an
 * operator, under the break-glass grant it names (null only where a policy lets operators in
 * without one). In the second case the access is on the record already.
 */
export type TenantDataAccess =
  | { readonly via: 'roles' }
  | { readonly via: 'policy'; readonly grant: BreakGlassGrantsTable | null };

/**
 * Asks whether the caller may read `kind` of `org` (`resource`: what is read, as audit resources
 * name it). Throws 403 BREAK_GLASS_REQUIRED (or POLICY_DENIED) when an operator may not.
 */
export async function requireTenantDataAccess(
  ctx: Ctx,
  org: { readonly id: string; readonly name: string; readonly residency: string },
  kind: TenantDataKind,
  resource: string,
): Promise<TenantDataAccess> {
  if (!operatorOutsideOrg(ctx, org.id)) return { via: 'roles' };
  const spec = { action: BREAK_GLASS_ACCESS, resource, orgId: org.id };
  const grant = await activeGrant(ctx.db, org.id, ctx.caller.principalId, new Date());
  let verdict: PolicyVerdict;
  try {
    verdict = decideOperatorAccess(
      await policyVersions(ctx.db).current(),
      ctx.caller.principal,
      { name: org.name, residency: org.residency },
      kind,
      grant !== undefined,
    );
  } catch (err) {
    // No policy set can be read: nobody is let in.
    verdict = { allowed: false, policyIds: [], policyHash: '', error: (err as Error).message };
  }
  if (!verdict.allowed) {
    await recordDenied(ctx.db, actorOf(ctx), spec);
    const details = { org: org.name, kind, policyIds: verdict.policyIds, policyHash: verdict.policyHash };
    if (!grant) {
      throw new AppError(
        'BREAK_GLASS_REQUIRED',
        `operators read ${kind} of organization "${org.name}" only under break-glass: open a grant with ` +
          `\`fabrik break-glass open --org ${org.name} --reason "why" --for 1h\` (the org sees it and may revoke it)`,
        details,
      );
    }
    throw new AppError(
      'POLICY_DENIED',
      verdict.error
        ? `the sovereignty policies could not decide, so access to ${kind} of "${org.name}" is refused: ${verdict.error}`
        : `the sovereignty policies forbid operators to read ${kind} of "${org.name}", even under break-glass`,
      details,
    );
  }
  // Every access is on the record; a policy set that lets operators in without a grant too.
  await mutate(ctx.db, actorOf(ctx), spec, async () => ({
    result: undefined,
    facts: {
      ...(grant ? { breakGlass: { grant: grant.id, reason: grant.reason } } : {}),
      policy: { hash: verdict.policyHash, ids: verdict.policyIds },
    },
  }));
  return { via: 'policy', grant: grant ?? null };
}

/** Whether a grant is still in force now (a long read, such as a followed log, stops when it ends). */
export async function grantStillActive(ctx: Ctx, grant: BreakGlassGrantsTable): Promise<boolean> {
  const g = await activeGrant(ctx.db, grant.org_id, grant.principal_id, new Date());
  return g !== undefined;
}
