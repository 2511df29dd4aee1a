// When an attempt succeeds: each output directory of its work directory walked without following
// links, each file stored as an encrypted blob of the org and the lot committed, signed, as one
// new version whose producer is the attempt, by the principal `workload:<id>` (see ./index.ts).
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Ctx } from '../../app/context.js';
import { AppError } from '../../domain/errors.js';
import { workloadPaths } from '../../exec/workspace.js';
import type { Caller } from '../../policy/roles.js';
import { type CommitOp, commit, parseManifest } from '../../registry/commits.js';
import { blobIdOf } from '../../registry/crypto.js';
import { hashFile, ingestFile } from '../../registry/ingest.js';
import { type RepoId, parseRepoIdText, pathProblem } from '../../registry/names.js';
import { branchHead, createRepo, findRepo } from '../../registry/repos.js';
import { checkRoom } from '../../registry/storage-quota.js';
import type { Database, OrgsTable, WorkloadsTable } from '../../store/schema.js';
import type { OutputSpec, WorkloadSpec } from '../spec.js';
import { ArtifactError, type ArtifactsOptions } from './common.js';

/**
 * Publishes every output of a succeeded attempt; returns one line per output. `stillWanted` is
 * asked before each commit (a cancel meanwhile stops publishing). Throws with the reason.
 * Idempotent: an output this attempt already published (before a crash) is not published again.
 */
export async function publishOutputs(
  opts: ArtifactsOptions,
  w: WorkloadsTable,
  spec: WorkloadSpec,
  attempt: number,
  stillWanted: () => Promise<boolean>,
): Promise<string[]> {
  const outputs = spec.outputs ?? [];
  const workDir = workloadPaths(opts.workloadsDir, w.project_id, w.id, attempt).work;
  const org = await opts.db.selectFrom('orgs').selectAll().where('id', '=', w.org_id).executeTakeFirstOrThrow();
  const targets = outputs.map((out, i) => ({ out, i, id: ownRepoAtPublish(org, out, i) }));
  const projects = new Map<string, string>();
  for (const t of targets) {
    const p = await opts.db
      .selectFrom('projects')
      .select('id')
      .where('org_id', '=', w.org_id)
      .where('name', '=', t.id.project)
      .executeTakeFirst();
    if (!p) throw new ArtifactError(`outputs[${t.i}]: project ${t.id.org}.${t.id.project} no longer exists`);
    projects.set(t.id.project, p.id);
  }
  const ctx = workloadCtx(opts.db, w, attempt, [...projects.values()]);
  const lines: string[] = [];
  for (const t of targets) {
    lines.push(
      await publishOne(opts, ctx, w, attempt, t.out, t.i, t.id, projects.get(t.id.project)!, workDir, stillWanted),
    );
  }
  return lines;
}

async function publishOne(
  opts: ArtifactsOptions,
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
  const reg = opts.registry;
  const label = `${out.kind} ${out.repo}`;
  const existing = await opts.db
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
    (await opts.db.selectFrom('project_blobs').select('blob_id').where('project_id', '=', projectId).execute()).map(
      (b) => b.blob_id,
    ),
  );
  const fresh = new Map<string, number>();
  for (const f of hashed) {
    const b = blobIdOf(blobIdKey, f.sha256);
    if (!held.has(b)) fresh.set(b, f.size);
  }
  const adding = [...fresh.values()].reduce((n, s) => n + s, 0);
  if (adding > 0) await checkRoom(opts.db, reg, projectId, adding, { countOpenUploads: true });

  for (const f of hashed) {
    await ingestFile(opts.db, reg, w.org_id, projectId, f.abs, ctx.caller.principal, {
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
    // Another attempt may have created it meanwhile: that is the repo wanted.
    await createRepo(ctx, out.kind, id).catch((e) => {
      if (!(e instanceof AppError && e.code === 'ALREADY_EXISTS')) throw e;
    });
  }
  const ops: CommitOp[] = hashed.map((f) => ({ op: 'lfs', path: f.rel, sha256: f.sha256, size: f.size }));
  const paths = new Set(hashed.map((f) => f.rel));
  // The version holds exactly what the output directory holds: files of the branch's previous
  // version that the job did not write again are not carried over. A concurrent commit to the
  // branch makes the parent stale (409): read the head again and retry.
  for (let round = 1; ; round++) {
    const found = await findRepo(ctx, out.kind, id);
    const head = await branchHead(opts.db, found.repo, out.branch);
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
