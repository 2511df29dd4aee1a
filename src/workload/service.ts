// Workloads as tenants see them: submit a spec, list, inspect (with events), cancel.
// Submission validates the spec against the live fleet and rejects what could never run, so
// nothing waits forever; the scheduler loop (./scheduler-loop.ts) moves accepted ones along.
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { poolCapacity as fleetCapacity, type NodeSpec, type NodeState, toSchedNodes } from '../fleet/fleet-file.js';
import { nodeView } from '../fleet/inventory.js';
import { checkFeasible } from '../scheduler/index.js';
import type { PriorityClass } from '../scheduler/types.js';
import { allowanceOf, placementRules, subjectOf, withAllowance } from './placement-policy.js';
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type Page,
  type PageRequest,
  decodeCursor,
  encodeCursor,
} from '../store/paging.js';
import type { Database, WorkloadAttemptsTable, WorkloadsTable } from '../store/schema.js';
import { missingProgram, resolveWorkdir } from '../exec/workdir.js';
import { grantScope } from '../policy/roles.js';
import { type Ctx, findProject, requireRole, write } from '../app/context.js';
import { missingSecrets } from '../tenancy/secrets.js';
import { WorkloadArtifacts, pinArtifacts } from './artifacts/index.js';
import {
  ACTIVE_STATUSES,
  type AttemptState,
  type EndReason,
  WORKLOAD_STATUSES,
  type WorkloadStatus,
  isWorkloadStatus,
} from './lifecycle.js';
import { Unchanged, addEvent, applyInTrx, transitionChange, workloadResource } from './repository.js';
import {
  type WorkloadSpec,
  WorkloadSpecError,
  envWarnings,
  parseWorkloadSpec,
  secretRefs,
  storedSpecRequest,
} from './spec.js';

export { ACTIVE_STATUSES, TERMINAL_STATUSES } from './lifecycle.js';
export { addEvent } from './repository.js';

export interface Workload {
  id: string;
  name: string;
  project: string;
  kind: string;
  pool: string;
  priority: string;
  nodes: number;
  gpusPerNode: number;
  gpus: number;
  maxRuntimeS: number;
  status: WorkloadStatus;
  reason: string;
  message: string;
  estimatedStart: string | null;
  placement: { pod: string; nodes: { node: string; gpuIndexes: number[] }[]; leaves: string[] } | null;
  borrowed: boolean;
  attempts: number;
  preemptions: number;
  submittedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  createdBy: string;
  spec: WorkloadSpec;
}

/** What submit answers: the workload, and warnings about its spec (e.g. credentials in plain env values). */
export interface SubmittedWorkload extends Workload {
  warnings: string[];
}

export interface WorkloadEvent {
  time: string;
  type: string;
  reason: string;
  message: string;
}

export function workloadView(r: WorkloadsTable, projectRef: string): Workload {
  return {
    id: r.id,
    name: r.name,
    project: projectRef,
    kind: r.kind,
    pool: r.pool,
    priority: r.priority,
    nodes: r.nodes,
    gpusPerNode: r.gpus_per_node,
    gpus: r.nodes * r.gpus_per_node,
    maxRuntimeS: r.max_runtime_s,
    status: r.status,
    reason: r.reason,
    message: r.message,
    estimatedStart: r.estimated_start,
    placement: r.placement ? JSON.parse(r.placement) : null,
    borrowed: r.borrowed === 1,
    attempts: r.attempts,
    preemptions: r.preemptions,
    submittedAt: r.submitted_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    createdBy: r.created_by,
    spec: JSON.parse(r.spec),
  };
}

/** Loads the fleet as the scheduler sees it (with node states). */
export async function loadSchedNodes(db: Kysely<Database> | Trx) {
  const rows = await db.selectFrom('nodes').selectAll().execute();
  const specs: NodeSpec[] = rows.map((r) => {
    const { state: _s, devGpus: _d, createdAt: _c, updatedAt: _u, ...spec } = nodeView(r);
    return spec;
  });
  const states = new Map(rows.map((r) => [r.name, r.state as NodeState]));
  return { specs, nodes: toSchedNodes(specs, states) };
}

