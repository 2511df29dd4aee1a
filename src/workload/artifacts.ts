// Registry models and datasets as a workload's inputs, code and outputs (the spec's `inputs`,
// `code` and `outputs`, src/workload/spec.ts):
//
// - At submit (pinArtifacts): every input and code reference is resolved to its 40-hex commit,
//   which the stored spec keeps, so a tag moved later does not change what a queued or retried
//   workload reads. The submitter must be able to read them (404 otherwise, as for any repo it
//   cannot see; 422 for an unknown revision) and hold member on the project of every output repo.
// - At launch (WorkloadArtifacts.stage, before the executor starts anything; idempotent per
//   attempt): each pinned version's DSSE envelope is checked against the platform key and the
//   version's manifest (an unsigned or altered version fails the attempt, naming the reason), then
//   its files are decrypted out of the registry into the workload's directory, each file's sha256
//   checked while it is written:
//     <workloads>/<project>/<workload>/inputs/<i>/   input i: root's, group = the project's gid,
//                                                   dirs 0750, files 0640: the project's tasks
//                                                   (which run as its uid and gid) read, nobody
//                                                   writes; other projects cannot even pass the
//                                                   0710 project directory above
//     <workloads>/<project>/<workload>/work/         `code`: copied in, owned by the project's uid
//                                                   (the task's own directory), once per workload
//   Lineage edges `commit → attempt` record what each attempt read.
// - When an attempt succeeds (WorkloadArtifacts.publish): each output directory of the work
//   directory is walked without following links, each file stored as an encrypted blob of the org
//   (src/registry/ingest.ts) and the lot committed, signed, in one transaction as a new version
//   whose producer is the attempt. A failure leaves nothing visible (the commit is atomic) and
//   ends the workload `failed` (OutputPublishFailed).
//
// Who publishes: a principal that stands for the workload, `workload:<id>`, holding member on the
// output repos' projects and nothing else (never operator), so commit()'s own checks run as for
// a person. Those rights are what the submitter held at submit, when they were checked; like a
// job's service token they last as long as the workload does (cancel it to withdraw them).
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  createWriteStream,
  fchmodSync,
  fchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import { type Ctx, findProject, requireRole } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import type { ProjectIdentity } from '../domain/identity.js';
import { newId, nowIso } from '../domain/ids.js';
import { type DirLevel, ensureTree, readSmallFile, writeFileIn } from '../exec/host-files.js';
import { ExecError, type Mount } from '../exec/types.js';
import { workloadPaths } from '../exec/workspace.js';
import type { Caller } from '../policy/roles.js';
import { type CommitOp, commit, parseManifest } from '../registry/commits.js';
import { findBlob } from '../registry/content.js';
import { openBlob } from '../registry/content.js';
import { blobIdOf } from '../registry/crypto.js';
import { hashFile, ingestFile } from '../registry/ingest.js';
import { type RepoId, parseRepoIdText, pathProblem, repoResource } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import { branchHead, createRepo, findRepo, repoNotFound, resolveRevision } from '../registry/repos.js';
import { type DsseEnvelope, type ManifestFile, verifyEnvelope } from '../registry/signing.js';
import { checkRoom } from '../registry/storage-quota.js';
import type { CommitsTable, Database, OrgsTable, RepoKind, WorkloadsTable } from '../store/schema.js';
import type { ArtifactRef, OutputSpec, WorkloadSpec } from './spec.js';

// ---- Submit ---------------------------------------------------------------------------------

function specInvalid(path: string, message: string): AppError {
  return new AppError('SPEC_INVALID', `${path}: ${message}`, { path });
}

/** The repo id of a spec reference, which must belong to the workload's org. */
function ownRepo(org: OrgsTable, ref: { kind: RepoKind; repo: string }, path: string): RepoId {
  const id = parseRepoIdText(ref.repo);
  if (id.org !== org.name) {
    throw specInvalid(
      path,
      `${ref.kind} ${ref.repo} belongs to another organization; a workload of ${org.name} uses ${org.name}'s models and datasets only`,
    );
  }
  return id;
}

/**
 * The spec with every input and code revision pinned to its commit, after checking that the
 * caller may read those versions and publish to the output repos. Throws AppError (404, 422, 403, 400).
 */
