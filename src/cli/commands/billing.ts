// `fabrik prices list|set|end` (the catalogue: operators set it, everyone reads it), `fabrik bill`
// (an org's monthly statement: aligned table, -o json, --csv, --pdf FILE) and `fabrik budget
// get|set|delete` (a project's monthly budget). Thin adapters over /api/v1.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { table } from '../output.js';
import { action, addOutputOption, client, outputFormat, printList, printOne } from '../run.js';
import { projectOf } from './deployments.js';

type Obj = Record<string, any>;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error or invalid value (PRICE_INVALID, BUDGET_INVALID, MONTH_IN_FUTURE),
3 not found (or not yours to see), 4 not logged in or not allowed, 5 conflict (PRICE_OVERLAP),
7 server unreachable.`;

const ITEMS = 'gpu-hour, tokens-in, tokens-out, gb-month';

/** Quantities as people read them: up to 6 decimals, no trailing zeros. */
function qty(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(6).replace(/\.?0+$/, '');
}

/** The statement as aligned tables: lines with totals, then energy and CO2. */
export function renderStatement(s: Obj): string {
  const head = `Statement ${s.org} ${s.month} (${s.from} … ${s.to}, ${s.currency})${s.provisional ? ' PROVISIONAL: the month is not over' : ''}`;
  if (!s.lines.length && !s.footprint.length) return `${head}\nno usage this month`;
  const rows = [
    ...s.lines,
    ...s.projects.map((p: Obj) => ({ project: p.project, description: 'subtotal', amount: p.amount, sub: true })),
    { project: 'TOTAL', description: '', amount: s.totals.amount, sub: true },
  ];
  const lines = table(rows, [
    { header: 'PROJECT', get: (r: Obj) => r.project },
    { header: 'ITEM', get: (r: Obj) => r.description },
    { header: 'QUANTITY', get: (r: Obj) => (r.sub ? '' : qty(r.quantity)) },
    { header: 'UNIT', get: (r: Obj) => (r.sub ? '' : r.unit) },
    { header: 'UNIT PRICE', get: (r: Obj) => (r.sub ? '' : (r.unitPrice ?? 'no price')) },
    { header: 'AMOUNT EUR', get: (r: Obj) => r.amount },
  ]);
  const foot = s.footprint.length
    ? `\n\n${table(
        [...s.footprint, { project: 'TOTAL', ...s.totals }],
        [
          { header: 'PROJECT', get: (r: Obj) => r.project },
          { header: 'ENERGY kWh', get: (r: Obj) => r.energyKWh.toFixed(3) },
          { header: 'CO2 kg', get: (r: Obj) => r.co2Kg.toFixed(3) },
          { header: 'EST.', get: (r: Obj) => (r.estimated ? 'EST.' : '') },
        ],
      )}`
    : '';
  const note = s.unpriced ? `\n${s.unpriced} line(s) have no valid price and are not charged.` : '';
  return `${head}\n${lines}${note}${foot}`;
}

function thisMonth(): string {
  return new Date().toISOString().slice(0, 7);
}

async function download(path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await client().stream(path)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export function registerBillingCommands(program: Command): void {
  addOutputOption(
    program
      .command('bill')
      .description("An org's monthly statement: GPU-hours, tokens and storage priced, energy and CO2")
      .requiredOption('--org <org>', 'the organization')
      .option('--month <YYYY-MM>', 'the calendar month, UTC (default: this month, provisional)')
      .option('--csv', 'print the statement as CSV')
      .option('--pdf <file>', 'write the statement as a PDF file')
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (opts: Obj) => {
      const month = opts.month ?? thisMonth();
      if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw CliError.usage(`--month: "${month}" is not YYYY-MM`);
      if (opts.csv && opts.pdf) throw CliError.usage('give either --csv or --pdf');
      const path = `/api/v1/orgs/${q(opts.org)}/statements/${q(month)}`;
      if (opts.csv) {
        process.stdout.write((await download(`${path}?format=csv`)).toString('utf8'));
        return;
      }
      if (opts.pdf) {
        const pdf = await download(`${path}?format=pdf`);
        writeFileSync(opts.pdf, pdf);
        if (outputFormat(opts) === 'json') printOne(opts, { file: opts.pdf, bytes: pdf.length });
        else process.stderr.write(`wrote ${opts.pdf} (${pdf.length} bytes)\n`);
        return;
      }
      const s = await client().get<Obj>(path);
      printOne(opts, s, () => renderStatement(s));
    }),
  );

  const prices = program
    .command('prices')
    .description('The price catalogue in EUR: per GPU-hour, 1M tokens, GB-month; versions valid over whole hours')
    .addHelpText('after', EXIT_CODES);
  addOutputOption(
    prices
      .command('list')
      .description('Every price version (or those valid at a time)')
      .option('--item <item>', ITEMS)
      .option('--at <time>', 'only the versions valid at this RFC 3339 time'),
  ).action(
    action(async (opts: Obj) => {
      const params = new URLSearchParams({
        ...(opts.item ? { item: opts.item } : {}),
        ...(opts.at ? { at: opts.at } : {}),
      });
      const r = await client().get<{ items: Obj[] }>(`/api/v1/prices${params.size ? `?${params}` : ''}`);
      printList(opts, r.items, [
        { header: 'ID', get: (p) => p.id },
        { header: 'ITEM', get: (p) => p.item },
        { header: 'POOL', get: (p) => p.pool },
        { header: 'PRIORITY', get: (p) => p.priority },
        { header: 'DEPLOYMENT', get: (p) => p.deployment },
        { header: 'MODEL', get: (p) => p.model },
        { header: 'EUR', get: (p) => p.unitPrice },
        { header: 'PER', get: (p) => p.unit },
        { header: 'VALID FROM', get: (p) => p.validFrom },
        { header: 'VALID TO', get: (p) => p.validTo ?? 'open' },
        { header: 'CREATED BY', get: (p) => p.createdBy, wide: true },
      ]);
    }),
  );
  addOutputOption(
    prices
      .command('set <item> <eur>')
      .description(`A new price version (operators): <item> is one of ${ITEMS}; <eur> per unit, e.g. 2.10`)
      .requiredOption('--from <time>', 'valid from (RFC 3339, a whole hour)')
      .option('--to <time>', 'valid until (exclusive; default: open-ended)')
      .option('--pool <pool>', 'gpu-hour: only this pool')
      .option('--priority <class>', 'gpu-hour: only this priority class (critical, high, normal, preemptible)')
      .option('--deployment <org.project/name>', 'tokens: only this deployment')
      .option('--model <ref>', 'tokens: only this model')
      .option('--supersede', 'end the open-ended earlier version of the same item at --from (atomically)'),
  ).action(
    action(async (item: string, eur: string, opts: Obj) => {
      const body = {
        item,
        unitPrice: eur,
        validFrom: opts.from,
        ...(opts.to ? { validTo: opts.to } : {}),
        ...(opts.pool ? { pool: opts.pool } : {}),
        ...(opts.priority ? { priority: opts.priority } : {}),
        ...(opts.deployment ? { deployment: opts.deployment } : {}),
        ...(opts.model ? { model: opts.model } : {}),
        ...(opts.supersede ? { supersede: true } : {}),
      };
      printOne(opts, await client().request<Obj>('POST', '/api/v1/prices', body));
    }),
  );
  addOutputOption(
    prices
      .command('end <id>')
      .description('Ends a price version at a whole hour (operators)')
      .requiredOption('--at <time>', 'RFC 3339, a whole hour'),
  ).action(
    action(async (id: string, opts: Obj) => {
      printOne(opts, await client().request<Obj>('POST', `/api/v1/prices/${q(id)}/end`, { validTo: opts.at }));
    }),
  );

  const budget = program
    .command('budget')
    .description("A project's monthly budget in EUR or GPU-hours: alerts at thresholds, an action at 100 %")
    .addHelpText('after', EXIT_CODES);
  const sub = (name: string, description: string) =>
    addOutputOption(
      budget
        .command(name)
        .description(description)
        .option('-p, --project <project>', "org.project (default: the context's)"),
    );
  const show = (opts: Obj, b: Obj) =>
    printOne(opts, b, () =>
      table(
        [b],
        [
          { header: 'PROJECT', get: (x: Obj) => x.project },
          { header: 'MONTH', get: (x: Obj) => x.month },
          { header: 'BUDGET', get: (x: Obj) => `${x.amount} ${x.unit}` },
          { header: 'SPENT', get: (x: Obj) => `${x.spent.toFixed(2)} ${x.unit}` },
          {
            header: 'USED',
            get: (x: Obj) => (x.percent === null ? (x.exceeded ? 'over' : '-') : `${x.percent.toFixed(1)} %`),
          },
          { header: 'THRESHOLDS', get: (x: Obj) => x.thresholds.join(',') },
          { header: 'ALERTED', get: (x: Obj) => x.alerted.join(',') },
          { header: 'AT 100 %', get: (x: Obj) => x.action },
        ],
      ),
    );
  sub('get', "The project's budget and this month's spend").action(
    action(async (opts: Obj) => show(opts, await client().get<Obj>(`/api/v1/projects/${q(projectOf(opts))}/budget`))),
  );
  sub('set', 'Sets the monthly budget (project admins)')
    .option('--eur <amount>', 'a budget in EUR')
    .option('--gpu-hours <hours>', 'a budget in GPU-hours')
    .option('--thresholds <list>', 'alert percentages, comma-separated', '50,80,100')
    .option('--action <action>', 'at 100 %: notify, block (new submissions refused) or preemptible', 'notify')
    .action(
      action(async (opts: Obj) => {
        if ((opts.eur === undefined) === (opts.gpuHours === undefined))
          throw CliError.usage('give exactly one of --eur or --gpu-hours');
        const raw = opts.eur ?? opts.gpuHours;
        const amount = Number(raw);
        if (raw.trim() === '' || !Number.isFinite(amount))
          throw CliError.usage(`--${opts.eur !== undefined ? 'eur' : 'gpu-hours'}: "${raw}" is not a number`);
        const thresholds = String(opts.thresholds)
          .split(',')
          .map((x) => Number(x.trim()));
        if (thresholds.some((x) => !Number.isFinite(x)))
          throw CliError.usage(`--thresholds: "${opts.thresholds}" is not a list of numbers`);
        const body = { unit: opts.eur !== undefined ? 'EUR' : 'gpu-hours', amount, thresholds, action: opts.action };
        show(opts, await client().request<Obj>('PUT', `/api/v1/projects/${q(projectOf(opts))}/budget`, body));
      }),
    );
  sub('delete', 'Removes the budget (project admins)').action(
    action(async (opts: Obj) => {
      const project = projectOf(opts);
      await client().request('DELETE', `/api/v1/projects/${q(project)}/budget`);
      if (outputFormat(opts) === 'json') printOne(opts, { project, deleted: true });
      else process.stdout.write(`budget of ${project} deleted\n`);
    }),
  );
}