export interface SubmitOptions {
  /** Relative workdirs resolve inside this root; default: the server's working directory. */
  readonly workdirRoot?: string;
  readonly source?: string;
  /** Checks at submit inside its transaction, e.g. the project's budget (wired by the API layer). */
  readonly gate?: SubmissionGate;
}

/**
 * A check of a prepared submission inside its audited transaction: it throws an AppError to refuse,
 * or lowers the workload's priority with a reason (src/metering/budget-gate.ts is one). A port, so
 * the workload context does not depend on what decides.
 */
export type SubmissionGate = (trx: Trx, p: PreparedSubmission) => Promise<GateOutcome>;

export type GateOutcome =
  | { readonly kind: 'admit' }
  | { readonly kind: 'lower'; readonly priority: PriorityClass; readonly reason: string; readonly message: string };

export async function submitWorkload(
  ctx: Ctx,
  projectRef: string,
  body: unknown,
  opts: SubmitOptions = {},
): Promise<SubmittedWorkload> {
  const p = await prepareSubmission(ctx, projectRef, body, opts);
  return write(ctx, p.audit, async (trx) => {
    // A gate (the project's budget) may refuse it, or lower its priority: the audited state says so,
    // the workload's events record why, the response warns.
    const outcome: GateOutcome = opts.gate ? await opts.gate(trx, p) : { kind: 'admit' };
    const lowered = outcome.kind === 'lower' ? { ...p, spec: { ...p.spec, priority: outcome.priority } } : p;
    const view = await insertSubmission(trx, ctx.caller.principal, lowered);
    if (outcome.kind === 'lower') await addEvent(trx, p.id, 'Warning', outcome.reason, outcome.message);
    const warnings = outcome.kind === 'lower' ? [...p.warnings, outcome.message] : [...p.warnings];
    // Warnings go with the response (and an idempotent replay of it), not into the audited state.
    return { result: { ...view, warnings }, after: view };
  });
}

/** A checked submission, ready to be inserted by insertSubmission inside an audited write. */
export interface PreparedSubmission {
  readonly id: string;
  readonly orgId: string;
  readonly projectId: string;
  /** `org.project` */
  readonly projectRef: string;
  readonly spec: WorkloadSpec;
  readonly pool: string;
  readonly warnings: readonly string[];
  /** The audit entry's action and resource. */
  readonly audit: { action: string; resource: string; orgId: string };
}

/**
 * Everything a submit checks before it writes: the caller's role, the spec against the live fleet,
 * secrets, registry inputs (pinned to commits), feasibility. Callers that submit on a tenant's
 * behalf (a deployment's replicas) may `extend` the parsed spec with what only the system sets.
 */
