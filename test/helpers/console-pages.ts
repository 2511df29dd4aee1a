// The console's pages for tests that visit each of them (cross-tenant isolation, accessibility):
// read from the navigation in web/src/app.tsx, so a page added there is covered without a change here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT } from './child-server.js';

function navPages(): string[] {
  const src = readFileSync(join(REPO_ROOT, 'web/src/app.tsx'), 'utf8');
  const nav = /export const NAV[^=]*=\s*\[([\s\S]*?)\n\];/.exec(src)?.[1];
  if (!nav) throw new Error('web/src/app.tsx: no NAV list of console pages found');
  const paths = [...nav.matchAll(/\[\s*'(\/[^']*)'\s*,/g)].map((m) => m[1]!);
  if (paths.length < 5) throw new Error(`web/src/app.tsx: NAV lists only ${paths.join(', ')}`);
  return paths;
}

/** Every page in the console's navigation, e.g. `/`, `/queue`, `/workloads`. */
export const NAV_PAGES: readonly string[] = navPages();

/** Waits until a page has rendered its data: its heading is there and nothing says Loading… */
export async function settle(page: Page, extraMs = 400): Promise<void> {
  await page.locator('main h1').first().waitFor({ timeout: 15_000 });
  await page.waitForFunction(() => !document.querySelector('main')?.textContent?.includes('Loading…'), undefined, {
    timeout: 15_000,
  });
  // Lists and charts fill in from further requests; give them a moment after the first paint.
  await page.waitForTimeout(extraMs);
}
