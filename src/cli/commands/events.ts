// `fabrik events`: the event feed (CloudEvents) as an aligned table or JSON lines; `--follow`
// keeps printing new events (long-poll, resuming from the last cursor) until interrupted.
import type { Command } from 'commander';
import { type ApiClient, CliError } from '../client.js';
import { EXIT, table } from '../output.js';
import { action, addOutputOption, client, outputFormat } from '../run.js';

type Event = {
  id: string;
  type: string;
  subject: string;
  time: string;
  fabrikproject?: string;
  data: Record<string, any>;
};

/** What the event says in a few words: a workload's status and reason, else the resource's name. */
function detail(e: Event): string {
  const d = e.data ?? {};
  if (e.type.startsWith('workload.')) {
    const exit = d.exitCode !== null && d.exitCode !== undefined ? ` exit ${d.exitCode}` : '';
    return `${d.status ?? ''} ${d.reason ?? ''}${exit}`.trim();
  }
  return '';
}

const COLUMNS = [
  { header: 'TIME', get: (e: Event) => `${e.time.slice(0, 19)}Z`, width: 20 },
  { header: 'TYPE', get: (e: Event) => e.type, width: 22 },
  { header: 'SUBJECT', get: (e: Event) => e.subject, width: 44 },
  { header: 'DETAIL', get: (e: Event) => detail(e), width: 24 },
  { header: 'ID', get: (e: Event) => e.id, width: 12, wide: true },
];

const EXIT_CODES = `
Event types: workload.submitted, workload.placed, workload.started, workload.preempted,
workload.requeued, workload.finished (data.status: succeeded, failed, cancelled, preempted);
node.cordoned, node.uncordoned, node.draining, node.down (platform events: operators only);
deployment.created/.scaled/.deleted and deployment.replica.*; budget.changed/.deleted,
budget.threshold.reached; model.* and dataset.* (created, version.created, tagged, deleted);
org.* and project.* (created, updated, deleted), member.added/.removed, apikey.created/.revoked,
quota.changed/.deleted, secret.created/.updated/.deleted, webhook.created/.deleted,
user.created, serviceaccount.created. --types takes a comma-separated list and prefixes such
as workload.* or node.*.
--after latest starts at the newest event (with --follow: only what happens from now on).

Exit codes: 0 done (or interrupted while following), 2 usage error (unknown type, bad cursor),
4 not logged in, 7 server unreachable.`;

function query(after: string, opts: Record<string, any>, extra: Record<string, string>): string {
  const p = new URLSearchParams({ after, ...extra });
  if (opts.types) p.set('types', opts.types);
  return `/api/v1/events?${p}`;
}

interface Page {
  items: Event[];
  nextCursor: string;
  hasMore: boolean;
}

export function registerEventCommands(program: Command): void {
  addOutputOption(
    program
      .command('events')
      .description('What changed, in commit order (CloudEvents); --follow keeps streaming new events')
      .option('-f, --follow', 'keep printing new events until interrupted')
      .option('--types <types>', 'only these types, comma-separated (workload.finished, project.*)')
      .option('--after <cursor>', 'only events after this event id (evt_123) or cursor, or latest (from now on)')
      .option('--limit <n>', 'at most this many events (not with --follow)')
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (opts) => {
      const format = outputFormat(opts);
      const limit = opts.limit === undefined ? Number.POSITIVE_INFINITY : Number(opts.limit);
      if (!(limit >= 1) || (Number.isFinite(limit) && !Number.isInteger(limit)))
        throw CliError.usage(`--limit: "${opts.limit}" is not a positive whole number`);
      if (opts.follow && opts.limit !== undefined) throw CliError.usage('--limit and --follow do not go together');
      // `fabrik events -o json | head` ends quietly.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(EXIT.ok);
        throw err;
      });
      const c = client();
      let cursor: string = opts.after ?? '0';
      const history: Event[] = [];
      for (;;) {
        const page = await c.get<Page>(query(cursor, opts, { limit: String(Math.min(1000, limit - history.length)) }));
        history.push(...page.items);
        cursor = page.nextCursor;
        if (!page.hasMore || history.length >= limit) break;
      }
      if (!opts.follow) {
        if (format === 'json') for (const e of history) process.stdout.write(`${JSON.stringify(e)}\n`);
        else if (history.length === 0) process.stderr.write('No events found.\n');
        else process.stdout.write(`${table(history, COLUMNS, format === 'wide')}\n`);
        return;
      }
      await follow(c, opts, format, history, cursor);
    }),
  );
}

/** Prints history and then every new event as it comes; reconnects when the server goes away. */
async function follow(
  c: ApiClient,
  opts: Record<string, any>,
  format: 'table' | 'wide' | 'json',
  history: Event[],
  from: string,
): Promise<void> {
  const cols = COLUMNS.filter((col) => format === 'wide' || !col.wide);
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (i === vals.length - 1 ? v : v.padEnd(cols[i]!.width)))
      .join('  ')
      .trimEnd();
  const print = (e: Event) =>
    process.stdout.write(
      format === 'json' ? `${JSON.stringify(e)}\n` : `${line(cols.map((col) => String(col.get(e) || '-')))}\n`,
    );
  if (format !== 'json') process.stdout.write(`${line(cols.map((col) => col.header))}\n`);
  for (const e of history) print(e);
  let cursor = from;
  let down = false;
  for (;;) {
    let page: Page;
    try {
      page = await c.get<Page>(query(cursor, opts, { wait: '25', limit: '1000' }));
    } catch (err) {
      // The server restarts or the network drops: wait and go on from the same cursor.
      if (!(err instanceof CliError) || (err.exitCode !== EXIT.unreachable && err.exitCode !== EXIT.internal))
        throw err;
      if (!down) process.stderr.write(`fabrik: ${err.message}; retrying\n`);
      down = true;
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (down) process.stderr.write('fabrik: reconnected\n');
    down = false;
    for (const e of page.items) print(e);
    cursor = page.nextCursor;
  }
}
