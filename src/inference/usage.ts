// Token usage as tenants read it: the gateways write one `token_usage` row per minute and (key,
// deployment, replica); this module sums them over a time range, grouped by deployment, key,
// replica or time bucket, with names resolved. Minutes are RFC 3339 text, so an hour or a day is
// a prefix of it: the same SQL on SQLite and PostgreSQL.
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { type Ctx, findProject } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { parseTimeArg } from '../domain/time-arg.js';
import type { Database } from '../store/schema.js';
import { replicaWorkloadName } from './replica-spec.js';

export const USAGE_GROUPS = ['deployment', 'key', 'replica', 'minute', 'hour', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  /** RFC 3339 time, or a duration before now such as 30m, 24h, 7d (default: 24h before until). */
  readonly since?: string;
  /** RFC 3339 time, or a duration before now (default now). */
  readonly until?: string;
  readonly by?: UsageGroup;
  /** Only this deployment's usage: its name (live) or id (`dep_…`, deleted ones too). */
  readonly deployment?: string;
}

export interface UsageTotals {
  readonly requests: number;
  readonly errors: number;
  readonly tokensIn: number;
  readonly tokensOut: number;
  /** Mean time to the first byte of an answer, ms; null without requests. */
  readonly meanTtftMs: number | null;
  /** Output tokens per second of answering time; null when no time was spent. */
  readonly tokensPerSec: number | null;
}

export interface UsageRow extends UsageTotals {
  /** The deployment's name, the key's prefix, the replica's workload name, or the bucket's start (RFC 3339). */
  readonly group: string;
  /** The deployment, key or replica id; null for time buckets. */
  readonly id: string | null;
  /** The deployment a replica belongs to (by=replica only). */
  readonly deployment?: string;
}

export interface TokenUsageReport {
  readonly project: string;
  readonly since: string;
  readonly until: string;
  readonly by: UsageGroup;
  readonly rows: UsageRow[];
  readonly totals: UsageTotals;
  /** The deployment the report is limited to, when one was asked for. */
  readonly deployment?: { readonly id: string; readonly name: string };
  /** More groups than MAX_USAGE_ROWS: the rest were left off (totals still count them). */
  readonly truncated: boolean;
}

export const MAX_USAGE_ROWS = 10_000;
const MAX_RANGE_MS = 400 * 86_400_000;

function invalid(path: string, message: string): AppError {
  return new AppError('INVALID_ARGUMENT', `${path}: ${message}`, { path });
}

const minuteIso = (ms: number) => new Date(Math.floor(ms / 60_000) * 60_000).toISOString();

/** The first instant of `now`'s calendar month, UTC. */
export function monthStart(now: Date | number = Date.now()): string {
  const d = new Date(now);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString();
}

const total = (col: 'requests' | 'errors' | 'tokens_in' | 'tokens_out' | 'ttft_ms_sum' | 'duration_ms_sum') =>
  // PostgreSQL sums bigints to numeric (a string in pg): back to bigint, which the driver reads as a number.
  sql<number>`cast(coalesce(sum(${sql.ref(col)}), 0) as bigint)`;

/** Tokens (in + out) a project used in `now`'s calendar month (UTC): what monthly budgets count. */
export async function monthTokens(
  db: Kysely<Database> | Trx,
  projectId: string,
  now: Date | number = Date.now(),
): Promise<number> {
  const row = await db
    .selectFrom('token_usage')
    .select([total('tokens_in').as('tin'), total('tokens_out').as('tout')])
    .where('project_id', '=', projectId)
    .where('minute', '>=', monthStart(now))
    .executeTakeFirst();
  return Number(row?.tin ?? 0) + Number(row?.tout ?? 0);
}

interface Sums {
  requests: number;
  errors: number;
  tin: number;
  tout: number;
  ttft: number;
  dur: number;
}

function totalsOf(s: Sums): UsageTotals {
  const requests = Number(s.requests);
  const dur = Number(s.dur);
  return {
    requests,
    errors: Number(s.errors),
    tokensIn: Number(s.tin),
    tokensOut: Number(s.tout),
    meanTtftMs: requests > 0 ? Math.round((Number(s.ttft) / requests) * 10) / 10 : null,
    tokensPerSec: dur > 0 ? Math.round(((Number(s.tout) * 1000) / dur) * 10) / 10 : null,
  };
}

function groupColumn(by: UsageGroup): RawBuilder<string> {
  switch (by) {
    case 'deployment':
      return sql<string>`deployment_id`;
    case 'key':
      return sql<string>`key_id`;
    case 'replica':
      // Replica ids are unique; the deployment comes along to name replicas whose rows are gone.
      return sql<string>`deployment_id || '/' || replica_id`;
    case 'minute':
      return sql<string>`minute`;
    case 'hour':
      return sql<string>`substr(minute, 1, 13)`;
    case 'day':
      return sql<string>`substr(minute, 1, 10)`;
  }
}

