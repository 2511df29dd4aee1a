// What the GDPR Art. 30 document is built from: the org's rows (projects, workloads, repos and
// versions, deployments, blobs, memberships, service accounts and keys, break-glass grants), the
// configured blob stores and their regions, the fleet's regions, the policy set in force, the
// retention settings and the configured sub-processors. Bounded per org; nothing of another org.
import type { Ctx } from '../app/context.js';
import { jurisdictionOf, siteRegion } from '../policy/sovereignty.js';
import { policyVersions } from '../policy/versions.js';
import { parseManifest } from '../registry/commits.js';
import type { ModelCard } from '../registry/model-card.js';
import { type Registry, storeLabel } from '../registry/registry.js';
import type { OrgsTable } from '../store/schema.js';
import { retentionSeconds } from '../tenancy/identity.js';
import type { DatasetVersionFacts, GdprFacts } from './gdpr-art30.js';
import type { Subprocessor } from './subprocessors.js';

/** `604800 s` → `7 days` (whole days where it is a whole number of them). */
export function periodText(seconds: number): string {
  if (seconds > 0 && seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return `${seconds} s`;
}

export async function gdprFacts(
  ctx: Ctx,
  reg: Registry | undefined,
  subprocessors: readonly Subprocessor[],
  org: OrgsTable,
): Promise<GdprFacts> {
  const db = ctx.db;
  const projects = await db.selectFrom('projects').selectAll().where('org_id', '=', org.id).orderBy('name').execute();
  const projectName = new Map(projects.map((p) => [p.id, p.name]));
  const workloads = await db
    .selectFrom('workloads')
    .select((eb) => ['project_id', 'kind', eb.fn.countAll<number>().as('n')])
    .where('org_id', '=', org.id)
    .groupBy(['project_id', 'kind'])
    .execute();
  const repos = await db
    .selectFrom('repos')
    .select((eb) => ['project_id', 'kind', eb.fn.countAll<number>().as('n')])
    .where('org_id', '=', org.id)
    .where('deleted_at', '=', '')
    .groupBy(['project_id', 'kind'])
    .execute();
  const deployments = await db
    .selectFrom('deployments')
    .select(['project_id', 'name', 'store_prompts'])
    .where('org_id', '=', org.id)
    .orderBy('name')
    .execute();

  const versions = await db
    .selectFrom('commits')
    .innerJoin('repos', 'repos.id', 'commits.repo_id')
    .select([
      'repos.project_id',
      'repos.name',
      'commits.id',
      'commits.created_at',
      'commits.card',
      'commits.total_bytes',
      'commits.manifest',
    ])
    .where('repos.org_id', '=', org.id)
    .where('repos.kind', '=', 'dataset')
    .where('repos.deleted_at', '=', '')
    .execute();
  const regionOf = (name: string) =>
    reg?.stores.find((s) => s.name === name)?.region ?? 'not configured on this server';
  const datasetVersions: DatasetVersionFacts[] = [];
  for (const v of versions) {
    const card = (v.card && v.card !== '{}' ? JSON.parse(v.card) : {}) as ModelCard;
    const blobIds = [...new Set(parseManifest(v).map((f) => f.blobId))];
    const stores = new Set<string>();
    for (let i = 0; i < blobIds.length; i += 500) {
      const rows = await db
        .selectFrom('blobs')
        .select('store')
        .distinct()
        .where('org_id', '=', org.id)
        .where('blob_id', 'in', blobIds.slice(i, i + 500))
        .execute();
      for (const r of rows) stores.add(r.store);
    }
    datasetVersions.push({
      project: `${org.name}.${projectName.get(v.project_id) ?? v.project_id}`,
      name: v.name,
      commit: v.id,
      createdAt: v.created_at,
      tags: card.tags ?? [],
      license: card.license ?? null,
      bytes: Number(v.total_bytes),
      stores: [...stores].sort().map((s) => ({ store: storeLabel(s), region: regionOf(s) })),
    });
  }

  const blobs = await db
    .selectFrom('blobs')
    .select((eb) => [
      'store',
      eb.fn.countAll<number>().as('n'),
      eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'),
    ])
    .where('org_id', '=', org.id)
    .groupBy('store')
    .execute();
  const storage = blobs
    .map((b) => {
      const configured = reg?.stores.find((s) => s.name === b.store);
      const region = configured?.region ?? 'not configured on this server';
      const j = jurisdictionOf(region);
      return {
        store: storeLabel(b.store),
        kind: configured?.store.kind ?? 'unknown',
        region,
        country: j.country,
        inEU: j.inEU,
        objects: Number(b.n),
        bytes: Number(b.bytes),
      };
    })
    .sort((a, b) => a.store.localeCompare(b.store));

  const pools = await db
    .selectFrom('workload_attempts')
    .select('pool')
    .distinct()
    .where('org_id', '=', org.id)
    .execute();
  const nodeRegions = await db.selectFrom('nodes').select(['pool', 'region']).distinct().execute();
  const compute = pools
    .map((p) => ({
      pool: p.pool,
      regions: [...new Set(nodeRegions.filter((n) => n.pool === p.pool).map((n) => n.region))].sort(),
    }))
    .sort((a, b) => a.pool.localeCompare(b.pool));

  const members = await db
    .selectFrom('memberships')
    .innerJoin('principals', 'principals.id', 'memberships.principal_id')
    .select(['principals.name', 'principals.kind', 'memberships.role', 'memberships.project_id'])
    .where('memberships.org_id', '=', org.id)
    .execute();
  const now = new Date().toISOString();
  const accounts = await db
    .selectFrom('principals')
    .select(['id', 'name', 'created_at'])
    .where('org_id', '=', org.id)
    .where('kind', '=', 'service_account')
    .orderBy('name')
    .execute();
  const keys = await db
    .selectFrom('api_keys')
    .select(['principal_id', 'expires_at', 'revoked_at'])
    .where('org_id', '=', org.id)
    .execute();
  const grants = await db
    .selectFrom('break_glass_grants')
    .select(['expires_at', 'revoked_at'])
    .where('org_id', '=', org.id)
    .execute();
  const policy = await policyVersions(db)
    .current()
    .then((p) => ({ hash: p.hash }))
    .catch(() => null);
  const region = siteRegion();
  const limits = reg?.limits;

  return {
    generatedAt: now,
    generatedBy: ctx.caller.principal,
    org: { name: org.name, displayName: org.display_name, residency: org.residency, createdAt: org.created_at },
    site: { region, ...jurisdictionOf(region) },
    policy,
    projects: projects.map((p) => ({
      name: p.name,
      displayName: p.display_name,
      createdAt: p.created_at,
      workloads: Object.fromEntries(
        workloads
          .filter((w) => w.project_id === p.id)
          .map((w) => [w.kind, Number(w.n)])
          .sort(([a], [b]) => String(a).localeCompare(String(b))),
      ),
      models: Number(repos.find((r) => r.project_id === p.id && r.kind === 'model')?.n ?? 0),
      datasets: Number(repos.find((r) => r.project_id === p.id && r.kind === 'dataset')?.n ?? 0),
      deployments: deployments
        .filter((d) => d.project_id === p.id)
        .map((d) => ({ name: d.name, storesPrompts: Number(d.store_prompts) === 1 })),
    })),
    datasetVersions: datasetVersions.sort((a, b) => `${a.project}/${a.name}`.localeCompare(`${b.project}/${b.name}`)),
    storage,
    compute,
    subprocessors,
    retention: [
      {
        what: "a deleted project's files (workload directories, logs, outputs)",
        period: periodText(retentionSeconds()),
      },
      ...(limits
        ? [
            {
              what: "a deleted model or dataset repo's versions",
              period: periodText(Math.round(limits.retentionMs / 1000)),
            },
            { what: 'unfinished uploads', period: periodText(Math.round(limits.uploadTtlMs / 1000)) },
          ]
        : []),
      { what: 'the audit log (append-only, verifiable)', period: 'kept for the life of the site' },
    ],
    members: members
      .map((m) => ({
        principal: m.name,
        kind: m.kind,
        role: m.role,
        scope: m.project_id
          ? `project ${org.name}.${projectName.get(m.project_id) ?? m.project_id}`
          : `org ${org.name}`,
      }))
      .sort((a, b) => a.principal.localeCompare(b.principal) || a.scope.localeCompare(b.scope)),
    serviceAccounts: accounts.map((a) => ({
      name: a.name,
      createdAt: a.created_at,
      activeKeys: keys.filter((k) => k.principal_id === a.id && !k.revoked_at && (!k.expires_at || k.expires_at > now))
        .length,
    })),
    breakGlass: {
      grants: grants.length,
      active: grants.filter((g) => !g.revoked_at && g.expires_at > now).length,
    },
  };
}
