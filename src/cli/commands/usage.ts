// `fabrik usage tokens`: a project's token usage as a table (by deployment, key, replica or time);
// `fabrik inference-limits get|set|delete` (also `fabrik get|set inference-limits`): its rate
// limits and monthly budget, and per-key limits.
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { age, figure, table } from '../output.js';
import { action, addOutputOption, client, outputFormat, printOne } from '../run.js';
import { USAGE_BY } from '../../metering/types.js';
import { projectOf } from './deployments.js';

type Obj = Record<string, any>;

const GROUPS = ['deployment', 'key', 'replica', 'minute', 'hour', 'day'] as const;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error or invalid value, 3 not found (or not yours to see),
4 not logged in or not allowed, 7 server unreachable.`;

/** `1000`, `50k`, `5M`, `2G` (SI: k = 1000): a token or request count; 0 removes a limit. */
export function countFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(v.trim());
  const n = m ? Number(m[1]) * 1000 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0)
    throw CliError.usage(`${flag}: "${v}" is not a whole count such as 600, 50k or 5M (0 removes the limit)`);
  return n;
}

/** The usage table: one row per group and a TOTAL; EST. marks estimated energy. */
export function renderUsage(r: Obj): string {
  const head = `${r.scope}: ${r.from} … ${r.to}, by ${r.by}`;
  if (!r.rows.length) return `${head}\nno usage in this range`;
  const perToken = r.by === 'deployment' || r.by === 'model';
  const fixed = figure;
  const rows = [...r.rows, { group: 'TOTAL', ...r.totals }];
  return `${head}\n${table(rows, [
    { header: r.by.toUpperCase(), get: (x: Obj) => x.group },
    { header: 'GPU-HOURS', get: (x: Obj) => fixed(x.gpuHours, 2) },
    { header: 'TOKENS IN', get: (x: Obj) => x.tokensIn },
    { header: 'TOKENS OUT', get: (x: Obj) => x.tokensOut },
    { header: 'GB-MONTHS', get: (x: Obj) => fixed(x.gbMonths, 3) },
    { header: 'ENERGY kWh', get: (x: Obj) => fixed(x.energyKWh, 2) },
    { header: 'CO2 kg', get: (x: Obj) => fixed(x.co2Kg, 2) },
    ...(perToken
      ? [
          {
            header: 'WH/1K TOKENS',
            get: (x: Obj) => (x.energyWhPerToken === null ? '-' : fixed(x.energyWhPerToken * 1000, 3)),
          },
        ]
      : []),
    { header: 'EST.', get: (x: Obj) => (x.estimated ? 'EST.' : '') },
  ])}`;
}

const dash = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v);

export function registerUsageCommands(program: Command): void {
  const usage = addOutputOption(
    program
      .command('usage')
      .description(
        'What a project or an org used: GPU-hours, tokens, GB-months, energy and CO2 (`usage tokens`: per key)',
      )
      .option('-p, --project <project>', "org.project (default: the context's)")
      .option('--org <org>', "an org's usage, by project unless --by says otherwise")
      .option('--by <group>', `${USAGE_BY.join(', ')} (default: day for a project, project for an org)`)
      .option('--since <when>', 'RFC 3339 time or a duration ago: 30m, 24h, 7d (default: the start of this month)')
      .option('--until <when>', 'RFC 3339 time or a duration ago (default now)')
      .option('--month <YYYY-MM>', 'a whole calendar month (UTC), instead of --since/--until')
      .addHelpText(
        'after',
        `\nEST. marks figures with estimated energy (TDP × utilisation, no power measurement).\n${EXIT_CODES}`,
      ),
  ).action(
    action(async (opts: Obj) => {
      if (opts.by !== undefined && !(USAGE_BY as readonly string[]).includes(opts.by))
        throw CliError.usage(`--by: "${opts.by}" is not one of ${USAGE_BY.join(', ')}`);
      if (opts.month !== undefined && (opts.since !== undefined || opts.until !== undefined))
        throw CliError.usage('give either --month or --since/--until');
      if (opts.month !== undefined && !/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.month))
        throw CliError.usage(`--month: "${opts.month}" is not YYYY-MM`);
      if (opts.org !== undefined && opts.project !== undefined) throw CliError.usage('give either --org or -p');
      const params = new URLSearchParams({
        ...(opts.by ? { by: opts.by } : {}),
        ...(opts.since ? { from: opts.since } : {}),
        ...(opts.until ? { to: opts.until } : {}),
        ...(opts.month ? { month: opts.month } : {}),
      });
      const path = opts.org !== undefined ? `/api/v1/orgs/${q(opts.org)}` : `/api/v1/projects/${q(projectOf(opts))}`;
      const report = await client().get<Obj>(`${path}/usage?${params}`);
      printOne(opts, report, () => renderUsage(report));
    }),
  );
  addOutputOption(
    usage
      .command('tokens')
      .description('Token usage of a project over a time range, grouped')
      .option('-p, --project <project>', "org.project (default: the context's)")
      .option('--since <when>', 'RFC 3339 time or a duration ago: 30m, 24h, 7d (default 24h)')
      .option('--until <when>', 'RFC 3339 time or a duration ago (default now)')
      .option('--by <group>', `${GROUPS.join(', ')} (default deployment)`)
      .option('--deployment <name>', "only this deployment's usage: its name, or its id (dep_…, also a deleted one)")
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (_own: Obj, cmd: Command) => {
      // `usage` itself has -p, --by, --since, --until and -o: commander gives them to it even when
      // written after `tokens`, so read them from both (an option given here wins over a default).
      const own = Object.entries(cmd.opts()).filter(([k]) => cmd.getOptionValueSource(k) !== 'default');
      const opts: Obj = { ...cmd.parent?.opts(), ...Object.fromEntries(own) };
      if (opts.month !== undefined || opts.org !== undefined)
        throw CliError.usage('usage tokens takes -p and --since/--until, not --month or --org');
      opts.since ??= '24h';
      opts.by ??= 'deployment';
      if (!(GROUPS as readonly string[]).includes(opts.by))
        throw CliError.usage(`--by: "${opts.by}" is not one of ${GROUPS.join(', ')}`);
      const params = new URLSearchParams({
        since: opts.since,
        by: opts.by,
        ...(opts.until ? { until: opts.until } : {}),
        ...(opts.deployment !== undefined ? { deployment: opts.deployment } : {}),
      });
      const report = await client().get<Obj>(`/api/v1/projects/${q(projectOf(opts))}/usage/tokens?${params}`);
      if (outputFormat(opts) === 'json') return printOne(opts, report);
      const only = report.deployment ? `, deployment ${report.deployment.name}` : '';
      const head = `${report.project}${only}: ${report.since} … ${report.until}, by ${report.by}`;
      if (!report.rows.length) {
        process.stdout.write(`${head}\nno usage in this range\n`);
        return;
      }
      const rows = [...report.rows, { group: 'TOTAL', ...report.totals }];
      const label = report.by === 'key' ? 'KEY' : report.by.toUpperCase();
      process.stdout.write(
        `${head}\n${table(rows, [
          { header: label, get: (r: Obj) => r.group },
          ...(report.by === 'replica' ? [{ header: 'DEPLOYMENT', get: (r: Obj) => r.deployment }] : []),
          { header: 'REQUESTS', get: (r: Obj) => r.requests },
          { header: 'ERRORS', get: (r: Obj) => r.errors },
          { header: 'TOKENS IN', get: (r: Obj) => r.tokensIn },
          { header: 'TOKENS OUT', get: (r: Obj) => r.tokensOut },
          { header: 'TTFT MS', get: (r: Obj) => dash(r.meanTtftMs) },
          { header: 'TOKENS PER SEC', get: (r: Obj) => dash(r.tokensPerSec) },
        ])}\n${report.truncated ? '(more groups than shown; narrow the range)\n' : ''}`,
      );
    }),
  );

  const limits = program
    .command('inference-limits')
    .description('Rate limits and monthly token budgets of inference (also `fabrik get|set inference-limits`)')
    .addHelpText('after', EXIT_CODES);
  const sub = (name: string, description: string) =>
    addOutputOption(
      limits
        .command(name)
        .description(description)
        .option('-p, --project <project>', "org.project (default: the context's)")
        .addHelpText('after', EXIT_CODES),
    );
  sub('get', "The project's limits, its keys' limits, and the tokens used this month").action(
    action(async (opts: Obj) => {
      const v = await client().get<Obj>(`/api/v1/projects/${q(projectOf(opts))}/inference-limits`);
      printOne(opts, v, () => renderLimits(v));
    }),
  );
  sub('set', 'Set limits of the project, or of one API key with --key (project admins); 0 removes one')
    .option('--key <prefix>', "an API key's prefix or id: limits of that key instead")
    .option('--rpm <n>', 'requests per minute')
    .option('--tpm <n>', 'tokens (in + out) per minute, e.g. 100k')
    .option('--monthly-tokens <n>', 'project only: tokens per calendar month (UTC), e.g. 50M')
    .action(
      action(async (opts: Obj) => {
        const body = {
          ...(opts.key !== undefined ? { key: opts.key } : {}),
          ...(opts.rpm !== undefined ? { rpm: countFlag('--rpm', opts.rpm) } : {}),
          ...(opts.tpm !== undefined ? { tpm: countFlag('--tpm', opts.tpm) } : {}),
          ...(opts.monthlyTokens !== undefined
            ? { monthlyTokens: countFlag('--monthly-tokens', opts.monthlyTokens) }
            : {}),
        };
        if (!('rpm' in body || 'tpm' in body || 'monthlyTokens' in body))
          throw CliError.usage('nothing to set: give --rpm, --tpm or --monthly-tokens');
        const v = await client().request<Obj>('PUT', `/api/v1/projects/${q(projectOf(opts))}/inference-limits`, body);
        printOne(opts, v, () => renderLimits(v));
      }),
    );
  sub('delete', 'Remove the limits of the project, or of one API key with --key (project admins)')
    .option('--key <prefix>', "an API key's prefix or id")
    .action(
      action(async (opts: Obj) => {
        const project = projectOf(opts);
        const query = opts.key !== undefined ? `?key=${q(opts.key)}` : '';
        await client().request('DELETE', `/api/v1/projects/${q(project)}/inference-limits${query}`);
        const what = opts.key !== undefined ? `key ${opts.key}` : project;
        printOne(opts, { deleted: `inference-limits/${what}` }, () => `inference limits of ${what} removed`);
      }),
    );
}

function renderLimits(v: Obj): string {
  const rows = [
    ...(v.limits ? [{ scope: 'project', key: null, principal: null, ...v.limits }] : []),
    ...v.keys.map((k: Obj) => ({ scope: 'key', key: k.keyPrefix, principal: k.principal, ...k })),
  ];
  const used = `${v.project}: ${v.monthTokens} tokens used since ${v.monthStart.slice(0, 10)}${v.limits?.monthlyTokens ? ` of ${v.limits.monthlyTokens}` : ''}`;
  if (!rows.length) return `${used}\nno limits set`;
  return `${used}\n${table(rows, [
    { header: 'SCOPE', get: (r: Obj) => r.scope },
    { header: 'KEY', get: (r: Obj) => r.key },
    { header: 'PRINCIPAL', get: (r: Obj) => r.principal },
    { header: 'RPM', get: (r: Obj) => r.rpm },
    { header: 'TPM', get: (r: Obj) => r.tpm },
    { header: 'MONTHLY TOKENS', get: (r: Obj) => r.monthlyTokens },
    { header: 'UPDATED', get: (r: Obj) => age(r.updatedAt) },
  ])}`;
}
