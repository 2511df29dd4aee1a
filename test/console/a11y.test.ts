// Accessibility: axe-core (node_modules/axe-core/axe.min.js, injected into the page) on the sign-in
// page and every console page, as an operator (who sees every page) with a tenant's workload, and
// on a workload's detail page. No serious or critical violation may remain; a failure lists them.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { NAV_PAGES, settle } from '../helpers/console-pages.js';
import {
  type ConsoleServer,
  browserSkip,
  launchBrowser,
  signInWithKey,
  startConsoleServer,
} from '../helpers/browser.js';
import { REPO_ROOT, api } from '../helpers/child-server.js';

const skip = browserSkip();
const AXE = join(REPO_ROOT, 'node_modules/axe-core/axe.min.js');

interface Violation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: readonly { readonly target: readonly unknown[]; readonly failureSummary?: string }[];
}

describe('console accessibility (axe-core in Chromium)', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;

  before(async () => {
    server = await startConsoleServer({ devGpus: 1 });
    const op = api(server.url, server.bootstrapKey);
    assert.equal((await op('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    assert.equal((await op('POST', '/api/v1/orgs/acme/projects', { name: 'train' })).status, 201);
    assert.equal((await op('PUT', '/api/v1/projects/acme.train/quotas/dev', { guaranteed: 1, limit: 1 })).status, 200);
    const w = await op('POST', '/api/v1/projects/acme.train/workloads', {
      kind: 'batch',
      name: 'a11y-job',
      resources: { pool: 'dev', gpu: 1 },
      max_duration: '10m',
      run: 'sleep 120',
    });
    assert.equal(w.status, 201, w.text);
    browser = await launchBrowser();
    // The console's CSP allows only its own scripts: axe is injected as a test's own, past it.
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    page = await ctx.newPage();
  });
  after(async () => {
    await ctx?.close();
    await browser?.close();
    await server?.stop();
  });

  async function seriousViolations(): Promise<Violation[]> {
    if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.addScriptTag({ path: AXE });
    const result = (await page.evaluate(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
      })))`,
    )) as Violation[];
    return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  }

  function report(where: string, vs: readonly Violation[]): string {
    return vs
      .map(
        (v) =>
          `${where}: [${v.impact}] ${v.id}: ${v.help}\n` +
          v.nodes
            .slice(0, 5)
            .map((n) => `    at ${JSON.stringify(n.target)}: ${(n.failureSummary ?? '').replaceAll('\n', ' ')}`)
            .join('\n'),
      )
      .join('\n');
  }

  it('every page has no serious or critical violations', async () => {
    const problems: string[] = [];
    await page.goto(`${server.url}/signin`);
    await page.getByRole('button', { name: 'Sign in with API key' }).waitFor();
    const signin = await seriousViolations();
    if (signin.length) problems.push(report('/signin', signin));
    await signInWithKey(page, server.url, server.bootstrapKey);
    for (const path of [...NAV_PAGES, '/workloads/new', '/workloads/acme.train/a11y-job']) {
      await page.goto(`${server.url}${path}`);
      await settle(page);
      const vs = await seriousViolations();
      if (vs.length) problems.push(report(path, vs));
    }
    assert.equal(problems.length, 0, `axe-core found serious or critical violations:\n${problems.join('\n')}`);
  });

  it('the check itself finds violations where there are some', async () => {
    await ctx.clearCookies();
    await page.goto(`${server.url}/signin`);
    await page.getByRole('button', { name: 'Sign in with API key' }).waitFor();
    await page.evaluate(`(() => {
      const img = document.createElement('img');
      img.src = '/nothing.png';
      document.querySelector('main').append(img);
      const b = document.createElement('button');
      document.querySelector('main').append(b);
    })()`);
    const ids = (await seriousViolations()).map((v) => v.id);
    assert.ok(ids.includes('image-alt') && ids.includes('button-name'), ids.join(', '));
  });
});
