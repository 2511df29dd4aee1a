// Usage as tenants read it (`fabrik usage`, the console): the hourly rollups of a project or an
// org summed by day, hour, pool, model, deployment or project, in the units people bill in
// (GPU-hours, tokens, GB-months, kWh, kg CO2), with the estimated marker and, per deployment or
// model, the energy per token served. Per-attempt figures of a workload come from the facts.
import { type Ctx, findOrg, findProject } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { monthRange, parseTimeArg } from '../domain/time-arg.js';
import { findWorkload } from '../workload/service.js';
import { projectRole } from '../policy/roles.js';
import { attemptUsage } from './attempt-usage.js';
import { siteEnergy } from './energy.js';
import { readUsage } from './usage.js';
import { attemptRows, fleetFacts, placementNodes, powerSamples } from './usage-sources.js';
import { GB_MONTH_BYTE_SECONDS, type UsageBy, type UsageRecord, hourFloor } from './types.js';

export { USAGE_BY, type UsageBy } from './types.js';

export interface UsageReportQuery {
  /** RFC 3339, or a duration before now (30m, 24h, 7d). Default: the start of `month`, or of this month. */
  readonly from?: string;
  readonly to?: string;
  /** YYYY-MM (UTC): the whole month. */
  readonly month?: string;
  readonly by?: UsageBy;
}

export interface UsageFigures {
  readonly gpuHours: number;
  readonly tokensIn: number;
  readonly tokensOut: number;
  readonly gbMonths: number;
  readonly energyKWh: number;
  readonly co2Kg: number;
  /** Some energy or CO2 in it is estimated (no power measurement). */
  readonly estimated: boolean;
  /** Energy of the deployment's replicas per token served (in + out), Wh; null without either. */
  readonly energyWhPerToken: number | null;
}

export interface UsageReportRow extends UsageFigures {
  /** The day or hour (RFC 3339), pool, model ref, deployment name or org.project; '-' where none applies. */
  readonly group: string;
}

export interface UsageReport {
  /** org.project, or the org. */
  readonly scope: string;
  readonly from: string;
  readonly to: string;
  readonly by: UsageBy;
  readonly rows: UsageReportRow[];
  readonly totals: UsageFigures;
}

const invalid = (path: string, message: string) => new AppError('INVALID_ARGUMENT', `${path}: ${message}`, { path });
const MAX_RANGE_MS = 400 * 86_400_000;

/** [from, to) of a query, epoch ms. */
export function reportRange(q: UsageReportQuery, now: number): { from: number; to: number } {
  if (q.month !== undefined) {
    const range = monthRange(q.month);
    if (!range) throw invalid('month', `must be YYYY-MM, got "${q.month.slice(0, 20)}"`);
    if (q.from !== undefined || q.to !== undefined) throw invalid('month', 'give either month or from/to');
    return range;
  }
  const to = q.to === undefined ? now : parseTimeArg(q.to, now, 'to');
  const d = new Date(now);
  const from =
    q.from === undefined ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) : parseTimeArg(q.from, now, 'from');
  if (from >= to) throw invalid('from', 'must be before to');
  if (to - from > MAX_RANGE_MS) throw invalid('from', 'the range is at most 400 days');
  // Rollups are hourly: the hour `from` falls in is included whole.
  return { from: hourFloor(from), to };
}

export async function projectUsage(ctx: Ctx, projectRef: string, q: UsageReportQuery = {}): Promise<UsageReport> {
  const { org, project } = await findProject(ctx, projectRef);
  const by = q.by ?? 'day';
  if (by === 'project') throw invalid('by', 'by project is for an org');
  const range = reportRange(q, Date.now());
  const records = await readUsage(ctx.db, { orgId: org.id, projectId: project.id, ...iso(range) });
  return build(ctx, `${org.name}.${project.name}`, range, by, records);
}

