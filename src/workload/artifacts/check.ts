// Submit-time checks of a spec's registry artifacts (pinArtifacts): input and code revisions
// pinned to their commits, read rights on them, member on every output repo's project, and
// outputs that name branches, not tags. See ./index.ts for the whole life of an artifact.
import { type Ctx, findProject, requireRole } from '../../app/context.js';
import { AppError } from '../../domain/errors.js';
import { type RepoId, parseRepoIdText, repoResource } from '../../registry/names.js';
import { findRepo, repoNotFound, resolveRevision } from '../../registry/repos.js';
import type { CommitsTable, OrgsTable, RepoKind } from '../../store/schema.js';
import type { ArtifactRef, OutputSpec, WorkloadSpec } from '../spec.js';

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
