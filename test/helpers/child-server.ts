// A real `fabrik server` in a child process (its own process group), for tests and benchmarks that
// need what in-process inject cannot give: kill -9, the CLI over real HTTP, load generated from
// another process (test/crash, test/cli, bench/api). The server listens on port 0; its printed address tells the real port.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ENTRY = join(REPO_ROOT, 'src/cli/entry.ts');
export const BUILT_ENTRY = join(REPO_ROOT, 'bin/fabrik.js');

/** Every process started here, so a hook can end the ones a failing test left behind. */
const live = new Set<ServerProcess>();

export interface ServerProcessOptions {
  /** postgres://… or a SQLite file. */
  readonly database: string;
  /** Default: a new temp directory. */
  readonly dataDir?: string;
  readonly bootstrapToken: string;
  readonly env?: Record<string, string>;
  /** Extra node flags, e.g. ['--cpu-prof']. */
  readonly nodeArgs?: readonly string[];
  readonly startTimeoutMs?: number;
  /** Register this machine as a node with this many development GPUs (default: no local node). */
  readonly devGpus?: number;
  /** Run the compiled CLI (bin/fabrik.js, after `npm run build`) as users do, not the sources through tsx. */
  readonly built?: boolean;
}

export interface ServerProcess {
  readonly url: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** SIGKILL to the whole process group; resolves when the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful shutdown), then SIGKILL after a grace period. */
  stop(graceMs?: number): Promise<void>;
}

export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'fabrik-srv-'));
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      ...(opts.built ? [BUILT_ENTRY] : ['--import', 'tsx', ENTRY]),
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--database',
      opts.database,
      ...(opts.devGpus === undefined ? ['--no-local-node'] : ['--dev-gpus', String(opts.devGpus)]),
    ],
    {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      // Short loop intervals: tests and benchmarks should not wait on timers.
      env: {
        ...process.env,
        FABRIK_BOOTSTRAP_TOKEN: opts.bootstrapToken,
        FABRIK_RECONCILE_INTERVAL_MS: '300',
        FABRIK_SCHEDULER_INTERVAL_MS: '500',
        ...opts.env,
      },
    },
  );
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));

  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-(child.pid as number), sig);
    } catch {
      // already gone
    }
  };
  const proc: ServerProcess = {
    url: '',
    dataDir,
    child,
    stderr: () => err,
    async kill9() {
      await signal('SIGKILL');
      await exited;
      live.delete(proc);
    },
    async stop(graceMs = 5000) {
      await signal('SIGTERM');
      const timer = setTimeout(() => void signal('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      live.delete(proc);
    },
  };
  live.add(proc);

  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(
      () => rej(new Error(`server did not start within ${opts.startTimeoutMs ?? 20_000} ms:\n${err}`)),
      opts.startTimeoutMs ?? 20_000,
    );
    const onData = () => {
      const m = /fabrik listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        res(m[1]);
      }
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      rej(new Error(`server exited (${code ?? sig}) before listening:\n${err}`));
    });
  }).catch(async (e) => {
    await proc.kill9();
    throw e;
  });
  (proc as { url: string }).url = url;
  await waitReady(url);
  return proc;
}

/** Polls /readyz until it answers 200. */
export async function waitReady(url: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`${url}/readyz did not become ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills every server process still running (for `after` hooks and exit handlers). */
export async function killAllServerProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill9()));
}

process.once('exit', () => {
  for (const p of live) {
    try {
      process.kill(-(p.child.pid as number), 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** A JSON client for a server process: `call(method, path, body?)`. */
export function api(url: string, token: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  };
}

/** Polls until `check` returns a value (not undefined), or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** What a finished CLI child process printed, and its exit code (-1 when killed). */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Collects a child's output until it ends; SIGKILL after `timeoutMs`. `input` goes to its stdin when piped. */
export function collectRun(child: ChildProcess, o: { input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin?.end(o.input ?? '');
  });
}
