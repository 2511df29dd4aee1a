// The owner of the `workloads` and `workload_attempts` tables' lifecycle columns. Every transition
// goes through `applyInTrx`: read the row and its newest attempt inside the transaction (mutations
// are serialised by the audit head lock, so what is read is what is changed), let the pure
// `decide()` say what happens, write the row, the attempt and the workload event. `applyEvent` wraps
// that in one audited mutation for the control plane's loops; the API wraps it in `write()`.
// Audit resources are named one way: `projects/<org.project>/workloads/<name>`.
import type { Kysely } from 'kysely';
import type { EntryFacts } from '../audit/entry.js';
import { type ActorContext, type Change, type Trx, mutate } from '../audit/journal.js';
import { newId, nowIso } from '../domain/ids.js';
import type { Placement } from '../scheduler/types.js';
import type { Database, WorkloadAttemptsTable, WorkloadsTable } from '../store/schema.js';
import { type Decision, type LifecycleEvent, type WorkloadState, decide } from './lifecycle.js';
import type { WorkloadSpec } from './spec.js';

/** A refused transition: the transaction is rolled back, nothing (not even an audit entry) is written. */
export class Unchanged extends Error {
  constructor(readonly why: string) {
    super(why);
    this.name = 'Unchanged';
  }
}

export interface Applied {
  readonly decision: Decision;
  readonly before: WorkloadsTable;
  readonly after: WorkloadsTable;
  readonly projectRef: string;
}

export function attemptId(workloadId: string, n: number): string {
  return `${workloadId}.${n}`;
}

export function workloadResource(projectRef: string, name: string): string {
  return `projects/${projectRef}/workloads/${name}`;
}

export function stateOf(row: WorkloadsTable): WorkloadState {
  const spec = JSON.parse(row.spec) as WorkloadSpec;
  return {
    status: row.status,
    attempts: row.attempts,
    preemptions: row.preemptions,
    maxRuntimeS: row.max_runtime_s,
    serving: row.kind === 'inference',
    startedAt: row.started_at,
    retries: spec.retries ?? 0,
    requeue: spec.requeue ?? false,
  };
}

export async function newestAttempt(db: Kysely<Database> | Trx, workloadId: string) {
  return db
    .selectFrom('workload_attempts')
    .selectAll()
    .where('workload_id', '=', workloadId)
    .orderBy('number', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Applies one event inside a transaction; throws Unchanged when the lifecycle refuses it. */
export async function applyInTrx(trx: Trx, workloadId: string, ev: LifecycleEvent, now = nowIso()): Promise<Applied> {
  const row = await trx
    .selectFrom('workloads')
    .innerJoin('projects', 'projects.id', 'workloads.project_id')
    .innerJoin('orgs', 'orgs.id', 'workloads.org_id')
    .selectAll('workloads')
    .select(['projects.name as p_name', 'orgs.name as o_name'])
    .where('workloads.id', '=', workloadId)
    .executeTakeFirst();
  if (!row) throw new Unchanged('no such workload');
  const { p_name, o_name, ...before } = row;
  const attempt = await newestAttempt(trx, workloadId);
  const out = decide(
    stateOf(before),
    attempt && { number: attempt.number, state: attempt.state, stopReason: attempt.stop_reason },
    ev,
    now,
  );
  if (!out.ok) throw new Unchanged(out.why);
  const d = out.decision;
  const after: WorkloadsTable = { ...before, ...d.workload, updated_at: now };
  await trx
    .updateTable('workloads')
    .set({ ...d.workload, updated_at: now })
    .where('id', '=', workloadId)
    .execute();
  if (d.createAttempt) {
    const row = launchingAttempt(before, d.createAttempt.number, d.createAttempt.placement, now);
    await trx.insertInto('workload_attempts').values(row).execute();
  } else if (d.attempt && attempt) {
    await trx.updateTable('workload_attempts').set(d.attempt).where('id', '=', attempt.id).execute();
  }
  await addEvent(trx, workloadId, d.event.type, d.event.reason, d.event.message, now);
  return { decision: d, before, after, projectRef: `${o_name}.${p_name}` };
}

/** A new attempt as placement creates it: the launch intent, nothing on the engine yet. */
export function launchingAttempt(
  w: WorkloadsTable,
  number: number,
  placement: Placement,
  now: string,
): WorkloadAttemptsTable {
  const spec = JSON.parse(w.spec) as WorkloadSpec;
  return {
    id: attemptId(w.id, number),
    workload_id: w.id,
    org_id: w.org_id,
    project_id: w.project_id,
    number,
    state: 'launching',
    placement: JSON.stringify(placement),
    pool: w.pool,
    gpu_model: spec.gpuModel ?? '',
    gpus: placement.nodes.reduce((n, x) => n + x.gpuIndexes.length, 0),
    executor: '',
    handle: '',
    created_at: now,
    launched_at: '',
    started_at: '',
    stopping_since: '',
    killed_at: '',
    ended_at: '',
    exit_code: null,
    end_reason: '',
    stop_reason: '',
    message: '',
  };
}

/** What the audit entry of a transition digests and names. */
export function transitionChange(a: Applied, facts?: EntryFacts): Change<Applied> {
  const attempt = a.decision.createAttempt?.number ?? a.after.attempts;
  return {
    ...(facts ? { facts } : {}),
    result: a,
    action: a.decision.action,
    resource: workloadResource(a.projectRef, a.before.name),
    before: { id: a.before.id, status: a.before.status, attempt: a.before.attempts },
    after: { id: a.after.id, status: a.after.status, reason: a.decision.event.reason, attempt },
  };
}

/** One transition as its own audited transaction; undefined when the lifecycle refused it. */
export async function applyEvent(
  db: Kysely<Database>,
  actor: ActorContext,
  row: { id: string; org_id: string },
  ev: LifecycleEvent,
  now = nowIso(),
  /** What the entry records besides the transition (a placement: the policy set that allowed it). */
  facts?: EntryFacts,
): Promise<Applied | undefined> {
  try {
    return await mutate(
      db,
      actor,
      { action: `workload.${ev.type}`, resource: `workloads/${row.id}`, orgId: row.org_id },
      async (trx) => transitionChange(await applyInTrx(trx, row.id, ev, now), facts),
    );
  } catch (err) {
    if (err instanceof Unchanged) return undefined;
    throw err;
  }
}

export async function addEvent(
  trx: Trx,
  workloadId: string,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  time = nowIso(),
): Promise<void> {
  await trx
    .insertInto('workload_events')
    .values({ id: newId('ev'), workload_id: workloadId, time, type, reason, message })
    .execute();
}
