// Break-glass, the service: operators open a grant on one org (a reason, an expiry of at most
// 24 h), operators and the org's owners and admins list them, the org's owner (or the operator who
// opened it) revokes one. Every change is one audited mutation in the org (orgId = the org, so the
// tenant reads it in its own audit trail), with the grant and its reason in the entry's facts.
// The table and the rules of a grant are in src/policy/break-glass.ts; using one is tenant-data.ts.
import { AppError } from '../domain/errors.js';
import {
  type BreakGlassGrant,
  checkReason,
  findGrant,
  grantView,
  insertGrant,
  listGrants,
  parseExpiresIn,
  revokeGrant,
} from '../policy/break-glass.js';
import { orgRole, roleRank } from '../policy/roles.js';
import type { Page, PageRequest } from '../store/paging.js';
import { type Ctx, deny, findOrg, requireOperatorTo, write } from './context.js';

export const breakGlassResource = (org: string, id?: string) => `orgs/${org}/break-glass${id ? `/${id}` : ''}`;

/** Opens a grant for the calling operator on `orgName`. */
export async function openBreakGlass(
  ctx: Ctx,
  orgName: string,
  body: { readonly reason: string; readonly expiresIn: string },
): Promise<BreakGlassGrant> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'break-glass.open', resource: breakGlassResource(org.name), orgId: org.id };
  await requireOperatorTo(ctx, spec, 'open break-glass grants');
  const reason = checkReason(body.reason);
  const expiresInMs = parseExpiresIn(body.expiresIn);
  return write(ctx, spec, async (trx) => {
    const now = new Date();
    const row = await insertGrant(trx, {
      orgId: org.id,
      principalId: ctx.caller.principalId,
      principal: ctx.caller.principal,
      reason,
      expiresInMs,
      now,
    });
    const grant = grantView(row, org.name, now);
    return {
      result: grant,
      after: grant,
      resource: breakGlassResource(org.name, row.id),
      facts: { breakGlass: { grant: row.id, reason } },
    };
  });
}

/** An org's grants, active and past, newest first: operators, and the org's owners and admins. */
export async function listBreakGlass(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<BreakGlassGrant>> {
  const org = await findOrg(ctx, orgName);
  if (!ctx.caller.operator && roleRank(orgRole(ctx.caller, org.id)) < roleRank('admin')) {
    throw new AppError('FORBIDDEN', "break-glass grants are listed to operators and the org's owners and admins");
  }
  return listGrants(ctx.db, org, req, new Date());
}

/** Ends a grant now: the org's owner, or the operator who opened it. */
export async function revokeBreakGlass(ctx: Ctx, orgName: string, id: string): Promise<BreakGlassGrant> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'break-glass.revoke', resource: breakGlassResource(org.name, id), orgId: org.id };
  const owner = orgRole(ctx.caller, org.id) === 'owner';
  if (!owner) {
    // The opener is known only from the grant; anyone else is refused before learning more.
    const g = ctx.caller.operator ? await findGrant(ctx.db, org.id, id) : undefined;
    if (ctx.caller.operator && !g) throw new AppError('NOT_FOUND', `break-glass grant "${id}" not found`);
    if (!g || g.principal_id !== ctx.caller.principalId) {
      await deny(ctx, spec, "revoking break-glass grants (the org's owner, or the operator who opened it)");
    }
  }
  return write(ctx, spec, async (trx) => {
    const now = new Date();
    const { before, after } = await revokeGrant(trx, org.id, id, ctx.caller.principal, now);
    const grant = grantView(after, org.name, now);
    return {
      result: grant,
      before: grantView(before, org.name, now),
      after: grant,
      facts: { breakGlass: { grant: id, reason: before.reason } },
    };
  });
}