export async function pinArtifacts(ctx: Ctx, org: OrgsTable, spec: WorkloadSpec): Promise<WorkloadSpec> {
  const pin = async <T extends ArtifactRef>(ref: T, path: string): Promise<T> => {
    const id = ownRepo(org, ref, path);
    const found = await findRepo(ctx, ref.kind, id); // 404 when the caller cannot see it
    let c: CommitsTable;
    try {
      c = await resolveRevision(ctx.db, found.repo, ref.revision);
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') {
        throw new AppError(
          'UNPROCESSABLE',
          `${path}: ${ref.kind} ${ref.repo} has no revision "${ref.revision.slice(0, 128)}" (a branch, a tag or a commit id)`,
          { path, revision: ref.revision },
        );
      }
      throw err;
    }
    return { ...ref, commit: c.id };
  };
  const inputs = spec.inputs
    ? await Promise.all(spec.inputs.map((x, i) => pin(x, `inputs[${i}].${x.kind}`)))
    : undefined;
  const code = spec.code ? await pin(spec.code, `code.${spec.code.kind}`) : undefined;
  for (const [i, out] of (spec.outputs ?? []).entries()) await checkOutput(ctx, org, out, `outputs[${i}].${out.kind}`);
  return { ...spec, ...(inputs ? { inputs } : {}), ...(code ? { code } : {}) };
}

async function checkOutput(ctx: Ctx, org: OrgsTable, out: OutputSpec, path: string): Promise<void> {
  const id = ownRepo(org, out, path);
  let projectId: string;
  try {
    projectId = (await findProject(ctx, `${id.org}.${id.project}`)).project.id;
  } catch (err) {
    if (err instanceof AppError && err.code === 'NOT_FOUND') throw repoNotFound(out.kind, id);
    throw err;
  }
  const resource = repoResource(out.kind, id);
  await requireRole(
    ctx,
    { action: `${out.kind}.commit`, resource, orgId: org.id, projectId },
    'member',
    `publishing workload outputs to ${out.kind}s`,
    projectId,
  );
  // A repo that does not exist yet is created when the output is published.
  const repo = await ctx.db
    .selectFrom('repos')
    .select('id')
    .where('project_id', '=', projectId)
    .where('kind', '=', out.kind)
    .where('name', '=', id.name)
    .where('deleted_at', '=', '')
    .executeTakeFirst();
  if (!repo) return;
  const ref = await ctx.db
    .selectFrom('repo_refs')
    .select('kind')
    .where('repo_id', '=', repo.id)
    .where('name', '=', out.branch)
    .executeTakeFirst();
  if (ref?.kind === 'tag') {
    throw specInvalid(
      `${path.replace(/\.[a-z]+$/, '')}.branch`,
      `"${out.branch}" is a tag of ${out.repo}; outputs go to branches`,
    );
  }
}

// ---- Launch: inputs and code ----------------------------------------------------------------

/** A refusal to stage an attempt's artifacts: the attempt fails with this message, not retried. */
export class ArtifactError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactError';
  }
}

export interface ArtifactsOptions {
  readonly db: Kysely<Database>;
  readonly registry: Registry;
  /** The executors' workloads directory (`<dataDir>/workloads`). */
  readonly workloadsDir: string;
}

const isRoot = () => process.getuid?.() === 0;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
/** Input copies: the project's group reads, nobody but root writes. */
const INPUT_DIR_MODE = 0o750;
const INPUT_FILE_MODE = 0o640;

/** How an artifact is named in messages: `dataset acme.vision/corpus@<commit>`. */
const refText = (r: ArtifactRef) => `${r.kind} ${r.repo}@${(r.commit ?? r.revision).slice(0, 12)}`;

interface Version {
  readonly commit: CommitsTable;
  readonly files: ManifestFile[];
  readonly orgId: string;
}

export class WorkloadArtifacts {
  constructor(private readonly opts: ArtifactsOptions) {}

  /** Whether the spec asks for anything of the registry. */
  static wanted(spec: WorkloadSpec): boolean {
    return (spec.inputs?.length ?? 0) > 0 || (spec.outputs?.length ?? 0) > 0 || spec.code !== undefined;
  }