export async function prepareSubmission(
  ctx: Ctx,
  projectRef: string,
  body: unknown,
  opts: SubmitOptions & { readonly extend?: (spec: WorkloadSpec) => WorkloadSpec } = {},
): Promise<PreparedSubmission> {
  const source = opts.source ?? 'request body';
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const spec0 = { action: 'workload.submit', resource: `projects/${ref}/workloads`, orgId: org.id };
  await requireRole(ctx, spec0, 'member', 'submitting workloads', project.id);
  if (org.status !== 'active') throw new AppError('CONFLICT', `organization "${org.name}" is ${org.status}`);

  const pools = (await ctx.db.selectFrom('pools').selectAll().execute()).map((p) => ({
    name: p.name,
    gpuModel: p.gpu_model,
    gpuMemoryGiB: p.gpu_memory_gib,
  }));
  const { specs, nodes } = await loadSchedNodes(ctx.db);
  let spec: WorkloadSpec;
  try {
    spec = parseWorkloadSpec(body as object, { pools, capacity: fleetCapacity(specs), source });
    if (spec.project !== undefined && spec.project !== project.name && spec.project !== ref) {
      throw new WorkloadSpecError(
        `project: the spec names project "${spec.project}" but was submitted to "${ref}"`,
        'project',
      );
    }
  } catch (err) {
    if (err instanceof WorkloadSpecError) throw new AppError('SPEC_INVALID', err.message, { path: err.path });
    throw err;
  }
  if (opts.extend) spec = opts.extend(spec);
  checkRunnable(spec, opts.workdirRoot ?? process.cwd());
  await checkSecretRefs(ctx.db, org.id, project.id, spec);
  // Inputs and code pinned to their commits now: what runs is what was submitted, whatever tags do.
  if (WorkloadArtifacts.wanted(spec)) spec = await pinArtifacts(ctx, org, spec);
  const id = newId('wl');
  // The same placement policy the scheduler applies: work no allowed node can take is refused now.
  const rules = await placementRules(ctx.db, specs);
  const request = withAllowance(
    storedSpecRequest(spec, { id, project: project.id, submittedAt: Date.now() / 1000 }),
    allowanceOf(rules, subjectOf(org, ref, spec)),
  );
  const feasible = checkFeasible(request, nodes);
  if (!feasible.ok)
    throw new AppError('WORKLOAD_INFEASIBLE', feasible.message, { field: feasible.field, reason: feasible.code });
  return {
    id,
    orgId: org.id,
    projectId: project.id,
    projectRef: ref,
    spec,
    pool: request.pool,
    warnings: envWarnings(spec.env),
    audit: { ...spec0, resource: `projects/${ref}/workloads/${spec.name}` },
  };
}

/** Inserts a prepared submission as a pending workload (inside the caller's audited write). */
export async function insertSubmission(trx: Trx, principal: string, p: PreparedSubmission): Promise<Workload> {
  const { spec } = p;
  const active = await trx
    .selectFrom('workloads')
    .select('id')
    .where('project_id', '=', p.projectId)
    .where('name', '=', spec.name)
    .where('status', 'in', [...ACTIVE_STATUSES])
    .executeTakeFirst();
  if (active)
    throw new AppError(
      'ALREADY_EXISTS',
      `workload "${spec.name}" is already active in ${p.projectRef}; cancel it or choose another name`,
      { kind: 'workload', name: spec.name },
    );
  const now = nowIso();
  const row: WorkloadsTable = {
    id: p.id,
    org_id: p.orgId,
    project_id: p.projectId,
    name: spec.name,
    kind: spec.kind,
    pool: p.pool,
    priority: spec.priority,
    nodes: spec.nodes,
    gpus_per_node: spec.gpusPerNode,
    max_runtime_s: spec.maxDurationS,
    spec: JSON.stringify(spec),
    status: 'pending',
    reason: 'Queued',
    message: 'waiting for the next scheduling cycle',
    estimated_start: null,
    placement: null,
    borrowed: 0,
    attempts: 0,
    preemptions: 0,
    submitted_at: now,
    started_at: null,
    finished_at: null,
    created_by: principal,
    updated_at: now,
    executor: null,
    not_before: null,
    exit_code: null,
    queued_at: now,
  };
  await trx.insertInto('workloads').values(row).execute();
  await addEvent(
    trx,
    p.id,
    'Normal',
    'Submitted',
    `submitted by ${principal}: ${spec.nodes}×${spec.gpusPerNode} GPUs in pool ${p.pool}`,
  );
  return workloadView(row, p.projectRef);
}

/** A reference to a secret that neither the project nor its org holds is refused, at `env.NAME`. */
async function checkSecretRefs(db: Kysely<Database>, orgId: string, projectId: string, spec: WorkloadSpec) {
  const refs = secretRefs(spec.env);
  const names = refs.map((r) => r.secret);
  const missing = new Set(await missingSecrets(db, orgId, projectId, names));
  const first = refs.find((r) => missing.has(r.secret));
  if (first) {
    const path = `env.${first.variable}`;
    throw new AppError(
      'SPEC_INVALID',
      `${path}: secret "${first.secret}" not found in the project or its org; create it with \`fabrik secret create ${first.secret}\``,
      { path, secret: first.secret },
    );
  }
}

