// The `fabrik` command. Each group of subcommands lives in ./commands/; this file assembles them.
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './commands/admin.js';
import { registerAuditVerify } from './commands/audit-verify.js';
import { registerBreakGlassCommands } from './commands/break-glass.js';
import { registerComplianceCommands } from './commands/compliance.js';
import { registerOrgExport } from './commands/org-export.js';
import { registerDeploymentCommands } from './commands/deployments.js';
import { registerUsageCommands } from './commands/usage.js';
import { registerBillingCommands } from './commands/billing.js';
import { registerArtifactCommands } from './commands/artifacts.js';
import { registerDevCommands } from './commands/dev.js';
import { registerEventCommands } from './commands/events.js';
import { registerPolicyCommands } from './commands/policies.js';
import { registerProofCheck } from './commands/proof-check.js';
import { registerGatewayCommand } from './commands/gateway.js';
import { registerRegistryCommands } from './commands/registry.js';
import { registerSecretCommands } from './commands/secrets.js';
import { registerServerCommands } from './commands/server.js';
import { registerLogsCommand, registerWorkloadCommands } from './commands/workloads.js';
import { registerWebhookCommands } from './commands/webhooks.js';
import { registerWitnessCommand } from './commands/witness.js';
import { EXIT } from './output.js';
import { expandAliases, GET_RESOURCES } from './aliases.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('fabrik')
    .description('Control plane of a sovereign AI factory: tenants, quotas, fleet, GPU workloads, audit.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  registerServerCommands(program);
  registerGatewayCommand(program);
  registerAdminCommands(program);
  registerProofCheck(program);
  registerAuditVerify(program.commands.find((c) => c.name() === 'audit')!);
  registerOrgExport(program);
  registerWorkloadCommands(program);
  registerSecretCommands(program);
  registerBreakGlassCommands(program);
  registerLogsCommand(program);
  registerEventCommands(program);
  registerWebhookCommands(program);
  registerRegistryCommands(program);
  registerArtifactCommands(program);
  registerDeploymentCommands(program);
  registerUsageCommands(program);
  registerBillingCommands(program);
  registerComplianceCommands(program);
  registerWitnessCommand(program);
  registerPolicyCommands(program);
  registerDevCommands(program);
  // The simulator pulls in its report renderer (over a second of loading); load it only when
  // it can be needed, so that everyday commands such as `fabrik org list` start quickly.
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  if (first === undefined || first === 'sim' || first === 'help') await registerOptional(program);

  program
    .command('get <resource> [name]')
    .description(`List resources (kubectl-style): ${GET_RESOURCES.join(', ')}; with a name, show one`);
  program.command('get-unknown <resource>', { hidden: true }).action((resource: string) => {
    process.stderr.write(`error: unknown resource type "${resource}"; known: ${GET_RESOURCES.join(', ')}\n`);
    process.exitCode = EXIT.usage;
  });

  try {
    await program.parseAsync(expandAliases(argv));
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors with 2.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
}

/** Command groups that other parts contribute (the simulator); absent ones are simply not offered. */
async function registerOptional(program: Command): Promise<void> {
  const simModule = './commands/sim.js';
  const sim = await import(simModule).catch(() => undefined);
  sim?.registerSimCommand(program);
}
