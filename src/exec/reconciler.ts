// Makes what runs match what the database says should run. The scheduler marks a workload
// `running` with a placement; the reconciler launches it on the executor, watches it, and records
// how it ended. After a restart it picks up every workload from the database and asks the engine
// for the truth: re-adopted when alive, finished when the engine says so, lost otherwise.
// Every transition is an audited state change.
import type { Kysely } from 'kysely';
import { type ActorContext, mutate } from '../audit/journal.js';
import { nowIso } from '../domain/ids.js';
import { SerialLoop } from '../domain/serial-loop.js';
import type { Database, WorkloadsTable } from '../store/schema.js';
import { addEvent } from '../workload/service.js';
import { type WorkloadEnv, literalEnv } from '../workload/env.js';
import type { WorkloadSpec } from '../workload/spec.js';
import { identityOf } from '../tenancy/identity.js';
import {
  DEFAULT_PIDS_LIMIT,
  ExecError,
  type ExecHandle,
  type Executor,
  type Observation,
  type TaskLimits,
} from './types.js';
import { resolveWorkdir } from './workdir.js';

const EXECUTOR_ACTOR: ActorContext = { keyId: '', principal: 'system:executor', requestId: 'reconcile' };
const BACKOFF_BASE_S = 5;
const BACKOFF_MAX_S = 300;

export interface ReconcilerOptions {
  readonly intervalMs?: number;
  /** Relative workdirs of specs resolve inside this directory. */
  readonly workdirRoot: string;
  /** Called when capacity was freed or work returned to the queue: the scheduler should run. */
  readonly onCapacityChange?: () => void;
  /** A task's environment from the spec's (secret references resolved); throwing fails the launch. */
  readonly resolveEnv?: (row: WorkloadsTable, env: WorkloadEnv) => Promise<Record<string, string>>;
}

/** Wait before retry n (1-based): 5 s, 10 s, 20 s, … capped at 5 minutes. */
export function backoffSeconds(retry: number): number {
  return Math.min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** Math.max(0, retry - 1));
}

export class Reconciler extends SerialLoop {
  /** Launch failures already reported, so a retrying launch does not flood the event list. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly executor: Executor,
    private readonly opts: ReconcilerOptions,
  ) {
    super(opts.intervalMs ?? 2000, (err) => process.emitWarning(`reconcile failed: ${err.message}`));
  }

  protected override work(): Promise<void> {
    return this.reconcile();
  }

  /** One pass over every workload that should run or still holds engine resources. */
  async reconcile(): Promise<void> {
    const rows = await this.db
      .selectFrom('workloads')
      .selectAll()
      .where((eb) => eb.or([eb('status', '=', 'running'), eb('exec_handle', 'is not', null)]))
      .execute();
    const handles = new Map<string, ExecHandle>();
    for (const r of rows) if (r.exec_handle) handles.set(r.id, JSON.parse(r.exec_handle));
    const observed = handles.size ? await this.executor.observe(handles) : new Map<string, Observation>();
    let freed = false;

    for (const row of rows) {
      const handle = handles.get(row.id);
      if (row.status !== 'running') {
        // Cancelled, preempted (perhaps requeued), or failed while processes remain: stop them.
        if (handle) {
          await this.executor.stop(handle, specOf(row).gracePeriodS ?? 30);
          await this.transition(
            row,
            'workload.stopped',
            { exec_handle: null },
            'Normal',
            'Stopped',
            `${this.executor.name} executor stopped the ${row.status === 'pending' ? 'preempted attempt' : `${row.status} workload`}`,
          );
          freed = true;
        }
        continue;
      }
      if (!handle) {
        await this.launch(row);
        continue;
      }
      const o = observed.get(row.id);
      if (!o || o.state === 'running') {
        if (row.started_at && Date.parse(row.started_at) + row.max_runtime_s * 1000 < Date.now()) {
          await this.executor.stop(handle, specOf(row).gracePeriodS ?? 30);
          await this.finish(
            row,
            'failed',
            'MaxRuntimeExceeded',
            `ran longer than its max runtime of ${row.max_runtime_s} s and was stopped`,
            null,
          );
          freed = true;
        }
        continue;
      }
      freed = true;
      if (o.state === 'succeeded') await this.finish(row, 'succeeded', 'Completed', o.message, 0);
      else if (o.state === 'failed') await this.failed(row, o);
      else await this.lost(row, o);
    }
    if (freed) this.opts.onCapacityChange?.();
  }

  private async launch(row: WorkloadsTable): Promise<void> {
    const spec = specOf(row);
    let handle: ExecHandle;
    try {
      const project = await this.project(row.project_id);
      handle = await this.executor.launch({
        workloadId: row.id,
        attempt: row.attempts,
        name: row.name,
        project: project.ref,
        projectId: row.project_id,
        identity: identityOf(project.uid),
        limits: limitsOf(spec),
        run: spec.run ?? 'sleep infinity',
        setup: spec.setup,
        // Secret references become values only here, inside the launch: never stored resolved.
        env: this.opts.resolveEnv ? await this.opts.resolveEnv(row, spec.env ?? {}) : literalEnv(spec.env ?? {}),
        // Resolved again: the directory may have become a symbolic link since submit.
        workdir: spec.workdir === undefined ? undefined : launchWorkdir(this.opts.workdirRoot, spec.workdir),
        placement: JSON.parse(row.placement!),
        maxRuntimeS: row.max_runtime_s,
      });
    } catch (err) {
      const message = `${this.executor.name} executor could not start it: ${(err as Error).message}`;
      if (err instanceof ExecError && err.retryable) {
        // The engine may come back: keep the placement and try again next pass; say why once.
        if (!this.reported.has(row.id)) {
          this.reported.add(row.id);
          await this.transition(row, 'workload.launch-failed', { message }, 'Warning', 'LaunchFailed', message);
        }
        return;
      }
      await this.failed(row, { state: 'failed', message });
      return;
    }
    this.reported.delete(row.id);
    await this.transition(
      row,
      'workload.start',
      {
        exec_handle: JSON.stringify(handle),
        executor: this.executor.name,
        reason: 'Running',
        message: `running on ${this.executor.name} executor`,
      },
      'Normal',
      'Started',
      `started attempt ${row.attempts} on the ${this.executor.name} executor`,
    );
  }

