// `fabrik verify` without trusting the server's verdict: the version's DSSE envelope is checked
// here with the platform's Ed25519 public key (fetched once, or from a saved file), against the
// repo, commit and files it must sign; with a directory, each file is hashed and compared with
// the signed SHA-256 and size, and files the signature does not cover fail too.
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { type VersionRef, pathProblem, repoIdText } from '../../registry/names.js';
import { type DsseEnvelope, decodeStatement, keyIdOf, verifyEnvelope } from '../../registry/signing.js';
import { CliError, q } from '../client.js';
import { client, readInput } from '../run.js';

type Obj = Record<string, any>;

export const repoPath = (r: VersionRef) => `/api/v1/projects/${q(`${r.org}.${r.project}`)}/${r.kind}s/${q(r.name)}`;
export const refText = (r: VersionRef) => `${r.kind === 'dataset' ? 'datasets/' : ''}${repoIdText(r)}`;
export const short = (commit: string | null | undefined) => (commit ? commit.slice(0, 12) : '-');

export interface FileCheck {
  checked: number;
  modified: string[];
  missing: string[];
  extra: string[];
}

export interface VerifyReport {
  ok: boolean;
  ref: string;
  commit: string;
  keyid: string;
  signers: string[];
  reason: string | null;
  files: number;
  dir?: FileCheck;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')));
  });
}

function filesUnder(root: string, dir = root, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) filesUnder(root, p, out);
    else out.push(relative(root, p).split(sep).join('/'));
  }
  return out;
}

/** Hashes the files of `dir` against the signed resources (and sizes) of a statement. */
export async function checkDirectory(dir: string, statement: Obj): Promise<FileCheck> {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw CliError.usage(`--dir ${dir}: ${(err as Error).message}`);
  }
  const sizes: Record<string, number> = statement.predicate?.fabrik?.sizes ?? {};
  const out: FileCheck = { checked: 0, modified: [], missing: [], extra: [] };
  const signed = new Set<string>();
  for (const r of statement.predicate.resources as { name: string; digest: string }[]) {
    signed.add(r.name);
    if (pathProblem(r.name)) {
      out.missing.push(r.name);
      continue;
    }
    const path = join(dir, r.name);
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      out.missing.push(r.name);
      continue;
    }
    out.checked++;
    if ((sizes[r.name] !== undefined && sizes[r.name] !== size) || (await sha256File(path)) !== r.digest)
      out.modified.push(r.name);
  }
  out.extra = filesUnder(dir).filter((p) => !signed.has(p));
  return out;
}

/** Checks a version (and with opts.dir a directory of its files); opts.key: a saved public key file. */
export async function verifyOffline(ref: VersionRef, opts: { key?: string; dir?: string }): Promise<VerifyReport> {
  const c = client();
  const detail = await c.get<Obj>(`${repoPath(ref)}/versions/${q(ref.revision)}`);
  let key: { keyid: string; publicKeyPem: string };
  try {
    if (opts.key) {
      const publicKeyPem = readInput(opts.key);
      key = { keyid: keyIdOf(publicKeyPem), publicKeyPem };
    } else {
      const served = await c.get<Obj>('/api/v1/registry/signing-key');
      key = { keyid: keyIdOf(served.publicKeyPem), publicKeyPem: served.publicKeyPem };
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw CliError.usage(`the public key is not an Ed25519 key: ${(err as Error).message}`);
  }
  const envelope = detail.envelope as DsseEnvelope;
  const commit = String(detail.version?.id ?? '');
  const report: VerifyReport = {
    ok: false,
    ref: `${refText(ref)}:${ref.revision}`,
    commit,
    keyid: key.keyid,
    signers: [],
    reason: null,
    files: Array.isArray(detail.files) ? detail.files.length : 0,
  };
  const fail = (reason: string) => ({ ...report, ok: false, reason });
  if (/^[0-9a-f]{40}$/.test(ref.revision) && commit !== ref.revision)
    return fail(`asked for commit ${ref.revision}, the server answered ${commit}`);
  const v = verifyEnvelope(envelope, [{ keyid: key.keyid, publicKey: key.publicKeyPem }], {
    files: detail.files,
    commit,
  });
  if (!v.ok) return fail(v.reason);
  const statement = decodeStatement(envelope);
  const signedRepo = statement.predicate?.fabrik?.repo;
  const signedKind = statement.predicate?.fabrik?.kind;
  if (signedRepo !== repoIdText(ref) || signedKind !== ref.kind)
    return fail(`the envelope signs ${signedKind} ${signedRepo}, not ${ref.kind} ${repoIdText(ref)}`);
  const ok = { ...report, ok: true, signers: v.signers };
  if (!opts.dir) return ok;
  const dir = await checkDirectory(opts.dir, statement);
  const problems = [
    ...dir.modified.map((p) => `${p} differs from the signed digest`),
    ...dir.missing.map((p) => `${p} is signed but missing`),
    ...dir.extra.map((p) => `${p} is not covered by the signature`),
  ];
  return problems.length ? { ...fail(problems.join('; ')), signers: v.signers, dir } : { ...ok, dir };
}
