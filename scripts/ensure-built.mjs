// Builds dist/ when it is missing or older than any source file, so `npm start` works on a fresh clone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

// --web-only: just the console (the browser tests' harness), not the server's dist/.
const webOnly = process.argv.includes('--web-only');
const stamp = 'dist/cli/main.js';
if (!webOnly && (!existsSync(stamp) || statSync(stamp).mtimeMs < newest('src'))) {
  process.stderr.write('fabrik: building (tsc)...\n');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}

// The web console: web/ built by Vite into web/dist when that is missing or older than its sources
// (web/ and the audit code it bundles). One build at a time (parallel test files start together),
// into a fresh folder renamed into place, so a server never serves half a build.
const webStamp = 'web/dist/index.html';
const webStale = () =>
  !existsSync(webStamp) ||
  statSync(webStamp).mtimeMs <
    Math.max(
      newest('web/src'),
      newest('src/audit'),
      statSync('web/index.html').mtimeMs,
      statSync('web/vite.config.ts').mtimeMs,
    );
if (existsSync('web/index.html') && webStale()) {
  const lock = 'web/.build-lock';
  const until = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (Date.now() > until) throw new Error(`${lock} held for 3 minutes: remove it if no build runs`);
      execFileSync('sleep', ['0.2']);
    }
  }
  try {
    if (webStale()) {
      process.stderr.write('fabrik: building the web console (vite)...\n');
      const tmp = `web/dist.tmp-${process.pid}`;
      const vite = ['node_modules/vite/bin/vite.js', 'build', 'web', '--outDir', `dist.tmp-${process.pid}`];
      execFileSync(process.execPath, [...vite, '--logLevel', 'warn'], { stdio: 'inherit' });
      rmSync('web/dist', { recursive: true, force: true });
      renameSync(tmp, 'web/dist');
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