  /** A failed run is retried with backoff while retries remain, else the workload fails. */
  private async failed(row: WorkloadsTable, o: Observation): Promise<void> {
    const spec = specOf(row);
    const retriesUsed = row.attempts - 1 - row.preemptions;
    if (retriesUsed < (spec.retries ?? 0)) {
      const wait = backoffSeconds(retriesUsed + 1);
      await this.transition(
        row,
        'workload.retry',
        {
          status: 'pending',
          reason: 'BackOff',
          message: `${o.message}; retry ${retriesUsed + 1} of ${spec.retries} in ${wait} s`,
          placement: null,
          exec_handle: null,
          not_before: new Date(Date.now() + wait * 1000).toISOString(),
          queued_at: nowIso(),
          exit_code: o.exitCode ?? null,
        },
        'Warning',
        'BackOff',
        `${o.message}; retrying in ${wait} s`,
      );
      return;
    }
    await this.finish(row, 'failed', o.reason ?? 'Failed', o.message, o.exitCode ?? null);
  }

  /** Gone without a trace (the machine rebooted, someone killed it): requeue or fail, by the spec. */
  private async lost(row: WorkloadsTable, o: Observation): Promise<void> {
    if (specOf(row).requeue) {
      await this.transition(
        row,
        'workload.requeue',
        {
          status: 'pending',
          reason: 'Lost',
          message: `${o.message}; requeued`,
          placement: null,
          exec_handle: null,
          queued_at: nowIso(),
        },
        'Warning',
        'Lost',
        `${o.message}; requeued (requeue: true)`,
      );
    } else {
      await this.finish(row, 'failed', 'Lost', `${o.message}; not requeued (requeue: false)`, null);
    }
  }

  private finish(
    row: WorkloadsTable,
    status: 'succeeded' | 'failed',
    reason: string,
    message: string,
    exitCode: number | null,
  ): Promise<void> {
    return this.transition(
      row,
      `workload.${status === 'succeeded' ? 'succeed' : 'fail'}`,
      { status, reason, message, exec_handle: null, finished_at: nowIso(), exit_code: exitCode },
      status === 'succeeded' ? 'Normal' : 'Warning',
      reason,
      message,
    );
  }

  /** One audited state change of one workload, guarded against a concurrent change (e.g. a cancel). */
  private async transition(
    row: WorkloadsTable,
    action: string,
    set: Partial<WorkloadsTable>,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    await mutate(
      this.db,
      EXECUTOR_ACTOR,
      { action, resource: `workloads/${row.id}`, orgId: row.org_id },
      async (trx) => {
        const res = await trx
          .updateTable('workloads')
          .set({ ...set, updated_at: nowIso() })
          .where('id', '=', row.id)
          .where('status', '=', row.status)
          .where('updated_at', '=', row.updated_at)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) === 0) return { result: undefined };
        await addEvent(trx, row.id, type, reason, message);
        return {
          result: undefined,
          before: { status: row.status },
          after: { status: set.status ?? row.status, reason },
        };
      },
    );
  }

  private async project(projectId: string): Promise<{ ref: string; uid: number }> {
    const p = await this.db
      .selectFrom('projects')
      .innerJoin('orgs', 'orgs.id', 'projects.org_id')
      .select(['projects.name', 'projects.uid', 'orgs.name as org_name'])
      .where('projects.id', '=', projectId)
      .executeTakeFirstOrThrow();
    return { ref: `${p.org_name}.${p.name}`, uid: p.uid };
  }
}

/** The spec's cpu and memory per node become hard limits; every task gets a pids limit. */
export function limitsOf(spec: WorkloadSpec): TaskLimits {
  return {
    cpus: spec.cpu,
    memoryBytes: spec.memoryGiB === undefined ? undefined : spec.memoryGiB * 1024 ** 3,
    pids: pidsLimit(),
  };
}

/** The operator's bound on processes per task (FABRIK_TASK_PIDS_MAX), default 4096. */
function pidsLimit(): number {
  const n = Number(process.env.FABRIK_TASK_PIDS_MAX ?? DEFAULT_PIDS_LIMIT);
  return Number.isInteger(n) && n >= 16 ? n : DEFAULT_PIDS_LIMIT;
}

function launchWorkdir(root: string, workdir: string): string {
  try {
    return resolveWorkdir(root, workdir);
  } catch (err) {
    throw new ExecError((err as Error).message, false);
  }
}

function specOf(row: WorkloadsTable): WorkloadSpec {
  return JSON.parse(row.spec) as WorkloadSpec;
}
