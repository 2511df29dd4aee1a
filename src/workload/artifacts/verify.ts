// A pinned version as launch reads it: its row (still in the workload's org, its repo not
// deleted), its manifest, and its DSSE envelope verified against the platform key. An unsigned or
// altered version is an ArtifactError: the attempt fails, naming the reason.
import { parseManifest } from '../../registry/commits.js';
import { parseRepoIdText } from '../../registry/names.js';
import { type DsseEnvelope, type ManifestFile, verifyEnvelope } from '../../registry/signing.js';
import type { CommitsTable, WorkloadsTable } from '../../store/schema.js';
import type { ArtifactRef } from '../spec.js';
import { ArtifactError, type ArtifactsOptions, refText } from './common.js';

export interface Version {
  readonly commit: CommitsTable;
  readonly files: ManifestFile[];
  readonly orgId: string;
}

/** A pinned version, its signature checked against the platform key and its own manifest. */
export async function verifiedVersion(
  opts: ArtifactsOptions,
  w: WorkloadsTable,
  ref: ArtifactRef,
  what: string,
): Promise<Version> {
  if (!ref.commit) throw new ArtifactError(`${what}: ${refText(ref)} was not pinned to a commit at submit`);
  const id = parseRepoIdText(ref.repo);
  const row = await opts.db
    .selectFrom('commits')
    .innerJoin('repos', 'repos.id', 'commits.repo_id')
    .innerJoin('projects', 'projects.id', 'repos.project_id')
    .innerJoin('orgs', 'orgs.id', 'repos.org_id')
    .selectAll('commits')
    .select(['repos.deleted_at as repo_deleted_at', 'repos.org_id as repo_org_id'])
    .where('commits.id', '=', ref.commit)
    .where('repos.kind', '=', ref.kind)
    .where('repos.name', '=', id.name)
    .where('projects.name', '=', id.project)
    .where('orgs.name', '=', id.org)
    .where('repos.org_id', '=', w.org_id)
    .executeTakeFirst();
  if (!row) throw new ArtifactError(`${what}: ${refText(ref)} no longer exists in the registry`);
  const { repo_deleted_at, repo_org_id, ...commitRow } = row;
  if (repo_deleted_at)
    throw new ArtifactError(`${what}: ${ref.kind} ${ref.repo} was deleted after the workload was submitted`);
  const files = parseManifest(commitRow);
  let envelope: DsseEnvelope | undefined;
  try {
    envelope = commitRow.envelope ? (JSON.parse(commitRow.envelope) as DsseEnvelope) : undefined;
  } catch {
    envelope = undefined;
  }
  if (!envelope)
    throw new ArtifactError(`${what}: ${refText(ref)} is not signed; refusing to run on an unsigned version`);
  const signer = opts.registry.signer;
  const v = verifyEnvelope(envelope, [{ keyid: signer.keyid, publicKey: signer.publicKeyPem }], {
    files,
    commit: commitRow.id,
  });
  if (!v.ok) {
    throw new ArtifactError(
      `${what}: the signature of ${refText(ref)} does not verify (${v.reason}); refusing to run on an unsigned or altered version`,
    );
  }
  return { commit: commitRow, files, orgId: repo_org_id };
}
