// From a request to the service context: who calls, which request, which idempotency record.
import type { FastifyRequest } from 'fastify';
import type { Store } from '../store/db.js';
import type { Ctx } from '../app/context.js';
import type { LogLocator } from '../workload/logs.js';
import type { Registry } from '../registry/registry.js';
import type { DeploymentDeps } from '../inference/deployments.js';
import type { ComplianceDeps } from '../compliance/service.js';
import type { SubmissionGate } from '../workload/service.js';

export interface RouteDeps {
  readonly store: Store;
  readonly onKeyRevoked: (prefix: string) => void;
  /** Something the scheduler cares about changed (workloads, quotas, nodes): run a cycle soon. */
  readonly onStateChange?: () => void;
  /** A workload was cancelled: its executor stops it. */
  readonly onCancelled?: (workloadId: string) => void;
  /** Where a task's log file is, per the executor. */
  readonly logs?: LogLocator;
  /** Root of workloads' working directories. */
  readonly workdirRoot?: string;
  /** How tasks are kept apart on this server's executor (shown with every node). */
  readonly isolation?: TaskIsolation;
  /** The model and dataset registry, when this server has one. */
  readonly registry?: Registry;
  /** Deployments (inference): how replicas run on this server; absent: no deployment routes. */
  readonly deployments?: DeploymentDeps;
  /** The verifiable audit log (receipts, checkpoints on demand); absent: those routes are not served. */
  readonly auditLog?: AuditLogDeps;
  /** Compliance documents: the energy rules and sub-processors (default: from the environment). */
  readonly compliance?: Omit<ComplianceDeps, 'registry'>;
  /** Checks a workload submission inside its transaction (the project's budget). */
  readonly submissionGate?: SubmissionGate;
}

export interface AuditLogDeps {
  /** The log's verifier key (C2SP note format), pinned by auditors. */
  readonly verifierKey: string;
  /** Witness verifier keys whose cosignatures the log keeps. */
  readonly witnessKeys: readonly string[];
  /** Integrates what is committed and signs a checkpoint now. */
  flush(): Promise<{ size: number; note: string }>;
}

export interface TaskIsolation {
  readonly level: string;
  readonly summary: string;
}

export function ctxOf(req: FastifyRequest, deps: RouteDeps): Ctx {
  if (!req.caller) throw new Error('route reached without authentication');
  return {
    db: deps.store.db,
    caller: req.caller,
    requestId: req.id,
    idempotency: req.idempotency,
    onKeyRevoked: deps.onKeyRevoked,
  };
}
