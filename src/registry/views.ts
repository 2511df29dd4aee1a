// Reading the registry for people and the REST API: a repo with its refs, latest version, card
// and what its weights hold; the versions of a repo; one version with its manifest, signature and
// the server's verdict on it. And countersigning: an uploader adds their own DSSE signature over
// the same statement the platform signed.
//
// Everything goes through findRepo, so another org's repo (or a project the caller holds no role
// on) is "not found". Blob ids never leave the server: manifests show path, size and sha256.
import { verify as verifySignature } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Ctx, findProject, write } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import type { PageRequest, Page } from '../store/paging.js';
import { decodeCursor, page } from '../store/paging.js';
import type { CommitsTable, Database, RepoKind, ReposTable } from '../store/schema.js';
import { parseManifest } from './commits.js';
import type { FormatInfo } from './formats.js';
import type { ModelCard } from './model-card.js';
import { DEFAULT_BRANCH, type RepoId, repoIdText } from './names.js';
import type { Registry } from './registry.js';
import {
  type FoundRepo,
  type RefInfo,
  type RepoInfo,
  findRepo,
  listRefs,
  repoInfo,
  requireWriter,
  resolveRevision,
} from './repos.js';
import { type DsseEnvelope, keyIdOf, pae, verifyEnvelope } from './signing.js';

export interface VersionSummary {
  id: string;
  seq: number;
  /** null for a repo's first version. */
  parent: string | null;
  summary: string;
  files: number;
  bytes: number;
  createdAt: string;
  createdBy: string;
  /** The workload attempt that produced it, when one did. */
  producer: { workloadId: string; attempt: number } | null;
}

/** What the weight files of a version hold, summed over files. */
export interface FormatsSummary {
  parameters: number;
  /** Distinct formats, e.g. ['safetensors']. */
  formats: string[];
  /** Parameters per dtype over all safetensors files. */
  dtypes: Record<string, number>;
  /** Distinct GGUF quantizations, e.g. ['Q4_K_M']. */
  quantization: string[];
}

export interface RepoDetail extends RepoInfo {
  refs: RefInfo[];
  latest: VersionSummary | null;
  card: ModelCard | null;
  formats: FormatsSummary;
  storage: {
    versions: number;
    /** Bytes of the latest version's files. */
    latestBytes: number;
    /** Bytes of the distinct contents all versions of the repo hold. */
    storedBytes: number;
  };
}

export interface Verification {
  ok: boolean;
  /** keyids whose signatures verified (the platform's first). */
  signers: string[];
  /** Why not, when not ok. */
  reason: string | null;
}

export interface SignatureInfo {
  keyid: string;
  /** The platform's own signature (the others are countersignatures). */
  platform: boolean;
}

export interface VersionDetail {
  repo: string;
  kind: RepoKind;
  version: VersionSummary;
  files: { path: string; size: number; sha256: string }[];
  card: ModelCard | null;
  formats: Record<string, FormatInfo>;
  formatsSummary: FormatsSummary;
  envelope: DsseEnvelope;
  signatures: SignatureInfo[];
  verification: Verification;
}

export function versionSummary(c: CommitsTable): VersionSummary {
  return {
    id: c.id,
    seq: Number(c.seq),
    parent: c.parent_id || null,
    summary: c.summary,
    files: Number(c.file_count),
    bytes: Number(c.total_bytes),
    createdAt: c.created_at,
    createdBy: c.created_by,
    producer: c.producer_workload_id
      ? { workloadId: c.producer_workload_id, attempt: Number(c.producer_attempt) }
      : null,
  };
}

function cardOf(c: CommitsTable | undefined): ModelCard | null {
  return c && c.card !== '{}' ? (JSON.parse(c.card) as ModelCard) : null;
}

function formatsOf(c: CommitsTable | undefined): Record<string, FormatInfo> {
  return c ? (JSON.parse(c.formats) as Record<string, FormatInfo>) : {};
}

export function summarizeFormats(formats: Record<string, FormatInfo>): FormatsSummary {
  const out: FormatsSummary = { parameters: 0, formats: [], dtypes: {}, quantization: [] };
  const kinds = new Set<string>();
  const quant = new Set<string>();
  for (const f of Object.values(formats)) {
    kinds.add(f.format);
    out.parameters += f.parameters ?? 0;
    if (f.format === 'safetensors') {
      for (const [dtype, n] of Object.entries(f.dtypes)) out.dtypes[dtype] = (out.dtypes[dtype] ?? 0) + n;
    } else if (f.quantization) {
      quant.add(f.quantization);
    }
  }
  out.formats = [...kinds].sort();
  out.quantization = [...quant].sort();
  return out;
}