/** An org's usage: only the projects the caller holds a role on (an org-wide role sees them all). */
export async function orgUsage(ctx: Ctx, orgName: string, q: UsageReportQuery = {}): Promise<UsageReport> {
  const org = await findOrg(ctx, orgName);
  const by = q.by ?? 'project';
  const range = reportRange(q, Date.now());
  const all = await readUsage(ctx.db, { orgId: org.id, ...iso(range) });
  const records = ctx.caller.operator ? all : all.filter((r) => projectRole(ctx.caller, org.id, r.projectId));
  return build(ctx, org.name, range, by, records);
}

const iso = (r: { from: number; to: number }) => ({
  from: new Date(r.from).toISOString(),
  to: new Date(r.to).toISOString(),
});

interface Acc {
  gpuSeconds: number;
  tokensIn: number;
  tokensOut: number;
  byteSeconds: number;
  wh: number;
  replicaWh: number;
  co2g: number;
  estimated: boolean;
}

const emptyAcc = (): Acc => ({
  gpuSeconds: 0,
  tokensIn: 0,
  tokensOut: 0,
  byteSeconds: 0,
  wh: 0,
  replicaWh: 0,
  co2g: 0,
  estimated: false,
});

function addTo(a: Acc, r: UsageRecord): void {
  switch (r.metric) {
    case 'gpu_seconds':
      a.gpuSeconds += r.quantity;
      break;
    case 'tokens_in':
      a.tokensIn += r.quantity;
      break;
    case 'tokens_out':
      a.tokensOut += r.quantity;
      break;
    case 'stored_byte_seconds':
      a.byteSeconds += r.quantity;
      break;
    case 'energy_wh':
      a.wh += r.quantity;
      if (r.deploymentId) a.replicaWh += r.quantity;
      a.estimated ||= r.estimated;
      break;
    case 'co2_g':
      a.co2g += r.quantity;
      a.estimated ||= r.estimated;
      break;
  }
}

function figures(a: Acc, perToken: boolean): UsageFigures {
  const tokens = a.tokensIn + a.tokensOut;
  return {
    gpuHours: a.gpuSeconds / 3600,
    tokensIn: a.tokensIn,
    tokensOut: a.tokensOut,
    gbMonths: a.byteSeconds / GB_MONTH_BYTE_SECONDS,
    energyKWh: a.wh / 1000,
    co2Kg: a.co2g / 1000,
    estimated: a.estimated,
    energyWhPerToken: perToken && tokens > 0 && a.replicaWh > 0 ? a.replicaWh / tokens : null,
  };
}

function groupOf(r: UsageRecord, by: UsageBy): string {
  switch (by) {
    case 'day':
      return `${r.hour.slice(0, 10)}`;
    case 'hour':
      return r.hour;
    case 'pool':
      return r.pool;
    case 'model':
      return r.model;
    case 'deployment':
      return r.deploymentId;
    case 'project':
      return r.projectId;
  }
}

async function build(
  ctx: Ctx,
  scope: string,
  range: { from: number; to: number },
  by: UsageBy,
  records: readonly UsageRecord[],
): Promise<UsageReport> {
  const groups = new Map<string, Acc>();
  const total = emptyAcc();
  for (const r of records) {
    const g = groupOf(r, by);
    let a = groups.get(g);
    if (!a) {
      a = emptyAcc();
      groups.set(g, a);
    }
    addTo(a, r);
    addTo(total, r);
  }
  const label = await labels(ctx, by, [...groups.keys()]);
  const perToken = by === 'deployment' || by === 'model';
  const rows = [...groups].map(([g, a]) => ({ group: label(g), ...figures(a, perToken) }));
  if (by === 'day' || by === 'hour') rows.sort((a, b) => a.group.localeCompare(b.group));
  else
    rows.sort(
      (a, b) =>
        b.gpuHours - a.gpuHours ||
        b.tokensIn + b.tokensOut - (a.tokensIn + a.tokensOut) ||
        a.group.localeCompare(b.group),
    );
  return { scope, ...iso(range), by, rows, totals: figures(total, true) };
}

