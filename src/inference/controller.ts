// The deployment controller: a control loop (on the leader, beside the scheduler and reconciler)
// that keeps each deployment's replicas as serving workloads. Every pass it
//   1. observes each replica (its workload's status and attempt, a health check) and moves it
//      with replicaStep() (./replica-state.ts): pending → starting → ready, or unhealthy;
//   2. decides the desired count from the gateways' load (./autoscale.ts);
//   3. submits replica workloads up to it (priority critical, through the scheduler like any
//      workload) and stops the surplus and the unhealthy (their workloads are cancelled).
// Each change is one audited transaction; replica rows are this module's alone.
import { createServer } from 'node:net';
import type { Kysely } from 'kysely';
import { type Trx, mutate } from '../audit/journal.js';
import type { Ctx } from '../app/context.js';
import { SerialLoop } from '../domain/serial-loop.js';
import type { ReplicaState } from '../domain/inference-states.js';
import { newId, nowIso } from '../domain/ids.js';
import type { Caller } from '../policy/roles.js';
import type { Database, DeploymentReplicasTable, DeploymentsTable } from '../store/schema.js';
import { ACTIVE_STATUSES, cancelWorkload, insertSubmission, prepareSubmission } from '../workload/service.js';
import { STABILIZATION_WINDOW_S, decideReplicas } from './autoscale.js';
import { sha256Hex } from '../audit/entry.js';
import { type ReplicaRuntime, replicaToken, replicaWorkload } from './replica-spec.js';
import { replicaStep } from './replica-state.js';
import type { DeploymentLoad } from './types.js';
import { LOAD_FRESH_MS } from './views.js';

export interface ControllerOptions {
  readonly runtime: ReplicaRuntime;
  /** Key of the replica tokens (replicaTokenKey of the master key). */
  readonly tokenKey: Buffer;
  /** Address replicas bind: 127.0.0.1 on the local executor, 0.0.0.0 on cluster nodes. */
  readonly bindHost: string;
  /** Where the gateway reaches a replica placed on `node`. */
  readonly hostOf: (node: string) => string;
  /** Ports for replicas, [first, last]; on the local executor a port is also probed free. */
  readonly ports?: readonly [number, number];
  readonly probePorts?: boolean;
  readonly intervalMs?: number;
  readonly healthTimeoutMs?: number;
  readonly fence?: (trx: Trx) => Promise<void>;
  /** The in-process gateway's load (the server's /v1); other gateways report in `gateway_load`. */
  readonly localLoad?: () => readonly DeploymentLoad[];
  /** The name the in-process gateway reports under: its rows are skipped (localLoad is fresher). */
  readonly localReportName?: string;
  /** After replicas changed state: the routing table should be read again. */
  readonly onChange?: () => void;
  /** Replica workloads were submitted (the scheduler should run) or cancelled (the reconciler should). */
  readonly onSubmitted?: () => void;
  readonly onCancelled?: () => void;
  readonly workdirRoot?: string;
  readonly now?: () => number;
}

const SYSTEM_CALLER: Caller = {
  keyId: '',
  keyPrefix: '',
  principalId: '',
  principal: 'system:deployments',
  operator: true,
  scopeOrgId: '',
  scopeProjectId: '',
  grants: [],
};

interface Observed {
  readonly row: DeploymentReplicasTable;
  readonly workloadStatus: string;
  readonly attempt: number;
  readonly node: string;
  readonly launchedAt: string;
}

