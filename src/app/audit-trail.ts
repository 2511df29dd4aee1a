// Reading the audit trail: operators see every entry; an org's admins, owners and viewers with an
// org-wide role see that org's entries. Project-scoped grants see none (entries span projects).
import { AppError } from '../domain/errors.js';
import { grantScope, orgRole } from '../policy/roles.js';
import { type Page, type PageRequest, decodeCursor, page } from '../store/paging.js';
import type { AuditEntriesTable } from '../store/schema.js';
import { type Ctx, findOrg } from './context.js';
import { type AuditEntry, optionalFields } from '../audit/entry.js';

export interface AuditEntryView extends AuditEntry {
  readonly canonical: string;
}

export function auditView(r: AuditEntriesTable): AuditEntryView {
  return {
    seq: Number(r.seq),
    time: r.time,
    orgId: r.org_id,
    actor: { keyId: r.actor_key_id, principal: r.actor_principal },
    action: r.action,
    resource: r.resource,
    requestId: r.request_id,
    beforeDigest: r.before_digest,
    afterDigest: r.after_digest,
    outcome: r.outcome as AuditEntry['outcome'],
    ...optionalFields(r.canonical),
    canonical: r.canonical,
  };
}

export async function listAuditEntries(
  ctx: Ctx,
  filter: { org?: string; action?: string; resource?: string; breakGlass?: boolean },
  req: PageRequest,
): Promise<Page<AuditEntryView>> {
  // Ordered by sequence number: a cursor must hold one.
  if (req.cursor !== undefined) decodeCursor(req.cursor, 'integer');
  let q = ctx.db.selectFrom('audit_entries').selectAll();
  if (filter.org) {
    const org = await findOrg(ctx, filter.org);
    if (!ctx.caller.operator && !orgRole(ctx.caller, org.id)) {
      throw new AppError('FORBIDDEN', 'reading the audit trail needs an org-wide role');
    }
    q = q.where('org_id', '=', org.id);
  } else if (!ctx.caller.operator) {
    const orgs = grantScope(ctx.caller).wideOrgs;
    if (orgs.length === 0) return { items: [], nextCursor: null };
    q = q.where('org_id', 'in', orgs);
  }
  if (filter.action) q = q.where('action', '=', filter.action);
  // Break-glass: grants opened and revoked, each access under one, and refused accesses.
  if (filter.breakGlass) q = q.where('action', 'like', 'break-glass.%');
  if (filter.resource) q = q.where('resource', 'like', `${filter.resource.replace(/[%_]/g, '')}%`);
  return page(q, 'seq', req, auditView);
}
