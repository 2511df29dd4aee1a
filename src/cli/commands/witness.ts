// `fabrik witness`: watches a fabrik audit log and cosigns each checkpoint that extends the last
// one it cosigned (src/audit/witness.ts). Run by a tenant or a third party, with its own key:
//
//   fabrik witness --new-key witness.key --name witness.example.org/w1      # prints the verifier key
//   fabrik witness --log https://fabrik.example.eu --log-key 'origin+1234abcd+AQ…' \
//     --key witness.key --state witness.json [--interval 10s] [--once]
//
// A split view or a failed consistency proof is refused: no cosignature, the state kept, a
// `SPLIT VIEW` / `inconsistent` error on stderr; with --once the exit code is 9.
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { type RoundResult, createWitnessKeyFile, readWitnessKeyFile, runWitness } from '../../audit/witness.js';
import { CliError } from '../client.js';
import { EXIT } from '../output.js';
import { action } from '../run.js';

interface WitnessOpts {
  log?: string;
  logKey?: string;
  key?: string;
  newKey?: string;
  name?: string;
  state?: string;
  origin?: string;
  interval: string;
  once?: boolean;
}

export function registerWitnessCommand(program: Command): void {
  program
    .command('witness')
    .description('Witness an audit log: cosign each checkpoint consistent with the last, refuse split views')
    .option('--log <url>', "the log's base URL (it serves /audit/checkpoint)")
    .option(
      '--log-key <vkey>',
      "the log's verifier key, pinned (from /.well-known/fabrik/audit-log-key, checked out of band)",
    )
    .option('--key <file>', "this witness's signer key file")
    .option('--new-key <file>', 'create a witness key in <file> (mode 0600) and print its verifier key')
    .option('--name <name>', 'with --new-key: the witness name, a schema-less URL', `${hostname()}/fabrik-witness`)
    .option('--state <file>', 'the state file: the last checkpoint cosigned (JSON, written atomically)')
    .option('--origin <origin>', "the log's origin line, if the state file does not pin it yet")
    .option('--interval <duration>', 'time between rounds: 500ms, 10s, 5m', '10s')
    .option('--once', 'one round; exit 0 if it cosigned')
    .action(
      action(async (opts: WitnessOpts) => {
        if (opts.key && opts.newKey) throw CliError.usage('give --key or --new-key, not both');
        let keyFile = opts.key;
        if (opts.newKey) {
          let vkey: string;
          try {
            vkey = createWitnessKeyFile(opts.newKey, opts.name!);
          } catch (err) {
            throw CliError.usage(`--new-key ${opts.newKey}: ${(err as Error).message}`);
          }
          process.stdout.write(`${vkey}\n`);
          process.stderr.write(
            `witness key written to ${opts.newKey}; give the verifier key above to the log's operator\n`,
          );
          if (!opts.log) return;
          keyFile = opts.newKey;
        }
        if (!opts.log || !opts.logKey || !keyFile || !opts.state)
          throw CliError.usage('need --log, --log-key, --key (or --new-key) and --state');
        const intervalMs = parseDuration(opts.interval);
        let witnessKey: ReturnType<typeof readWitnessKeyFile>;
        try {
          witnessKey = readWitnessKeyFile(keyFile);
        } catch (err) {
          throw CliError.usage(`--key ${keyFile}: ${(err as Error).message}`);
        }
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
        try {
          const last = await runWitness(
            { logUrl: opts.log, logKey: opts.logKey, witnessKey, statePath: opts.state, origin: opts.origin },
            { intervalMs, once: opts.once, signal: stop.signal, report },
          );
          if (opts.once && last && !last.ok) process.exitCode = exitCodeFor(last);
        } finally {
          process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        }
      }),
    );
}

/** One line per round on stdout when cosigned; refusals and failures on stderr. */
function report(r: RoundResult): void {
  const at = new Date().toISOString();
  if (r.ok) {
    const from = r.previousSize === null ? 'first checkpoint seen' : `consistent with ${r.previousSize}`;
    process.stdout.write(`${at} cosigned ${r.origin} size ${r.size} root ${r.rootHash.toString('base64')} (${from})\n`);
    return;
  }
  process.stderr.write(`${at} error: ${r.message}\n`);
  if (r.evidence)
    process.stderr.write(
      `evidence (both signed by the log):\n--- cosigned before\n${r.evidence.previous}--- offered now\n${r.evidence.offered}---\n`,
    );
}

function exitCodeFor(r: Extract<RoundResult, { ok: false }>): number {
  if (r.problem === 'unreachable' || r.problem === 'undelivered') return EXIT.unreachable;
  if (r.problem === 'bad-state') return EXIT.internal;
  return EXIT.verifyFailed;
}

/** "500ms", "10s", "5m", "1h", or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m
    ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
    : NaN;
  if (!Number.isFinite(ms) || ms < 100 || ms > 24 * 3_600_000)
    throw CliError.usage(`--interval: "${text}" is not a duration between 100ms and 24h (e.g. 10s)`);
  return ms;
}
