// `fabrik policy show|history|apply`: the sovereignty policies (Cedar) in force, their versions,
// and loading a new version (operators). A refused file prints each problem as file:line:column.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.js';
import { age, table } from '../output.js';
import { action, addOutputOption, client, outputFormat, printList, printOne, readInput } from '../run.js';

type Obj = Record<string, any>;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error, 3 no such version, 4 not allowed (operators load policies),
5 refused: the file has errors (each printed as file:line:column) or running work would be in breach.`;

function printBreaches(breaches: readonly Obj[]): string {
  return table(breaches, [
    { header: 'WORKLOAD', get: (b) => b.workload },
    { header: 'NODE', get: (b) => b.node },
    { header: 'FORBIDDEN BY', get: (b) => b.policy },
  ]);
}

export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description('Sovereignty policies (Cedar): where work may run, where bytes may be stored, who may read them');
  addOutputOption(
    policy
      .command('show')
      .description('Print the policies in force (or one version) as Cedar text')
      .option('--version <n>', 'a version number (default: the one in force)'),
  ).action(
    action(async (opts: Obj) => {
      const v = await client().get<Obj>(
        `/api/v1/policies/${opts.version ? encodeURIComponent(opts.version) : 'latest'}`,
      );
      if (outputFormat(opts) === 'json') return printOne(opts, v);
      // The text alone on stdout (`> site.cedar` keeps it byte for byte, so its hash), the rest on stderr.
      process.stderr.write(`version ${v.version}, sha256 ${v.hash}, loaded ${v.createdAt} by ${v.createdBy}\n`);
      process.stdout.write(v.policies);
    }),
  );
  addOutputOption(policy.command('history').description('Versions of the policies, newest (in force) first')).action(
    action(async (opts: Obj) => {
      const { items } = await client().get<{ items: Obj[] }>('/api/v1/policies');
      printList(opts, items, [
        { header: 'VERSION', get: (v) => v.version },
        { header: 'HASH', get: (v) => v.hash.slice(0, 12) },
        { header: 'POLICIES', get: (v) => v.policyIds.length },
        { header: 'BY', get: (v) => v.createdBy },
        { header: 'AGE', get: (v) => age(v.createdAt) },
      ]);
    }),
  );
  addOutputOption(
    policy
      .command('apply')
      .description(
        'Load a Cedar policy file as the next version (operators); checked against the schema and running work',
      )
      .requiredOption('-f, --file <file>', 'Cedar policy file')
      .option('--dry-run', 'check only: print problems or the running work that would be in breach')
      .option('--accept-breaches', 'load even though running work would be in breach (recorded in the log)')
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (opts: Obj) => {
      const text = readInput(opts.file);
      let r: Obj;
      try {
        r = await client().request<Obj>('POST', '/api/v1/policies', {
          policies: text,
          ...(opts.dryRun ? { dryRun: true } : {}),
          ...(opts.acceptBreaches ? { acceptBreaches: true } : {}),
        });
      } catch (err) {
        if (err instanceof CliError && outputFormat(opts) !== 'json') {
          const d = err.body.error.details as Obj;
          if (err.body.error.code === 'POLICY_INVALID' && Array.isArray(d.problems)) {
            const name = basename(opts.file);
            for (const p of d.problems) process.stderr.write(`${name}:${p.line}:${p.column}: ${p.message}\n`);
          }
          if (err.body.error.code === 'POLICY_BREACH' && Array.isArray(d.breaches))
            process.stderr.write(`${printBreaches(d.breaches)}\n`);
        }
        throw err;
      }
      printOne(opts, r, () => {
        const head = r.applied
          ? `policies loaded as version ${r.version.version} (sha256 ${r.hash}), ${r.policyIds.length} policies`
          : `policies valid (sha256 ${r.hash}), ${r.policyIds.length} policies; not loaded (dry run)`;
        if (r.breaches.length === 0) return `${head}; no running work in breach`;
        return `${head}; running work in breach${r.applied ? ' (accepted)' : ''}:\n${printBreaches(r.breaches)}`;
      });
    }),
  );
}
