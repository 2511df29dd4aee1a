// The event outbox, writing side: every audited change that applications care about (a workload's
// lifecycle transitions, the creation and deletion of resources) becomes one CloudEvents 1.0
// record, written by mutate() in the change's own transaction. An event exists exactly when its
// change committed, and it carries the audit sequence number, so the order of events is commit
// order. Reading (listing, long-polling, streaming through the caller's visibility) is in
// src/app/events.ts; webhooks deliver them.
import type { AuditEntry } from './entry.js';
import type { Trx } from '../store/db.js';
import type { EventsTable, WorkloadsTable } from '../store/schema.js';

/** A CloudEvents 1.0 event in its JSON form (structured mode), with fabrik's scoping extensions. */
export interface CloudEvent {
  specversion: '1.0';
  /** `evt_<seq>`: unique per source; also a cursor. */
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  /** The org the event belongs to (absent for platform events). */
  fabrikorg?: string;
  /** The project, where the resource belongs to one. */
  fabrikproject?: string;
  data: Record<string, unknown>;
}

type View = Record<string, unknown>;

interface EventRule {
  /** The event type, or how the change decides it (then `types` lists what it may be). */
  readonly type: string | ((c: { view: View; before: unknown }) => string);
  readonly types?: readonly string[];
  /** A workload's transition: data and scope come from the workload row. */
  readonly workload?: true;
  /** Only org-wide admins and owners (and operators) see it: others may not list such resources. */
  readonly admins?: true;
  /** The org (org.create) or project (project.create) is the created thing itself. */
  readonly scopeFromView?: 'org' | 'project';
}

/**
 * Audit action → event. Actions that are not here write no event: bookkeeping (pending reasons,
 * attempt stops and kills, launch retries), fleet files (node states do), bootstrap and purges.
 */
const RULES: Readonly<Record<string, EventRule>> = {
  'workload.submit': { type: 'workload.submitted', workload: true },
  'workload.place': { type: 'workload.placed', workload: true },
  'workload.start': { type: 'workload.started', workload: true },
  'workload.succeed': { type: 'workload.finished', workload: true },
  'workload.fail': { type: 'workload.finished', workload: true },
  'workload.cancel': { type: 'workload.finished', workload: true },
  // Preempted and requeued, or preempted for good (requeue: false), which ends the workload.
  'workload.preempt': {
    type: ({ view }) => (view.status === 'preempted' ? 'workload.finished' : 'workload.preempted'),
    types: ['workload.preempted', 'workload.finished'],
    workload: true,
  },
  'workload.retry': { type: 'workload.requeued', workload: true },
  'workload.requeue': { type: 'workload.requeued', workload: true },
  'org.create': { type: 'org.created', scopeFromView: 'org' },
  'org.update': { type: 'org.updated' },
  'org.delete': { type: 'org.deleted' },
  'project.create': { type: 'project.created', scopeFromView: 'project' },
  'project.update': { type: 'project.updated' },
  'project.delete': { type: 'project.deleted' },
  'user.create': { type: 'user.created' },
  'serviceaccount.create': { type: 'serviceaccount.created' },
  'member.add': { type: 'member.added' },
  'member.remove': { type: 'member.removed' },
  'apikey.create': { type: 'apikey.created', admins: true },
  'apikey.revoke': { type: 'apikey.revoked', admins: true },
  'quota.set': { type: 'quota.changed' },
  'quota.delete': { type: 'quota.deleted' },
  'secret.put': {
    type: ({ before }) => (before === undefined || before === null ? 'secret.created' : 'secret.updated'),
    types: ['secret.created', 'secret.updated'],
  },
  'secret.delete': { type: 'secret.deleted' },
  'webhook.create': { type: 'webhook.created', admins: true },
  'webhook.delete': { type: 'webhook.deleted', admins: true },
  'model.create': { type: 'model.created' },
  'model.commit': { type: 'model.version.created' },
  'model.delete': { type: 'model.deleted' },
  'model.tag': { type: 'model.tagged' },
  'dataset.create': { type: 'dataset.created' },
  'dataset.commit': { type: 'dataset.version.created' },
  'dataset.delete': { type: 'dataset.deleted' },
  'dataset.tag': { type: 'dataset.tagged' },
  'deployment.create': { type: 'deployment.created' },
  'deployment.scale': { type: 'deployment.scaled' },
  'deployment.autoscale': { type: 'deployment.scaled' },
  'deployment.delete': { type: 'deployment.deleted' },
  'deployment.replica.create': { type: 'deployment.replica.created' },
  'deployment.replica.ready': { type: 'deployment.replica.ready' },
  'deployment.replica.unhealthy': { type: 'deployment.replica.unhealthy' },
  'deployment.replica.stopping': { type: 'deployment.replica.stopping' },
  'deployment.replica.end': { type: 'deployment.replica.ended' },
  // Budgets (src/metering/budgets.ts): changes, and alerts when a threshold of a month is reached.
  'budget.set': { type: 'budget.changed' },
  'budget.delete': { type: 'budget.deleted' },
  'budget.alert': { type: 'budget.threshold.reached' },
  // A node's state (src/fleet/inventory.ts setNodeState): platform events (no org), so only
  // operators see them; the console's floor plan redraws the node from them.
  'node.cordon': { type: 'node.cordoned' },
  'node.uncordon': { type: 'node.uncordoned' },
  'node.drain': { type: 'node.draining' },
  'node.down': { type: 'node.down' },
};