/** Refuses at submit time what could only fail at launch: a workdir outside the root, a missing program. */
function checkRunnable(spec: WorkloadSpec, root: string): void {
  // Without a workdir the task starts in its own (empty) workload directory: programs come from PATH.
  let cwd = '/nonexistent';
  if (spec.workdir !== undefined) {
    try {
      cwd = resolveWorkdir(root, spec.workdir);
    } catch (err) {
      throw new AppError('SPEC_INVALID', `workdir: ${(err as Error).message}`, { path: 'workdir' });
    }
  }
  for (const [field, command] of [
    ['setup', spec.setup],
    ['run', spec.run],
  ] as const) {
    let missing = command ? missingProgram(command, cwd) : undefined;
    // With `code`, a relative program (./train.sh) arrives with the code at launch.
    if (missing?.includes('/') && spec.code !== undefined && !missing.startsWith('/')) missing = undefined;
    if (missing)
      throw new AppError('SPEC_INVALID', `${field}: program "${missing}" not found (looked in ${cwd} and PATH)`, {
        path: field,
      });
  }
}

/** A workload by id or by name (the newest with that name) inside a project. */
export async function findWorkload(ctx: Ctx, projectRef: string, ref: string) {
  const { org, project } = await findProject(ctx, projectRef);
  const row = await ctx.db
    .selectFrom('workloads')
    .selectAll()
    .where('project_id', '=', project.id)
    .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
    .orderBy('submitted_at', 'desc')
    .executeTakeFirst();
  if (!row) throw notFound('workload', ref);
  return { org, project, row, projectRef: `${org.name}.${project.name}` };
}

export async function getWorkload(
  ctx: Ctx,
  projectRef: string,
  ref: string,
): Promise<Workload & { events: WorkloadEvent[]; attemptRecords: AttemptView[] }> {
  const w = await findWorkload(ctx, projectRef, ref);
  const events = await ctx.db
    .selectFrom('workload_events')
    .select(['time', 'type', 'reason', 'message'])
    .where('workload_id', '=', w.row.id)
    .orderBy('time')
    .orderBy('id')
    .execute();
  const attempts = await ctx.db
    .selectFrom('workload_attempts')
    .selectAll()
    .where('workload_id', '=', w.row.id)
    .orderBy('number')
    .execute();
  return { ...workloadView(w.row, w.projectRef), events, attemptRecords: attempts.map(attemptView) };
}

/** One launch as tenants and billing see it ('' times are not there yet). */
export interface AttemptView {
  number: number;
  state: AttemptState;
  placement: Workload['placement'] & {};
  pool: string;
  gpuModel: string;
  gpus: number;
  executor: string;
  createdAt: string;
  launchedAt: string | null;
  startedAt: string | null;
  stoppingSince: string | null;
  endedAt: string | null;
  exitCode: number | null;
  endReason: EndReason | null;
  message: string;
}

export function attemptView(a: WorkloadAttemptsTable): AttemptView {
  const t = (x: string) => x || null;
  return {
    number: a.number,
    state: a.state,
    placement: JSON.parse(a.placement),
    pool: a.pool,
    gpuModel: a.gpu_model,
    gpus: a.gpus,
    executor: a.executor,
    createdAt: a.created_at,
    launchedAt: t(a.launched_at),
    startedAt: t(a.started_at),
    stoppingSince: t(a.stopping_since),
    endedAt: t(a.ended_at),
    exitCode: a.exit_code,
    endReason: a.end_reason || null,
    message: a.message,
  };
}

