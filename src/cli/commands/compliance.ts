// `fabrik compliance annex-xi <org.project/model[@revision]>`, `fabrik compliance gdpr-art30 --org
// ORG`: the signed documents the server generates from its records (each generation is on the
// audit record). Markdown by default, `-o json` the signed JSON, `--out FILE` instead of stdout,
// `--pdf FILE` the PDF. `fabrik compliance verify FILE` checks a saved JSON document here, with
// the platform's public key (fetched, or `--key FILE`), without trusting the server's word.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { verifyDocument } from '../../compliance/sign.js';
import { AppError } from '../../domain/errors.js';
import { parseVersionRef } from '../../registry/names.js';
import { CliError, q } from '../client.js';
import { EXIT } from '../output.js';
import { action, addOutputOption, client, outputFormat, printOne, readInput } from '../run.js';

const EXIT_CODES = `
Exit codes: 0 done (verify: the signature holds), 2 usage error, 3 not found (or not yours to see),
4 not logged in or not allowed, 7 server unreachable, 9 verify: the document does not verify.`;

/** `acme.train/llm`, `acme.train/llm@v1` or `acme.train/llm:v1` → the API path of its Annex XI. */
export function annexXiPath(ref: string): string {
  const at = ref.lastIndexOf('@');
  let v: ReturnType<typeof parseVersionRef>;
  try {
    v = parseVersionRef(at > 0 ? `${ref.slice(0, at)}:${ref.slice(at + 1)}` : ref, 'model');
  } catch (err) {
    if (err instanceof AppError) throw CliError.usage(err.message);
    throw err;
  }
  if (v.kind !== 'model') throw CliError.usage('Annex XI documents are about models, not datasets');
  return `/api/v1/compliance/annex-xi/${q(`${v.org}.${v.project}`)}/${q(v.name)}/${q(v.revision)}`;
}

async function bytesOf(path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await client().stream(path)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function writeOut(file: string, body: string | Buffer): void {
  try {
    writeFileSync(file, body);
  } catch (err) {
    throw CliError.usage(`cannot write ${file}: ${(err as Error).message}`);
  }
}

/** Fetches the document in the chosen form (and the PDF when asked) and writes it where asked. */
async function fetchDocument(path: string, opts: { output?: string; out?: string; pdf?: string }): Promise<void> {
  const json = outputFormat(opts) === 'json';
  if (opts.pdf) {
    writeOut(opts.pdf, await bytesOf(`${path}?format=pdf`));
    process.stderr.write(`wrote ${opts.pdf}\n`);
    // Only the PDF was asked for: nothing more to generate (each generation is an audit entry).
    if (!opts.out && !json) return;
  }
  const text = json
    ? `${JSON.stringify(await client().get<unknown>(path), null, 2)}\n`
    : (await bytesOf(`${path}?format=md`)).toString('utf8');
  if (opts.out) {
    writeOut(opts.out, text);
    process.stderr.write(`wrote ${opts.out}\n`);
  } else process.stdout.write(text);
}

export function registerComplianceCommands(program: Command): void {
  const group = program
    .command('compliance')
    .description('Compliance documents generated from the records, signed by the platform and audited');
  const common = (c: Command) =>
    addOutputOption(c)
      .option('--out <file>', 'write the document to FILE instead of stdout')
      .option('--pdf <file>', 'write the PDF rendering to FILE')
      .addHelpText('after', EXIT_CODES);

  common(
    group
      .command('annex-xi <model>')
      .description(
        'EU AI Act Annex XI (section 1) of a model version: card, training data from lineage, compute, energy, signatures',
      ),
  ).action(action(async (model: string, opts) => fetchDocument(annexXiPath(model), opts)));

  common(
    group
      .command('gdpr-art30')
      .description(
        'GDPR Art. 30 records of processing of an org (its admins): datasets tagged personal-data, storage, access',
      )
      .requiredOption('--org <org>', 'the organization (the controller)'),
  ).action(action(async (opts) => fetchDocument(`/api/v1/orgs/${q(opts.org)}/compliance/gdpr-art30`, opts)));

  addOutputOption(
    group
      .command('verify <file>')
      .description("Check a saved JSON document's signature with the platform key (fetched, or --key)")
      .option('--key <file>', "the platform's public key (PEM) instead of fetching it")
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (file: string, opts) => {
      let signed: unknown;
      try {
        signed = JSON.parse(readInput(file));
      } catch (err) {
        if (err instanceof CliError) throw err;
        throw CliError.usage(`${file} is not JSON: ${(err as Error).message}`);
      }
      const pem = opts.key
        ? readInput(opts.key)
        : (await client().get<{ publicKeyPem: string }>('/api/v1/registry/signing-key')).publicKeyPem;
      const v = verifyDocument(signed, pem);
      printOne(opts, v, () => (v.ok ? `verified: signed by ${v.keyid}, ${v.digest}` : `NOT verified: ${v.reason}`));
      if (!v.ok) process.exitCode = EXIT.verifyFailed;
    }),
  );
}
