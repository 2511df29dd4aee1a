// `npm run bench -- console --json`: the web console's overview with the Munich fleet (1,250
// nodes) in headless Chromium, cold (a fresh browser context each run: no cache, new session):
//   firstPaintMs  first contentful paint (paint timing), from navigation start;
//   floorPlanMs   until the page's `fabrik:floorplan` mark (every node drawn), from navigation start;
//   liveUpdateMs  from a cordon through the API until the node's cell on the canvas has the
//                 cordoned colour (read back from the canvas pixels): the event path, the
//                 node.cordoned event over /api/v1/events/stream (the page polls only while the
//                 stream is down, and the bench fails if it was down);
//   bundleKiB     gzip size of the scripts and styles the overview loads (raw size beside it).
// Medians over --runs N cold loads (default 5) and --updates N cordons (default 5).
// Goals (issue 14): firstPaintMs < 1500 on loopback, liveUpdateMs < 1000.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { CONSOLE_DIST } from '../src/api/console.js';
import { REPO_ROOT, api } from '../test/helpers/child-server.js';
import { launchBrowser, screenshot, startConsoleServer } from '../test/helpers/browser.js';

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;

/** #rrggbb of the cordoned state in web/src/lib/colors.ts. */
const CORDONED = [0xf0, 0xb4, 0x29];

async function coldLoad(browser: Browser, url: string, key: string) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Signed in as the console does it (the session cookie), before the page loads.
  const s = await ctx.request.post(`${url}/api/v1/session`, { data: { apiKey: key } });
  if (!s.ok()) throw new Error(`sign-in failed: ${s.status()} ${await s.text()}`);
  const page = await ctx.newPage();
  const assets: string[] = [];
  page.on('response', (r) => {
    const p = new URL(r.url()).pathname;
    if (p.startsWith('/assets/')) assets.push(p);
  });
  await page.goto(`${url}/`);
  await page.waitForFunction(() => performance.getEntriesByName('fabrik:floorplan').length > 0, undefined, {
    timeout: 30_000,
  });
  const t = await page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN,
    plan: performance.getEntriesByName('fabrik:floorplan')[0]!.startTime,
    nodes: document.querySelector('canvas')?.getAttribute('aria-label') ?? '',
  }));
  return { ctx, page, assets, ...t };
}

/** Cordons `node` and waits until its cell's centre pixel has the cordoned colour: ms from the request. */
async function liveUpdate(page: Page, call: ReturnType<typeof api>, node: string): Promise<number> {
  // As source text: tsx would wrap named inner functions in a helper the page does not have.
  const watching = page.evaluate(`new Promise((resolve, reject) => {
    const name = ${JSON.stringify(node)};
    const want = ${JSON.stringify(CORDONED)};
    const cell = window.fabrikFloorPlan && window.fabrikFloorPlan.cellOf(name);
    const canvas = document.querySelector('canvas');
    if (!cell || !canvas) return reject(new Error('no cell for ' + name));
    const g = canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const until = Date.now() + 15000;
    const look = () => {
      const p = g.getImageData(Math.floor((cell.x + cell.w / 2) * dpr), Math.floor((cell.y + cell.h / 2) * dpr), 1, 1).data;
      if (p[0] === want[0] && p[1] === want[1] && p[2] === want[2]) return resolve(Date.now());
      if (Date.now() > until) return reject(new Error(name + ' not redrawn within 15 s'));
      requestAnimationFrame(look);
    };
    look();
  })`) as Promise<number>;
  // A random phase against the server's event feed (it looks for new events every 200 ms).
  await new Promise((r) => setTimeout(r, Math.random() * 1000));
  const t0 = Date.now();
  const r = await call('POST', `/api/v1/fleet/nodes/${node}/cordon`);
  if (r.status !== 200) throw new Error(`cordon ${node}: ${r.status} ${r.text}`);
  if (process.env.DEBUG_CONSOLE_BENCH) process.stderr.write(`cordon answered in ${Date.now() - t0} ms\n`);
  return (await watching) - t0;
}

export default async function (args: string[]): Promise<Record<string, unknown>> {
  const runs = arg(args, '--runs', 5);
  const updates = arg(args, '--updates', 5);
  const server = await startConsoleServer();
  const browser = await launchBrowser();
  try {
    const call = api(server.url, server.bootstrapKey);
    const fleet = readFileSync(join(REPO_ROOT, 'examples/fleets/munich.yaml'), 'utf8');
    const applied = await call('POST', '/api/v1/fleet/apply', { file: fleet, source: 'munich.yaml' });
    if (applied.status !== 200) throw new Error(`fleet apply: ${applied.status} ${applied.text}`);

    const fcp: number[] = [];
    const plan: number[] = [];
    let assets: string[] = [];
    let label = '';
    for (let i = 0; i < runs; i++) {
      const r = await coldLoad(browser, server.url, server.bootstrapKey);
      fcp.push(r.fcp);
      plan.push(r.plan);
      assets = r.assets;
      label = r.nodes;
      await r.ctx.close();
    }
    if (!/1250 nodes/.test(label)) throw new Error(`the floor plan did not draw the Munich fleet: ${label}`);

    // Live updates on one loaded page: a different node each time.
    const page = await coldLoad(browser, server.url, server.bootstrapKey);
    const live: number[] = [];
    for (let i = 0; i < updates; i++)
      live.push(await liveUpdate(page.page, call, `b200-${String(101 + i * 97).padStart(4, '0')}`));
    // The figure is the event path's only if the stream stayed up (else the 15 s fallback drew it).
    const down = await page.page.getByText('event stream down').count();
    if (down > 0) throw new Error('the events stream was down during the live updates');
    // The site as it looks with the cordoned nodes (artifacts/console/overview-munich.png).
    await screenshot(page.page, 'overview-munich');
    await page.ctx.close();

    const files = [...new Set(assets)].filter((p) => /\.(js|css)$/.test(p));
    const bytes = files.map((p) => readFileSync(join(CONSOLE_DIST, p)));
    const gz = bytes.reduce((s, b) => s + gzipSync(b, { level: 9 }).length, 0);
    const rawBytes = bytes.reduce((s, b) => s + b.length, 0);
    return {
      bench: 'console',
      firstPaintMs: round(median(fcp)),
      floorPlanMs: round(median(plan)),
      liveUpdateMs: round(median(live)),
      bundleKiB: round(gz / 1024),
      bundle: 'gzip -9 of the JS and CSS the overview loads',
      bundleRawKiB: round(rawBytes / 1024),
      bundleFiles: files.length,
      nodes: 1250,
      runs,
      firstPaintMsRuns: fcp.map(round),
      floorPlanMsRuns: plan.map(round),
      liveUpdateMsRuns: live.map(round),
      liveUpdateMaxMs: round(Math.max(...live)),
      goals: { firstPaintMs: 1500, liveUpdateMs: 1000 },
      liveUpdateVia: 'node.cordoned event over /api/v1/events/stream (SSE) → the node redrawn',
    };
  } finally {
    await browser.close();
    await server.stop();
  }
}
