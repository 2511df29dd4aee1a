// Who is signed in: the session (cookie) per the console contract, or, on a server without
// session routes, an API key held in memory and checked with /whoami.
import { ApiError, call, rememberCsrf, setBearer } from './api/client.js';

export interface SessionInfo {
  readonly principal: string;
  readonly operator: boolean;
  readonly memberships: readonly { org: string; role: string }[];
  readonly method: 'api-key' | 'oidc' | 'bearer-in-memory';
}

export interface SignInMethods {
  readonly apiKey: boolean;
  readonly oidc: { readonly enabled: boolean; readonly name?: string };
}

async function fromWhoami(): Promise<SessionInfo> {
  const w = await call('get', '/api/v1/whoami');
  return {
    principal: w.principal,
    operator: w.operator,
    memberships: w.grants.filter((g) => g.project === null).map((g) => ({ org: g.org, role: g.role })),
    method: 'bearer-in-memory',
  };
}

function fromSession(s: any): SessionInfo {
  rememberCsrf(typeof s.csrfToken === 'string' ? s.csrfToken : undefined);
  return {
    principal: String(s.principal?.name ?? s.principal?.id ?? 'unknown'),
    operator: s.operator === true,
    memberships: Array.isArray(s.memberships) ? s.memberships : [],
    method: s.method === 'oidc' ? 'oidc' : 'api-key',
  };
}

/** The current session, or undefined when not signed in. */
export async function currentSession(): Promise<SessionInfo | undefined> {
  try {
    return fromSession(await call('get', '/api/v1/session' as never));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return undefined;
    throw e;
  }
}

export async function signInMethods(): Promise<SignInMethods> {
  try {
    return (await call('get', '/api/v1/session/methods' as never)) as SignInMethods;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { apiKey: true, oidc: { enabled: false } };
    throw e;
  }
}

export async function signInWithKey(apiKey: string): Promise<SessionInfo> {
  try {
    await call('post', '/api/v1/session' as never, { body: { apiKey } as never });
    const s = await currentSession();
    if (!s) throw new ApiError(401, 'UNAUTHENTICATED', 'the server did not keep the session');
    return s;
  } catch (e) {
    // No session routes on this server: keep the key in memory for this tab only.
    if (!(e instanceof ApiError && e.status === 404 && e.code === 'NOT_FOUND')) throw e;
    setBearer(apiKey);
    try {
      return await fromWhoami();
    } catch (err) {
      setBearer(undefined);
      throw err;
    }
  }
}

export async function signOut(s: SessionInfo): Promise<void> {
  if (s.method === 'bearer-in-memory') setBearer(undefined);
  else await call('delete', '/api/v1/session' as never);
  rememberCsrf(undefined);
}