  /**
   * Materializes the inputs (and, once per workload, the code) of attempt `attempt`; returns the
   * mounts for the launch request. Idempotent: what an earlier call finished is kept. Throws
   * ExecError: retryable for the store's or the disk's passing troubles, not for refusals.
   */
  async stage(w: WorkloadsTable, spec: WorkloadSpec, attempt: number, identity: ProjectIdentity): Promise<Mount[]> {
    try {
      const paths = workloadPaths(this.opts.workloadsDir, w.project_id, w.id, attempt);
      const levels = workloadLevels(w, identity);
      const mounts: Mount[] = [];
      const inputs = spec.inputs ?? [];
      if (inputs.length > 0) {
        ensureTree(this.opts.workloadsDir, [...levels, inputsLevel(identity)]);
        for (const [i, input] of inputs.entries()) {
          const dir = join(paths.workload, 'inputs');
          await this.materializeInput(w, input, `inputs[${i}]`, dir, String(i), identity);
          mounts.push({ source: join(dir, String(i)), target: input.path, readOnly: true });
        }
      }
      if (spec.code) {
        ensureTree(this.opts.workloadsDir, [...levels, { name: 'work', mode: 0o700, owner: ownerOf(identity) }]);
        await this.copyCode(w, spec.code, paths.workload, paths.work, identity);
      }
      await this.recordLineage(w, attempt, [...inputs, ...(spec.code ? [spec.code] : [])]);
      return mounts;
    } catch (err) {
      throw asExecError(err);
    }
  }

