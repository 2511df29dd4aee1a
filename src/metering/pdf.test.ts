import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { AppError } from '../domain/errors.js';
import { chromiumPath, pdfText, renderPdf } from './pdf.js';

// Chromium is a Debian package here and in CI (.ci/run installs it); elsewhere the test skips loudly.
const missing = existsSync(chromiumPath()) ? false : `Chromium not found at ${chromiumPath()}`;
if (missing && process.env.CI === 'true') throw new Error(`${missing}: required in CI`);
if (missing) console.warn(`\n*** SKIPPING PDF tests: ${missing} ***\n`);

test('renderPdf prints the HTML: a PDF that shows its text, also in a second font', { skip: missing }, async () => {
  const html =
    '<!doctype html><html><head><meta charset="utf-8"><title>Statement</title></head><body>' +
    '<h1>Statement acme 2026-12</h1><table><tr><td>gpu-hours b200</td><td>1,234.56 EUR</td></tr></table>' +
    '<p>Total € 99.00 <b>provisional</b></p><img src="https://example.invalid/x.png"></body></html>';
  const pdf = await renderPdf(html);
  assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
  assert.ok(pdf.subarray(-1024).toString('latin1').includes('%%EOF'));
  const text = pdfText(pdf);
  for (const want of ['Statement acme 2026-12', 'gpu-hours b200', '1,234.56 EUR', 'Total € 99.00', 'provisional']) {
    assert.ok(text.includes(want), `PDF text lacks ${JSON.stringify(want)}: ${JSON.stringify(text)}`);
  }
  assert.ok(!text.includes('Invoice'));
});

test('renderPdf without Chromium is a clear UNAVAILABLE, not a crash', async () => {
  const before = process.env.FABRIK_CHROMIUM;
  process.env.FABRIK_CHROMIUM = '/nonexistent/chromium';
  try {
    await assert.rejects(renderPdf('<p>x</p>'), (e: unknown) => e instanceof AppError && e.code === 'UNAVAILABLE');
  } finally {
    if (before === undefined) delete process.env.FABRIK_CHROMIUM;
    else process.env.FABRIK_CHROMIUM = before;
  }
});
