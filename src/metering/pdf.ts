// Printing HTML to PDF through headless Chromium (the Debian package, driven by playwright-core):
// statements and compliance documents are HTML first, so the PDF says exactly what the HTML says.
import { existsSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { AppError } from '../domain/errors.js';

/** Chromium's flags for printing: nothing that reaches the network or needs a GPU or a sandbox. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.FABRIK_CHROMIUM || '/usr/bin/chromium';
}

/** A4 PDF of a self-contained HTML document (no network: external resources are blocked). */
export async function renderPdf(html: string): Promise<Buffer> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new AppError('UNAVAILABLE', `PDF output needs Chromium at ${executablePath} (set FABRIK_CHROMIUM)`, {
      chromium: executablePath,
    });
  }
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_FLAGS, headless: true, timeout: 30_000 });
  try {
    const context = await browser.newContext({ javaScriptEnabled: false, offline: true });
    const page = await context.newPage();
    await page.route(/^(?!data:|about:)/, (route) => route.abort());
    await page.setContent(html, { waitUntil: 'load', timeout: 30_000 });
    const pdf = await page.pdf({
      format: 'A4',
      printBackground: true,
      margin: { top: '15mm', bottom: '15mm', left: '12mm', right: '12mm' },
    });
    return Buffer.from(pdf);
  } finally {
    await browser.close();
  }
}

/**
 * The text a PDF shows, as far as Chromium writes it: content streams inflated, glyph codes mapped
 * back through each font's ToUnicode CMap, one line per text object. Enough to check that a
 * rendered document says what it should; not a general PDF reader.
 */
export function pdfText(pdf: Buffer): string {
  const objects = readObjects(pdf);
  const cmaps = new Map<number, Map<string, string>>();
  const cmapOf = (fontObj: number): Map<string, string> => {
    const ref = /\/ToUnicode\s+(\d+)\s+0\s+R/.exec(objects.get(fontObj)?.dict ?? '');
    const num = Number(ref?.[1] ?? -1);
    let map = cmaps.get(num);
    if (!map) {
      map = new Map();
      readCMap(objects.get(num)?.stream ?? '', map);
      cmaps.set(num, map);
    }
    return map;
  };
  const lines: string[] = [];
  for (const page of objects.values()) {
    if (!/\/Type\s*\/Page\b/.test(page.dict)) continue;
    const fonts = new Map<string, number>();
    const fontDict = /\/Font\s*<<([^>]*)>>/.exec(resourcesOf(page.dict, objects))?.[1] ?? '';
    for (const f of fontDict.matchAll(/\/([\w.+-]+)\s+(\d+)\s+0\s+R/g)) fonts.set(f[1] ?? '', Number(f[2]));
    for (const c of (/\/Contents\s+(?:\[([^\]]*)\]|(\d+\s+0\s+R))/.exec(page.dict)?.slice(1).join(' ') ?? '').matchAll(
      /(\d+)\s+0\s+R/g,
    )) {
      let map = new Map<string, string>();
      let line = '';
      const ops = /\/([\w.+-]+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>|\b(BT|ET)\b/g;
      for (const op of (objects.get(Number(c[1]))?.stream ?? '').matchAll(ops)) {
        if (op[1]) map = cmapOf(fonts.get(op[1]) ?? -1);
        else if (op[2] !== undefined) line += decodeHex(op[2], map);
        else if (op[3] === 'ET' && line) {
          lines.push(line);
          line = '';
        }
      }
    }
  }
  return lines.join('\n');
}

interface PdfObject {
  dict: string;
  stream: string;
}

function readObjects(pdf: Buffer): Map<number, PdfObject> {
  const raw = pdf.toString('latin1');
  const objects = new Map<number, PdfObject>();
  for (const m of raw.matchAll(/(\d+)\s+0\s+obj\b/g)) {
    const start = (m.index ?? 0) + m[0].length;
    const end = raw.indexOf('endobj', start);
    if (end < 0) continue;
    const body = raw.slice(start, end);
    const s = body.search(/stream\r?\n/);
    let stream = '';
    if (s >= 0) {
      const from = start + s + (body[s + 6] === '\r' ? 8 : 7);
      const to = raw.lastIndexOf('endstream', end);
      const bytes = pdf.subarray(from, to);
      try {
        stream = /\/FlateDecode/.test(body.slice(0, s))
          ? inflateSync(bytes).toString('latin1')
          : bytes.toString('latin1');
      } catch {
        stream = '';
      }
    }
    objects.set(Number(m[1]), { dict: s >= 0 ? body.slice(0, s) : body, stream });
  }
  return objects;
}

function resourcesOf(pageDict: string, objects: Map<number, PdfObject>): string {
  const ref = /\/Resources\s+(\d+)\s+0\s+R/.exec(pageDict);
  return ref ? (objects.get(Number(ref[1]))?.dict ?? '') : pageDict;
}

function readCMap(s: string, map: Map<string, string>): void {
  for (const block of s.matchAll(/beginbfchar([\s\S]*?)endbfchar/g)) {
    for (const p of (block[1] ?? '').matchAll(/<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>/g)) {
      map.set((p[1] ?? '').toUpperCase(), utf16(p[2] ?? ''));
    }
  }
  for (const block of s.matchAll(/beginbfrange([\s\S]*?)endbfrange/g)) {
    for (const p of (block[1] ?? '').matchAll(/<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>/g)) {
      const lo = Number.parseInt(p[1] ?? '0', 16);
      const hi = Number.parseInt(p[2] ?? '0', 16);
      const base = Number.parseInt(p[3] ?? '0', 16);
      const width = (p[1] ?? '').length;
      for (let c = lo; c <= hi && c - lo < 65536; c++) {
        map.set(c.toString(16).toUpperCase().padStart(width, '0'), String.fromCodePoint(base + c - lo));
      }
    }
  }
}

function utf16(hex: string): string {
  const units: number[] = [];
  for (let i = 0; i + 4 <= hex.length; i += 4) units.push(Number.parseInt(hex.slice(i, i + 4), 16));
  return String.fromCharCode(...units);
}

function decodeHex(hex: string, map: Map<string, string>): string {
  const h = hex.toUpperCase();
  let s = '';
  for (let i = 0; i + 4 <= h.length; i += 4) s += map.get(h.slice(i, i + 4)) ?? '';
  return s;
}
