// Deployments as tenants see them: deploy a model (a registry version, a local GGUF on the embedded
// default, or an external upstream), list, describe with replicas, scale, undeploy. This module owns
// the `deployments` table; the replicas (`deployment_replicas`) belong to the controller
// (./controller.ts), which turns the desired count into serving workloads.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { type Ctx, findProject, requireRole, write } from '../app/context.js';
import { AppError, notFound } from '../domain/errors.js';
import { isDnsLabel } from '../domain/input.js';
import { type Runtime, RUNTIMES } from '../domain/inference-states.js';
import { newId, nowIso } from '../domain/ids.js';
import { grantScope } from '../policy/roles.js';
import { parseVersionRef, repoIdText } from '../registry/names.js';
import type { DeploymentsTable } from '../store/schema.js';
import { prepareSubmission } from '../workload/service.js';
import { type ReplicaRuntime, replicaWorkload } from './replica-spec.js';
import { type DeploymentView, deploymentLoad, deploymentView, listReplicaViews } from './views.js';

export type { DeploymentView, ReplicaView } from './views.js';

/** What `fabrik deploy` / POST …/deployments sends (already shape-checked by the route's schema). */
export interface DeployInput {
  readonly name: string;
  /** `org.project/name[:revision]` of a registry model. */
  readonly model?: string;
  /** A GGUF file on the server's machine (the embedded default only). */
  readonly modelPath?: string;
  readonly runtime?: Runtime;
  /** `external`: the OpenAI-compatible upstream's base URL (…/v1). */
  readonly upstreamUrl?: string;
  /** GPUs per replica as in a workload spec: 1, "B200", "B200:2". Default one GPU. */
  readonly gpu?: string | number;
  /** "1", "0..8" or "2..4"; default 1..1. */
  readonly replicas?: string;
  readonly contextSize?: number;
  readonly threads?: number;
  readonly parallel?: number;
  readonly aliases?: readonly string[];
  readonly targetInflight?: number;
  readonly idleTimeoutS?: number;
  readonly storePrompts?: boolean;
}

export interface DeploymentDeps {
  readonly runtime: ReplicaRuntime;
  /** Whether local model files may be deployed (the local executor on this machine). */
  readonly allowModelPaths: boolean;
  readonly workdirRoot?: string;
}

export const MAX_REPLICAS = 512;
const DEFAULTS = { contextSize: 2048, threads: 1, parallel: 2, targetInflight: 4, idleTimeoutS: 300 };

/** `3` → 3..3, `1..8` → 1..8; min may be 0 (scale to zero), max at least 1. */
export function parseReplicaRange(text: string, path = 'replicas'): { min: number; max: number } {
  const m = /^\s*(\d{1,4})\s*(?:\.\.\s*(\d{1,4}))?\s*$/.exec(text);
  if (!m) throw invalid(path, `must be a count like 2 or a range like 1..8, got ${JSON.stringify(text.slice(0, 40))}`);
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (max < 1 || max > MAX_REPLICAS || min > max)
    throw invalid(path, `needs 0 ≤ min ≤ max, 1 ≤ max ≤ ${MAX_REPLICAS}; got ${min}..${max}`);
  return { min, max };
}

