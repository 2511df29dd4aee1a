// Models and datasets of a project: creation, lookup through the caller's visibility, listing,
// deletion with retention, and the refs (branches, tags) that name their versions.
//
// Who may do what: anyone with a role on the project reads (viewer and up); members push and
// commit; admins delete repos and move or delete tags. Another org's repo is "not found" (404).
import type { Kysely } from 'kysely';
import { type Ctx, findProject, requireRole, write } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import type { OrgsTable, ProjectsTable, RepoKind, ReposTable, CommitsTable, Database } from '../store/schema.js';
import { COMMIT_ID, DEFAULT_BRANCH, type RepoId, checkRefName, repoIdText, repoResource } from './names.js';
import type { Registry } from './registry.js';

export interface FoundRepo {
  readonly org: OrgsTable;
  readonly project: ProjectsTable;
  readonly repo: ReposTable;
  readonly id: RepoId;
  readonly resource: string;
}

/** A repo the Hub protocol reports missing: its clients read X-Error-Code. */
export function repoNotFound(kind: RepoKind, id: RepoId): AppError {
  return new AppError('NOT_FOUND', `${kind} ${repoIdText(id)} not found`, { hubErrorCode: 'RepoNotFound' });
}

export function revisionNotFound(rev: string): AppError {
  return new AppError('NOT_FOUND', `revision "${rev.slice(0, 128)}" not found`, { hubErrorCode: 'RevisionNotFound' });
}

/** A live repo, or 404 when it, its project or its org is unknown or not visible to the caller. */
export async function findRepo(
  ctx: Ctx,
  kind: RepoKind,
  id: RepoId,
  db: Kysely<Database> | Trx = ctx.db,
): Promise<FoundRepo> {
  let found: { org: OrgsTable; project: ProjectsTable };
  try {
    found = await findProject(ctx, `${id.org}.${id.project}`, db);
  } catch (err) {
    if (err instanceof AppError && err.code === 'NOT_FOUND') throw repoNotFound(kind, id);
    throw err;
  }
  const repo = await db
    .selectFrom('repos')
    .selectAll()
    .where('project_id', '=', found.project.id)
    .where('kind', '=', kind)
    .where('name', '=', id.name)
    .where('deleted_at', '=', '')
    .executeTakeFirst();
  if (!repo) throw repoNotFound(kind, id);
  return { ...found, repo, id, resource: repoResource(kind, id) };
}

export function requireWriter(ctx: Ctx, r: FoundRepo, action: string): Promise<void> {
  return requireRole(
    ctx,
    { action, resource: r.resource, orgId: r.org.id, projectId: r.project.id },
    'member',
    `pushing to ${r.repo.kind}s`,
    r.project.id,
  );
}