export async function listWorkloads(
  ctx: Ctx,
  filter: { project?: string; status?: string; all?: boolean; endedWithinS?: number },
  req: PageRequest,
): Promise<Page<Workload>> {
  if (filter.status !== undefined && !isWorkloadStatus(filter.status)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `status: unknown status "${filter.status.slice(0, 40)}"; valid: ${WORKLOAD_STATUSES.join(', ')}`,
      { field: 'status', valid: WORKLOAD_STATUSES },
    );
  }
  // Ordered by submit time (then id, to be unique): the cursor holds both.
  const after = req.cursor === undefined ? undefined : submitCursor(req.cursor);
  let q = ctx.db
    .selectFrom('workloads')
    .innerJoin('projects', 'projects.id', 'workloads.project_id')
    .innerJoin('orgs', 'orgs.id', 'workloads.org_id')
    .selectAll('workloads')
    .select(['projects.name as project_name', 'orgs.name as org_name']);
  if (filter.project) {
    const { project } = await findProject(ctx, filter.project);
    q = q.where('workloads.project_id', '=', project.id);
  } else if (!ctx.caller.operator) {
    const { wideOrgs: wide, projects } = grantScope(ctx.caller);
    if (!wide.length && !projects.length) return { items: [], nextCursor: null };
    q = q.where((eb) =>
      eb.or([
        eb('workloads.org_id', 'in', wide.length ? wide : ['']),
        eb('workloads.project_id', 'in', projects.length ? projects : ['']),
      ]),
    );
  }
  if (filter.status) q = q.where('workloads.status', '=', filter.status as WorkloadStatus);
  else if (filter.endedWithinS !== undefined && !filter.all) {
    // Active ones and those that ended lately, as `kubectl get pods` shows Completed pods.
    const since = new Date(Date.now() - filter.endedWithinS * 1000).toISOString();
    q = q.where((eb) =>
      eb.or([eb('workloads.status', 'in', [...ACTIVE_STATUSES]), eb('workloads.finished_at', '>=', since)]),
    );
  } else if (!filter.all) q = q.where('workloads.status', 'in', [...ACTIVE_STATUSES]);
  if (after) {
    q = q.where((eb) =>
      eb.or([
        eb('workloads.submitted_at', '>', after.at),
        eb.and([eb('workloads.submitted_at', '=', after.at), eb('workloads.id', '>', after.id)]),
      ]),
    );
  }
  const limit = Math.min(Math.max(req.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  const rows = await q
    .orderBy('workloads.submitted_at')
    .orderBy('workloads.id')
    .limit(limit + 1)
    .execute();
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map((r) => workloadView(r, `${r.org_name}.${r.project_name}`)),
    nextCursor: rows.length > limit && last ? encodeCursor(`${last.submitted_at} ${last.id}`) : null,
  };
}

function submitCursor(cursor: string): { at: string; id: string } {
  const v = decodeCursor(cursor);
  const m = typeof v === 'string' ? /^(\S+) (\S+)$/.exec(v) : null;
  if (!m) {
    throw new AppError('INVALID_ARGUMENT', 'invalid cursor: pass the nextCursor of a previous page unchanged', {
      field: 'cursor',
    });
  }
  return { at: m[1]!, id: m[2]! };
}

/** Cancels a pending or running workload. Running work is stopped by its executor. */
export async function cancelWorkload(ctx: Ctx, projectRef: string, ref: string): Promise<Workload> {
  const w = await findWorkload(ctx, projectRef, ref);
  const spec = {
    action: 'workload.cancel',
    resource: workloadResource(w.projectRef, w.row.name),
    orgId: w.org.id,
  };
  await requireRole(ctx, spec, 'member', 'cancelling workloads', w.project.id);
  try {
    const applied = await write(ctx, spec, async (trx) =>
      transitionChange(await applyInTrx(trx, w.row.id, { type: 'cancel', by: ctx.caller.principal })),
    );
    return workloadView(applied.after, w.projectRef);
  } catch (err) {
    if (err instanceof Unchanged) throw new AppError('CONFLICT', `workload "${w.row.name}" ${err.why}`);
    throw err;
  }
}