export async function createDeployment(
  ctx: Ctx,
  projectRef: string,
  input: DeployInput,
  deps: DeploymentDeps,
): Promise<DeploymentView> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const audit = {
    action: 'deployment.create',
    resource: `projects/${ref}/deployments/${input.name}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireRole(ctx, audit, 'member', 'deploying models', project.id);
  const now = nowIso();
  const row: DeploymentsTable = {
    id: newId('dep'),
    org_id: org.id,
    project_id: project.id,
    ...checkInput(input, deps),
    created_at: now,
    created_by: ctx.caller.principal,
    updated_at: now,
    deleted_at: '',
  };
  // One replica's workload is prepared now (not inserted): a model the caller cannot read, a GPU
  // shape no pool holds, a revision that does not exist are refused here, and the model is pinned.
  if (row.runtime !== 'external') {
    const { body, extend } = replicaWorkload(
      row,
      { replicaId: 'check', ordinal: 0, port: 1, bindHost: '127.0.0.1', tokenSha256: '0'.repeat(64) },
      deps.runtime,
    );
    const prepared = await prepareSubmission(ctx, ref, body, { extend, workdirRoot: deps.workdirRoot });
    const pinned = prepared.spec.inputs?.[0]?.commit;
    if (row.model_repo && pinned) row.model_commit = pinned;
  }
  return write(ctx, audit, async (trx) => {
    const taken = await trx
      .selectFrom('deployments')
      .select('id')
      .where('project_id', '=', project.id)
      .where('name', '=', row.name)
      .where('deleted_at', '=', '')
      .executeTakeFirst();
    if (taken)
      throw new AppError('ALREADY_EXISTS', `deployment "${row.name}" already exists in ${ref}`, {
        kind: 'deployment',
        name: row.name,
      });
    await trx.insertInto('deployments').values(row).execute();
    const view = deploymentView(row, ref, []);
    return { result: view, after: view };
  });
}

/** Field checks beyond the schema's shapes; returns the row's configuration columns. */
function checkInput(input: DeployInput, deps: DeploymentDeps) {
  if (!isDnsLabel(input.name)) throw invalid('name', 'must be a DNS label (a-z, 0-9, -; at most 63)');
  const runtime: Runtime = input.runtime ?? (input.upstreamUrl ? 'external' : 'llamacpp');
  if (!RUNTIMES.includes(runtime)) throw invalid('runtime', `must be one of ${RUNTIMES.join(', ')}`);
  const sources = [input.model, input.modelPath, input.upstreamUrl].filter((s) => s !== undefined).length;
  if (runtime === 'external') {
    if (!input.upstreamUrl || input.model || input.modelPath)
      throw invalid('upstreamUrl', 'the external runtime takes an upstream URL and no model');
    checkUpstream(input.upstreamUrl);
  } else if (sources !== 1 || input.upstreamUrl) {
    throw invalid('model', 'give exactly one of a registry model (org.project/name:rev) or a model path');
  }
  let repo = '';
  let revision = '';
  if (input.model) {
    try {
      const v = parseVersionRef(input.model, 'model');
      repo = repoIdText(v);
      revision = v.revision;
    } catch (err) {
      throw invalid('model', (err as Error).message);
    }
  }
  if (input.modelPath) {
    if (runtime !== 'llamacpp') throw invalid('modelPath', 'a local model file is served by the llamacpp runtime');
    if (!deps.allowModelPaths)
      throw invalid('modelPath', 'local model files deploy only on the local executor; push the model to the registry');
    checkModelPath(input.modelPath);
  }
  const { min, max } = parseReplicaRange(input.replicas ?? '1');
  const contextSize = input.contextSize ?? DEFAULTS.contextSize;
  const aliases = [...new Set(input.aliases ?? [])];
  for (const a of aliases) if (!isModelName(a)) throw invalid('aliases', `"${a.slice(0, 80)}" is not a model name`);
  const gpu = readGpu(runtime === 'external' ? 0 : (input.gpu ?? 1));
  return {
    name: input.name,
    aliases: JSON.stringify(aliases.filter((a) => a !== input.name)),
    runtime,
    model_repo: repo,
    model_revision: revision,
    model_commit: '',
    model_path: input.modelPath ?? '',
    upstream_url: input.upstreamUrl ?? '',
    gpu_model: gpu.model,
    gpus_per_replica: gpu.count,
    min_replicas: runtime === 'external' ? 1 : min,
    max_replicas: runtime === 'external' ? 1 : max,
    desired_replicas: runtime === 'external' ? 1 : Math.max(min, 1),
    context_size: contextSize,
    threads: input.threads ?? DEFAULTS.threads,
    parallel: input.parallel ?? DEFAULTS.parallel,
    target_inflight: input.targetInflight ?? DEFAULTS.targetInflight,
    idle_timeout_s: input.idleTimeoutS ?? DEFAULTS.idleTimeoutS,
    store_prompts: input.storePrompts ? 1 : 0,
  };
}

/** Names applications send as `model`: letters, digits and . _ : / - (no spaces), at most 128. */
export function isModelName(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(s);
}

function readGpu(v: string | number): { model: string; count: number } {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 64) throw invalid('gpu', 'must be a GPU count from 0 to 64');
    return { model: '', count: v };
  }
  const m = /^([A-Za-z0-9 ._-]+?)(?::(\d{1,2}))?$/.exec(v.trim());
  if (!m) throw invalid('gpu', 'must be a count, a GPU model, or MODEL:COUNT like "B200:2"');
  if (/^\d+$/.test(m[1]!)) return readGpu(Number(m[1]));
  return { model: m[1]!, count: m[2] === undefined ? 1 : Number(m[2]) };
}

function checkUpstream(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid('upstreamUrl', 'is not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid('upstreamUrl', 'must be http or https');
  if (u.username || u.password) throw invalid('upstreamUrl', 'must not carry credentials');
}

/** The file must be a GGUF anyone may read: the replica reads it as the project's uid. */
function checkModelPath(path: string): void {
  if (!isAbsolute(path)) throw invalid('modelPath', 'must be an absolute path on the server machine');
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw invalid('modelPath', `${path} does not exist on the server machine`);
  }
  if (!st.isFile()) throw invalid('modelPath', `${path} is not a regular file`);
  if ((st.mode & 0o004) === 0)
    throw invalid('modelPath', `${path} is not world-readable (the replica runs as the project's uid)`);
  const fd = openSync(path, 'r');
  const magic = Buffer.alloc(4);
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.toString('latin1') !== 'GGUF') throw invalid('modelPath', `${path} is not a GGUF file`);
}

