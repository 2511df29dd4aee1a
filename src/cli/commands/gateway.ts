// `fabrik gateway`: the OpenAI-compatible gateway as its own stateless process, so that it scales
// out beside the control plane. It reads deployments and keys from the same database, shares
// exact limits through Redis (--redis), and reports its load for the autoscaler.
import { join } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.js';
import { action } from '../run.js';

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('Serve the OpenAI-compatible /v1 API as its own process (stateless; run as many as needed)')
    .option('--host <host>', 'address to listen on', process.env.FABRIK_GATEWAY_HOST ?? '127.0.0.1')
    .option('--port <port>', 'port to listen on', process.env.FABRIK_GATEWAY_PORT ?? '8081')
    .option(
      '--data-dir <dir>',
      "the control plane's data directory (its SQLite file and master key)",
      process.env.FABRIK_DATA_DIR ?? '.fabrik',
    )
    .option(
      '--database <url>',
      "the control plane's database: postgres://… or a SQLite file (default <data-dir>/fabrik.db)",
      process.env.FABRIK_DATABASE_URL,
    )
    .option(
      '--master-key-file <file>',
      'the master key, unless FABRIK_MASTER_KEY is set (default <data-dir>/master.key)',
    )
    .option(
      '--redis <url>',
      'redis://… : rate limits and budgets exact across gateway processes (default: in memory)',
      process.env.FABRIK_REDIS_URL,
    )
    .action(
      action(async (opts) => {
        const port = Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw CliError.usage(`--port: "${opts.port}" is not a port number`);
        const [
          { openStore },
          { loadMasterKey },
          { Authenticator },
          { openGatewayStack, gatewayName },
          { startGatewayServer },
        ] = await Promise.all([
          import('../../store/db.js'),
          import('../../app/secret-box.js'),
          import('../../tenancy/authn.js'),
          import('../../inference/setup.js'),
          import('../../inference/gateway/index.js'),
        ]);
        const master = loadMasterKey({
          envValue: process.env.FABRIK_MASTER_KEY,
          file: opts.masterKeyFile ?? join(opts.dataDir, 'master.key'),
          create: false,
        });
        const store = await openStore(opts.database ?? join(opts.dataDir, 'fabrik.db'));
        const stack = await openGatewayStack({
          db: store.db,
          masterKey: master.key,
          authenticator: new Authenticator(store.db, 1000),
          redisUrl: opts.redis,
          reportAs: gatewayName(),
          rateWindowMs: process.env.FABRIK_RATE_WINDOW_MS ? Number(process.env.FABRIK_RATE_WINDOW_MS) : undefined,
        });
        const server = await startGatewayServer(stack.gateway, { host: opts.host, port });
        process.stderr.write(
          `fabrik gateway listening on ${server.url}/v1 (database: ${store.describe}; limits: ${opts.redis ? `redis ${opts.redis}` : 'in memory'})\n`,
        );
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.stderr.write('fabrik gateway: shutting down\n');
            void (async () => {
              await server.close();
              await stack.close();
              await store.close();
            })().finally(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      }),
    );
}