/** Every event type there is, sorted: what `types` filters and subscriptions may name. */
export const EVENT_TYPES: readonly string[] = [
  ...new Set(Object.values(RULES).flatMap((r) => (typeof r.type === 'string' ? [r.type] : [...(r.types ?? [])]))),
].sort();

/** The audit action → event type table, for documentation and tests. */
export function eventRuleOf(action: string): string | readonly string[] | undefined {
  const r = RULES[action];
  return r && (typeof r.type === 'string' ? r.type : r.types);
}

/** `source` of events written by this process: FABRIK_EVENT_SOURCE (a URI reference) or /fabrik. */
export function eventSource(): string {
  return process.env.FABRIK_EVENT_SOURCE || '/fabrik';
}

/**
 * The outbox hook of mutate(): writes the change's event, if its action has one, in the same
 * transaction. A change that changed nothing (no before, no after) writes none.
 */
export async function appendEvent(
  trx: Trx,
  entry: AuditEntry,
  change: { readonly before?: unknown; readonly after?: unknown },
  projectId = '',
): Promise<void> {
  const rule = RULES[entry.action];
  if (!rule || (change.before === undefined && change.after === undefined)) return;
  const view = asView(change.after) ?? asView(change.before) ?? {};
  let row: Omit<EventsTable, 'type' | 'seq' | 'source' | 'time'> & { view: View };
  if (rule.workload) {
    const w = await workloadOf(trx, entry.resource, view, asView(change.before));
    if (!w) return;
    row = {
      org_id: w.row.org_id,
      project_id: w.row.project_id,
      subject: `projects/${w.ref}/workloads/${w.row.name}`,
      audience: '',
      view: w.data,
      data: '',
    };
  } else {
    const own = typeof view.id === 'string' ? view.id : '';
    row = {
      org_id: rule.scopeFromView === 'org' ? own : entry.orgId,
      project_id: rule.scopeFromView === 'project' ? own : projectId,
      subject: entry.resource,
      audience: rule.admins ? 'admin' : '',
      view,
      data: '',
    };
  }
  const type = typeof rule.type === 'string' ? rule.type : rule.type({ view: row.view, before: change.before });
  const { view: data, ...rest } = row;
  await trx
    .insertInto('events')
    .values({ ...rest, seq: entry.seq, type, source: eventSource(), time: entry.time, data: JSON.stringify(data) })
    .execute();
}

function asView(v: unknown): View | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as View) : undefined;
}

/**
 * The workload a transition is about, read inside the transaction (so after the change): by the
 * id in its audit views, else by its resource (`workloads/<id>` or
 * `projects/<org>.<project>/workloads/<name>`, the newest of that name).
 */
async function workloadOf(trx: Trx, resource: string, after: View, before: View | undefined) {
  const base = trx
    .selectFrom('workloads')
    .innerJoin('projects', 'projects.id', 'workloads.project_id')
    .innerJoin('orgs', 'orgs.id', 'workloads.org_id')
    .selectAll('workloads')
    .select(['projects.name as p_name', 'orgs.name as o_name']);
  const idOf = (v: View | undefined) => (typeof v?.id === 'string' && v.id.startsWith('wl_') ? v.id : undefined);
  const byPath = /^workloads\/([^/]+)$/.exec(resource)?.[1];
  const id = idOf(after) ?? idOf(before) ?? byPath;
  const m = id ? null : /^projects\/([^./]+)\.([^/]+)\/workloads\/([^/]+)$/.exec(resource);
  if (!id && !m) return undefined;
  const found = await (id
    ? base.where('workloads.id', '=', id)
    : base
        .where('orgs.name', '=', m![1]!)
        .where('projects.name', '=', m![2]!)
        .where('workloads.name', '=', m![3]!)
        .orderBy('workloads.submitted_at', 'desc')
        .limit(1)
  ).executeTakeFirst();
  if (!found) return undefined;
  const { p_name, o_name, ...row } = found;
  const ref = `${o_name}.${p_name}`;
  return { row, ref, data: workloadData(row, ref, before) };
}

/**
 * What an event tells about a workload: identity, shape, status and why. Not its spec: env values
 * may be credentials, and events leave the platform (webhooks).
 */
function workloadData(r: WorkloadsTable, ref: string, before: View | undefined): View {
  return {
    id: r.id,
    name: r.name,
    project: ref,
    projectId: r.project_id,
    kind: r.kind,
    pool: r.pool,
    gpus: r.nodes * r.gpus_per_node,
    status: r.status,
    ...(typeof before?.status === 'string' ? { previousStatus: before.status } : {}),
    reason: r.reason,
    message: r.message,
    attempt: r.attempts,
    preemptions: r.preemptions,
    exitCode: r.exit_code,
    placement: r.placement ? JSON.parse(r.placement) : null,
    submittedAt: r.submitted_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}
