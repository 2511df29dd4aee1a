// Roles and what they allow. Pure: takes a caller's grants, answers questions.
// Platform `operator` may do anything. Inside an org: viewer < member < admin < owner.
// A project-scoped grant gives its role for that project only. A key scoped to a project narrows
// whatever its principal holds to that one project.

export const ORG_ROLES = ['viewer', 'member', 'admin', 'owner'] as const;
export type OrgRole = (typeof ORG_ROLES)[number];

export function roleRank(role: OrgRole | null | undefined): number {
  return role ? ORG_ROLES.indexOf(role) + 1 : 0;
}

export interface Grant {
  readonly orgId: string;
  /** '' for org-wide. */
  readonly projectId: string;
  readonly role: OrgRole;
}

export interface Caller {
  readonly keyId: string;
  readonly keyPrefix: string;
  readonly principalId: string;
  /** e.g. `user:alice` or `serviceaccount:acme/ci`. */
  readonly principal: string;
  readonly operator: boolean;
  /** The key's scope: '' = not limited to one org (operator keys only). */
  readonly scopeOrgId: string;
  readonly scopeProjectId: string;
  /** Grants already narrowed to the key's scope. */
  readonly grants: readonly Grant[];
}

/** Grants narrowed to what a key scope allows. */
export function narrowGrants(grants: readonly Grant[], scopeOrgId: string, scopeProjectId: string): Grant[] {
  if (!scopeOrgId) return [...grants];
  return grants
    .filter((g) => g.orgId === scopeOrgId)
    .filter((g) => !scopeProjectId || g.projectId === '' || g.projectId === scopeProjectId)
    .map((g) => (scopeProjectId ? { ...g, projectId: scopeProjectId } : g));
}

/** Whether the caller may know the org exists at all. */
export function canSeeOrg(caller: Caller, orgId: string): boolean {
  return caller.operator || caller.grants.some((g) => g.orgId === orgId);
}

/** The caller's org-wide role (none if it only has project grants). */
export function orgRole(caller: Caller, orgId: string): OrgRole | null {
  let best: OrgRole | null = null;
  for (const g of caller.grants) {
    if (g.orgId === orgId && g.projectId === '' && roleRank(g.role) > roleRank(best)) best = g.role;
  }
  return best;
}

/** The caller's effective role on one project: the best of its org-wide role and project grants. */
export function projectRole(caller: Caller, orgId: string, projectId: string): OrgRole | null {
  let best: OrgRole | null = null;
  for (const g of caller.grants) {
    if (g.orgId !== orgId) continue;
    if ((g.projectId === '' || g.projectId === projectId) && roleRank(g.role) > roleRank(best)) best = g.role;
  }
  return best;
}

/** Project ids the caller sees inside an org; 'all' when it holds an org-wide role. */
export function visibleProjects(caller: Caller, orgId: string): 'all' | Set<string> {
  if (caller.operator || orgRole(caller, orgId)) return 'all';
  return new Set(caller.grants.filter((g) => g.orgId === orgId && g.projectId).map((g) => g.projectId));
}

/**
 * Where a non-operator caller's grants reach, for listings across orgs: orgs where it holds an
 * org-wide role, and projects it holds a project grant on. Never empty-list SQL: callers check.
 */
export function grantScope(caller: Caller): { wideOrgs: string[]; projects: string[] } {
  return {
    wideOrgs: [...new Set(caller.grants.filter((g) => !g.projectId).map((g) => g.orgId))],
    projects: [...new Set(caller.grants.filter((g) => g.projectId).map((g) => g.projectId))],
  };
}