export interface RepoInfo {
  id: string;
  kind: RepoKind;
  name: string;
  project: string;
  private: boolean;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

export function repoInfo(r: ReposTable, project: string): RepoInfo {
  return {
    id: `${project}/${r.name}`,
    kind: r.kind,
    name: r.name,
    project,
    private: r.private === 1,
    createdAt: r.created_at,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
  };
}

/** Creates a repo; ALREADY_EXISTS (409, nothing written) when it exists (the Hub answers 409 with its url). */
export async function createRepo(
  ctx: Ctx,
  kind: RepoKind,
  id: RepoId,
  opts: { private?: boolean } = {},
): Promise<RepoInfo> {
  const { org, project } = await findProject(ctx, `${id.org}.${id.project}`);
  const resource = repoResource(kind, id);
  const spec = { action: `${kind}.create`, resource, orgId: org.id, projectId: project.id };
  await requireRole(ctx, spec, 'member', `creating ${kind}s`, project.id);
  if (org.status !== 'active') throw new AppError('CONFLICT', `organization "${org.name}" is ${org.status}`);
  const ref = `${org.name}.${project.name}`;
  return write<RepoInfo>(ctx, spec, async (trx) => {
    const existing = await trx
      .selectFrom('repos')
      .selectAll()
      .where('project_id', '=', project.id)
      .where('kind', '=', kind)
      .where('name', '=', id.name)
      .where('deleted_at', '=', '')
      .executeTakeFirst();
    if (existing) throw new AppError('ALREADY_EXISTS', `${kind} ${ref}/${id.name} already exists`, { id: existing.id });
    const now = nowIso();
    const row: ReposTable = {
      id: newId('repo'),
      org_id: org.id,
      project_id: project.id,
      kind,
      name: id.name,
      private: opts.private === false ? 0 : 1,
      created_at: now,
      created_by: ctx.caller.principal,
      updated_at: now,
      deleted_at: '',
      purge_after: '',
    };
    await trx.insertInto('repos').values(row).execute();
    return { result: repoInfo(row, ref), after: row };
  });
}

/** Deletes a repo: gone at once for clients, its versions kept for the retention, then purged. */
export async function deleteRepo(ctx: Ctx, reg: Registry, kind: RepoKind, id: RepoId): Promise<void> {
  const r = await findRepo(ctx, kind, id);
  const spec = { action: `${kind}.delete`, resource: r.resource, orgId: r.org.id, projectId: r.project.id };
  await requireRole(ctx, spec, 'admin', `deleting ${kind}s`, r.project.id);
  await write(ctx, spec, async (trx) => {
    const now = new Date();
    const purgeAfter = new Date(now.getTime() + reg.limits.retentionMs).toISOString();
    const res = await trx
      .updateTable('repos')
      .set({ deleted_at: now.toISOString(), purge_after: purgeAfter })
      .where('id', '=', r.repo.id)
      .where('deleted_at', '=', '')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw repoNotFound(kind, id);
    return {
      result: undefined,
      before: r.repo,
      after: { ...r.repo, deleted_at: now.toISOString(), purge_after: purgeAfter },
    };
  });
}

/** The commit a revision names: a ref name (branch or tag) or a full 40-hex commit id of the repo. */
export async function resolveRevision(
  db: Kysely<Database> | Trx,
  repo: ReposTable,
  rev: string,
): Promise<CommitsTable> {
  let commitId = rev;
  if (!COMMIT_ID.test(rev)) {
    const ref = await db
      .selectFrom('repo_refs')
      .select('commit_id')
      .where('repo_id', '=', repo.id)
      .where('name', '=', rev)
      .executeTakeFirst();
    if (!ref) throw revisionNotFound(rev);
    commitId = ref.commit_id;
  }
  const c = await db
    .selectFrom('commits')
    .selectAll()
    .where('id', '=', commitId)
    .where('repo_id', '=', repo.id)
    .executeTakeFirst();
  if (!c) throw revisionNotFound(rev);
  return c;
}

/** The commit a branch points at, or undefined for a branch without commits (a new repo's main). */
export async function branchHead(
  db: Kysely<Database> | Trx,
  repo: ReposTable,
  branch: string,
): Promise<CommitsTable | undefined> {
  const ref = await db
    .selectFrom('repo_refs')
    .select(['commit_id', 'kind'])
    .where('repo_id', '=', repo.id)
    .where('name', '=', branch)
    .executeTakeFirst();
  if (!ref) return undefined;
  if (ref.kind !== 'branch') throw new AppError('CONFLICT', `"${branch}" is a tag; commits go to branches`);
  return db.selectFrom('commits').selectAll().where('id', '=', ref.commit_id).executeTakeFirst();
}

export interface RefInfo {
  name: string;
  kind: 'branch' | 'tag';
  commit: string;
  updatedAt: string;
  updatedBy: string;
}

export async function listRefs(db: Kysely<Database> | Trx, repo: ReposTable): Promise<RefInfo[]> {
  const rows = await db.selectFrom('repo_refs').selectAll().where('repo_id', '=', repo.id).orderBy('name').execute();
  return rows.map((r) => ({
    name: r.name,
    kind: r.kind,
    commit: r.commit_id,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  }));
}

function findRef(db: Kysely<Database> | Trx, repoId: string, name: string) {
  return db
    .selectFrom('repo_refs')
    .selectAll()
    .where('repo_id', '=', repoId)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** Points a tag (or creates it) at a revision's commit. Moving a tag takes an admin. */
export async function setTag(ctx: Ctx, kind: RepoKind, id: RepoId, tag: string, revision: string): Promise<RefInfo> {
  checkRefName(tag);
  if (tag === DEFAULT_BRANCH)
    throw new AppError('CONFLICT', `"${DEFAULT_BRANCH}" is the default branch; it moves by commits`);
  const r = await findRepo(ctx, kind, id);
  const resource = `${r.resource}/refs/${tag}`;
  const spec = { action: `${kind}.tag`, resource, orgId: r.org.id, projectId: r.project.id };
  const existing = await findRef(ctx.db, r.repo.id, tag);
  await requireRole(
    ctx,
    spec,
    existing ? 'admin' : 'member',
    existing ? 'moving tags' : 'tagging versions',
    r.project.id,
  );
  if (existing && existing.kind === 'branch') throw new AppError('CONFLICT', `"${tag}" is a branch, not a tag`);
  return write(ctx, spec, async (trx) => {
    const commit = await resolveRevision(trx, r.repo, revision);
    const row = {
      repo_id: r.repo.id,
      name: tag,
      kind: 'tag' as const,
      commit_id: commit.id,
      updated_at: nowIso(),
      updated_by: ctx.caller.principal,
    };
    await trx
      .insertInto('repo_refs')
      .values(row)
      .onConflict((oc) =>
        oc
          .columns(['repo_id', 'name'])
          .doUpdateSet({ commit_id: row.commit_id, updated_at: row.updated_at, updated_by: row.updated_by }),
      )
      .execute();
    return {
      result: { name: tag, kind: 'tag', commit: commit.id, updatedAt: row.updated_at, updatedBy: row.updated_by },
      before: existing,
      after: row,
    };
  });
}

export async function deleteTag(ctx: Ctx, kind: RepoKind, id: RepoId, tag: string): Promise<void> {
  const r = await findRepo(ctx, kind, id);
  const resource = `${r.resource}/refs/${tag}`;
  const spec = { action: `${kind}.untag`, resource, orgId: r.org.id, projectId: r.project.id };
  const existing = await findRef(ctx.db, r.repo.id, tag);
  if (existing?.kind !== 'tag') throw new AppError('NOT_FOUND', `tag "${tag.slice(0, 128)}" not found`);
  await requireRole(ctx, spec, 'admin', 'deleting tags', r.project.id);
  await write(ctx, spec, async (trx) => {
    await trx.deleteFrom('repo_refs').where('repo_id', '=', r.repo.id).where('name', '=', tag).execute();
    return { result: undefined, before: existing };
  });
}
