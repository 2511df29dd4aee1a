// Sign-in through an enterprise identity provider with OpenID Connect (openid-client): the
// authorization code flow with PKCE (S256), state and nonce. A sign-in in flight is a row of
// `oidc_logins` (its state hashed, single use, 10 minutes), so any replica can finish it. The
// identity (issuer + subject) is matched to a user, created on first sign-in, and the user's
// memberships in the orgs the role mapping names are reconciled from its claims at every sign-in.
import { readFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import * as client from 'openid-client';
import { type ActorContext, type Trx, mutate } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { hashSecret } from './api-key.js';
import type { Database } from '../store/schema.js';
import {
  type MappedGrant,
  type MappedRoles,
  type RoleRule,
  managedOrgs,
  managesOperator,
  mapRoles,
  parseRoleMapping,
  userNameFrom,
} from './oidc-roles.js';

export interface OidcOptions {
  readonly issuer: string;
  readonly clientId: string;
  /** Absent for a public client (PKCE alone). */
  readonly clientSecret?: string;
  readonly rules: readonly RoleRule[];
  /** Default `openid profile email`; add e.g. `groups` where the provider wants a scope for it. */
  readonly scopes?: string;
  /** What the sign-in page calls the provider. */
  readonly displayName?: string;
}

const LOGIN_TTL_MS = 10 * 60_000;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface FinishedSignIn {
  readonly principalId: string;
  readonly user: string;
  readonly returnTo: string;
}

/** Only paths of this origin: never `//evil.example` or a full URL (an open redirect). */
export function safeReturnTo(v: unknown): string {
  if (typeof v !== 'string' || !v.startsWith('/') || v.startsWith('//') || v.includes('\\')) return '/';
  if (v.length > 2000 || [...v].some((c) => c.charCodeAt(0) < 0x20)) return '/';
  return v;
}

export class OidcSignIn {
  private config?: Promise<client.Configuration>;

  constructor(
    private readonly db: Kysely<Database>,
    readonly opts: OidcOptions,
  ) {}

  get displayName(): string {
    return this.opts.displayName ?? 'Company SSO';
  }

  /** Discovery, once; a failure is retried on the next sign-in (the provider may be back). */
  private configuration(): Promise<client.Configuration> {
    this.config ??= (async () => {
      const issuer = new URL(this.opts.issuer);
      // Plain HTTP only to a provider on this machine (development and the test suite).
      const insecure = issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname);
      return client.discovery(
        issuer,
        this.opts.clientId,
        this.opts.clientSecret,
        this.opts.clientSecret ? client.ClientSecretPost(this.opts.clientSecret) : client.None(),
        insecure ? { execute: [client.allowInsecureRequests] } : undefined,
      );
    })().catch((err: unknown) => {
      this.config = undefined;
      throw new AppError(
        'OIDC_UNAVAILABLE',
        `the identity provider ${this.opts.issuer} cannot be reached: ${why(err)}`,
      );
    });
    return this.config;
  }

  /** Where to send the browser: the provider's authorization endpoint with PKCE, state and nonce. */
  async begin(redirectUri: string, returnTo: string): Promise<URL> {
    const config = await this.configuration();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const now = Date.now();
    await this.db.deleteFrom('oidc_logins').where('expires_at', '<', new Date(now).toISOString()).execute();
    await this.db
      .insertInto('oidc_logins')
      .values({
        state_hash: hashSecret(state),
        nonce,
        code_verifier: verifier,
        return_to: safeReturnTo(returnTo),
        expires_at: new Date(now + LOGIN_TTL_MS).toISOString(),
      })
      .execute();
    return client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.opts.scopes ?? 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
  }

  /**
   * The callback: checks state (single use), exchanges the code with the PKCE verifier, checks the
   * ID token and its nonce, reads userinfo, maps the claims to roles and reconciles the user.
   */
  async finish(redirectUri: string, query: URLSearchParams, requestId: string): Promise<FinishedSignIn> {
    const state = query.get('state');
    if (!state) throw new AppError('OIDC_FAILED', 'the identity provider answered without a state; sign in again');
    // Single use, atomically: of two callbacks with one state (a replay racing the original), one wins.
    const login = await this.db
      .deleteFrom('oidc_logins')
      .where('state_hash', '=', hashSecret(state))
      .returningAll()
      .executeTakeFirst();
    if (!login || Date.parse(login.expires_at) <= Date.now())
      throw new AppError('OIDC_FAILED', 'this sign-in is unknown, used already or expired; sign in again');
    const providerError = query.get('error');
    if (providerError) {
      const d = query.get('error_description');
      throw new AppError(
        'OIDC_FAILED',
        `the identity provider refused the sign-in: ${providerError}${d ? ` (${d})` : ''}`,
      );
    }
    const config = await this.configuration();
    const current = new URL(redirectUri);
    current.search = query.toString();
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.code_verifier,
        expectedState: state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      const id = tokens.claims();
      if (!id) throw new AppError('OIDC_FAILED', 'the identity provider returned no ID token');
      const info = config.serverMetadata().userinfo_endpoint
        ? await client.fetchUserInfo(config, tokens.access_token, id.sub)
        : {};
      // The ID token is authoritative for who it is; userinfo adds claims (groups) it may leave out.
      claims = { ...info, ...id };
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof TypeError && /fetch failed/.test(err.message))
        throw new AppError('OIDC_UNAVAILABLE', `the identity provider cannot be reached: ${why(err)}`);
      throw new AppError('OIDC_FAILED', `the identity provider's answer did not check out: ${why(err)}`);
    }
    const user = await reconcileUser(this.db, this.opts, claims, requestId);
    return { ...user, returnTo: login.return_to };
  }
}