/** A project's token usage over a time range, grouped (members of the project, viewers too). */
export async function tokenUsage(ctx: Ctx, projectRef: string, query: UsageQuery = {}): Promise<TokenUsageReport> {
  const { org, project } = await findProject(ctx, projectRef);
  const by = query.by ?? 'deployment';
  if (!USAGE_GROUPS.includes(by)) throw invalid('by', `must be one of ${USAGE_GROUPS.join(', ')}`);
  const now = Date.now();
  const until = query.until === undefined ? now : parseTimeArg(query.until, now, 'until');
  const since = query.since === undefined ? until - 86_400_000 : parseTimeArg(query.since, now, 'since');
  if (since >= until) throw invalid('since', 'must be before until');
  if (until - since > MAX_RANGE_MS) throw invalid('since', 'the range is at most 400 days');
  const sinceIso = minuteIso(since);
  const untilIso = new Date(until).toISOString();
  const dep = query.deployment === undefined ? undefined : await usageDeployment(ctx, project.id, query.deployment);
  let base = ctx.db
    .selectFrom('token_usage')
    .where('project_id', '=', project.id)
    .where('minute', '>=', sinceIso)
    .where('minute', '<', untilIso);
  if (dep) base = base.where('deployment_id', '=', dep.id);
  const sums = [
    total('requests').as('requests'),
    total('errors').as('errors'),
    total('tokens_in').as('tin'),
    total('tokens_out').as('tout'),
    total('ttft_ms_sum').as('ttft'),
    total('duration_ms_sum').as('dur'),
  ] as const;
  const g = groupColumn(by);
  const grouped = await base
    .select([g.as('g'), ...sums])
    .groupBy(g)
    .orderBy(g)
    .limit(MAX_USAGE_ROWS + 1)
    .execute();
  const all = await base.select(sums).executeTakeFirst();
  const truncated = grouped.length > MAX_USAGE_ROWS;
  const kept = grouped.slice(0, MAX_USAGE_ROWS);
  const names = await namesOf(
    ctx.db,
    by,
    kept.map((r) => r.g),
  );
  const rows: UsageRow[] = kept.map((r) => ({ ...names(r.g), ...totalsOf(r) }));
  // Time buckets in time order; the others by tokens, largest first.
  if (!isTimeGroup(by))
    rows.sort((a, b) => b.tokensIn + b.tokensOut - (a.tokensIn + a.tokensOut) || a.group.localeCompare(b.group));
  return {
    project: `${org.name}.${project.name}`,
    since: sinceIso,
    until: untilIso,
    by,
    rows,
    totals: totalsOf(all ?? { requests: 0, errors: 0, tin: 0, tout: 0, ttft: 0, dur: 0 }),
    ...(dep ? { deployment: dep } : {}),
    truncated,
  };
}

/**
 * The deployment a usage report is limited to, in the project already resolved through the
 * caller's visibility: by id (`dep_…`, deleted ones too: their usage stays) or by the name of a
 * live one. Another project's or an unknown one is 404, as on the deployment routes.
 */
async function usageDeployment(ctx: Ctx, projectId: string, ref: string): Promise<{ id: string; name: string }> {
  const q = ctx.db.selectFrom('deployments').select(['id', 'name']).where('project_id', '=', projectId);
  const row = await (ref.startsWith('dep_')
    ? q.where('id', '=', ref)
    : q.where('name', '=', ref).where('deleted_at', '=', '')
  ).executeTakeFirst();
  if (!row) throw notFound('deployment', ref);
  return { id: row.id, name: row.name };
}

const isTimeGroup = (by: UsageGroup) => by === 'minute' || by === 'hour' || by === 'day';

/** A function from a group value to its label and id. */
async function namesOf(
  db: Kysely<Database>,
  by: UsageGroup,
  values: readonly string[],
): Promise<(g: string) => { group: string; id: string | null; deployment?: string }> {
  if (by === 'minute') return (g) => ({ group: g, id: null });
  if (by === 'hour') return (g) => ({ group: `${g}:00:00.000Z`, id: null });
  if (by === 'day') return (g) => ({ group: `${g}T00:00:00.000Z`, id: null });
  if (by === 'key') {
    const keys = values.length
      ? await db
          .selectFrom('api_keys')
          .select(['id', 'prefix'])
          .where('id', 'in', [...values])
          .execute()
      : [];
    const prefix = new Map(keys.map((k) => [k.id, k.prefix]));
    return (g) => ({ group: prefix.get(g) ?? (g || '-'), id: g || null });
  }
  const pairs = values.map((v) => (by === 'replica' ? splitPair(v) : { dep: v, rep: '' }));
  const depIds = [...new Set(pairs.map((p) => p.dep).filter(Boolean))];
  const deps = depIds.length
    ? await db.selectFrom('deployments').select(['id', 'name', 'deleted_at']).where('id', 'in', depIds).execute()
    : [];
  const depName = new Map(deps.map((d) => [d.id, d.deleted_at ? `${d.name} (deleted)` : d.name]));
  const plainName = new Map(deps.map((d) => [d.id, d.name]));
  if (by === 'deployment') return (g) => ({ group: depName.get(g) ?? g, id: g });
  const repIds = [...new Set(pairs.map((p) => p.rep).filter(Boolean))];
  const reps = repIds.length
    ? await db.selectFrom('deployment_replicas').select(['id', 'ordinal']).where('id', 'in', repIds).execute()
    : [];
  const ordinal = new Map(reps.map((r) => [r.id, r.ordinal]));
  return (g) => {
    const { dep, rep } = splitPair(g);
    const name = plainName.get(dep) ?? dep;
    const ord = ordinal.get(rep);
    const group = !rep ? `${name} (no replica)` : ord !== undefined ? replicaWorkloadName(name, ord) : `${name}/${rep}`;
    return { group, id: rep || null, deployment: depName.get(dep) ?? dep };
  };
}

function splitPair(v: string): { dep: string; rep: string } {
  const i = v.indexOf('/');
  return i < 0 ? { dep: v, rep: '' } : { dep: v.slice(0, i), rep: v.slice(i + 1) };
}