  /** A pinned version, its signature checked against the platform key and its own manifest. */
  private async verifiedVersion(w: WorkloadsTable, ref: ArtifactRef, what: string): Promise<Version> {
    if (!ref.commit) throw new ArtifactError(`${what}: ${refText(ref)} was not pinned to a commit at submit`);
    const id = parseRepoIdText(ref.repo);
    const row = await this.opts.db
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
    const signer = this.opts.registry.signer;
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

  private async materializeInput(
    w: WorkloadsTable,
    ref: ArtifactRef,
    what: string,
    parent: string,
    name: string,
    identity: ProjectIdentity,
  ): Promise<void> {
    const version = await this.verifiedVersion(w, ref, what);
    const marker = `${name}.done`;
    const done = readSmallFile(join(parent, marker))?.trim();
    const target = join(parent, name);
    if (done === version.commit.id && existsDir(target)) return;
    // A copy cut short (a crash) is thrown away whole; root owns all of it, so nothing here is a
    // task's link. The new copy is built under a temporary name and renamed into place.
    const partial = join(parent, `.${name}.partial`);
    rmSync(partial, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
    const owner = isRoot() ? { uid: 0, gid: identity.gid } : undefined;
    ensureTree(parent, [{ name: `.${name}.partial`, mode: INPUT_DIR_MODE, owner }]);
    await this.writeVersion(version, partial, what, ref, {
      dirMode: INPUT_DIR_MODE,
      fileMode: () => INPUT_FILE_MODE,
      owner,
    });
    renameSync(partial, target);
    writeFileIn(parent, marker, `${version.commit.id}\n`, 0o600);
  }

  /** The code version's files into the work directory, once per workload (a marker says it was done). */
  private async copyCode(
    w: WorkloadsTable,
    ref: ArtifactRef,
    workloadDir: string,
    workDir: string,
    identity: ProjectIdentity,
  ): Promise<void> {
    const version = await this.verifiedVersion(w, ref, 'code');
    const marker = 'code.done';
    if (readSmallFile(join(workloadDir, marker))?.trim() === version.commit.id) return;
    // The work directory is the task's; no task of this workload has run before the marker is
    // written, but every level is still opened without following links.
    await this.writeVersion(version, workDir, 'code', ref, {
      dirMode: 0o755,
      fileMode: (head) => (head.subarray(0, 2).toString('latin1') === '#!' ? 0o755 : 0o644),
      owner: ownerOf(identity),
    });
    writeFileIn(workloadDir, marker, `${version.commit.id}\n`, 0o600);
  }

  /** Every file of a version below `root`, decrypted, its size and sha256 checked as it is written. */
  private async writeVersion(
    v: Version,
    root: string,
    what: string,
    ref: ArtifactRef,
    o: { dirMode: number; fileMode: (head: Buffer) => number; owner?: { uid: number; gid: number } },
  ): Promise<void> {
    const reg = this.opts.registry;
    for (const f of v.files) {
      const problem = pathProblem(f.path);
      if (problem) throw new ArtifactError(`${what}: ${refText(ref)} holds a file path that ${problem}`);
      const blob = await findBlob(this.opts.db, v.orgId, f.blobId);
      if (!blob)
        throw new ArtifactError(`${what}: the content of ${f.path} in ${refText(ref)} is missing from the store`);
      const parts = f.path.split('/');
      const dirFd = openDirs(root, parts.slice(0, -1), o.dirMode, o.owner);
      let fd: number;
      try {
        fd = openSync(`/proc/self/fd/${dirFd}/${parts.at(-1)}`, NEW_FILE, 0o600);
      } finally {
        closeSync(dirFd);
      }
      try {
        if (o.owner && isRoot()) fchownSync(fd, o.owner.uid, o.owner.gid);
        const hash = createHash('sha256');
        let bytes = 0;
        let head = Buffer.alloc(0);
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            if (head.length < 2) head = Buffer.concat([head, chunk.subarray(0, 2)]);
            bytes += chunk.length;
            cb(null, chunk);
          },
        });
        await pipeline(await openBlob(reg, blob), tap, createWriteStream('', { fd, autoClose: false }));
        const digest = hash.digest('hex');
        if (bytes !== f.size || digest !== f.sha256) {
          throw new ArtifactError(
            `${what}: ${f.path} of ${refText(ref)} read back as ${bytes} bytes with sha256 ${digest}, not the signed ${f.size} bytes ${f.sha256}`,
          );
        }
        fchmodSync(fd, o.fileMode(head));
      } finally {
        closeSync(fd);
      }
    }
  }

  /** `commit → attempt` for every version the attempt reads; once each. */
  private async recordLineage(w: WorkloadsTable, attempt: number, refs: readonly ArtifactRef[]): Promise<void> {
    const to = `${w.id}:${attempt}`;
    for (const ref of refs) {
      if (!ref.commit) continue;
      await this.opts.db
        .insertInto('lineage_edges')
        .values({
          id: newId('lin'),
          org_id: w.org_id,
          from_kind: 'commit',
          from_id: ref.commit,
          to_kind: 'attempt',
          to_id: to,
          created_at: nowIso(),
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  }

  // ---- Success: outputs ---------------------------------------------------------------------

  /**
   * Publishes every output of a succeeded attempt; returns one line per output. `stillWanted` is
   * asked before each commit (a cancel meanwhile stops publishing). Throws with the reason.
   * Idempotent: an output this attempt already published (before a crash) is not published again.
   */
  async publish(
    w: WorkloadsTable,
    spec: WorkloadSpec,
    attempt: number,
    stillWanted: () => Promise<boolean>,
  ): Promise<string[]> {
    const outputs = spec.outputs ?? [];
    const workDir = workloadPaths(this.opts.workloadsDir, w.project_id, w.id, attempt).work;
    const org = await this.opts.db.selectFrom('orgs').selectAll().where('id', '=', w.org_id).executeTakeFirstOrThrow();
    const targets = outputs.map((out, i) => ({ out, i, id: ownRepoAtPublish(org, out, i) }));
    const projects = new Map<string, string>();
    for (const t of targets) {
      const p = await this.opts.db
        .selectFrom('projects')
        .select('id')
        .where('org_id', '=', w.org_id)
        .where('name', '=', t.id.project)
        .executeTakeFirst();
      if (!p) throw new ArtifactError(`outputs[${t.i}]: project ${t.id.org}.${t.id.project} no longer exists`);
      projects.set(t.id.project, p.id);
    }
    const ctx = workloadCtx(this.opts.db, w, attempt, [...projects.values()]);
    const lines: string[] = [];
    for (const t of targets) {
      lines.push(
        await this.publishOne(ctx, w, attempt, t.out, t.i, t.id, projects.get(t.id.project)!, workDir, stillWanted),
      );
    }
    return lines;
  }

  private async publishOne(
    ctx: Ctx,
    w: WorkloadsTable,
    attempt: number,
    out: OutputSpec,
    i: number,
    id: RepoId,
    projectId: string,
    workDir: string,
    stillWanted: () => Promise<boolean>,
  ): Promise<string> {
    const what = `outputs[${i}]`;
    const reg = this.opts.registry;
    const label = `${out.kind} ${out.repo}`;
    const existing = await this.opts.db
      .selectFrom('commits')
      .innerJoin('repos', 'repos.id', 'commits.repo_id')
      .select(['commits.id', 'commits.file_count', 'commits.total_bytes'])
      .where('repos.project_id', '=', projectId)
      .where('repos.kind', '=', out.kind)
      .where('repos.name', '=', id.name)
      .where('repos.deleted_at', '=', '')
      .where('commits.producer_workload_id', '=', w.id)
      .where('commits.producer_attempt', '=', attempt)
      .executeTakeFirst();
    if (existing)
      return `published ${label}@${existing.id.slice(0, 12)} (${existing.file_count} files, ${existing.total_bytes} bytes)`;

    const files = collectOutputFiles(workDir, out.from, what, reg.limits.maxFiles);
    // Digests first: what the project holds already costs no quota, and a full quota refuses
    // before anything is stored.
    const hashed: { rel: string; abs: string; sha256: string; size: number; dev: number; ino: number }[] = [];
    for (const f of files) hashed.push({ ...f, ...(await hashFile(f.abs, { dev: f.dev, ino: f.ino })) });
    const blobIdKey = await reg.keys.blobIdKey(w.org_id);
    const held = new Set(
      (
        await this.opts.db.selectFrom('project_blobs').select('blob_id').where('project_id', '=', projectId).execute()
      ).map((b) => b.blob_id),
    );
    const fresh = new Map<string, number>();
    for (const f of hashed) {
      const b = blobIdOf(blobIdKey, f.sha256);
      if (!held.has(b)) fresh.set(b, f.size);
    }
    const adding = [...fresh.values()].reduce((n, s) => n + s, 0);
    if (adding > 0) await checkRoom(this.opts.db, reg, projectId, adding, { countOpenUploads: true });

    for (const f of hashed) {
      await ingestFile(this.opts.db, reg, w.org_id, projectId, f.abs, ctx.caller.principal, {
        known: { sha256: f.sha256, size: f.size },
        expect: { dev: f.dev, ino: f.ino },
      });
    }
    if (!(await stillWanted()))
      throw new ArtifactError(`${what}: the workload was stopped before ${label} was published`);
    try {
      await findRepo(ctx, out.kind, id);
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
      await createRepo(ctx, out.kind, id);
    }
    const ops: CommitOp[] = hashed.map((f) => ({ op: 'lfs', path: f.rel, sha256: f.sha256, size: f.size }));
    const paths = new Set(hashed.map((f) => f.rel));
    // The version holds exactly what the output directory holds: files of the branch's previous
    // version that the job did not write again are not carried over. A concurrent commit to the
    // branch makes the parent stale (409): read the head again and retry.
    for (let round = 1; ; round++) {
      const found = await findRepo(ctx, out.kind, id);
      const head = await branchHead(this.opts.db, found.repo, out.branch);
      const deletes: CommitOp[] = (head ? parseManifest(head) : [])
        .filter((f) => !paths.has(f.path))
        .map((f) => ({ op: 'delete', path: f.path }));
      try {
        const c = await commit(ctx, reg, out.kind, id, out.branch, {
          summary: `Output of workload ${w.name} (${w.id}), attempt ${attempt}`,
          parentCommit: head?.id ?? '',
          ops: [...ops, ...deletes],
          producer: { workloadId: w.id, attempt },
        });
        return `published ${label}@${c.commit.slice(0, 12)} (${c.files} files, ${c.bytes} bytes)`;
      } catch (err) {
        if (round < 3 && err instanceof AppError && err.code === 'CONFLICT' && err.details.head !== undefined) continue;
        throw err;
      }
    }
  }
}

function ownRepoAtPublish(org: OrgsTable, out: OutputSpec, i: number): RepoId {
  const id = parseRepoIdText(out.repo);
  if (id.org !== org.name) throw new ArtifactError(`outputs[${i}]: ${out.repo} is not a repo of ${org.name}`);
  return id;
}

/** The caller commits of outputs run as: member of the output projects, nothing more. */
function workloadCtx(db: Kysely<Database>, w: WorkloadsTable, attempt: number, projectIds: readonly string[]): Ctx {
  const caller: Caller = {
    keyId: '',
    keyPrefix: '',
    principalId: '',
    principal: `workload:${w.id}`,
    operator: false,
    scopeOrgId: w.org_id,
    scopeProjectId: '',
    grants: [...new Set(projectIds)].map((projectId) => ({ orgId: w.org_id, projectId, role: 'member' as const })),
  };
  return { db, caller, requestId: `publish-${w.id}.${attempt}` };
}

/** The regular files under `<work>/<from>` (a directory, or one file), no link followed. */
export function collectOutputFiles(
  workDir: string,
  from: string,
  what: string,
  maxFiles: number,
): { rel: string; abs: string; size: number; dev: number; ino: number }[] {
  const parts = from === '.' ? [] : from.split('/');
  let abs = workDir;
  for (const [k, p] of parts.entries()) {
    abs = join(abs, p);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(abs);
    } catch {
      throw new ArtifactError(`${what}: ${parts.slice(0, k + 1).join('/')} does not exist in the work directory`);
    }
    if (st.isSymbolicLink()) {
      throw new ArtifactError(
        `${what}: ${parts.slice(0, k + 1).join('/')} is a symbolic link; outputs are read without following links`,
      );
    }
    if (k < parts.length - 1 && !st.isDirectory()) {
      throw new ArtifactError(`${what}: ${parts.slice(0, k + 1).join('/')} is not a directory`);
    }
    if (k === parts.length - 1 && st.isFile()) {
      return [{ rel: p, abs, size: st.size, dev: st.dev, ino: st.ino }];
    }
  }
  const out: { rel: string; abs: string; size: number; dev: number; ino: number }[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const shown = from === '.' ? rel : `${from}/${rel}`;
      const st = lstatSync(full);
      if (st.isSymbolicLink()) {
        throw new ArtifactError(
          `${what}: ${shown} is a symbolic link; outputs hold regular files only (copy what it points to)`,
        );
      }
      if (st.isDirectory()) {
        walk(full, rel);
        continue;
      }
      if (!st.isFile()) throw new ArtifactError(`${what}: ${shown} is not a regular file (a FIFO, socket or device)`);
      const problem = pathProblem(rel);
      if (problem) throw new ArtifactError(`${what}: ${shown} cannot be a file of a version: its path ${problem}`);
      out.push({ rel, abs: full, size: st.size, dev: st.dev, ino: st.ino });
      if (out.length > maxFiles)
        throw new ArtifactError(`${what}: more than ${maxFiles} files; a version holds at most that many`);
    }
  };
  walk(abs, '');
  if (out.length === 0)
    throw new ArtifactError(
      `${what}: ${from === '.' ? 'the work directory' : `${from}/`} holds no files; nothing to publish`,
    );
  return out;
}

