// `fabrik secret create|list|delete`: secrets of a project (default: the context's) or of an org.
// Values are read from --from-literal, --from-file or stdin and go only to the server; nothing
// here ever prints one.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { loadConfig } from '../config.js';
import { age } from '../output.js';
import { action, addOutputOption, client, printList, printOne } from '../run.js';

type Obj = Record<string, any>;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error or invalid value, 3 not found (or not yours to see),
4 not logged in or not allowed, 5 conflict (e.g. organization suspended), 7 server unreachable.`;

/** `/api/v1/orgs/ORG/secrets` or `/api/v1/projects/ORG.PROJECT/secrets`, and how to name it. */
function scopeOf(opts: Obj): { path: string; label: string } {
  if (opts.org && opts.project) throw CliError.usage('give either --org or --project, not both');
  if (opts.org) return { path: `/api/v1/orgs/${q(opts.org)}/secrets`, label: `org ${opts.org}` };
  const project = opts.project ?? process.env.FABRIK_PROJECT ?? loadConfig().project;
  if (!project) throw CliError.usage('no scope: pass --project org.project or --org org, or set a context project');
  return { path: `/api/v1/projects/${q(project)}/secrets`, label: project };
}

/** The value, as UTF-8 text; one trailing newline (what `echo` and editors add) is dropped. */
function readValue(opts: Obj): string {
  const sources = [opts.fromLiteral !== undefined, opts.fromFile !== undefined].filter(Boolean).length;
  if (sources > 1) throw CliError.usage('give either --from-literal or --from-file, not both');
  if (opts.fromLiteral !== undefined) return opts.fromLiteral;
  let bytes: Buffer;
  if (opts.fromFile !== undefined) {
    try {
      bytes = readFileSync(opts.fromFile);
    } catch (err) {
      throw CliError.usage(`cannot read ${opts.fromFile}: ${(err as Error).message}`);
    }
  } else {
    if (process.stdin.isTTY) throw CliError.usage('give --from-literal or --from-file, or pipe the value on stdin');
    bytes = readFileSync(0);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw CliError.usage('the value is not UTF-8 text; encode binary values (e.g. base64) first');
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw CliError.usage('the value is empty');
  return value;
}

export function registerSecretCommands(program: Command): void {
  const secret = program
    .command('secret')
    .description('Secrets for workloads (env: {NAME: {secret: name}}); values are never shown again')
    .addHelpText('after', EXIT_CODES);
  const sub = (name: string, description: string) =>
    addOutputOption(
      secret
        .command(name)
        .description(description)
        .option('-p, --project <project>', "org.project (default: the context's)")
        .option('--org <org>', 'an org-wide secret instead (every project of the org may use it)')
        .addHelpText('after', EXIT_CODES),
    );

  sub('create <name>', 'Create or replace a secret (project admins; org admins with --org)')
    .option('--from-literal <value>', 'the value on the command line (visible in shell history and ps)')
    .option('--from-file <file>', 'the value from a file')
    .action(
      action(async (name, opts) => {
        const scope = scopeOf(opts);
        const value = readValue(opts);
        const s = await client().request<Obj>('PUT', `${scope.path}/${q(name)}`, { value });
        const verb = s.createdAt === s.updatedAt ? 'created' : 'replaced';
        printOne(opts, s, () => `secret/${s.name} ${verb} in ${scope.label}`);
      }),
    );

  sub('list', 'Secret names of a project (with the org secrets it may use) or of an org').action(
    action(async (opts) => {
      const scope = scopeOf(opts);
      const items = await client().all<Obj>(scope.path);
      printList(opts, items, [
        { header: 'NAME', get: (s) => s.name },
        { header: 'SCOPE', get: (s) => `${s.scope}${s.shadowed ? ' (shadowed)' : ''}` },
        { header: 'OWNER', get: (s) => s.project ?? s.org },
        { header: 'AGE', get: (s) => age(s.createdAt) },
        { header: 'UPDATED', get: (s) => age(s.updatedAt) },
        { header: 'UPDATED BY', get: (s) => s.updatedBy, wide: true },
      ]);
    }),
  );

  sub('delete <name>', 'Delete a secret; workloads that refer to it fail to start').action(
    action(async (name, opts) => {
      const scope = scopeOf(opts);
      await client().request('DELETE', `${scope.path}/${q(name)}`);
      printOne(opts, { deleted: `secret/${name}` }, () => `secret/${name} deleted from ${scope.label}`);
    }),
  );
}
