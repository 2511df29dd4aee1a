// `npm run bench -- api --json`: HTTP API throughput and latency on SQLite and on PostgreSQL.
// The server runs as its own child process; the load comes from autocannon in this process, over
// loopback. Per database: authenticated GET of a project with a tenant key (closed loop, as fast as
// it goes), the same GET at a fixed 1,000 requests/s (goal: p99 under 5 ms) both with autocannon's
// overallRate (bursty, see bench/paced.ts) and evenly paced, and authenticated POST creating projects with
// unique names (each an audited transaction).
// Options: --seconds N (length of each measurement, default 6), --connections N (default 10),
// --only sqlite|postgres.
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { rmSync } from 'node:fs';
import { OPERATOR_TOKEN, freshDatabase, skipReason, type DialectName } from '../test/helpers/harness.js';
import { type ServerProcess, startServerProcess } from '../test/helpers/child-server.js';
import { paced, percentile } from './paced.js';

/** The part of autocannon's API used here (it ships no types). */
export interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest;
}
export interface AutocannonOptions {
  url: string;
  connections?: number;
  duration?: number;
  overallRate?: number;
  headers?: Record<string, string>;
  requests?: AutocannonRequest[];
}
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: { p50: number; p99: number };
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(
    event: 'response',
    fn: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void,
  ): void;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: AutocannonOptions) => AutocannonInstance;

export interface Measurement {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Runs autocannon and computes latency percentiles from every 2xx response time (autocannon's own
 * histogram has 1 ms resolution, too coarse for sub-millisecond answers).
 */
export async function measure(opts: AutocannonOptions): Promise<Measurement> {
  const samples: number[] = [];
  const instance = autocannon(opts);
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) samples.push(ms);
  });
  const result = await instance;
  samples.sort((a, b) => a - b);
  return {
    rps: Math.round(result['2xx'] / result.duration),
    p50Ms: round(percentile(samples, 50)),
    p99Ms: round(percentile(samples, 99)),
    requests: result['2xx'] + result.non2xx,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/**
 * The GET at an even pace (see bench/paced.ts): an open loop, each latency counted from the
 * request's scheduled send time.
 */
async function pacedGet(
  url: string,
  headers: Record<string, string>,
  rate: number,
  seconds: number,
): Promise<Measurement> {
  const r = await paced({ url, headers, rate, seconds, maxSockets: 64 });
  return {
    rps: Math.round(r.sent / (r.elapsedMs / 1000)),
    p50Ms: round(percentile(r.samples, 50)),
    p99Ms: round(percentile(r.samples, 99)),
    requests: r.sent,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

async function call(
  server: ServerProcess,
  method: string,
  path: string,
  body: unknown,
  token = OPERATOR_TOKEN,
): Promise<any> {
  const r = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

async function benchDialect(
  dialect: DialectName,
  seconds: number,
  connections: number,
): Promise<Record<string, unknown>> {
  const skip = await skipReason(dialect);
  if (skip) return { skipped: skip };
  const db = await freshDatabase(dialect);
  const server = await startServerProcess({
    database: db.url,
    bootstrapToken: OPERATOR_TOKEN,
    env: { FABRIK_RATE_LIMIT: '1000000000' },
  });
  try {
    // Seed: an org with an owner, the owner's key, a project.
    await call(server, 'POST', '/api/v1/orgs', { name: 'acme', residency: 'de' });
    await call(server, 'POST', '/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' });
    const key = await call(server, 'POST', '/api/v1/orgs/acme/keys', { name: 'bench', user: 'alice' });
    await call(server, 'POST', '/api/v1/orgs/acme/projects', { name: 'train' }, key.token);
    const headers = { authorization: `Bearer ${key.token}` };
    const get = { url: `${server.url}/api/v1/projects/acme.train`, headers };

    await measure({ ...get, connections, duration: 2 }); // warm-up: JIT, caches, connection pools
    const getResult = await measure({ ...get, connections, duration: seconds });
    const getAt1000 = await measure({ ...get, connections, duration: seconds, overallRate: 1000 });
    const getPaced1000 = await pacedGet(get.url, headers, 1000, seconds);
    let n = 0;
    const post = await measure({
      url: server.url,
      connections,
      duration: seconds,
      headers: { ...headers, 'content-type': 'application/json' },
      requests: [
        {
          method: 'POST',
          path: '/api/v1/orgs/acme/projects',
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ name: `bench-${(n++).toString(36)}` }) }),
        },
      ],
    });
    return {
      get: getResult,
      getAt1000,
      getPaced1000,
      post,
      database: dialect === 'sqlite' ? 'SQLite file (WAL)' : 'PostgreSQL (local, fresh database)',
    };
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
    await db.drop();
  }
}

export default async function (args: string[]): Promise<object> {
  const seconds = Number(arg(args, '--seconds') ?? '6');
  const connections = Number(arg(args, '--connections') ?? '10');
  const only = arg(args, '--only');
  const result: Record<string, unknown> = { bench: 'api' };
  for (const dialect of ['sqlite', 'postgres'] as const) {
    if (only && only !== dialect) continue;
    process.stderr.write(`bench api: ${dialect}…\n`);
    result[dialect] = await benchDialect(dialect, seconds, connections);
  }
  const cpu = cpus();
  result.machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores`;
  result.config = {
    seconds,
    connections,
    getPath: 'GET /api/v1/projects/acme.train (tenant key)',
    postPath: 'POST /api/v1/orgs/acme/projects (tenant key, unique names)',
  };
  return result;
}
