// `fabrik server`, `fabrik login`, `fabrik whoami`.
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ApiClient, CliError } from '../client.js';
import { loadConfig, saveConfig } from '../config.js';
import { EXIT } from '../output.js';
import { action, addOutputOption, client, printOne } from '../run.js';
import { blobStoreSpecsFromEnv, parseBlobStoreSpec } from '../../registry/store-spec.js';
import { parseSize } from './artifacts.js';

/** `20000-29999` → [20000, 29999]. */
export function portRange(text: string): [number, number] {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const [a, b] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || a < 1024 || b > 65535 || a > b)
    throw CliError.usage(`--replica-ports: "${text}" is not a range like 20000-29999`);
  return [a, b];
}

/** The further blob stores: the repeated --blob-store-at, else FABRIK_BLOB_STORES; each checked now. */
export function blobStoresOption(given: string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const flag = given ? '--blob-store-at' : 'FABRIK_BLOB_STORES';
  const specs = given ?? blobStoreSpecsFromEnv(env);
  const names = new Set<string>();
  for (const text of specs) {
    let name: string;
    try {
      name = parseBlobStoreSpec(text, flag).name;
    } catch (err) {
      throw CliError.usage((err as Error).message);
    }
    if (names.has(name)) throw CliError.usage(`${flag}: the store name "${name}" is given twice`);
    names.add(name);
  }
  return specs;
}

/** The console's OpenID Connect settings: all of issuer, client id and role mapping, or none. */
export function oidcOptions(
  opts: { oidcIssuer?: string; oidcClientId?: string; oidcClientSecret?: string; oidcRoles?: string },
  env: NodeJS.ProcessEnv = process.env,
) {
  const secret = opts.oidcClientSecret ?? (env.FABRIK_OIDC_CLIENT_SECRET || undefined);
  if (!opts.oidcIssuer) {
    if (opts.oidcClientId || opts.oidcRoles)
      throw CliError.usage('--oidc-client-id and --oidc-roles need --oidc-issuer');
    return undefined;
  }
  if (!opts.oidcClientId) throw CliError.usage('--oidc-issuer needs --oidc-client-id');
  if (!opts.oidcRoles) throw CliError.usage('--oidc-issuer needs --oidc-roles FILE (which claims give which roles)');
  return {
    issuer: opts.oidcIssuer,
    clientId: opts.oidcClientId,
    clientSecret: secret,
    rolesFile: opts.oidcRoles,
    scopes: env.FABRIK_OIDC_SCOPES || undefined,
    displayName: env.FABRIK_OIDC_NAME || undefined,
  };
}

export function publicUrlOption(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const u = URL.canParse(text) ? new URL(text) : undefined;
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash)
    throw CliError.usage(`--public-url: "${text}" is not an http(s) URL like https://fabrik.example.eu`);
  return text.replace(/\/+$/, '');
}

