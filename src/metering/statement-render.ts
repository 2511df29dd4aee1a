// A statement as CSV (one row per line, then per-project and grand totals) and as a printable
// HTML page (what the PDF is printed from). Both say exactly what the JSON says: the same lines,
// the same amounts, the same footprint.
import { renderPdf } from './pdf.js';
import type { Statement } from './statement.js';

export const STATEMENT_FORMATS = ['json', 'csv', 'pdf'] as const;
export type StatementFormat = (typeof STATEMENT_FORMATS)[number];

const CSV_HEAD = [
  'project',
  'item',
  'description',
  'quantity',
  'unit',
  'unit_price_eur',
  'amount_eur',
  'from',
  'to',
  'price_id',
] as const;

function csvCell(v: string | number): string {
  const s = String(v);
  // Cells a spreadsheet would run as a formula are prefixed with a quote (CSV injection).
  const safe = /^[=+\-@\t\r]/.test(s) && typeof v === 'string' ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Quantities printed to 6 decimals: the CSV is for people and spreadsheets, the JSON keeps full precision. */
export function qty(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(6).replace(/\.?0+$/, '');
}

export function statementCsv(s: Statement): string {
  const rows: (string | number)[][] = [[...CSV_HEAD]];
  for (const l of s.lines) {
    rows.push([
      l.project,
      l.item,
      l.description,
      qty(l.quantity),
      l.unit,
      l.unitPrice ?? '',
      l.amount,
      l.from,
      l.to,
      l.priceId ?? '',
    ]);
  }
  for (const p of s.projects) rows.push([p.project, 'subtotal', '', '', '', '', p.amount, '', '', '']);
  rows.push([
    '',
    'total',
    s.provisional ? 'provisional' : 'final',
    '',
    s.currency,
    '',
    s.totals.amount,
    s.from,
    s.to,
    '',
  ]);
  for (const f of s.footprint)
    rows.push([
      f.project,
      'energy',
      f.estimated ? 'estimated' : 'measured',
      qty(f.energyKWh),
      'kWh',
      '',
      '',
      '',
      '',
      '',
    ]);
  for (const f of s.footprint)
    rows.push([f.project, 'co2', f.estimated ? 'estimated' : 'measured', qty(f.co2Kg), 'kg', '', '', '', '', '']);
  return `${rows.map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function statementHtml(s: Statement): string {
  const lines = s.lines
    .map(
      (l) =>
        `<tr><td>${esc(l.project)}</td><td>${esc(l.description)}</td><td class="n">${esc(qty(l.quantity))}</td>` +
        `<td>${esc(l.unit)}</td><td class="n">${esc(l.unitPrice ?? 'no price')}</td><td class="n">${esc(l.amount)}</td></tr>`,
    )
    .join('\n');
  const projects = s.projects
    .map((p) => `<tr><td>${esc(p.project)}</td><td class="n">${esc(p.amount)}</td></tr>`)
    .join('\n');
  const foot = s.footprint
    .map(
      (f) =>
        `<tr><td>${esc(f.project)}</td><td class="n">${esc(f.energyKWh.toFixed(3))}</td>` +
        `<td class="n">${esc(f.co2Kg.toFixed(3))}</td><td>${f.estimated ? 'estimated' : 'measured'}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Statement ${esc(s.org)} ${esc(s.month)}</title>
<style>
body { font-family: sans-serif; font-size: 10pt; color: #111; }
h1 { font-size: 16pt; margin: 0 0 4pt; } h2 { font-size: 12pt; margin: 16pt 0 4pt; }
table { border-collapse: collapse; width: 100%; } th, td { padding: 3pt 6pt; border-bottom: 0.5pt solid #bbb; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; } .total td { font-weight: bold; border-top: 1pt solid #111; }
.note { color: #444; }
</style></head><body>
<h1>Statement ${esc(s.org)} ${esc(s.month)}</h1>
<p>Period ${esc(s.from)} to ${esc(s.to)} (UTC). Amounts in ${esc(s.currency)}.${s.provisional ? ' <b>Provisional</b>: the month is not over.' : ''}</p>
<table><thead><tr><th>Project</th><th>Item</th><th class="n">Quantity</th><th>Unit</th><th class="n">Unit price</th><th class="n">Amount</th></tr></thead>
<tbody>
${lines || '<tr><td colspan="6">No usage this month.</td></tr>'}
<tr class="total"><td colspan="5">Total ${esc(s.currency)}</td><td class="n">${esc(s.totals.amount)}</td></tr>
</tbody></table>
${s.unpriced ? `<p class="note">${s.unpriced} line(s) without a valid price are not charged.</p>` : ''}
<h2>By project</h2>
<table><thead><tr><th>Project</th><th class="n">Amount</th></tr></thead><tbody>
${projects}
</tbody></table>
<h2>Energy and CO2</h2>
<table><thead><tr><th>Project</th><th class="n">Energy kWh</th><th class="n">CO2 kg</th><th>Figures</th></tr></thead><tbody>
${foot || '<tr><td colspan="4">No energy recorded.</td></tr>'}
<tr class="total"><td>Total</td><td class="n">${esc(s.totals.energyKWh.toFixed(3))}</td><td class="n">${esc(s.totals.co2Kg.toFixed(3))}</td><td>${s.totals.estimated ? 'estimated' : 'measured'}</td></tr>
</tbody></table>
<p class="note">Generated ${esc(s.generatedAt)} by fabrik from the hourly usage records.</p>
</body></html>
`;
}

export async function statementPdf(s: Statement): Promise<Buffer> {
  return renderPdf(statementHtml(s));
}
