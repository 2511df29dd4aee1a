// Lineage of a version: which dataset versions and workload attempts it came from (up), and what
// was made from it (down), as a graph walked over `lineage_edges` from the version's commit.
//
// Nodes: a commit (`[datasets/]<org>.<project>/<name>@<commit>`), a workload attempt
// (`<workloadId>:<attempt>`), a deployment. The walk shows only nodes the caller may see (a role
// on their project) and does not pass through others: another org's work never shows, not even
// as a count.
import type { Ctx } from '../app/context.js';
import { hasRole } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import type { LineageNodeKind, RepoKind } from '../store/schema.js';
import type { RepoId } from './names.js';
import { findRepo, resolveRevision } from './repos.js';

export type LineageDirection = 'up' | 'down' | 'both';
export const DEFAULT_LINEAGE_DEPTH = 5;
export const MAX_LINEAGE_DEPTH = 20;
/** The walk stops growing past this many nodes (and says so). */
export const MAX_LINEAGE_NODES = 500;

export interface LineageNode {
  /** `<kind>:<id>`: what edges name. */
  key: string;
  kind: LineageNodeKind;
  id: string;
  /** For people: `datasets/acme.train/corpus@<commit>`, `finetune#2 (acme.train)`. */
  label: string;
  /** Hops from the version asked about (0 for it). */
  depth: number;
  /** Commits: their repo. */
  repo?: { kind: RepoKind; name: string; project: string; deleted: boolean };
  commit?: string;
  /** Attempts: their workload. */
  workload?: { id: string; name: string; project: string; status: string };
  attempt?: number;
}

export interface LineageEdge {
  from: string;
  to: string;
}

export interface Lineage {
  root: string;
  direction: LineageDirection;
  depth: number;
  nodes: LineageNode[];
  edges: LineageEdge[];
  /** True when MAX_LINEAGE_NODES stopped the walk. */
  truncated: boolean;
}

const keyOf = (kind: LineageNodeKind, id: string) => `${kind}:${id}`;

export async function lineageOf(
  ctx: Ctx,
  kind: RepoKind,
  id: RepoId,
  rev: string,
  opts: { direction?: LineageDirection; depth?: number } = {},
): Promise<Lineage> {
  const direction = opts.direction ?? 'both';
  const depth = opts.depth ?? DEFAULT_LINEAGE_DEPTH;
  if (!Number.isInteger(depth) || depth < 1 || depth > MAX_LINEAGE_DEPTH) {
    throw new AppError('INVALID_ARGUMENT', `depth must be a whole number 1..${MAX_LINEAGE_DEPTH}`);
  }
  const r = await findRepo(ctx, kind, id);
  const c = await resolveRevision(ctx.db, r.repo, rev);
  const root = await describeNode(ctx, 'commit', c.id, 0);
  if (!root) throw new AppError('INTERNAL', `commit ${c.id} has no node`);

  const nodes = new Map<string, LineageNode>([[root.key, root]]);
  const edges = new Map<string, LineageEdge>();
  let truncated = false;
  const walk = async (dir: 'up' | 'down') => {
    let frontier: LineageNode[] = [root];
    for (let d = 1; d <= depth && frontier.length > 0; d++) {
      const next: LineageNode[] = [];
      for (const n of frontier) {
        const rows =
          dir === 'up'
            ? await ctx.db
                .selectFrom('lineage_edges')
                .select(['from_kind as kind', 'from_id as id'])
                .where('to_kind', '=', n.kind)
                .where('to_id', '=', n.id)
                .orderBy('created_at')
                .execute()
            : await ctx.db
                .selectFrom('lineage_edges')
                .select(['to_kind as kind', 'to_id as id'])
                .where('from_kind', '=', n.kind)
                .where('from_id', '=', n.id)
                .orderBy('created_at')
                .execute();
        for (const row of rows) {
          const k = keyOf(row.kind, row.id);
          let other = nodes.get(k);
          if (!other) {
            if (nodes.size >= MAX_LINEAGE_NODES) {
              truncated = true;
              continue;
            }
            other = await describeNode(ctx, row.kind, row.id, d);
            if (!other) continue;
            nodes.set(k, other);
            next.push(other);
          }
          const e = dir === 'up' ? { from: k, to: n.key } : { from: n.key, to: k };
          edges.set(`${e.from} ${e.to}`, e);
        }
      }
      frontier = next;
    }
  };
  if (direction !== 'down') await walk('up');
  if (direction !== 'up') await walk('down');
  return { root: root.key, direction, depth, nodes: [...nodes.values()], edges: [...edges.values()], truncated };
}

/** A node as the caller may see it, or undefined when it is not theirs to see (or gone). */
async function describeNode(
  ctx: Ctx,
  kind: LineageNodeKind,
  id: string,
  depth: number,
): Promise<LineageNode | undefined> {
  const key = keyOf(kind, id);
  if (kind === 'commit') {
    const row = await ctx.db
      .selectFrom('commits')
      .innerJoin('repos', 'repos.id', 'commits.repo_id')
      .innerJoin('projects', 'projects.id', 'repos.project_id')
      .innerJoin('orgs', 'orgs.id', 'repos.org_id')
      .select([
        'repos.kind as kind',
        'repos.name as name',
        'repos.org_id as orgId',
        'repos.project_id as projectId',
        'repos.deleted_at as deletedAt',
        'projects.name as project',
        'orgs.name as org',
      ])
      .where('commits.id', '=', id)
      .executeTakeFirst();
    if (!row || !hasRole(ctx, row.orgId, 'viewer', row.projectId)) return undefined;
    const project = `${row.org}.${row.project}`;
    return {
      key,
      kind,
      id,
      label: `${row.kind === 'dataset' ? 'datasets/' : ''}${project}/${row.name}@${id}`,
      depth,
      repo: { kind: row.kind, name: row.name, project, deleted: row.deletedAt !== '' },
      commit: id,
    };
  }
  if (kind === 'attempt') {
    const colon = id.lastIndexOf(':');
    const workloadId = colon > 0 ? id.slice(0, colon) : id;
    const attempt = colon > 0 ? Number(id.slice(colon + 1)) : 0;
    const row = await ctx.db
      .selectFrom('workloads')
      .innerJoin('projects', 'projects.id', 'workloads.project_id')
      .innerJoin('orgs', 'orgs.id', 'workloads.org_id')
      .select([
        'workloads.name as name',
        'workloads.status as status',
        'workloads.org_id as orgId',
        'workloads.project_id as projectId',
        'projects.name as project',
        'orgs.name as org',
      ])
      .where('workloads.id', '=', workloadId)
      .executeTakeFirst();
    if (!row || !hasRole(ctx, row.orgId, 'viewer', row.projectId)) return undefined;
    const project = `${row.org}.${row.project}`;
    return {
      key,
      kind,
      id,
      label: `${row.name}#${attempt} (${project})`,
      depth,
      workload: { id: workloadId, name: row.name, project, status: row.status },
      attempt,
    };
  }
  // Deployments have no table of their own yet: shown when the edge's org is the caller's.
  const edge = await ctx.db
    .selectFrom('lineage_edges')
    .select('org_id')
    .where((eb) =>
      eb.or([
        eb.and([eb('from_kind', '=', kind), eb('from_id', '=', id)]),
        eb.and([eb('to_kind', '=', kind), eb('to_id', '=', id)]),
      ]),
    )
    .executeTakeFirst();
  if (!edge || !hasRole(ctx, edge.org_id, 'viewer')) return undefined;
  return { key, kind, id, label: `deployment ${id}`, depth };
}