export function registerServerCommands(program: Command): void {
  program
    .command('server')
    .description('Start the control plane (embedded defaults: SQLite, local node, files under ./.fabrik)')
    .option('--host <host>', 'address to listen on', process.env.FABRIK_HOST ?? '127.0.0.1')
    .option('--port <port>', 'port to listen on', process.env.FABRIK_PORT ?? '8080')
    .option('--data-dir <dir>', 'where the SQLite file, blobs and logs live', process.env.FABRIK_DATA_DIR ?? '.fabrik')
    .option(
      '--database <url>',
      'postgres://… for PostgreSQL, or a SQLite file (default <data-dir>/fabrik.db)',
      process.env.FABRIK_DATABASE_URL,
    )
    .option(
      '--dev-gpus <n>',
      'development GPUs to register when this machine has no NVIDIA GPU',
      process.env.FABRIK_DEV_GPUS ?? '4',
    )
    .option('--no-local-node', 'do not register this machine as a node')
    .option(
      '--workdir-root <dir>',
      "workloads' working directories must lie inside this directory",
      process.env.FABRIK_WORKDIR_ROOT ?? '.',
    )
    .option(
      '--executor <name>',
      'local (processes on this machine) or slurm (sbatch; the fleet is read from Slurm)',
      process.env.FABRIK_EXECUTOR ?? 'local',
    )
    .option('--slurm-conf <file>', 'slurm.conf for the Slurm clients (default: $SLURM_CONF)')
    .option(
      '--identities <kind>',
      "slurm: where projects' Unix accounts come from: local (useradd on this host) or site (LDAP/SSSD, checked only)",
      process.env.FABRIK_IDENTITIES ?? 'local',
    )
    .option(
      '--isolation <level>',
      'how local tasks are kept apart: auto (the best available), sandbox (bubblewrap + uid + cgroups), uid, none',
      process.env.FABRIK_ISOLATION ?? 'auto',
    )
    .option(
      '--region <region>',
      "the site's region, e.g. eu-de-muc1: the local node's and the default blob store's; policies read its country",
      process.env.FABRIK_REGION ?? 'eu-de-local',
    )
    .option(
      '--blob-store <where>',
      'registry blobs: fs (under --data-dir) or s3://bucket[/prefix] (FABRIK_S3_ENDPOINT, AWS_* credentials)',
      process.env.FABRIK_BLOB_STORE ?? 'fs',
    )
    .option(
      '--blob-store-at <name=where@region>',
      'a further registry blob store, repeatable, in order: <name>=<fs[:DIR]|s3://bucket[/prefix]>@<region> ' +
        '(e.g. fra=fs:/srv/blobs@eu-de-fra1; a relative DIR lies under --data-dir, plain fs is <data-dir>/registry-<name>); ' +
        "uploads go to the first store, --blob-store's first, that the org's sovereignty policy allows (default: $FABRIK_BLOB_STORES, comma-separated)",
      (v: string, all: string[] | undefined) => [...(all ?? []), v],
    )
    .option(
      '--storage-quota <size>',
      'registry storage quota of a project without its own, e.g. 500GiB (default: none)',
      process.env.FABRIK_STORAGE_QUOTA,
    )
    .option(
      '--redis <url>',
      'redis://… : the /v1 gateway keeps rate limits and token budgets there, exact across gateway processes (default: in memory)',
      process.env.FABRIK_REDIS_URL,
    )
    .option(
      '--replica-ports <first-last>',
      'ports for serving replicas (default 20000-29999)',
      process.env.FABRIK_REPLICA_PORTS,
    )
    .option(
      '--public-url <url>',
      'the URL browsers reach the console at (https://… behind a TLS proxy: Secure cookies, OIDC redirect)',
      process.env.FABRIK_PUBLIC_URL,
    )
    .option('--oidc-issuer <url>', 'OpenID Connect provider for console sign-in', process.env.FABRIK_OIDC_ISSUER)
    .option('--oidc-client-id <id>', "fabrik's client id at the provider", process.env.FABRIK_OIDC_CLIENT_ID)
    .option('--oidc-client-secret <secret>', 'its client secret (better: FABRIK_OIDC_CLIENT_SECRET)')
    .option('--oidc-roles <file>', 'YAML mapping of claims and groups to org roles', process.env.FABRIK_OIDC_ROLES)
    .option('--log-stdout', 'also write JSON logs to stdout')
    .option('--log-level <level>', 'trace, debug, info, warn or error', process.env.FABRIK_LOG_LEVEL ?? 'info')
    .action(
      action(async (opts) => {
        const port = Number(opts.port);
        const devGpus = Number(opts.devGpus);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw CliError.usage(`--port: "${opts.port}" is not a port number`);
        if (!Number.isInteger(devGpus) || devGpus < 0 || devGpus > 16)
          throw CliError.usage('--dev-gpus: an integer from 0 to 16');
        if (!['auto', 'sandbox', 'uid', 'none'].includes(opts.isolation))
          throw CliError.usage(`--isolation: "${opts.isolation}" is not auto, sandbox, uid or none`);
        if (opts.executor !== 'local' && opts.executor !== 'slurm')
          throw CliError.usage(`--executor: "${opts.executor}" is not local or slurm`);
        if (opts.identities !== 'local' && opts.identities !== 'site')
          throw CliError.usage(`--identities: "${opts.identities}" is not local or site`);
        const blobStores = blobStoresOption(opts.blobStoreAt);
        const { startServer } = await import('../../server.js');
        const server = await startServer({
          host: opts.host,
          port,
          dataDir: opts.dataDir,
          database: opts.database,
          // Under Slurm the fleet is Slurm's; this machine is not a node of it.
          localNode:
            opts.executor === 'local' &&
            opts.localNode !== false &&
            !/^(0|false|no)$/i.test(process.env.FABRIK_LOCAL_NODE ?? ''),
          executor: opts.executor,
          slurmConf: opts.slurmConf,
          identities: opts.identities,
          isolation: opts.isolation,
          region: opts.region,
          blobStore: opts.blobStore,
          blobStores,
          storageQuotaBytes: opts.storageQuota ? sizeOption('--storage-quota', opts.storageQuota) : undefined,
          devGpus,
          redisUrl: opts.redis,
          replicaPorts: opts.replicaPorts ? portRange(opts.replicaPorts) : undefined,
          bootstrapToken: process.env.FABRIK_BOOTSTRAP_TOKEN || undefined,
          logStdout: Boolean(opts.logStdout),
          logLevel: opts.logLevel,
          rateLimitPerMinute: process.env.FABRIK_RATE_LIMIT ? Number(process.env.FABRIK_RATE_LIMIT) : undefined,
          workdirRoot: opts.workdirRoot,
          schedulerIntervalMs: process.env.FABRIK_SCHEDULER_INTERVAL_MS
            ? Number(process.env.FABRIK_SCHEDULER_INTERVAL_MS)
            : undefined,
          reconcileIntervalMs: process.env.FABRIK_RECONCILE_INTERVAL_MS
            ? Number(process.env.FABRIK_RECONCILE_INTERVAL_MS)
            : undefined,
          oidc: oidcOptions(opts),
          publicUrl: publicUrlOption(opts.publicUrl),
        });
        process.stderr.write(
          `fabrik listening on ${server.url} (database: ${server.store.describe}; logs: ${opts.dataDir}/logs/fabrik.log)\n` +
            `task isolation: ${server.isolation.summary}\n`,
        );
        if (server.isolation.level === 'none') {
          process.stderr.write(
            'WARNING: tasks run as the server user, without isolation. Use this server for one tenant only.\n',
          );
        }
        if (server.bootstrapToken) {
          process.stderr.write(
            `\nBootstrap operator API key (shown once, store it now):\n\n  ${server.bootstrapToken}\n\n` +
              `Log in with:  fabrik login --endpoint ${server.url} --key <key>\n\n`,
          );
        }
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.stderr.write('fabrik: shutting down\n');
            server.close().finally(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      }),
    );

  addOutputOption(
    program
      .command('login')
      .description('Save the endpoint and API key (in a config file readable only by you)')
      .option('--endpoint <url>', 'fabrik server URL', 'http://127.0.0.1:8080')
      .option('--key <key>', 'API key (default: FABRIK_API_KEY, or read from standard input)'),
  ).action(
    action(async (opts) => {
      let key: string | undefined = opts.key ?? process.env.FABRIK_API_KEY;
      if (!key) {
        if (!process.stdin.isTTY) key = (await readAll(process.stdin)).trim();
        else {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          key = (await rl.question('API key: ')).trim();
          rl.close();
        }
      }
      if (!key) throw CliError.usage('no API key given: pass --key, set FABRIK_API_KEY, or pipe it on standard input');
      const who = await new ApiClient({ endpoint: opts.endpoint, apiKey: key }).get<Record<string, unknown>>(
        '/api/v1/whoami',
      );
      const path = saveConfig({ endpoint: opts.endpoint, apiKey: key });
      printOne(
        opts,
        { ...who, endpoint: opts.endpoint, config: path },
        () => `Logged in to ${opts.endpoint} as ${who.principal} (saved to ${path})`,
      );
    }),
  );

  addOutputOption(program.command('whoami').description('Show who the configured API key acts for')).action(
    action(async (opts) => {
      const who = await client().get<{
        principal: string;
        operator: boolean;
        grants: { org: string; project: string | null; role: string }[];
      }>('/api/v1/whoami');
      printOne(opts, { ...who, endpoint: loadConfig().endpoint }, () =>
        [
          `principal: ${who.principal}${who.operator ? ' (platform operator)' : ''}`,
          ...who.grants.map((g) => `  ${g.role} of ${g.org}${g.project ? `.${g.project}` : ''}`),
        ].join('\n'),
      );
    }),
  );
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const chunk of stream) s += chunk;
  return s;
}

export { EXIT };

function sizeOption(name: string, text: string): number {
  try {
    return parseSize(text);
  } catch (err) {
    throw CliError.usage(`${name}: ${(err as Error).message}`);
  }
}