function why(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string }; error?: string };
  return [e.error, e.message, e.cause?.message].filter(Boolean).join(': ') || String(err);
}

interface Held {
  readonly id: string;
  readonly org: string;
  readonly orgId: string;
  readonly project: string;
  readonly projectId: string;
  readonly role: string;
}

/**
 * Finds or creates the user of an identity and brings its memberships in the mapping's orgs (and
 * its operator role, where the mapping decides it) in line with the claims: one audited change.
 * Refuses with OIDC_NO_ROLE an identity the mapping gives nothing (a new one is not even created).
 */
export async function reconcileUser(
  db: Kysely<Database>,
  opts: Pick<OidcOptions, 'issuer' | 'rules'>,
  claims: Record<string, unknown>,
  requestId: string,
): Promise<{ principalId: string; user: string }> {
  const subject = typeof claims.sub === 'string' ? claims.sub : '';
  if (!subject) throw new AppError('OIDC_FAILED', 'the ID token names no subject');
  const mapped = mapRoles(opts.rules, claims);
  const noRole = () =>
    new AppError(
      'OIDC_NO_ROLE',
      `your identity (${subject} at ${opts.issuer}) maps to no role in fabrik: ask an administrator to add your group to the role mapping`,
      { issuer: opts.issuer, subject },
    );
  const known = await db
    .selectFrom('oidc_identities')
    .select('principal_id')
    .where('issuer', '=', opts.issuer)
    .where('subject', '=', subject)
    .executeTakeFirst();
  if (!known && !mapped.operator && mapped.grants.length === 0) throw noRole();
  const actor: ActorContext = { keyId: '', principal: 'system:oidc', requestId };
  const done = await mutate(db, actor, { action: 'user.oidc-sync', resource: 'users', orgId: '' }, async (trx) => {
    const principal = await findOrCreateUser(trx, opts.issuer, subject, claims);
    const change = await applyMapping(trx, principal.id, mapped, opts.rules);
    await trx
      .updateTable('oidc_identities')
      .set({ last_sign_in_at: nowIso() })
      .where('issuer', '=', opts.issuer)
      .where('subject', '=', subject)
      .execute();
    const who = `user:${principal.name}`;
    return {
      result: { principalId: principal.id, user: principal.name, hasRole: change.hasRole },
      before: principal.created ? undefined : change.before,
      after: { ...change.after, issuer: opts.issuer, subject, skipped: change.skipped },
      resource: `users/${principal.name}`,
      subject: who,
    };
  });
  if (!done.hasRole) throw noRole();
  return { principalId: done.principalId, user: done.user };
}

async function findOrCreateUser(trx: Trx, issuer: string, subject: string, claims: Record<string, unknown>) {
  const linked = await trx
    .selectFrom('oidc_identities')
    .innerJoin('principals', 'principals.id', 'oidc_identities.principal_id')
    .select(['principals.id', 'principals.name'])
    .where('issuer', '=', issuer)
    .where('subject', '=', subject)
    .executeTakeFirst();
  if (linked) return { ...linked, created: false };
  // Never linked to an existing user by name: a name at the provider proves nothing here.
  const base = userNameFrom({ sub: subject, preferred_username: claims.preferred_username, email: claims.email });
  let name = base;
  for (let n = 2; ; n++) {
    const taken = await trx
      .selectFrom('principals')
      .select('id')
      .where('kind', '=', 'user')
      .where('org_id', '=', '')
      .where('name', '=', name)
      .executeTakeFirst();
    if (!taken) break;
    name = `${base}-${n}`;
  }
  const id = newId('usr');
  const now = nowIso();
  await trx
    .insertInto('principals')
    .values({ id, kind: 'user', name, org_id: '', platform_role: '', created_at: now })
    .execute();
  await trx
    .insertInto('oidc_identities')
    .values({ issuer, subject, principal_id: id, created_at: now, last_sign_in_at: now })
    .execute();
  return { id, name, created: true };
}