function invalid(path: string, message: string): AppError {
  return new AppError('INVALID_ARGUMENT', `${path}: ${message}`, { path });
}

/** A live deployment by name, through the caller's visibility (404 for another org's). */
export async function findDeployment(ctx: Ctx, projectRef: string, name: string) {
  const { org, project } = await findProject(ctx, projectRef);
  const row = await ctx.db
    .selectFrom('deployments')
    .selectAll()
    .where('project_id', '=', project.id)
    .where('name', '=', name)
    .where('deleted_at', '=', '')
    .executeTakeFirst();
  if (!row) throw notFound('deployment', name);
  return { org, project, ref: `${org.name}.${project.name}`, row };
}

export async function getDeployment(ctx: Ctx, projectRef: string, name: string): Promise<DeploymentView> {
  const { ref, row } = await findDeployment(ctx, projectRef, name);
  const view = deploymentView(row, ref, await listReplicaViews(ctx.db, [row.id]));
  return { ...view, load: await deploymentLoad(ctx.db, row.id) };
}

/** Deployments of one project, or of every project the caller may see. */
export async function listDeployments(ctx: Ctx, projectRef?: string): Promise<DeploymentView[]> {
  let q = ctx.db
    .selectFrom('deployments')
    .innerJoin('projects', 'projects.id', 'deployments.project_id')
    .innerJoin('orgs', 'orgs.id', 'deployments.org_id')
    .selectAll('deployments')
    .select(['projects.name as p_name', 'orgs.name as o_name'])
    .where('deployments.deleted_at', '=', '');
  if (projectRef) {
    const { project } = await findProject(ctx, projectRef);
    q = q.where('deployments.project_id', '=', project.id);
  } else if (!ctx.caller.operator) {
    const scope = grantScope(ctx.caller);
    if (scope.wideOrgs.length === 0 && scope.projects.length === 0) return [];
    q = q.where((eb) =>
      eb.or([
        ...(scope.wideOrgs.length ? [eb('deployments.org_id', 'in', scope.wideOrgs)] : []),
        ...(scope.projects.length ? [eb('deployments.project_id', 'in', scope.projects)] : []),
      ]),
    );
  }
  const rows = await q.orderBy('deployments.created_at').orderBy('deployments.id').limit(1000).execute();
  const replicas = await listReplicaViews(
    ctx.db,
    rows.map((r) => r.id),
  );
  return rows.map(({ p_name, o_name, ...r }) =>
    deploymentView(
      r,
      `${o_name}.${p_name}`,
      replicas.filter((x) => x.deploymentId === r.id),
    ),
  );
}

/** `fabrik scale NAME --replicas 2..8`: a new range; the controller moves replicas toward it. */
export async function scaleDeployment(
  ctx: Ctx,
  projectRef: string,
  name: string,
  replicas: string,
): Promise<DeploymentView> {
  const { org, project, ref, row } = await findDeployment(ctx, projectRef, name);
  const audit = {
    action: 'deployment.scale',
    resource: `projects/${ref}/deployments/${name}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireRole(ctx, audit, 'member', 'scaling deployments', project.id);
  if (row.runtime === 'external') throw invalid('replicas', 'an external deployment has no replicas to scale');
  const { min, max } = parseReplicaRange(replicas);
  return write(ctx, audit, async (trx) => {
    const desired = Math.min(max, Math.max(min, row.desired_replicas));
    const next = { ...row, min_replicas: min, max_replicas: max, desired_replicas: desired, updated_at: nowIso() };
    await trx
      .updateTable('deployments')
      .set({ min_replicas: min, max_replicas: max, desired_replicas: desired, updated_at: next.updated_at })
      .where('id', '=', row.id)
      .execute();
    const replicasNow = await listReplicaViews(trx, [row.id]);
    return {
      result: deploymentView(next, ref, replicasNow),
      before: deploymentView(row, ref, []),
      after: deploymentView(next, ref, []),
    };
  });
}

/** Undeploy: the name is free at once; the controller stops the replicas. */
export async function deleteDeployment(ctx: Ctx, projectRef: string, name: string): Promise<DeploymentView> {
  const { org, project, ref, row } = await findDeployment(ctx, projectRef, name);
  const audit = {
    action: 'deployment.delete',
    resource: `projects/${ref}/deployments/${name}`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireRole(ctx, audit, 'member', 'undeploying models', project.id);
  return write(ctx, audit, async (trx) => {
    const now = nowIso();
    await trx.updateTable('deployments').set({ deleted_at: now, updated_at: now }).where('id', '=', row.id).execute();
    await trx
      .updateTable('deployment_replicas')
      .set({ state: 'stopping', message: 'undeployed', updated_at: now })
      .where('deployment_id', '=', row.id)
      .execute();
    const view = deploymentView(row, ref, []);
    return { result: { ...view, deletedAt: now }, before: view };
  });
}

export type { ReplicaRuntime } from './replica-spec.js';
