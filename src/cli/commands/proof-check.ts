// `fabrik audit proof-check`: verifies Merkle inclusion and consistency proofs read as JSON from
// stdin, offline (no login, no server), printing one JSON verdict per line. The logic lives in
// src/audit/merkle/proof-check.ts; this file only wires it to the command line.
import type { Command } from 'commander';
import { runProofCheck } from '../../audit/merkle/proof-check.js';

/** Adds `proof-check` to the `audit` group (created by registerAdminCommands, which runs first). */
export function registerProofCheck(program: Command): void {
  // Look the group up rather than create it: `fabrik audit list` and others already live there.
  const audit = program.commands.find((c) => c.name() === 'audit') ?? program.command('audit');
  audit
    .command('proof-check')
    .description('Verify Merkle inclusion/consistency proofs offline (JSON on stdin, one verdict per line)')
    .addHelpText(
      'after',
      `
Checks:
  {"type":"inclusion","leafIndex":N,"treeSize":N,"leafHash":"<hex>","rootHash":"<hex>","proof":["<hex>",…]}
  {"type":"consistency","size1":N,"size2":N,"root1":"<hex>","root2":"<hex>","proof":["<hex>",…]}

Prints {"valid":true} or {"valid":false,"error":"…"} per check, in order.
Exit code: 0 all valid, 1 some invalid, 2 input not a JSON array.`,
    )
    .action(async () => {
      const { lines, exitCode } = runProofCheck(await readStdin());
      process.stdout.write(lines.map((l) => `${l}\n`).join(''));
      process.exitCode = exitCode;
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
