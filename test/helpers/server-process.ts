// A real fabrik server as a child process (for crash, restart and executor tests), and a small
// HTTP client for it. Children are killed with their process group when the test ends.
import { type ChildProcess, spawn } from 'node:child_process';
import { OPERATOR_TOKEN } from './harness.js';

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** kill -9, the way a crash or OOM kill ends it. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServerProcess(args: { dataDir: string; database?: string; env?: Record<string, string>; localNode?: boolean; devGpus?: number }): Promise<ServerProcess> {
  const argv = ['--import', 'tsx', 'src/cli/entry.ts', 'server', '--port', '0', '--data-dir', args.dataDir];
  if (args.database) argv.push('--database', args.database);
  if (args.localNode === false) argv.push('--no-local-node');
  if (args.devGpus !== undefined) argv.push('--dev-gpus', String(args.devGpus));
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, FABRIK_BOOTSTRAP_TOKEN: OPERATOR_TOKEN, FABRIK_RECONCILE_INTERVAL_MS: '300', FABRIK_SCHEDULER_INTERVAL_MS: '500', ...args.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${stderr}`)), 30_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    url,
    child,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export function api(url: string, token = OPERATOR_TOKEN) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
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
