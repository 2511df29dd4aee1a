// `fabrik org export ORG --out FILE`: an org's evidence to take with it when it leaves, verifiable
// without fabrik: the log's signed checkpoint and every entry of the org with its inclusion proof
// against that checkpoint. `fabrik audit verify --bundle FILE --log-key KEY` checks one offline.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type ReceiptLike, checkReceipt, openSigned } from '../../audit/verify/verify.js';
import { CliError, q } from '../client.js';
import { action, client } from '../run.js';
import { publicFetch } from './audit-verify.js';

/** The bundle's format: what a verifier needs, nothing else. */
export interface EvidenceBundle {
  readonly format: 'fabrik-audit-bundle/v1';
  readonly org: string;
  readonly exportedAt: string;
  /** The log's verifier key as the server states it (a verifier pins its own copy). */
  readonly logKey: string;
  /** The signed checkpoint every proof leads to. */
  readonly checkpoint: string;
  readonly entries: readonly ReceiptLike[];
}

export function registerOrgExport(program: Command): void {
  const org = program.commands.find((c) => c.name() === 'org');
  if (!org) throw new Error('the org command group is missing');
  org
    .command('export <org>')
    .description("Export the org's audit entries with inclusion proofs and the signed checkpoint (a verifiable bundle)")
    .requiredOption('--out <file>', 'where to write the bundle (JSON)')
    .action(
      action(async (name: string, opts: { out: string }) => {
        const api = client();
        const fetchLog = publicFetch(api.endpoint);
        const checkpoint = (await fetchLog('/audit/checkpoint', 'text')) as string | undefined;
        const logKeyText = (await fetchLog('/.well-known/fabrik/audit-log-key', 'text')) as string | undefined;
        if (!checkpoint || !logKeyText) throw missing(api.endpoint);
        const logKey = logKeyText.trim();
        const cp = openSigned(checkpoint, logKey);
        const seqs = (await api.all<{ seq: number }>(`/api/v1/audit/entries?org=${q(name)}`))
          .map((e) => e.seq)
          .filter((s) => s <= cp.size);
        const entries: ReceiptLike[] = [];
        for (const seq of seqs) {
          const r = await api.request<ReceiptLike>('GET', `/api/v1/audit/entries/${seq}/receipt?size=${cp.size}`);
          // Only what verifies goes into the bundle: a failure here is the log's, and is said at once.
          const f = checkReceipt(r, cp);
          if (!f.ok)
            throw new CliError(f.message, 1, { error: { code: 'NOT_VERIFIED', message: f.message, details: {} } });
          entries.push({ seq: r.seq, entry: r.entry, leafIndex: r.leafIndex, treeSize: r.treeSize, proof: r.proof });
        }
        const bundle: EvidenceBundle = {
          format: 'fabrik-audit-bundle/v1',
          org: name,
          exportedAt: new Date().toISOString(),
          logKey,
          checkpoint,
          entries,
        };
        writeFileSync(opts.out, `${JSON.stringify(bundle, null, 2)}\n`);
        process.stdout.write(
          `${entries.length} entries of ${name} exported to ${opts.out}, against the checkpoint of ${cp.size} entries\n`,
        );
      }),
    );
}

function missing(endpoint: string): CliError {
  const message = `${endpoint} serves no audit log checkpoint or key`;
  return new CliError(message, 1, { error: { code: 'NO_CHECKPOINT', message, details: {} } });
}
