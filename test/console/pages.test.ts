// The console in a real browser (Debian's Chromium through playwright-core) against a real server
// with this machine's development GPUs: sign in, the floor plan, submit a workload and watch it
// run, read its logs, cancel one, see a pending reason, verify an audit proof in the page, see a
// tenant's usage; a screenshot of each page goes to artifacts/console/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  type ConsoleServer,
  browserSkip,
  launchBrowser,
  screenshot,
  signInWithKey,
  startConsoleServer,
} from '../helpers/browser.js';
import { ENTRY, REPO_ROOT, api } from '../helpers/child-server.js';

const skip = browserSkip();

describe('the web console in Chromium', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;
  let call: ReturnType<typeof api>;
  let tenantKey: string;
  const dirs: string[] = [];

  before(async () => {
    // Usage rolls up every half second, so the page shows the run's GPU-hours at once.
    server = await startConsoleServer({ devGpus: 4, env: { FABRIK_ROLLUP_MS: '500' } });
    call = api(server.url, server.bootstrapKey);
    assert.equal((await call('POST', '/api/v1/orgs', { name: 'acme', residency: 'de' })).status, 201);
    assert.equal((await call('POST', '/api/v1/orgs/acme/projects', { name: 'train' })).status, 201);
    // Another tenant, with a project and a workload of its own: never in acme's console.
    assert.equal((await call('POST', '/api/v1/orgs', { name: 'globex', residency: 'de' })).status, 201);
    assert.equal((await call('POST', '/api/v1/orgs/globex/projects', { name: 'secret-ml' })).status, 201);
    const q = await call('PUT', '/api/v1/projects/acme.train/quotas/dev', { guaranteed: 2, limit: 4 });
    assert.equal(q.status, 200, q.text);
    // Cost: a GPU-hour price from the start of this month, and a budget for the project.
    const monthStart = `${new Date().toISOString().slice(0, 7)}-01T00:00:00Z`;
    const price = await call('POST', '/api/v1/prices', { item: 'gpu-hour', unitPrice: '2.10', validFrom: monthStart });
    assert.equal(price.status, 201, price.text);
    const budget = await call('PUT', '/api/v1/projects/acme.train/budget', { unit: 'EUR', amount: 100 });
    assert.equal(budget.status, 200, budget.text);
    await call('POST', '/api/v1/orgs/acme/members', { user: 'ada', role: 'member' });
    const k = await call('POST', '/api/v1/orgs/acme/keys', { name: 'ada', user: 'ada' });
    assert.equal(k.status, 201, k.text);
    tenantKey = k.body.token;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function signedIn(key: string): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await signInWithKey(page, server.url, key);
    return { ctx, page };
  }

  async function submit(page: Page, spec: string): Promise<void> {
    await page.goto(`${server.url}/workloads/new`);
    await page.getByLabel('Project').selectOption('acme.train');
    await page.getByLabel('Workload spec (YAML or JSON)').fill(spec);
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.getByRole('heading', { name: /^Workload acme\.train\// }).waitFor();
  }

  const spec = (name: string, gpu: number, steps: number, delay: number) =>
    `kind: training\nname: ${name}\nresources: { pool: dev, gpu: ${gpu} }\nmax_duration: 10m\n` +
    `workdir: examples/train\nrun: node train.js\nenv: { STEPS: "${steps}", STEP_DELAY_MS: "${delay}", CHECKPOINT_EVERY: "50" }\n`;

  it('serves the console with a strict CSP, and keeps API 404s', async () => {
    const res = await fetch(`${server.url}/workloads`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await res.text(), /<div id="root">/);
    const api404 = await fetch(`${server.url}/api/v1/nope`, {
      headers: { authorization: `Bearer ${server.bootstrapKey}` },
    });
    assert.equal(api404.status, 404);
    assert.equal((await api404.json()).error.code, 'NOT_FOUND');
  });

  it('signs in with a key and draws the floor plan', async () => {
    const { ctx, page } = await signedIn(server.bootstrapKey);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.waitForFunction(() => performance.getEntriesByName('fabrik:floorplan').length > 0);
    // This machine is the one node (4 development GPUs), drawn as one cell.
    await page.getByRole('img', { name: /^Floor plan of the site: 1 nodes in 1 pods/ }).waitFor();
    const draws = await page.evaluate(
      () => (window as unknown as { fabrikFloorPlan?: { draws: number } }).fabrikFloorPlan?.draws,
    );
    assert.ok((draws ?? 0) > 0);
    // Live from the events stream: a cordon through the API recolours the node within seconds
    // (the page re-reads the fleet only every 15 s, and only while the stream is down).
    const node = (await call('GET', '/api/v1/fleet/nodes')).body.items[0].name as string;
    const colour = (want: string) =>
      page.waitForFunction(
        ([n, c]) =>
          (
            window as unknown as { fabrikFloorPlan?: { colourOf(n: string): string | undefined } }
          ).fabrikFloorPlan?.colourOf(n!) === c,
        [node, want],
        { timeout: 5000 },
      );
    const ready = await page.evaluate(
      (n) =>
        (
          window as unknown as { fabrikFloorPlan?: { colourOf(n: string): string | undefined } }
        ).fabrikFloorPlan?.colourOf(n),
      node,
    );
    assert.equal((await call('POST', `/api/v1/fleet/nodes/${node}/cordon`)).status, 200);
    await colour('#f0b429');
    assert.equal((await call('POST', `/api/v1/fleet/nodes/${node}/uncordon`)).status, 200);
    await colour(ready!);
    assert.doesNotMatch((await page.locator('main').textContent()) ?? '', /event stream down/);
    await screenshot(page, 'overview');
    await page.getByLabel('power').check();
    await screenshot(page, 'overview-power');
    await ctx.close();
  });

  it('submits a workload, watches it run to success and reads its logs', async () => {
    const { ctx, page } = await signedIn(tenantKey);
    await submit(page, spec('quick', 1, 200, 5));
    await page
      .getByTestId('workload-status')
      .filter({ hasText: 'running' })
      .or(page.getByTestId('workload-status').filter({ hasText: 'succeeded' }))
      .waitFor({ timeout: 30_000 });
    await page.getByTestId('workload-status').filter({ hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
    await page.getByTestId('logs').filter({ hasText: 'done: 200 steps' }).waitFor({ timeout: 20_000 });
    assert.match((await page.getByTestId('placement').textContent()) ?? '', /Pod /);
    await screenshot(page, 'workload-detail');
    await page.goto(`${server.url}/workloads`);
    await page.getByRole('link', { name: 'quick' }).waitFor();
    await screenshot(page, 'workloads');
    await ctx.close();
  });

  it('cancels a running workload from its page', async () => {
    const { ctx, page } = await signedIn(tenantKey);
    await submit(page, spec('long', 1, 100000, 20));
    await page.getByTestId('workload-status').filter({ hasText: 'running' }).waitFor({ timeout: 30_000 });
    await page
      .getByTestId('logs')
      .filter({ hasText: /step \d+/ })
      .waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Cancel workload' }).click();
    await page.getByTestId('workload-status').filter({ hasText: 'cancelled' }).waitFor({ timeout: 20_000 });
    await ctx.close();
  });

  it('shows why a workload is pending, in the queue and on its page', async () => {
    const { ctx, page } = await signedIn(tenantKey);
    // 3 of the project's limit of 4 GPUs held: a 2-GPU workload waits, with the quota as its reason.
    await submit(page, spec('holder', 3, 100000, 20));
    await page.getByTestId('workload-status').filter({ hasText: 'running' }).waitFor({ timeout: 30_000 });
    await submit(page, spec('waiter', 2, 10, 1));
    await page.waitForFunction(() => {
      const r = document.querySelector('[data-testid="workload-reason"]')?.textContent ?? '';
      return r !== '' && r !== 'Submitted';
    });
    const why = (await page.getByTestId('workload-reason').textContent()) ?? '';
    assert.match(why, /Quota/);
    await page.goto(`${server.url}/queue`);
    const row = page.getByRole('row', { name: /waiter/ });
    await row.waitFor();
    assert.ok(((await row.textContent()) ?? '').includes(why), `queue row shows ${why}`);
    await screenshot(page, 'queue');
    for (const w of ['holder', 'waiter']) await call('POST', `/api/v1/projects/acme.train/workloads/${w}/cancel`);
    await ctx.close();
  });

  it("verifies an audit entry's inclusion proof in the browser", async () => {
    await call('POST', '/api/v1/audit/checkpoint');
    const { ctx, page } = await signedIn(server.bootstrapKey);
    await page.goto(`${server.url}/audit`);
    await page
      .getByRole('button', { name: /^Verify entry \d+$/ })
      .first()
      .click();
    const verdict = page.getByTestId('verdict');
    await verdict.waitFor({ timeout: 20_000 });
    const text = (await verdict.textContent()) ?? '';
    assert.match(text, /verified/);
    assert.doesNotMatch(text, /NOT verified/);
    assert.match(text, /inclusion: entry \d+ is included/);
    await screenshot(page, 'audit');
    await ctx.close();
  });

  it("shows a tenant's usage, and only its own projects", async () => {
    const { ctx, page } = await signedIn(tenantKey);
    await page.goto(`${server.url}/usage`);
    await page.getByRole('heading', { name: 'Usage and cost' }).waitFor();
    const row = page.getByRole('table', { name: 'Usage by project' }).getByRole('row', { name: /acme\.train/ });
    await row.waitFor();
    // The runs of the earlier tests, metered: GPU-hours above zero (reloading until the rollup has them).
    for (let i = 0; ; i++) {
      const gpuHours = Number((await row.getByRole('cell').nth(1).textContent()) ?? '0');
      if (gpuHours > 0) break;
      assert.ok(i < 40, 'no GPU-hours metered for acme.train');
      await page.waitForTimeout(500);
      await page.reload();
      await row.waitFor();
    }
    await page.getByRole('table', { name: 'Usage of acme.train by pool' }).waitFor();
    await page.waitForLoadState('networkidle');
    const budgets = page.getByRole('table', { name: 'Monthly budgets' });
    await budgets.getByRole('cell', { name: '100 EUR' }).waitFor();
    // The statement of acme: priced lines, or the API's reason why this member may not see it.
    await page.getByRole('heading', { name: /^Statement of acme/ }).waitFor();
    const text = (await page.locator('main').textContent()) ?? '';
    assert.doesNotMatch(text, /globex|secret-ml/);
    await screenshot(page, 'usage');
    await ctx.close();
  });

  it('renders every other page with its heading', async () => {
    // A deployment (an external upstream: no GPU, no replica) for the per-deployment charts.
    const dep = await call('POST', '/api/v1/projects/acme.train/deployments', {
      name: 'gpt-proxy',
      runtime: 'external',
      upstreamUrl: 'https://api.example.com/v1',
    });
    assert.equal(dep.status, 201, dep.text);
    const { ctx, page } = await signedIn(server.bootstrapKey);
    for (const [path, heading, name] of [
      ['/deployments', 'Deployments', 'deployments'],
      ['/registry', 'Models and datasets', 'registry'],
      ['/operators', 'Operators', 'operators'],
    ] as const) {
      await page.goto(server.url + path);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await page.waitForLoadState('networkidle');
      if (path === '/deployments')
        await page
          .getByRole('img', { name: /^Per minute and deployment in acme\.train since 1h: gpt-proxy 0 requests/ })
          .waitFor();
      await screenshot(page, name);
    }
    // The simulator with a result.json of a real (small) simulation.
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-console-sim-'));
    dirs.push(dir);
    const cli = (...args: string[]) =>
      execFileSync(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: REPO_ROOT, stdio: 'pipe' });
    cli('sim', 'generate', '--jobs', '40', '--projects', '3', '--span-hours', '4', '--out', join(dir, 'trace.csv'));
    cli(
      'sim',
      '--fleet',
      'examples/fleets/munich.yaml',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      'fabrik,fifo',
      '--out',
      join(dir, 'out'),
    );
    await page.goto(`${server.url}/simulator`);
    await page.getByLabel('Simulation result (result.json)').setInputFiles(join(dir, 'out/result.json'));
    await page.getByRole('table', { name: 'Policies compared' }).waitFor();
    assert.equal(await page.getByRole('row', { name: /^fifo/ }).count(), 1);
    // The wait columns, and the report's time charts drawn from the file's series.
    const result = JSON.parse(readFileSync(join(dir, 'out/result.json'), 'utf8'));
    assert.ok(result.series?.fifo?.allocation?.t?.length > 1, 'the simulation wrote series');
    for (const h of ['avg wait (s)', 'p99 wait (s)', 'max wait (s)'])
      await page.getByRole('columnheader', { name: h }).waitFor();
    const fifoRow = (await page.getByRole('row', { name: /^fifo/ }).textContent()) ?? '';
    assert.ok(fifoRow.includes(result.policies.fifo.p99WaitS.toFixed(0)), fifoRow);
    await page.getByRole('heading', { name: 'GPUs allocated over time' }).waitFor();
    await page.getByRole('img', { name: /^Mean GPUs allocated over time by fabrik, fifo/ }).waitFor();
    await page.getByRole('img', { name: /^Cumulative distribution of queueing delay/ }).waitFor();
    // ECharts drew into each chart's canvas: some pixels are not blank.
    const inked = await page.evaluate(() =>
      [...document.querySelectorAll('figure.chart canvas')].map((c) => {
        const canvas = c as HTMLCanvasElement;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
        return n;
      }),
    );
    assert.ok(inked.length >= 4 && inked.every((n) => n > 500), `charts drawn: ${inked.join(', ')}`);
    await screenshot(page, 'simulator');
    await ctx.close();
  });
});