/** Names for group keys: deployment ids → names, project ids → org.project; '' → '-'. */
async function labels(ctx: Ctx, by: UsageBy, keys: readonly string[]): Promise<(k: string) => string> {
  const ids = keys.filter(Boolean);
  const names = new Map<string, string>();
  if (by === 'deployment' && ids.length) {
    for (const d of await ctx.db.selectFrom('deployments').select(['id', 'name']).where('id', 'in', ids).execute())
      names.set(d.id, d.name);
  }
  if (by === 'project' && ids.length) {
    const rows = await ctx.db
      .selectFrom('projects')
      .innerJoin('orgs', 'orgs.id', 'projects.org_id')
      .select(['projects.id', 'projects.name', 'orgs.name as org'])
      .where('projects.id', 'in', ids)
      .execute();
    for (const p of rows) names.set(p.id, `${p.org}.${p.name}`);
  }
  return (k) => (k === '' ? '-' : (names.get(k) ?? k));
}

export interface AttemptUsageView {
  readonly number: number;
  readonly pool: string;
  readonly gpuModel: string;
  readonly gpus: number;
  readonly startedAt: string;
  /** '' while it runs (figures up to now). */
  readonly endedAt: string;
  readonly gpuSeconds: number;
  readonly gpuHours: number;
  readonly energyWh: number;
  readonly co2g: number;
  readonly estimated: boolean;
}

/** Per attempt of one workload: GPU-seconds, energy and CO2 from its facts (the rollups' own rules). */
export async function workloadUsage(
  ctx: Ctx,
  projectRef: string,
  ref: string,
): Promise<{
  workload: string;
  attempts: AttemptUsageView[];
  totals: Omit<AttemptUsageView, 'number' | 'pool' | 'gpuModel' | 'gpus' | 'startedAt' | 'endedAt'>;
}> {
  // By name or id, through the caller's visibility (404 for another org's), as `describe` finds it.
  const { row } = await findWorkload(ctx, projectRef, ref);
  return usageOfWorkload(ctx, row.id, row.name);
}

export async function usageOfWorkload(ctx: Pick<Ctx, 'db'>, workloadId: string, name: string) {
  const now = Date.now();
  const site = siteEnergy();
  // Every attempt that started, whenever (RFC 3339 text sorts between these bounds).
  const rows = await attemptRows(ctx.db, '0000', '9999', workloadId);
  const fleet = await fleetFacts(ctx.db);
  const samples = await powerSamples(
    ctx.db,
    rows.map((r) => r.id),
    0,
    now + 1,
  );
  const attempts: AttemptUsageView[] = rows
    .map((a) => {
      const gpuModel = a.gpu_model || fleet.poolModel.get(a.pool) || '';
      const nodes = placementNodes(a.placement, fleet.nodeGpus);
      const u = attemptUsage(
        {
          startedAt: Date.parse(a.started_at),
          endedAt: a.ended_at ? Date.parse(a.ended_at) : undefined,
          gpuModel,
          nodes,
          samples: samples.get(a.id) ?? [],
        },
        site,
        now,
      );
      return {
        number: Number(a.number),
        pool: a.pool,
        gpuModel,
        gpus: nodes.reduce((n, x) => n + x.gpus, 0),
        startedAt: a.started_at,
        endedAt: a.ended_at,
        gpuSeconds: u.gpuSeconds,
        gpuHours: u.gpuSeconds / 3600,
        energyWh: u.energyWh,
        co2g: u.co2g,
        estimated: u.estimated,
      };
    })
    .sort((a, b) => a.number - b.number);
  const totals = attempts.reduce(
    (t, a) => ({
      gpuSeconds: t.gpuSeconds + a.gpuSeconds,
      gpuHours: t.gpuHours + a.gpuHours,
      energyWh: t.energyWh + a.energyWh,
      co2g: t.co2g + a.co2g,
      estimated: t.estimated || a.estimated,
    }),
    { gpuSeconds: 0, gpuHours: 0, energyWh: 0, co2g: 0, estimated: false },
  );
  return { workload: name, attempts, totals };
}