async function applyMapping(trx: Trx, principalId: string, mapped: MappedRoles, rules: readonly RoleRule[]) {
  const managed = [...managedOrgs(rules)];
  const orgs = managed.length
    ? await trx.selectFrom('orgs').select(['id', 'name']).where('name', 'in', managed).execute()
    : [];
  const orgIds = orgs.map((o) => o.id);
  const projects = orgIds.length
    ? await trx.selectFrom('projects').select(['id', 'name', 'org_id']).where('org_id', 'in', orgIds).execute()
    : [];
  const held: Held[] = orgIds.length
    ? (
        await trx
          .selectFrom('memberships')
          .select(['id', 'org_id', 'project_id', 'role'])
          .where('principal_id', '=', principalId)
          .where('org_id', 'in', orgIds)
          .execute()
      ).map((m) => ({
        id: m.id,
        orgId: m.org_id,
        org: orgs.find((o) => o.id === m.org_id)!.name,
        projectId: m.project_id,
        project: projects.find((p) => p.id === m.project_id)?.name ?? '',
        role: m.role,
      }))
    : [];
  // Grants naming an org or project that does not exist (yet) are reported, not created.
  const skipped: MappedGrant[] = [];
  const wanted: Omit<Held, 'id'>[] = [];
  for (const g of mapped.grants) {
    const org = orgs.find((o) => o.name === g.org);
    const project = g.project ? projects.find((p) => p.org_id === org?.id && p.name === g.project) : undefined;
    if (!org || (g.project && !project)) skipped.push(g);
    else wanted.push({ org: g.org, orgId: org.id, project: g.project, projectId: project?.id ?? '', role: g.role });
  }
  const same = (a: { orgId: string; projectId: string }, b: { orgId: string; projectId: string }) =>
    a.orgId === b.orgId && a.projectId === b.projectId;
  for (const h of held) {
    const w = wanted.find((x) => same(x, h));
    if (!w) await trx.deleteFrom('memberships').where('id', '=', h.id).execute();
    else if (w.role !== h.role)
      await trx.updateTable('memberships').set({ role: w.role }).where('id', '=', h.id).execute();
  }
  for (const w of wanted) {
    if (held.some((h) => same(w, h))) continue;
    await trx
      .insertInto('memberships')
      .values({
        id: newId('mbr'),
        principal_id: principalId,
        org_id: w.orgId,
        project_id: w.projectId,
        role: w.role,
        created_at: nowIso(),
      })
      .execute();
  }
  const user = await trx
    .selectFrom('principals')
    .select('platform_role')
    .where('id', '=', principalId)
    .executeTakeFirstOrThrow();
  const wasOperator = user.platform_role === 'operator';
  const operator = managesOperator(rules) ? mapped.operator : wasOperator;
  if (operator !== wasOperator)
    await trx
      .updateTable('principals')
      .set({ platform_role: operator ? 'operator' : '' })
      .where('id', '=', principalId)
      .execute();
  // Memberships outside the mapping's orgs (granted by an admin) still count as a role.
  const others = await trx
    .selectFrom('memberships')
    .select('id')
    .where('principal_id', '=', principalId)
    .executeTakeFirst();
  const view = (ms: readonly Omit<Held, 'id'>[]) =>
    ms.map((m) => ({ org: m.org, project: m.project || null, role: m.role }));
  return {
    before: { operator: wasOperator, memberships: view(held) },
    after: { operator, memberships: view(wanted) },
    skipped,
    hasRole: operator || others !== undefined,
  };
}

/** What `fabrik server` is given (--oidc-issuer, --oidc-client-id, --oidc-client-secret, --oidc-roles). */
export interface OidcServerSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  /** The YAML mapping of claims to roles (src/tenancy/oidc-roles.ts). */
  readonly rolesFile: string;
  readonly scopes?: string;
  readonly displayName?: string;
}

/** Reads and checks the role mapping now, so that a bad file stops the server at start. */
export function oidcFromSettings(db: Kysely<Database>, s: OidcServerSettings): OidcSignIn {
  let url: URL;
  try {
    url = new URL(s.issuer);
  } catch {
    throw new AppError('INVALID_ARGUMENT', `--oidc-issuer: "${s.issuer}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname)))
    throw new AppError('INVALID_ARGUMENT', `--oidc-issuer: "${s.issuer}" must be https:// (http:// only on loopback)`);
  let text: string;
  try {
    text = readFileSync(s.rolesFile, 'utf8');
  } catch (err) {
    throw new AppError('OIDC_ROLES_INVALID', `--oidc-roles: cannot read ${s.rolesFile}: ${(err as Error).message}`);
  }
  const rules = parseRoleMapping(text, s.rolesFile);
  return new OidcSignIn(db, { ...s, rules });
}