/** The version a repo shows first: its default branch's, else its newest. */
async function latestCommit(db: Kysely<Database> | Trx, repo: ReposTable): Promise<CommitsTable | undefined> {
  const main = await db
    .selectFrom('repo_refs')
    .innerJoin('commits', 'commits.id', 'repo_refs.commit_id')
    .selectAll('commits')
    .where('repo_refs.repo_id', '=', repo.id)
    .where('repo_refs.name', '=', DEFAULT_BRANCH)
    .executeTakeFirst();
  if (main) return main;
  return db.selectFrom('commits').selectAll().where('repo_id', '=', repo.id).orderBy('seq', 'desc').executeTakeFirst();
}

export interface RepoListItem extends RepoInfo {
  latest: VersionSummary | null;
}

/** The repos of a project with their latest versions (one page). */
export async function listRepoSummaries(
  ctx: Ctx,
  projectRef: string,
  kind: RepoKind,
  req: PageRequest,
): Promise<Page<RepoListItem>> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const q = ctx.db
    .selectFrom('repos')
    .selectAll()
    .where('project_id', '=', project.id)
    .where('kind', '=', kind)
    .where('deleted_at', '=', '');
  const repos = await page(q, 'name', req, (r) => r);
  const ids = repos.items.map((r) => r.id);
  const heads =
    ids.length === 0
      ? []
      : await ctx.db
          .selectFrom('repo_refs')
          .innerJoin('commits', 'commits.id', 'repo_refs.commit_id')
          .selectAll('commits')
          .where('repo_refs.repo_id', 'in', ids)
          .where('repo_refs.name', '=', DEFAULT_BRANCH)
          .execute();
  const byRepo = new Map(heads.map((c) => [c.repo_id, c]));
  return {
    items: repos.items.map((r) => {
      const c = byRepo.get(r.id);
      return { ...repoInfo(r, ref), latest: c ? versionSummary(c) : null };
    }),
    nextCursor: repos.nextCursor,
  };
}

export async function describeRepo(ctx: Ctx, kind: RepoKind, id: RepoId): Promise<RepoDetail> {
  const r = await findRepo(ctx, kind, id);
  const latest = await latestCommit(ctx.db, r.repo);
  const commits = await ctx.db.selectFrom('commits').select(['manifest']).where('repo_id', '=', r.repo.id).execute();
  const distinct = new Map<string, number>();
  for (const c of commits) for (const f of parseManifest(c)) distinct.set(f.sha256, f.size);
  return {
    ...repoInfo(r.repo, `${r.id.org}.${r.id.project}`),
    refs: await listRefs(ctx.db, r.repo),
    latest: latest ? versionSummary(latest) : null,
    card: cardOf(latest),
    formats: summarizeFormats(formatsOf(latest)),
    storage: {
      versions: commits.length,
      latestBytes: latest ? Number(latest.total_bytes) : 0,
      storedBytes: [...distinct.values()].reduce((n, s) => n + s, 0),
    },
  };
}

/** Versions of a repo, newest first. */
export async function listVersions(
  ctx: Ctx,
  kind: RepoKind,
  id: RepoId,
  req: PageRequest,
): Promise<Page<VersionSummary>> {
  const r = await findRepo(ctx, kind, id);
  // Ordered by sequence number: a cursor must hold one (PostgreSQL fails on a string for it).
  if (req.cursor !== undefined) decodeCursor(req.cursor, 'integer');
  const q = ctx.db.selectFrom('commits').selectAll().where('repo_id', '=', r.repo.id);
  return page(q, 'seq', req, versionSummary, 'desc');
}

function envelopeOf(c: CommitsTable): DsseEnvelope {
  try {
    return JSON.parse(c.envelope) as DsseEnvelope;
  } catch {
    return { payloadType: '', payload: '', signatures: [] };
  }
}

/** The server's verdict: the platform signature verifies and signs exactly this manifest and commit. */
function verdict(reg: Registry, c: CommitsTable, envelope: DsseEnvelope): Verification {
  const files = parseManifest(c);
  const v = verifyEnvelope(envelope, [{ keyid: reg.signer.keyid, publicKey: reg.signer.publicKeyPem }], {
    files,
    commit: c.id,
  });
  return v.ok ? { ok: true, signers: v.signers, reason: null } : { ok: false, signers: [], reason: v.reason };
}

function signaturesOf(reg: Registry, envelope: DsseEnvelope): SignatureInfo[] {
  return (Array.isArray(envelope.signatures) ? envelope.signatures : []).map((s) => ({
    keyid: String(s?.keyid),
    platform: s?.keyid === reg.signer.keyid,
  }));
}

async function versionOf(ctx: Ctx, kind: RepoKind, id: RepoId, rev: string): Promise<[FoundRepo, CommitsTable]> {
  const r = await findRepo(ctx, kind, id);
  return [r, await resolveRevision(ctx.db, r.repo, rev)];
}

