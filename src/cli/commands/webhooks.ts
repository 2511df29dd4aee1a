// `fabrik webhook create|list|deliveries|delete`: an org's subscriptions to its events. The
// signing secret is printed once, at creation; deliveries show attempts, the last status code and
// the next try.
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { loadConfig } from '../config.js';
import { age } from '../output.js';
import { action, addOutputOption, client, printList, printOne } from '../run.js';

type Obj = Record<string, any>;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error or invalid value (e.g. a URL that is not http(s)), 3 not found,
4 not logged in or not an org admin, 7 server unreachable.`;

/** --org, else the org of the context's project. */
function orgOf(opts: Obj): string {
  const config = loadConfig();
  const project = process.env.FABRIK_PROJECT ?? config.project;
  const org = opts.org ?? config.org ?? (project?.includes('.') ? project.slice(0, project.indexOf('.')) : undefined);
  if (!org) throw CliError.usage('no org: pass --org, or set a context project with `fabrik context set --project`');
  return org;
}

/** `in 5s` for a time ahead, `3m ago` for one behind. */
function when(iso: string | null): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  return t > Date.now() ? `in ${age(new Date().toISOString(), t)}` : `${age(iso)} ago`;
}

export function registerWebhookCommands(program: Command): void {
  const webhook = program
    .command('webhook')
    .description("Webhook subscriptions to an org's events (signed, retried, in order)")
    .addHelpText('after', EXIT_CODES);
  const sub = (name: string, description: string) =>
    addOutputOption(
      webhook
        .command(name)
        .description(description)
        .option('--org <org>', "the org (default: the context project's)")
        .addHelpText('after', EXIT_CODES),
    );

  sub('create', 'Subscribe a URL to events (org admins); prints the signing secret once')
    .requiredOption('--url <url>', 'http:// or https:// URL that receives the POSTs')
    .option('--types <types>', 'comma-separated event types or prefixes (default: all)')
    .option('--description <text>', 'what it is for')
    .action(
      action(async (opts) => {
        const org = orgOf(opts);
        const types = opts.types
          ? String(opts.types)
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : undefined;
        const w = await client().request<Obj>('POST', `/api/v1/orgs/${q(org)}/webhooks`, {
          url: opts.url,
          ...(types ? { types } : {}),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
        });
        printOne(
          opts,
          w,
          () =>
            `webhook/${w.id} created in ${org}: ${w.url} (${w.types.length ? w.types.join(', ') : 'all events'})\n` +
            `signing secret: ${w.secret}`,
        );
        process.stderr.write('Keep the signing secret now: it is not shown again.\n');
      }),
    );

  sub('list', "The org's subscriptions, with delivery counts").action(
    action(async (opts) => {
      const items = await client().all<Obj>(`/api/v1/orgs/${q(orgOf(opts))}/webhooks`);
      printList(opts, items, [
        { header: 'ID', get: (w) => w.id },
        { header: 'URL', get: (w) => w.url },
        { header: 'TYPES', get: (w) => (w.types.length ? w.types.join(',') : '*') },
        { header: 'DELIVERED', get: (w) => w.deliveries.delivered },
        { header: 'PENDING', get: (w) => w.deliveries.pending },
        { header: 'FAILED', get: (w) => w.deliveries.failed },
        { header: 'AGE', get: (w) => age(w.createdAt) },
        { header: 'DESCRIPTION', get: (w) => w.description, wide: true },
      ]);
    }),
  );

  sub('deliveries <id>', 'Deliveries of a subscription, newest first: attempts, last status code, next try')
    .option('--status <status>', 'only pending, delivered or failed')
    .option('--limit <n>', 'at most this many', '50')
    .action(
      action(async (id, opts) => {
        const p = new URLSearchParams({ limit: String(opts.limit) });
        if (opts.status) p.set('status', opts.status);
        const page = await client().get<{ items: Obj[] }>(
          `/api/v1/orgs/${q(orgOf(opts))}/webhooks/${q(id)}/deliveries?${p}`,
        );
        printList(opts, page.items, [
          { header: 'EVENT', get: (d) => d.event.id },
          { header: 'TYPE', get: (d) => d.event.type },
          { header: 'STATUS', get: (d) => d.status },
          { header: 'ATTEMPTS', get: (d) => d.attempts },
          { header: 'CODE', get: (d) => d.lastStatusCode },
          { header: 'NEXT TRY', get: (d) => when(d.nextAttemptAt) },
          { header: 'UPDATED', get: (d) => when(d.updatedAt) },
          { header: 'ERROR', get: (d) => d.lastError, wide: true },
        ]);
      }),
    );

  sub('delete <id>', 'Delete a subscription and its deliveries (org admins)').action(
    action(async (id, opts) => {
      const org = orgOf(opts);
      await client().request('DELETE', `/api/v1/orgs/${q(org)}/webhooks/${q(id)}`);
      printOne(opts, { id, org, deleted: true }, () => `webhook/${id} deleted from ${org}`);
    }),
  );
}
