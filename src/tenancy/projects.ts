// Projects: an org's unit of quota and billing. Addressed as `org.project` or by id.
import { AppError, alreadyExists } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { visibleProjects } from '../policy/roles.js';
import { type Page, type PageRequest, page } from '../store/paging.js';
import type { ProjectsTable } from '../store/schema.js';
import { type Ctx, findOrg, findProject, requireRole, write } from '../app/context.js';
import { allocateUid, tombstone } from './identity.js';

export interface Project {
  id: string;
  org: string;
  name: string;
  /** `org.name`: how CLI and URLs refer to the project. */
  ref: string;
  displayName: string;
  /** Unix uid (= gid) of every task of the project. */
  uid: number;
  createdAt: string;
  updatedAt: string;
}

export function projectView(r: ProjectsTable, orgName: string): Project {
  return {
    id: r.id,
    org: orgName,
    name: r.name,
    ref: `${orgName}.${r.name}`,
    displayName: r.display_name,
    uid: r.uid,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function createProject(
  ctx: Ctx,
  orgName: string,
  input: { name: string; displayName?: string },
): Promise<Project> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'project.create', resource: `orgs/${orgName}/projects/${input.name}`, orgId: org.id };
  await requireRole(ctx, spec, 'admin', 'creating projects');
  if (org.status !== 'active') throw new AppError('CONFLICT', `organization "${orgName}" is ${org.status}`);
  return write(ctx, spec, async (trx) => {
    const exists = await trx
      .selectFrom('projects')
      .select('id')
      .where('org_id', '=', org.id)
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (exists) throw alreadyExists('project', `${orgName}.${input.name}`);
    const now = nowIso();
    const row: ProjectsTable = {
      id: newId('prj'),
      org_id: org.id,
      name: input.name,
      display_name: input.displayName ?? input.name,
      uid: await allocateUid(trx),
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto('projects').values(row).execute();
    const project = projectView(row, org.name);
    return { result: project, after: project };
  });
}

export async function listProjects(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<Project>> {
  const org = await findOrg(ctx, orgName);
  let q = ctx.db.selectFrom('projects').selectAll().where('org_id', '=', org.id);
  const visible = visibleProjects(ctx.caller, org.id);
  if (visible !== 'all') {
    if (visible.size === 0) return { items: [], nextCursor: null };
    q = q.where('id', 'in', [...visible]);
  }
  return page(q, 'name', req, (r) => projectView(r, org.name));
}

export async function getProject(ctx: Ctx, ref: string): Promise<Project> {
  const { org, project } = await findProject(ctx, ref);
  return projectView(project, org.name);
}

export async function updateProject(ctx: Ctx, ref: string, patch: { displayName?: string }): Promise<Project> {
  const { org, project } = await findProject(ctx, ref);
  const spec = {
    action: 'project.update',
    resource: `orgs/${org.name}/projects/${project.name}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireRole(ctx, spec, 'admin', 'updating projects', project.id);
  return write(ctx, spec, async (trx) => {
    const before = await trx.selectFrom('projects').selectAll().where('id', '=', project.id).executeTakeFirstOrThrow();
    const next = { ...before, display_name: patch.displayName ?? before.display_name, updated_at: nowIso() };
    await trx.updateTable('projects').set(next).where('id', '=', project.id).execute();
    return {
      result: projectView(next, org.name),
      before: projectView(before, org.name),
      after: projectView(next, org.name),
    };
  });
}

/** Deletes a project with its quotas and project-scoped grants; refuses while keys are scoped to it. */
export async function deleteProject(ctx: Ctx, ref: string): Promise<void> {
  const { org, project } = await findProject(ctx, ref);
  const spec = {
    action: 'project.delete',
    resource: `orgs/${org.name}/projects/${project.name}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireRole(ctx, spec, 'admin', 'deleting projects');
  await write(ctx, spec, async (trx) => {
    const key = await trx
      .selectFrom('api_keys')
      .select('prefix')
      .where('project_id', '=', project.id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (key)
      throw new AppError(
        'CONFLICT',
        `project "${ref}" still has active API keys (e.g. ${key.prefix}); revoke them first`,
      );
    const running = await trx
      .selectFrom('workloads')
      .select('name')
      .where('project_id', '=', project.id)
      .where('status', 'in', ['pending', 'running'])
      .executeTakeFirst();
    if (running)
      throw new AppError(
        'CONFLICT',
        `project "${ref}" still has active workloads (e.g. "${running.name}"); cancel them first`,
      );
    const serving = await trx
      .selectFrom('deployments')
      .select('name')
      .where('project_id', '=', project.id)
      .where('deleted_at', '=', '')
      .executeTakeFirst();
    if (serving)
      throw new AppError(
        'CONFLICT',
        `project "${ref}" still has deployments (e.g. "${serving.name}"); undeploy them first`,
      );
    // Ended workloads go with the project; the audit trail keeps their record (and token_usage its metering).
    const ended = trx.selectFrom('workloads').select('id').where('project_id', '=', project.id);
    await trx.deleteFrom('workload_events').where('workload_id', 'in', ended).execute();
    await trx.deleteFrom('workloads').where('project_id', '=', project.id).execute();
    await trx.deleteFrom('quotas').where('project_id', '=', project.id).execute();
    await trx.deleteFrom('memberships').where('project_id', '=', project.id).execute();
    await trx.deleteFrom('api_keys').where('project_id', '=', project.id).execute();
    await trx.deleteFrom('secrets').where('project_id', '=', project.id).execute();
    const undeployed = trx.selectFrom('deployments').select('id').where('project_id', '=', project.id);
    await trx.deleteFrom('deployment_replicas').where('deployment_id', 'in', undeployed).execute();
    await trx.deleteFrom('deployments').where('project_id', '=', project.id).execute();
    await trx
      .deleteFrom('inference_limits')
      .where('scope', '=', 'project')
      .where('scope_id', '=', project.id)
      .execute();
    await trx.deleteFrom('projects').where('id', '=', project.id).execute();
    // Its files (workload directories, logs, outputs) and its Unix identity go after the retention period.
    await tombstone(trx, project);
    return { result: undefined, before: projectView(project, org.name), after: null };
  });
}