export class DeploymentController extends SerialLoop {
  private readonly failures = new Map<string, number>();
  private readonly reportedDown = new Set<string>();
  private readonly needs = new Map<string, { at: number; need: number }[]>();
  private readonly now: () => number;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: ControllerOptions,
  ) {
    super(opts.intervalMs ?? 1000, (err) => process.emitWarning(`deployment controller: ${err.message}`));
    this.now = opts.now ?? Date.now;
  }

  /** The gateway could not reach a replica: it leaves rotation on the next pass (run now). */
  reportDown(replicaId: string): void {
    this.reportedDown.add(replicaId);
    this.trigger();
  }

  protected override async work(): Promise<void> {
    await this.pass();
  }

  /** One pass over every deployment that is live or still has replicas. */
  async pass(): Promise<void> {
    const deployments = await this.db
      .selectFrom('deployments')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb('deleted_at', '=', ''),
          eb.exists(eb.selectFrom('deployment_replicas').select('id').whereRef('deployment_id', '=', 'deployments.id')),
        ]),
      )
      .execute();
    if (deployments.length === 0) return;
    const observed = await this.observe(deployments.map((d) => d.id));
    const load = await this.load();
    let changed = false;
    for (const d of deployments) {
      const mine = observed.filter((o) => o.row.deployment_id === d.id);
      changed = (await this.reconcileReplicas(d, mine)) || changed;
      if (d.deleted_at === '' && d.runtime !== 'external')
        changed = (await this.scale(d, mine, load.get(d.id))) || changed;
    }
    // Reports about replicas that have no row (an external upstream, one already gone) are dropped.
    this.reportedDown.clear();
    if (changed) this.opts.onChange?.();
  }

  private async observe(deploymentIds: string[]): Promise<Observed[]> {
    const rows = await this.db
      .selectFrom('deployment_replicas as r')
      .leftJoin('workloads as w', 'w.id', 'r.workload_id')
      .leftJoin('workload_attempts as a', (j) =>
        j.onRef('a.workload_id', '=', 'w.id').onRef('a.number', '=', 'w.attempts'),
      )
      .selectAll('r')
      .select([
        'w.status as w_status',
        'w.attempts as w_attempts',
        'w.placement as w_placement',
        'a.launched_at as a_launched',
      ])
      .where('r.deployment_id', 'in', deploymentIds)
      .execute();
    return rows.map(({ w_status, w_attempts, w_placement, a_launched, ...row }) => ({
      row,
      workloadStatus: w_status ?? '',
      attempt: w_attempts ?? 0,
      node: w_placement ? ((JSON.parse(w_placement) as { nodes: { node: string }[] }).nodes[0]?.node ?? '') : '',
      launchedAt: a_launched ?? '',
    }));
  }

  /** Summed load per deployment: fresh reports of other gateways plus this process's own. */
  private async load(): Promise<Map<string, DeploymentLoad>> {
    const out = new Map<string, DeploymentLoad>();
    const add = (l: DeploymentLoad) => {
      const was = out.get(l.deploymentId);
      out.set(l.deploymentId, {
        deploymentId: l.deploymentId,
        inflight: (was?.inflight ?? 0) + l.inflight,
        queued: (was?.queued ?? 0) + l.queued,
        lastRequestAt: Math.max(was?.lastRequestAt ?? 0, l.lastRequestAt),
        requests: (was?.requests ?? 0) + l.requests,
      });
    };
    const reports = await this.db
      .selectFrom('gateway_load')
      .selectAll()
      .where('updated_at', '>', this.now() - LOAD_FRESH_MS)
      .execute();
    for (const r of reports.filter((x) => x.gateway !== this.opts.localReportName))
      add({
        deploymentId: r.deployment_id,
        inflight: r.inflight,
        queued: r.queued,
        lastRequestAt: Number(r.last_request_at),
        requests: 0,
      });
    for (const l of this.opts.localLoad?.() ?? []) add(l);
    return out;
  }

  /** Health checks and state moves; cancels the workloads of stopping and unhealthy replicas. */
  private async reconcileReplicas(d: DeploymentsTable, replicas: Observed[]): Promise<boolean> {
    let changed = false;
    await Promise.all(
      replicas.map(async (o) => {
        const r = o.row;
        const running = o.workloadStatus === 'running' && r.state !== 'stopping' && r.state !== 'unhealthy';
        const healthy = running && o.node ? await this.healthy(this.opts.hostOf(o.node), r.port) : undefined;
        const failures = healthy === false ? (this.failures.get(r.id) ?? 0) + 1 : 0;
        this.failures.set(r.id, failures);
        const step = replicaStep({
          state: r.state,
          workloadStatus: o.workloadStatus as never,
          attempt: o.attempt,
          readyAttempt: r.attempt,
          healthy,
          failures,
          startingForS: o.launchedAt ? (this.now() - Date.parse(o.launchedAt)) / 1000 : 0,
          reportedDown: this.reportedDown.delete(r.id),
        });
        if (step.kind === 'remove') {
          this.failures.delete(r.id);
          await this.write(d, `deployment.replica.end`, r, async (trx) => {
            await trx.deleteFrom('deployment_replicas').where('id', '=', r.id).execute();
            return { ...r, state: 'stopping' as const, message: step.message };
          });
          changed = true;
          return;
        }
        if (step.kind === 'move' || (o.node && r.node !== o.node)) {
          const to: ReplicaState = step.kind === 'move' ? step.to : r.state;
          const set = {
            state: to,
            message: step.kind === 'move' ? step.message : r.message,
            node: o.node,
            host: o.node ? this.opts.hostOf(o.node) : '',
            updated_at: nowIso(),
            ...(to === 'ready' ? { ready_at: nowIso(), attempt: o.attempt } : {}),
          };
          await this.write(d, `deployment.replica.${to}`, r, async (trx) => {
            await trx.updateTable('deployment_replicas').set(set).where('id', '=', r.id).execute();
            return { ...r, ...set };
          });
          changed = true;
        }
        const state = step.kind === 'move' ? step.to : r.state;
        if ((state === 'stopping' || state === 'unhealthy') && ACTIVE_STATUSES.includes(o.workloadStatus as never)) {
          await this.cancel(d, r.workload_id);
        }
      }),
    );
    return changed;
  }

  /** Autoscaling and the replica count: new replicas up to the desired count, the surplus stopped. */
  private async scale(d: DeploymentsTable, replicas: Observed[], load: DeploymentLoad | undefined): Promise<boolean> {
    const now = this.now();
    const window = (this.needs.get(d.id) ?? []).filter((s) => now - s.at < STABILIZATION_WINDOW_S * 1000);
    const decision = decideReplicas({
      min: d.min_replicas,
      max: d.max_replicas,
      desired: d.desired_replicas,
      targetInflight: d.target_inflight,
      idleTimeoutS: d.idle_timeout_s,
      inflight: load?.inflight ?? 0,
      queued: load?.queued ?? 0,
      lastRequestAt: Math.max(load?.lastRequestAt ?? 0, Date.parse(d.updated_at)),
      recentNeeds: window.map((s) => s.need),
      now,
    });
    window.push({ at: now, need: decision.need });
    this.needs.set(d.id, window);
    let changed = false;
    if (decision.desired !== d.desired_replicas) {
      await this.writeDeployment(d, 'deployment.autoscale', {
        desired_replicas: decision.desired,
        reason: decision.reason,
      });
      changed = true;
    }
    const live = replicas.filter((o) => o.row.state !== 'stopping' && o.row.state !== 'unhealthy');
    for (let n = live.length; n < decision.desired; n++) {
      await this.createReplica(d, replicas);
      changed = true;
    }
    // Surplus: the least useful first (waiting, then starting, then the newest ready ones).
    const rank: Record<ReplicaState, number> = { pending: 0, starting: 1, ready: 2, unhealthy: 3, stopping: 3 };
    const surplus = [...live]
      .sort((a, b) => rank[a.row.state] - rank[b.row.state] || b.row.ordinal - a.row.ordinal)
      .slice(0, Math.max(0, live.length - decision.desired));
    for (const o of surplus) {
      await this.write(d, 'deployment.replica.stopping', o.row, async (trx) => {
        const set = { state: 'stopping' as const, message: `scaled down (${decision.reason})`, updated_at: nowIso() };
        await trx.updateTable('deployment_replicas').set(set).where('id', '=', o.row.id).execute();
        return { ...o.row, ...set };
      });
      await this.cancel(d, o.row.workload_id);
      changed = true;
    }
    return changed;
  }

  /** A new replica: its row and its workload in one audited transaction. */
  private async createReplica(d: DeploymentsTable, existing: Observed[]): Promise<void> {
    const used = new Set(existing.map((o) => o.row.ordinal));
    let ordinal = 0;
    while (used.has(ordinal)) ordinal++;
    existing.push({
      row: { ordinal } as DeploymentReplicasTable,
      workloadStatus: 'pending',
      attempt: 0,
      node: '',
      launchedAt: '',
    });
    const id = newId('rep');
    const port = await this.freePort();
    const plan = {
      replicaId: id,
      ordinal,
      port,
      bindHost: this.opts.bindHost,
      tokenSha256: sha256Hex(replicaToken(this.opts.tokenKey, id)),
    };
    const { body, extend } = replicaWorkload(d, plan, this.opts.runtime);
    const ctx: Ctx = { db: this.db, caller: SYSTEM_CALLER, requestId: `deployment:${d.id}`, fence: this.opts.fence };
    const prepared = await prepareSubmission(ctx, d.project_id, body, { extend, workdirRoot: this.opts.workdirRoot });
    const now = nowIso();
    const row: DeploymentReplicasTable = {
      id,
      deployment_id: d.id,
      workload_id: prepared.id,
      ordinal,
      port,
      host: '',
      node: '',
      state: 'pending',
      message: 'submitted; waiting for the scheduler',
      attempt: 0,
      ready_at: '',
      created_at: now,
      updated_at: now,
    };
    await this.write(d, 'deployment.replica.create', undefined, async (trx) => {
      await insertSubmission(trx, SYSTEM_CALLER.principal, prepared);
      await trx.insertInto('deployment_replicas').values(row).execute();
      return row;
    });
    this.opts.onSubmitted?.();
  }

  private async cancel(d: DeploymentsTable, workloadId: string): Promise<void> {
    const ctx: Ctx = { db: this.db, caller: SYSTEM_CALLER, requestId: `deployment:${d.id}`, fence: this.opts.fence };
    await cancelWorkload(ctx, d.project_id, workloadId).catch((err) => {
      // Already ending (a race with its own exit) is fine: the next pass removes the replica.
      if ((err as { code?: string }).code !== 'CONFLICT') throw err;
    });
    this.opts.onCancelled?.();
  }

  /** A port no replica row holds (the unique index decides races), probed free on this machine. */
  private async freePort(): Promise<number> {
    const [first, last] = this.opts.ports ?? [20000, 29999];
    const taken = new Set(
      (await this.db.selectFrom('deployment_replicas').select('port').execute()).map((r) => r.port),
    );
    const span = last - first + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const port = first + ((start + i) % span);
      if (taken.has(port)) continue;
      if (!this.opts.probePorts || (await portFree(port))) return port;
    }
    throw new Error(`no free replica port in ${first}-${last}`);
  }

  private async healthy(host: string, port: number): Promise<boolean> {
    try {
      const res = await fetch(`http://${host}:${port}/health`, {
        signal: AbortSignal.timeout(this.opts.healthTimeoutMs ?? 1500),
      });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  private write<T extends object>(
    d: DeploymentsTable,
    action: string,
    before: DeploymentReplicasTable | undefined,
    fn: (trx: Trx) => Promise<T>,
  ): Promise<T> {
    return mutate(
      this.db,
      { keyId: '', principal: SYSTEM_CALLER.principal, requestId: `deployment:${d.id}`, fence: this.opts.fence },
      { action, resource: `deployments/${d.id}/replicas`, orgId: d.org_id, projectId: d.project_id },
      async (trx) => {
        const after = await fn(trx);
        return {
          result: after,
          before: before ? replicaAudit(before) : undefined,
          after: replicaAudit(after as never),
        };
      },
    );
  }

  private async writeDeployment(
    d: DeploymentsTable,
    action: string,
    change: { desired_replicas: number; reason: string },
  ) {
    await mutate(
      this.db,
      { keyId: '', principal: SYSTEM_CALLER.principal, requestId: `deployment:${d.id}`, fence: this.opts.fence },
      { action, resource: `deployments/${d.id}`, orgId: d.org_id, projectId: d.project_id },
      async (trx) => {
        await trx
          .updateTable('deployments')
          .set({ desired_replicas: change.desired_replicas })
          .where('id', '=', d.id)
          .execute();
        return {
          result: undefined,
          before: { id: d.id, name: d.name, desired: d.desired_replicas },
          after: { id: d.id, name: d.name, desired: change.desired_replicas, reason: change.reason },
        };
      },
    );
  }
}

function replicaAudit(r: Partial<DeploymentReplicasTable>) {
  return {
    id: r.id,
    deploymentId: r.deployment_id,
    workloadId: r.workload_id,
    ordinal: r.ordinal,
    state: r.state,
    message: r.message,
    node: r.node,
  };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
