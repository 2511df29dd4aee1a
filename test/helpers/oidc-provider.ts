// A real OpenID Connect provider for the console's sign-in tests: the certified `oidc-provider`
// (v9) on a loopback port, with one confidential test client, users with group claims, PKCE
// required, and its development login and consent pages. Also: a fabrik app with OIDC sign-in on
// a fresh database, a cookie jar, and a browser-free walk through the provider's pages.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import Provider from 'oidc-provider';
import { buildApp } from '../../src/api/app.js';
import { type Store, openStore } from '../../src/store/db.js';
import { bootstrapOperator } from '../../src/tenancy/bootstrap.js';
import { oidcFromSettings } from '../../src/tenancy/oidc.js';
import { type DialectName, OPERATOR_TOKEN, freshDatabase } from './harness.js';

export interface TestUser {
  readonly preferred_username?: string;
  readonly email?: string;
  readonly groups: readonly string[];
}

export interface TestProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Users by login; change a user's groups between sign-ins to test reconciliation. */
  readonly users: Map<string, TestUser>;
  /** Creates the provider with the client's redirect URIs (known once fabrik's port is). */
  configure(redirectUris: readonly string[]): void;
  stop(): Promise<void>;
}

/**
 * Starts listening at once (so the issuer URL is known before fabrik starts); the provider itself
 * is made by `configure()`, and answers 503 until then.
 */
export async function startOidcProvider(users: Record<string, TestUser>): Promise<TestProvider> {
  const userMap = new Map(Object.entries(users));
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end('not configured yet');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = 'fabrik-console';
  const clientSecret = 'test-client-secret-0123456789abcdefghij';
  return {
    issuer,
    clientId,
    clientSecret,
    users: userMap,
    configure(redirectUris) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: clientId,
            client_secret: clientSecret,
            redirect_uris: [...redirectUris],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_post',
          },
        ],
        pkce: { required: () => true },
        cookies: { keys: ['oidc-provider-test-cookie-key'] },
        claims: { openid: ['sub'], profile: ['preferred_username', 'groups'], email: ['email'] },
        features: { devInteractions: { enabled: true } },
        ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
        async findAccount(_ctx, id) {
          const u = userMap.get(id);
          if (!u) return undefined;
          return {
            accountId: id,
            async claims() {
              return { sub: id, preferred_username: u.preferred_username ?? id, email: u.email, groups: [...u.groups] };
            },
          };
        },
      });
      handler = provider.callback();
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export const ROLE_MAPPING = `
- { claim: groups, value: acme-admins, org: acme, role: admin }
- { claim: groups, value: acme-staff, org: acme, role: viewer }
- { claim: groups, value: globex-ml, org: globex, project: train, role: member }
- { claim: groups, value: platform-ops, role: operator }
`;

/** Writes a role mapping to a temporary file and returns its path. */
export function roleMappingFile(text = ROLE_MAPPING): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-oidc-roles-'));
  const path = join(dir, 'roles.yaml');
  writeFileSync(path, text);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ConsoleApp {
  readonly app: FastifyInstance;
  readonly store: Store;
  close(): Promise<void>;
}

/** An in-process fabrik app on a fresh database with console sign-in options (as the harness does). */
export async function startConsoleApp(
  dialect: DialectName,
  opts: {
    publicUrl?: string;
    provider?: TestProvider;
    rolesFile?: string;
    rateLimitPerMinute?: number;
  } = {},
): Promise<ConsoleApp> {
  const db = await freshDatabase(dialect);
  const store = await openStore(db.url);
  await bootstrapOperator(store, OPERATOR_TOKEN);
  const oidc =
    opts.provider && opts.rolesFile
      ? oidcFromSettings(store.db, {
          issuer: opts.provider.issuer,
          clientId: opts.provider.clientId,
          clientSecret: opts.provider.clientSecret,
          rolesFile: opts.rolesFile,
        })
      : undefined;
  const app = await buildApp({
    store,
    rateLimitPerMinute: opts.rateLimitPerMinute,
    console: { oidc, publicUrl: opts.publicUrl },
  });
  await app.ready();
  return {
    app,
    store,
    async close() {
      await app.close();
      await store.close();
      await db.drop();
    },
  };
}

/** Cookies by name, as a browser keeps them for one host (paths ignored: enough for these flows). */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  /** Takes Set-Cookie headers (a string or a list); expired or emptied ones are dropped. */
  take(setCookie: string | readonly string[] | undefined | number): void {
    if (setCookie === undefined || typeof setCookie === 'number') return;
    for (const line of typeof setCookie === 'string' ? [setCookie] : setCookie) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.trim().split('=');
        return (
          (k?.toLowerCase() === 'expires' && Date.parse(v ?? '') <= Date.now()) ||
          (k?.toLowerCase() === 'max-age' && Number(v) <= 0)
        );
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * Walks a browser's way from the provider's authorization URL through its login and consent pages
 * (submitting `login`), following redirects with a cookie jar, until a redirect leaves the provider.
 * Returns that URL: fabrik's callback with code, state and iss.
 */
export async function walkProvider(authorizationUrl: string, login: string, jar = new CookieJar()): Promise<URL> {
  let url = new URL(authorizationUrl);
  const origin = url.origin;
  let method = 'GET';
  let body: string | undefined;
  for (let step = 0; step < 20; step++) {
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    jar.take(res.headers.getSetCookie());
    method = 'GET';
    body = undefined;
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url);
      if (url.origin !== origin) return url;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200)
      throw new Error(`provider answered ${res.status} at ${url.pathname}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (!action || !prompt) throw new Error(`no form on the provider's page ${url.pathname}: ${html.slice(0, 300)}`);
    url = new URL(action.replaceAll('&amp;', '&'), url);
    method = 'POST';
    body = new URLSearchParams(
      prompt === 'login' ? { prompt, login, password: 'any-password' } : { prompt },
    ).toString();
  }
  throw new Error('the provider did not redirect back within 20 steps');
}
