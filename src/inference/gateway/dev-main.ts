// A gateway process over a fixed routing table and fixed keys (./static.ts), for tests that need
// gateway PROCESSES (several sharing one Redis, load from another process), the benchmark, and
// trying the gateway without a control plane. `fabrik gateway` is the real one, over the database.
//
//   node --import tsx src/inference/gateway/dev-main.ts --config '<json>'
//
// The config: { port?, host?, deployments: [RouteDeployment fields], keys: { token: StaticKey },
// limits?: CallLimits, limiter?: { kind: 'memory'|'redis', url?, prefix?, windowMs?, failMode? },
// gateway?: numeric GatewayOptions }. Prints `{"url":…,"port":…}` once listening; SIGTERM stops it.
import type { CallLimits, RouteDeployment } from '../types.js';
import { type GatewayOptions, createGateway } from './gateway.js';
import { type Limiter, MemoryLimiter } from './limits.js';
import { RedisLimiter } from './limits-redis.js';
import { startGatewayServer } from './server.js';
import { MemoryUsage, type StaticKey, StaticKeys, StaticLimits, StaticRouting, deployment } from './static.js';

export interface DevGatewayConfig {
  readonly port?: number;
  readonly host?: string;
  readonly deployments: readonly (Partial<RouteDeployment> & Pick<RouteDeployment, 'id' | 'name' | 'replicas'>)[];
  readonly keys: Readonly<Record<string, StaticKey>>;
  readonly limits?: CallLimits;
  readonly limiter?: {
    readonly kind: 'memory' | 'redis';
    readonly url?: string;
    readonly prefix?: string;
    readonly windowMs?: number;
    readonly failMode?: 'open' | 'closed';
  };
  readonly gateway?: Partial<Omit<GatewayOptions, 'routing' | 'keys' | 'limits' | 'usage' | 'limiter' | 'log'>>;
}

const i = process.argv.indexOf('--config');
if (i < 0) {
  process.stderr.write("usage: dev-main.ts --config '<json>'\n");
  process.exit(2);
}
const config = JSON.parse(process.argv[i + 1]) as DevGatewayConfig;
const l = config.limiter ?? { kind: 'memory' };
const limiter: Limiter =
  l.kind === 'redis'
    ? new RedisLimiter({ url: l.url, prefix: l.prefix, windowMs: l.windowMs, failMode: l.failMode })
    : new MemoryLimiter({ windowMs: l.windowMs });
if (limiter instanceof RedisLimiter) await limiter.ready(2000);
const gateway = createGateway({
  ...config.gateway,
  routing: new StaticRouting(config.deployments.map(deployment)),
  keys: new StaticKeys(config.keys),
  limits: new StaticLimits(config.limits),
  usage: new MemoryUsage(1000),
  limiter,
});
const server = await startGatewayServer(gateway, { port: config.port ?? 0, host: config.host });
process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    await server.close();
    await gateway.close();
    await limiter.close();
    process.exit(0);
  })();
});
