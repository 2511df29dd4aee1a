// `npm run bench -- registry --json [--size-mib 2048] [--parallel 4]`: how fast models move in
// and out of the registry, against what the machine itself can do. In one run: raw disk write
// MB/s (the test file written with fsync) and raw SHA-256 MB/s (node:crypto over the same bytes
// in memory); then a real server process on a temp data dir (SQLite, filesystem blob store), an
// org, project and key made by the operator, and `fabrik push` / `fabrik pull` as child
// processes (so the client's memory is its own): push the file, pull it into another directory
// and compare digests, push the same content again as a new repo of the org (deduplicated:
// nothing sent). Peak RSS (VmHWM) of the server and of the CLI are sampled from /proc.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILT_ENTRY, REPO_ROOT, api, startServerProcess } from '../test/helpers/child-server.js';
import { OPERATOR_TOKEN } from '../test/helpers/harness.js';

const MiB = 1024 * 1024;
const CHUNK = 8 * MiB;

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: "${args[i + 1]}" is not a positive number`);
  return v;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const mbps = (bytes: number, s: number) => round1(bytes / 1e6 / s);

/**
 * A valid safetensors file of `size` bytes (the server reads the header of *.safetensors): the
 * header, then random-ish data, chunk by chunk: one random block, each copy stamped with its index.
 */
function* content(size: number, base: Buffer): Generator<Buffer> {
  const json = (n: number) => JSON.stringify({ weight: { dtype: 'U8', shape: [n], data_offsets: [0, n] } });
  const width = (json(size).length + 7) & ~7;
  const header = Buffer.from(json(size - 8 - width).padEnd(width, ' '));
  for (let off = 0, i = 0; off < size; off += CHUNK, i++) {
    const n = Math.min(CHUNK, size - off);
    const chunk = Buffer.from(base.subarray(0, n));
    for (let at = 32 * 1024; at + 8 <= n; at += 64 * 1024) chunk.writeUInt32LE(i, at);
    if (i === 0) {
      chunk.writeBigUInt64LE(BigInt(width), 0);
      header.copy(chunk, 8);
    }
    yield chunk;
  }
}

/** Peak resident memory (VmHWM) of a process in MiB, from /proc; undefined once it is gone. */
function vmHwmMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(c as Buffer);
  return h.digest('hex');
}

interface CliRun {
  readonly result: any;
  readonly wallS: number;
  readonly peakRssMiB: number;
}

/** `fabrik ARGS -o json` as a child process, sampling its VmHWM; fails on a non-zero exit. */
function fabrik(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BUILT_ENTRY, ...args, '-o', 'json'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    const sample = () => {
      const v = child.pid ? vmHwmMiB(child.pid) : undefined;
      if (v !== undefined) peak = Math.max(peak, v);
    };
    const timer = setInterval(sample, 50);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('exit', () => sample());
    child.on('close', (code) => {
      clearInterval(timer);
      if (code !== 0) return reject(new Error(`fabrik ${args.join(' ')} exited ${code}:\n${stderr}`));
      resolve({ result: JSON.parse(stdout), wallS: (performance.now() - t0) / 1000, peakRssMiB: round1(peak) });
    });
  });
}

export default async function (args: string[]) {
  const size = Math.round(arg(args, '--size-mib', 2048) * MiB);
  const parallel = arg(args, '--parallel', 4);
  // Server and CLI run compiled, as `npm start` and `npx fabrik` do (tsx alone adds ~100 MiB RSS).
  const build = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) throw new Error('npm run build failed');
  const root = mkdtempSync(join(tmpdir(), 'fabrik-bench-registry-'));
  const src = join(root, 'src');
  const dest = join(root, 'pulled');
  mkdirSync(src);
  const file = join(src, 'model.safetensors');
  const base = randomBytes(CHUNK);
  try {
    // Raw disk write: the test file itself, written in 8 MiB chunks and fsynced.
    let t = performance.now();
    const fh = await fsp.open(file, 'w');
    try {
      for (const chunk of content(size, base)) await fh.write(chunk);
      await fh.sync();
    } finally {
      await fh.close();
    }
    const diskWriteS = (performance.now() - t) / 1000;
    // Raw SHA-256 over the same bytes, in memory (what hashing costs without the disk).
    const h = createHash('sha256');
    let sha256S = 0;
    for (const chunk of content(size, base)) {
      t = performance.now();
      h.update(chunk);
      sha256S += (performance.now() - t) / 1000;
    }
    const digest = h.digest('hex');

    const dataDir = join(root, 'data');
    mkdirSync(dataDir);
    const server = await startServerProcess({
      dataDir,
      database: join(dataDir, 'fabrik.db'),
      bootstrapToken: OPERATOR_TOKEN,
      env: { FABRIK_RATE_LIMIT: '1000000' },
      built: true,
    });
    let serverPeak = 0;
    const serverPid = server.child.pid as number;
    const sampler = setInterval(() => {
      serverPeak = Math.max(serverPeak, vmHwmMiB(serverPid) ?? 0);
    }, 200);
    try {
      const call = api(server.url, OPERATOR_TOKEN);
      for (const [path, body] of [
        ['/api/v1/orgs', { name: 'bench', residency: 'de' }],
        ['/api/v1/orgs/bench/projects', { name: 'registry' }],
        ['/api/v1/orgs/bench/members', { user: 'bench', role: 'owner' }],
      ] as const) {
        const r = await call('POST', path, body);
        if (r.status !== 201 && r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${r.text}`);
      }
      const key = await call('POST', '/api/v1/orgs/bench/keys', { name: 'bench', user: 'bench' });
      if (key.status !== 201) throw new Error(`key: ${key.status} ${key.text}`);
      const env = {
        ...process.env,
        FABRIK_ENDPOINT: server.url,
        FABRIK_API_KEY: key.body.token as string,
        FABRIK_CONFIG: join(root, 'no-config.json'),
        // A cache of its own: the first push hashes, the dedup push reuses the digests.
        XDG_CACHE_HOME: join(root, 'cache'),
      };
      const serverIdleRss = vmHwmMiB(serverPid) ?? 0;
      const p = String(parallel);
      const pushed = await fabrik(['push', src, 'bench.registry/big', '--parallel', p], env);
      if (pushed.result.sentBytes !== size) throw new Error(`push sent ${pushed.result.sentBytes} of ${size} bytes`);
      const pulled = await fabrik(['pull', 'bench.registry/big', dest, '--parallel', p], env);
      const got = await sha256File(join(dest, 'model.safetensors'));
      if (got !== digest) throw new Error(`pulled file has sha256 ${got}, pushed ${digest}`);
      const dedup = await fabrik(['push', src, 'bench.registry/big-copy', '--parallel', p], env);
      if (dedup.result.sentBytes !== 0) throw new Error(`the dedup push sent ${dedup.result.sentBytes} bytes`);
      serverPeak = Math.max(serverPeak, vmHwmMiB(serverPid) ?? 0);
      const clientPeak = Math.max(pushed.peakRssMiB, pulled.peakRssMiB, dedup.peakRssMiB);
      return {
        bench: 'registry',
        bytes: size,
        push: {
          mbps: mbps(size, pushed.result.seconds),
          s: pushed.result.seconds,
          wallS: round1(pushed.wallS),
          parallel,
        },
        pull: { mbps: mbps(size, pulled.result.seconds), s: pulled.result.seconds, wallS: round1(pulled.wallS) },
        dedupPush: { s: dedup.result.seconds, sentBytes: dedup.result.sentBytes },
        diskWriteMbps: mbps(size, diskWriteS),
        sha256Mbps: mbps(size, sha256S),
        peakRssMiB: round1(Math.max(serverPeak, clientPeak)),
        serverPeakRssMiB: round1(serverPeak),
        serverIdleRssMiB: round1(serverIdleRss),
        clientPeakRssMiB: round1(clientPeak),
        machine: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
      };
    } finally {
      clearInterval(sampler);
      await server.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
