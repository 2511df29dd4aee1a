// Nothing of another tenant is ever rendered: tenant A (acme-corp) and tenant B (globex) each with
// workloads (one running, one waiting) and models; signed in to the console as B, every page and
// A's resource URLs visited directly (console and API) show none of A's names or ids.
import assert from 'node:assert/strict';
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
import { api, eventually } from '../helpers/child-server.js';

const skip = browserSkip();

const A = { org: 'acme-corp', project: 'secret-lab', ref: 'acme-corp.secret-lab' };
const B = { org: 'globex', project: 'ml', ref: 'globex.ml' };
const job = (name: string, gpu: number, marker: string) => ({
  kind: 'batch',
  name,
  resources: { pool: 'dev', gpu },
  max_duration: '10m',
  run: `sleep 300 # ${marker}`,
});

describe('cross-tenant isolation in the console (Chromium)', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  /** Everything of A that must never show to B. */
  const secrets: string[] = [A.org, A.project, 'acme-secret', 'acme-marker-7731'];
  let bKey: string;

  before(async () => {
    server = await startConsoleServer({ devGpus: 2 });
    const op = api(server.url, server.bootstrapKey);
    const must = async (r: Promise<{ status: number; text: string; body: any }>, ok = [200, 201]) => {
      const res = await r;
      assert.ok(ok.includes(res.status), `${res.status} ${res.text}`);
      return res.body;
    };
    const keys: Record<string, string> = {};
    for (const t of [A, B]) {
      await must(op('POST', '/api/v1/orgs', { name: t.org, residency: 'de' }));
      await must(op('POST', `/api/v1/orgs/${t.org}/members`, { user: `${t.org}-owner`, role: 'owner' }));
      keys[t.org] = (
        await must(op('POST', `/api/v1/orgs/${t.org}/keys`, { name: 'owner', user: `${t.org}-owner` }))
      ).token;
      const project = await must(op('POST', `/api/v1/orgs/${t.org}/projects`, { name: t.project }));
      if (t === A) secrets.push(project.id);
      await must(op('PUT', `/api/v1/projects/${t.ref}/quotas/dev`, { guaranteed: 1, limit: 1 }));
    }
    bKey = keys[B.org]!;
    const a = api(server.url, keys[A.org]!);
    const b = api(server.url, bKey);
    const running = await must(
      a('POST', `/api/v1/projects/${A.ref}/workloads`, job('acme-secret-train', 1, 'acme-marker-7731')),
    );
    const waiting = await must(
      a('POST', `/api/v1/projects/${A.ref}/workloads`, job('acme-secret-wait', 1, 'acme-marker-7731')),
    );
    secrets.push(running.id, waiting.id);
    await must(b('POST', `/api/v1/projects/${B.ref}/workloads`, job('globex-job', 1, 'globex-marker')));
    for (const kind of ['models', 'datasets']) {
      const repo = await must(a('POST', `/api/v1/projects/${A.ref}/${kind}`, { name: `acme-secret-${kind}` }));
      secrets.push(repo.id);
      await must(b('POST', `/api/v1/projects/${B.ref}/${kind}`, { name: `globex-${kind}` }));
    }
    // A's first workload holds a GPU (the floor plan shows it); its second waits for quota.
    await eventually(
      async () => {
        const w = await a('GET', `/api/v1/projects/${A.ref}/workloads/acme-secret-train`);
        return w.body?.status === 'running' ? true : undefined;
      },
      60_000,
      "A's workload running",
    );
    browser = await launchBrowser();
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await ctx.newPage();
    await signInWithKey(page, server.url, bKey);
  });
  after(async () => {
    await ctx?.close();
    await browser?.close();
    await server?.stop();
  });

  /** The page's HTML (attributes, titles, hidden text included) holds none of A's names or ids. */
  async function assertNothingOfA(where: string, allowed: readonly string[] = []) {
    let html = await page.content();
    for (const a of allowed) html = html.replaceAll(a, '');
    const found = secrets.filter((s) => html.includes(s));
    assert.deepEqual(found, [], `${where} shows A's ${found.join(', ')}`);
  }

  it('every console page, as B, shows B and nothing of A', async () => {
    for (const path of NAV_PAGES) {
      await page.goto(`${server.url}${path}`);
      await settle(page);
      await assertNothingOfA(path);
    }
    await page.goto(`${server.url}/workloads`);
    await settle(page);
    await page.getByText('globex-job').first().waitFor();
  });

  it("A's resource URLs, visited directly as B, show nothing of A beyond the URL itself", async () => {
    for (const name of ['acme-secret-train', 'acme-secret-wait']) {
      const path = `/workloads/${A.ref}/${name}`;
      await page.goto(`${server.url}${path}`);
      await settle(page);
      await page
        .getByText(/not found/i)
        .first()
        .waitFor();
      // The page may name what the URL asked for; anything more (ids, spec, the other workload) is a leak.
      await assertNothingOfA(path, [A.ref, name, A.org, A.project]);
      const other = name === 'acme-secret-train' ? 'acme-secret-wait' : 'acme-secret-train';
      assert.ok(!(await page.content()).includes(other));
    }
  });

  it("A's API URLs, with B's session cookie, are 404s that say nothing of A", async () => {
    for (const path of [
      `/api/v1/orgs/${A.org}`,
      `/api/v1/projects/${A.ref}`,
      `/api/v1/projects/${A.ref}/workloads`,
      `/api/v1/projects/${A.ref}/workloads/acme-secret-train`,
      `/api/v1/projects/${A.ref}/workloads/acme-secret-train/logs`,
      `/api/v1/projects/${A.ref}/models/acme-secret-models`,
    ]) {
      const res = await page.goto(`${server.url}${path}`);
      assert.equal(res?.status(), 404, path);
      // The message may name what the URL asked for (a repo id is `org.project/name`); nothing more.
      let text = await res!.text();
      for (const part of path.split('/').filter((p) => p.includes('acme'))) text = text.replaceAll(part, '');
      const leaked = secrets.filter((s) => text.replaceAll('/', '').includes(s));
      assert.deepEqual(leaked, [], `${path} answered ${text}`);
    }
    // And listings across projects hold only B's.
    const all = await page.evaluate(async () => (await fetch('/api/v1/workloads')).text());
    assert.ok(all.includes('globex-job'));
    assert.deepEqual(
      secrets.filter((s) => all.includes(s)),
      [],
    );
  });
});
