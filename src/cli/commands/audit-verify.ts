// `fabrik audit verify`: an auditor's offline check of the audit log, trusting only its public key
// (`--log-key`, the text at <server>/.well-known/fabrik/audit-log-key, pinned once). Exit codes:
// 0 everything verified, 1 something did not (each finding printed, with its seq), 2 usage.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { storedEntries } from '../../audit/verify/database.js';
import {
  type Checkpoint,
  type Finding,
  type LogFetch,
  type ReceiptLike,
  checkConsistency,
  checkDatabase,
  checkReceipt,
  committedLeaves,
  openSigned,
} from '../../audit/verify/verify.js';
import { CliError, q } from '../client.js';
import { loadConfig } from '../config.js';
import { action, addOutputOption, client } from '../run.js';

type Obj = Record<string, any>;

export function registerAuditVerify(audit: Command): void {
  addOutputOption(
    audit
      .command('verify')
      .description(
        'Verify the audit log offline: checkpoint signature, consistency with a saved one, inclusion of entries, a database copy',
      )
      .requiredOption(
        '--log-key <vkey|file>',
        "the log's verifier key (as served at /.well-known/fabrik/audit-log-key)",
      )
      .option('--log <url>', 'the log (or a mirror of its public paths); default: the logged-in endpoint')
      .option('--checkpoint <file>', 'a checkpoint saved earlier: the log must be consistent with it')
      .option('--save <file>', 'save the verified checkpoint here (for the next run)')
      .option(
        '--entries <seqs>',
        'check these entries are included (comma-separated seqs; needs a key that may read them)',
      )
      .option('--org <org>', 'check every entry of this org is included (needs a key with an org-wide role)')
      .option(
        '--database <file|url>',
        'a copy of the database: every stored entry must be the leaf the log committed to',
      )
      .option(
        '--bundle <file>',
        'an org export (`fabrik org export`): checked entirely offline, against its checkpoint',
      ),
  ).action(
    action(async (opts: Obj) => {
      const key = existsSync(opts.logKey) ? readFileSync(opts.logKey, 'utf8').trim() : String(opts.logKey).trim();
      const base = String(opts.log ?? loadConfig().endpoint ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
      const fetchLog = publicFetch(base);
      const findings: Finding[] = [];
      const say = (f: Finding) => {
        findings.push(f);
        if (opts.output !== 'json' && (!f.ok || !f.seq))
          process.stdout.write(`${f.ok ? 'ok  ' : 'FAIL'}  ${f.check.padEnd(11)} ${f.message}\n`);
      };
      if (opts.bundle) {
        verifyBundle(opts, key, say, findings);
        return;
      }
      const note = (await fetchLog('/audit/checkpoint', 'text')) as string | undefined;
      if (!note) throw fail(`${base} serves no checkpoint`, 1, 'NO_CHECKPOINT');
      let cp: Checkpoint;
      try {
        cp = openSigned(note, key);
      } catch (err) {
        say({ check: 'signature', ok: false, message: `the checkpoint does not verify: ${(err as Error).message}` });
        return finish(opts, findings);
      }
      say({
        check: 'signature',
        ok: true,
        message: `checkpoint of ${cp.origin}: ${cp.size} entries, root ${cp.rootHash.toString('hex').slice(0, 16)}…`,
      });
      if (opts.checkpoint)
        say(await checkConsistency(openSigned(readFileSync(opts.checkpoint, 'utf8'), key), cp, fetchLog));
      const seqs = new Set<number>();
      for (const s of String(opts.entries ?? '')
        .split(',')
        .filter(Boolean)) {
        const n = Number(s);
        if (!Number.isSafeInteger(n) || n < 1) throw CliError.usage(`--entries: "${s}" is not a seq`);
        seqs.add(n);
      }
      if (opts.org) for (const s of await orgSeqs(opts.org, cp.size)) seqs.add(s);
      if (seqs.size > 0) {
        const api = client();
        let included = 0;
        for (const seq of [...seqs].sort((a, b) => a - b)) {
          if (seq > cp.size) {
            say({
              check: 'inclusion',
              ok: false,
              seq,
              message: `entry ${seq} is not in the checkpoint (${cp.size} entries)`,
            });
            continue;
          }
          const f = checkReceipt(await api.request(`GET`, `/api/v1/audit/entries/${seq}/receipt?size=${cp.size}`), cp);
          say(f);
          if (f.ok) included++;
        }
        say({
          check: 'inclusion',
          ok: included === seqs.size,
          message: `${included} of ${seqs.size} entries included`,
        });
      }
      if (opts.database) {
        const committed = await committedLeaves(cp, fetchLog);
        const db = await checkDatabase(storedEntries(opts.database), committed);
        for (const f of db.findings) say(f);
        say({
          check: 'database',
          ok: db.findings.length === 0,
          message: `${db.checked} stored entries checked against the log${db.newer ? ` (${db.newer} newer than the checkpoint)` : ''}; ${db.findings.length} differ`,
        });
      }
      if (opts.save && findings.every((f) => f.ok)) {
        writeFileSync(`${opts.save}.tmp`, cp.note);
        renameSync(`${opts.save}.tmp`, opts.save);
      }
      finish(opts, findings, cp);
    }),
  );
}

/** An exported bundle: its checkpoint's signature with the pinned key, then every entry's proof. No network. */
function verifyBundle(opts: Obj, key: string, say: (f: Finding) => void, findings: Finding[]): void {
  let bundle: { format?: unknown; checkpoint?: unknown; entries?: unknown };
  try {
    bundle = JSON.parse(readFileSync(opts.bundle, 'utf8'));
  } catch (err) {
    throw CliError.usage(`--bundle: ${(err as Error).message}`);
  }
  if (
    bundle.format !== 'fabrik-audit-bundle/v1' ||
    typeof bundle.checkpoint !== 'string' ||
    !Array.isArray(bundle.entries)
  )
    throw CliError.usage('--bundle: not a fabrik-audit-bundle/v1 file');
  let cp: Checkpoint;
  try {
    cp = openSigned(bundle.checkpoint, key);
  } catch (err) {
    say({
      check: 'signature',
      ok: false,
      message: `the bundle's checkpoint does not verify: ${(err as Error).message}`,
    });
    finish(opts, findings);
    return;
  }
  say({ check: 'signature', ok: true, message: `bundle checkpoint of ${cp.origin}: ${cp.size} entries` });
  let included = 0;
  for (const r of bundle.entries as ReceiptLike[]) {
    const f = checkBundled(r, cp);
    say(f);
    if (f.ok) included++;
  }
  say({
    check: 'inclusion',
    ok: included === bundle.entries.length,
    message: `${included} of ${bundle.entries.length} entries included`,
  });
  finish(opts, findings, cp);
}

/** A bundled receipt, whatever its shape: garbage is a finding, not a crash. */
function checkBundled(r: ReceiptLike, cp: Checkpoint): Finding {
  const ok =
    r !== null &&
    typeof r === 'object' &&
    Number.isSafeInteger(r.seq) &&
    typeof r.entry === 'string' &&
    Number.isSafeInteger(r.leafIndex) &&
    Number.isSafeInteger(r.treeSize) &&
    Array.isArray(r.proof);
  if (!ok) return { check: 'inclusion', ok: false, message: 'a malformed entry in the bundle' };
  return checkReceipt(r, cp);
}

function fail(message: string, exitCode: number, code: string): CliError {
  return new CliError(message, exitCode, { error: { code, message, details: {} } });
}

function finish(opts: Obj, findings: Finding[], cp?: Checkpoint): void {
  const ok = findings.every((f) => f.ok);
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify({ ok, size: cp?.size ?? null, findings }, null, 2)}\n`);
  } else {
    process.stdout.write(ok ? 'verified\n' : `NOT VERIFIED: ${findings.filter((f) => !f.ok).length} finding(s)\n`);
  }
  if (!ok) process.exitCode = 1;
}

/** The log's public paths over HTTP (no key: they hold only hashes and signatures). */
export function publicFetch(base: string): LogFetch {
  return async (path, as) => {
    let res: Response;
    try {
      res = await fetch(base + path);
    } catch (err) {
      throw fail(`cannot reach the log at ${base}: ${(err as Error).message}`, 7, 'UNREACHABLE');
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw fail(`${base}${path}: HTTP ${res.status}`, 1, `HTTP_${res.status}`);
    if (as === 'text') return res.text();
    if (as === 'bytes') return Buffer.from(await res.arrayBuffer());
    return res.json();
  };
}

/** Every seq of an org's entries up to `size`, from the audit trail. */
async function orgSeqs(org: string, size: number): Promise<number[]> {
  const items = await client().all<{ seq: number }>(`/api/v1/audit/entries?org=${q(org)}`);
  return items.map((e) => e.seq).filter((s) => s <= size);
}
