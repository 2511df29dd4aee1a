// `fabrik break-glass open|list|revoke`: an operator's access to one org's data (logs, artifacts,
// secrets), with a reason and an expiry; the org sees it (`fabrik audit list --break-glass`) and
// its owner may revoke it. `fabrik get break-glass --org ORG` is `break-glass list`.
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { age } from '../output.js';
import { action, addOutputOption, client, printList, printOne } from '../run.js';

type Obj = Record<string, any>;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error or invalid value, 3 not found (or not yours to see),
4 not logged in or not allowed, 5 conflict (e.g. the grant already ended), 7 server unreachable.`;

function orgOf(opts: Obj): string {
  if (!opts.org) throw CliError.usage('--org is required');
  return opts.org;
}

/** Time left until `iso`, for people: `1h59m`, `30s`, or `-` once past. */
function left(iso: string): string {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (!(s > 0)) return '-';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m ? `${m}m` : ''}` : m ? `${m}m` : `${s}s`;
}

export function registerBreakGlassCommands(program: Command): void {
  const bg = program
    .command('break-glass')
    .description("Operators' access to an org's logs, artifacts and secrets: a reason, an expiry, visible to the org")
    .addHelpText('after', EXIT_CODES);
  const sub = (name: string, description: string) =>
    addOutputOption(
      bg
        .command(name)
        .description(description)
        .requiredOption('--org <org>', 'organization')
        .addHelpText('after', EXIT_CODES),
    );

  sub('open', 'Open a grant on an org (operators): its data is readable to you until it expires or is revoked')
    .requiredOption('--reason <text>', 'why (10 to 500 characters): the org reads it')
    .requiredOption('--for <duration>', 'how long: 30m, 2h, 1h30m (at most 24h)')
    .action(
      action(async (opts) => {
        const org = orgOf(opts);
        const g = await client().request<Obj>('POST', `/api/v1/orgs/${q(org)}/break-glass`, {
          reason: opts.reason,
          expiresIn: opts.for,
        });
        printOne(opts, g, () => `break-glass/${g.id} opened on ${g.org} until ${g.expiresAt}`);
      }),
    );

  sub('list', "An org's grants, active and past, newest first").action(
    action(async (opts) => {
      const items = await client().all<Obj>(`/api/v1/orgs/${q(orgOf(opts))}/break-glass`);
      printList(opts, items, [
        { header: 'ID', get: (g) => g.id },
        { header: 'OPERATOR', get: (g) => g.principal },
        { header: 'STATE', get: (g) => g.state },
        { header: 'AGE', get: (g) => age(g.createdAt) },
        { header: 'LEFT', get: (g) => (g.state === 'active' ? left(g.expiresAt) : '-') },
        { header: 'REASON', get: (g) => g.reason },
        { header: 'EXPIRES', get: (g) => g.expiresAt, wide: true },
        { header: 'REVOKED BY', get: (g) => g.revokedBy, wide: true },
      ]);
    }),
  );

  sub('revoke <id>', "End a grant now (the org's owner, or the operator who opened it)").action(
    action(async (id, opts) => {
      const org = orgOf(opts);
      const g = await client().request<Obj>('DELETE', `/api/v1/orgs/${q(org)}/break-glass/${q(id)}`);
      printOne(opts, g, () => `break-glass/${g.id} revoked`);
    }),
  );
}
