// From an identity provider's claims to fabrik roles. Pure: a mapping file (YAML, a list of rules)
// is parsed once at startup; each sign-in asks which org roles and whether operator the claims give.
//
//   - claim: groups          # a claim of the ID token or userinfo; dotted for nested (realm_access.roles)
//     value: acme-admins     # matches the claim's value, or one element when the claim is a list
//     org: acme
//     role: admin            # viewer | member | admin | owner
//     project: train         # optional: a grant on one project only
//   - claim: groups
//     value: platform-ops
//     role: operator         # platform operator: no org
import { AppError } from '../domain/errors.js';
import {
  InputProblem,
  type ParsedText,
  dnsLabel,
  fail,
  formatProblem,
  isRecord,
  list,
  oneOf,
  parseYamlText,
  record,
  string,
} from '../domain/input.js';
import { ORG_ROLES, type OrgRole, roleRank } from '../policy/roles.js';

export type RoleRule =
  | { readonly claim: string; readonly value: string; readonly role: 'operator' }
  | {
      readonly claim: string;
      readonly value: string;
      readonly role: OrgRole;
      readonly org: string;
      /** '' for an org-wide role. */
      readonly project: string;
    };

/** What one identity is granted: platform operator or not, and roles by org (and project). */
export interface MappedRoles {
  readonly operator: boolean;
  /** One grant per (org, project), the highest role any rule gives there; sorted. */
  readonly grants: readonly MappedGrant[];
}

export interface MappedGrant {
  readonly org: string;
  readonly project: string;
  readonly role: OrgRole;
}

const MAX_RULES = 10_000;

export function parseRoleMapping(text: string, source = 'oidc-roles.yaml'): RoleRule[] {
  let parsed: ParsedText | undefined;
  try {
    parsed = parseYamlText(text);
    return readRules(parsed.value);
  } catch (e) {
    if (!(e instanceof InputProblem)) throw e;
    const pos = e.position ?? parsed?.locate(e.path, e.atKey) ?? { line: 1, column: 1 };
    throw new AppError('OIDC_ROLES_INVALID', formatProblem(source, pos, e.path, e.message), {
      source,
      line: pos.line,
      column: pos.column,
    });
  }
}

function readRules(value: unknown): RoleRule[] {
  if (value === null || value === undefined) return [];
  return list(value, [], 0, MAX_RULES).map((item, i): RoleRule => {
    const path = [i];
    const r = record(item, path, ['claim', 'value', 'org', 'project', 'role'], ['claim', 'value', 'role']);
    const claim = string(r.claim, [...path, 'claim'], 200);
    if (!/^[A-Za-z0-9_:/.-]+$/.test(claim)) fail([...path, 'claim'], 'must be a claim name (dotted for nested claims)');
    const v = r.value;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
      fail([...path, 'value'], 'must be a string, number or boolean');
    const role = oneOf(r.role, [...path, 'role'], [...ORG_ROLES, 'operator'] as const);
    if (role === 'operator') {
      if (r.org !== undefined) fail([...path, 'org'], 'an operator rule names no org', true);
      if (r.project !== undefined) fail([...path, 'project'], 'an operator rule names no project', true);
      return { claim, value: String(v), role };
    }
    if (r.org === undefined) fail(path, `a "${role}" rule needs an org`);
    const org = dnsLabel(r.org, [...path, 'org'], 'org');
    const project = r.project === undefined ? '' : dnsLabel(r.project, [...path, 'project'], 'project');
    return { claim, value: String(v), role, org, project };
  });
}

/** The claim at a dotted path (`realm_access.roles`), or undefined. */
function claimAt(claims: unknown, path: string): unknown {
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (!isRecord(v)) return undefined;
    v = v[part];
  }
  return v;
}

function matches(claim: unknown, value: string): boolean {
  if (Array.isArray(claim)) return claim.some((c) => matches(c, value));
  return (
    (typeof claim === 'string' || typeof claim === 'number' || typeof claim === 'boolean') && String(claim) === value
  );
}

export function mapRoles(rules: readonly RoleRule[], claims: unknown): MappedRoles {
  let operator = false;
  const best = new Map<string, MappedGrant>();
  for (const rule of rules) {
    if (!matches(claimAt(claims, rule.claim), rule.value)) continue;
    if (rule.role === 'operator') {
      operator = true;
      continue;
    }
    const k = `${rule.org}\u0000${rule.project}`;
    const held = best.get(k);
    if (!held || roleRank(rule.role) > roleRank(held.role))
      best.set(k, { org: rule.org, project: rule.project, role: rule.role });
  }
  const grants = [...best.values()].sort((a, b) =>
    a.org === b.org ? a.project.localeCompare(b.project) : a.org.localeCompare(b.org),
  );
  return { operator, grants };
}

/** Orgs whose memberships the mapping governs: sign-in reconciles these and leaves others alone. */
export function managedOrgs(rules: readonly RoleRule[]): Set<string> {
  return new Set(rules.flatMap((r) => (r.role === 'operator' ? [] : [r.org])));
}

/** Whether the mapping decides the operator role (then sign-in also takes it away). */
export function managesOperator(rules: readonly RoleRule[]): boolean {
  return rules.some((r) => r.role === 'operator');
}

/**
 * A user name (DNS label) from the identity's claims: preferred_username, the email's local part,
 * or the subject; lowercased, other characters as '-'. Collisions are resolved by the caller.
 */
export function userNameFrom(claims: { sub: string; preferred_username?: unknown; email?: unknown }): string {
  const candidates = [
    claims.preferred_username,
    typeof claims.email === 'string' ? claims.email.split('@')[0] : undefined,
    claims.sub,
  ];
  for (const c of candidates) {
    if (typeof c !== 'string') continue;
    const label = c
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 54)
      .replace(/-+$/, '');
    if (label) return label;
  }
  return 'oidc-user';
}
