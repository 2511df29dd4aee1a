// The browser harness for console tests and the console benchmark: Debian's Chromium driven by
// playwright-core (never a downloaded browser), a real `fabrik server` serving the built console,
// and screenshots into artifacts/console/ (the folder CI keeps).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { REPO_ROOT, type ServerProcess, startServerProcess } from './child-server.js';
import { OPERATOR_TOKEN } from './harness.js';

export const CHROMIUM = process.env.FABRIK_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
export const ARTIFACTS = join(REPO_ROOT, 'artifacts/console');

/**
 * Why browser tests cannot run here, or undefined when they can. In CI (CI=true) a missing browser
 * is a failure, not a skip: pass the result to `it(..., { skip })` only outside CI.
 */
export function browserSkip(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set FABRIK_CHROMIUM)`;
  if (process.env.CI === 'true') throw new Error(why.replace('SKIPPED: ', 'CI needs the browser: '));
  process.stderr.write(`${why}\n`);
  return why;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Builds web/dist when it is missing or older than web/src (the same check `npm start` makes). */
export function ensureConsoleBuilt(): void {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/ensure-built.mjs'), '--web-only'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

export interface ConsoleServerOptions {
  /** postgres://… or a SQLite file; default a SQLite file in the data directory. */
  readonly database?: string;
  readonly dataDir?: string;
  /** Register this machine as a node with this many development GPUs (default: none). */
  readonly devGpus?: number;
  readonly env?: Record<string, string>;
}

export interface ConsoleServer {
  readonly url: string;
  readonly bootstrapKey: string;
  readonly process: ServerProcess;
  stop(): Promise<void>;
}

/** A real server (child process) serving the built console at `/`. */
export async function startConsoleServer(opts: ConsoleServerOptions = {}): Promise<ConsoleServer> {
  ensureConsoleBuilt();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'fabrik-console-'));
  const proc = await startServerProcess({
    dataDir,
    database: opts.database ?? join(dataDir, 'fabrik.db'),
    bootstrapToken: OPERATOR_TOKEN,
    devGpus: opts.devGpus,
    env: opts.env,
    startTimeoutMs: 60_000,
  });
  return { url: proc.url, bootstrapKey: OPERATOR_TOKEN, process: proc, stop: () => proc.stop() };
}

/** Writes artifacts/console/<name>.png (full page) and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Signs in through the console's sign-in page with an API key; resolves on the overview. */
export async function signInWithKey(page: Page, url: string, key: string): Promise<void> {
  await page.goto(`${url}/signin`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in with API key' }).click();
  await page.getByRole('navigation', { name: 'Console' }).waitFor();
}