export async function versionDetail(
  ctx: Ctx,
  reg: Registry,
  kind: RepoKind,
  id: RepoId,
  rev: string,
): Promise<VersionDetail> {
  const [, c] = await versionOf(ctx, kind, id, rev);
  const envelope = envelopeOf(c);
  const formats = formatsOf(c);
  return {
    repo: repoIdText(id),
    kind,
    version: versionSummary(c),
    files: parseManifest(c).map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })),
    card: cardOf(c),
    formats,
    formatsSummary: summarizeFormats(formats),
    envelope,
    signatures: signaturesOf(reg, envelope),
    verification: verdict(reg, c, envelope),
  };
}

export interface VersionVerification extends Verification {
  repo: string;
  kind: RepoKind;
  commit: string;
  signatures: SignatureInfo[];
}

export async function verifyVersion(
  ctx: Ctx,
  reg: Registry,
  kind: RepoKind,
  id: RepoId,
  rev: string,
): Promise<VersionVerification> {
  const [, c] = await versionOf(ctx, kind, id, rev);
  const envelope = envelopeOf(c);
  return {
    repo: repoIdText(id),
    kind,
    commit: c.id,
    signatures: signaturesOf(reg, envelope),
    ...verdict(reg, c, envelope),
  };
}

export interface Countersignature {
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo of publicKeyPem. */
  keyid: string;
  /** base64 Ed25519 signature over the DSSE PAE of the version's envelope payload. */
  sig: string;
  publicKeyPem: string;
}

/**
 * Adds an uploader's signature to a version's envelope (members). The signature must verify with
 * the given Ed25519 public key over the same PAE as the platform's, and the keyid must be that
 * key's (so anyone holding the key can tell whose it is). The platform signature must still hold.
 */
export async function countersignVersion(
  ctx: Ctx,
  reg: Registry,
  kind: RepoKind,
  id: RepoId,
  rev: string,
  s: Countersignature,
): Promise<VersionVerification> {
  const [r, c] = await versionOf(ctx, kind, id, rev);
  const spec = {
    action: `${kind}.countersign`,
    resource: `${r.resource}/versions/${c.id}`,
    orgId: r.org.id,
    projectId: r.project.id,
  };
  await requireWriter(ctx, r, spec.action);
  let keyid: string;
  try {
    keyid = keyIdOf(s.publicKeyPem);
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `publicKeyPem is not an Ed25519 public key: ${(err as Error).message}`);
  }
  if (keyid !== s.keyid) {
    throw new AppError('INVALID_ARGUMENT', `keyid must be the hex SHA-256 of the key's DER SPKI: ${keyid}`, { keyid });
  }
  const envelope = envelopeOf(c);
  const current = verdict(reg, c, envelope);
  if (!current.ok) {
    throw new AppError(
      'SIGNATURE_INVALID',
      `version ${c.id} does not verify (${current.reason}); it cannot be countersigned`,
    );
  }
  if (envelope.signatures.some((x) => x.keyid === keyid)) {
    throw new AppError('CONFLICT', `version ${c.id} already carries a signature by key ${keyid}`, { keyid });
  }
  const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  let good = false;
  try {
    good = verifySignature(null, message, s.publicKeyPem, Buffer.from(s.sig, 'base64'));
  } catch {
    good = false;
  }
  if (!good) {
    throw new AppError(
      'SIGNATURE_INVALID',
      `the signature does not verify with key ${keyid} over the DSSE PAE of the payload`,
    );
  }
  const next: DsseEnvelope = { ...envelope, signatures: [...envelope.signatures, { keyid, sig: s.sig }] };
  const updated = { ...c, envelope: JSON.stringify(next) };
  // The answer is the change's result: with an Idempotency-Key it is stored as the response to replay.
  return write(ctx, spec, async (trx) => {
    // Compare and swap: a concurrent countersignature is not lost.
    const res = await trx
      .updateTable('commits')
      .set({ envelope: JSON.stringify(next) })
      .where('id', '=', c.id)
      .where('repo_id', '=', r.repo.id)
      .where('envelope', '=', c.envelope)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1)
      throw new AppError('CONFLICT', `version ${c.id} was signed meanwhile; fetch it and sign again`);
    const result: VersionVerification = {
      repo: repoIdText(id),
      kind,
      commit: c.id,
      signatures: signaturesOf(reg, next),
      ...verdict(reg, updated, next),
    };
    return {
      result,
      before: { commit: c.id, signatures: envelope.signatures.map((x) => x.keyid) },
      after: { commit: c.id, signatures: next.signatures.map((x) => x.keyid), publicKeyPem: s.publicKeyPem },
    };
  });
}