// ---- Helpers --------------------------------------------------------------------------------

function ownerOf(identity: ProjectIdentity): { uid: number; gid: number } | undefined {
  return isRoot() ? { uid: identity.uid, gid: identity.gid } : undefined;
}

/** The project and workload levels as the executors make them: root's, passable by the project's gid. */
function workloadLevels(w: WorkloadsTable, identity: ProjectIdentity): DirLevel[] {
  const group = isRoot() ? { uid: 0, gid: identity.gid } : undefined;
  const mode = group ? 0o710 : 0o700;
  return [
    { name: w.project_id, mode, owner: group },
    { name: w.id, mode, owner: group },
  ];
}

function inputsLevel(identity: ProjectIdentity): DirLevel {
  return { name: 'inputs', mode: INPUT_DIR_MODE, owner: isRoot() ? { uid: 0, gid: identity.gid } : undefined };
}

function existsDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Opens root/a/b/… (creating what is missing, never following a link); returns the last fd. */
function openDirs(root: string, parts: readonly string[], mode: number, owner?: { uid: number; gid: number }): number {
  let fd = openSync(root, DIR_FLAGS);
  try {
    for (const p of parts) {
      const at = `/proc/self/fd/${fd}/${p}`;
      let created = false;
      try {
        mkdirSync(at, { mode: 0o700 });
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let child: number;
      try {
        child = openSync(at, DIR_FLAGS);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'ELOOP') throw new ArtifactError(`${p} under ${root} is not a directory`);
        throw err;
      }
      closeSync(fd);
      fd = child;
      if (created) {
        if (owner && isRoot()) fchownSync(fd, owner.uid, owner.gid);
        fchmodSync(fd, mode);
      }
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Refusals fail the attempt; the disk's or the store's passing troubles are tried again. */
function asExecError(err: unknown): ExecError {
  if (err instanceof ExecError) return err;
  const e = err as Error & { code?: unknown; $metadata?: unknown };
  if (err instanceof ArtifactError || err instanceof AppError) return new ExecError(e.message, false);
  const transient =
    e.$metadata !== undefined ||
    (typeof e.code === 'string' &&
      ['ENOSPC', 'EIO', 'EAGAIN', 'EBUSY', 'ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED'].includes(e.code));
  return new ExecError(`staging the registry inputs failed: ${e.message}`, transient);
}
