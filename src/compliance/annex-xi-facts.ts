// What the Annex XI document is built from, read through the caller's visibility: the version
// (card, weights, signatures: src/registry/views.ts), its lineage up to the producing attempt and
// the dataset versions that attempt read (src/registry/lineage.ts), the producing workload's
// attempts with their usage and energy (src/metering/attempt-usage.ts, the same figures usage and
// statements show). Another org's model is "not found", as everywhere.
import type { Ctx } from '../app/context.js';
import { attemptUsage } from '../metering/attempt-usage.js';
import { type EnergySite, gpuModelKey } from '../metering/energy.js';
import { describeGrid } from '../metering/grid.js';
import { fleetFacts, placementNodes, powerSamples } from '../metering/usage-sources.js';
import { parseManifest } from '../registry/commits.js';
import { lineageOf } from '../registry/lineage.js';
import type { ModelCard } from '../registry/model-card.js';
import { type RepoId, parseRepoIdText } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import { findRepo } from '../registry/repos.js';
import { rootDigest } from '../registry/signing.js';
import { type VersionDetail, versionDetail } from '../registry/views.js';
import { isSecretRef } from '../workload/env.js';
import type { WorkloadSpec } from '../workload/spec.js';
import type { AnnexXiFacts, AttemptFacts, DatasetFacts, VersionFacts } from './annex-xi.js';

/** The env variable of a training workload that states its training tokens (D of 6·N·D). */
export const TRAINING_TOKENS_ENV = 'TRAINING_TOKENS';

function versionFacts(d: VersionDetail): VersionFacts {
  return {
    repo: d.repo,
    commit: d.version.id,
    parent: d.version.parent,
    createdAt: d.version.createdAt,
    createdBy: d.version.createdBy,
    files: d.files.length,
    bytes: d.version.bytes,
    manifestDigest: rootDigest(d.files.map((f) => f.sha256)),
    signatures: d.signatures,
    verification: d.verification,
  };
}

/** D from the spec: a literal positive whole number, else unknown. */
export function trainingTokensOf(spec: WorkloadSpec): number | null {
  const v = spec.env[TRAINING_TOKENS_ENV];
  if (v === undefined || isSecretRef(v)) return null;
  const text = String(v).replace(/_/g, '').trim();
  if (!/^[0-9]+(\.[0-9]+)?(e[0-9]+)?$/i.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) && n > 0 ? n : null;
}

export interface AnnexXiSubject {
  readonly id: RepoId;
  readonly revision: string;
  readonly orgId: string;
  readonly projectId: string;
  readonly resource: string;
}

export async function annexXiFacts(
  ctx: Ctx,
  reg: Registry,
  site: EnergySite,
  id: RepoId,
  revision: string,
): Promise<{ facts: AnnexXiFacts; subject: AnnexXiSubject }> {
  const r = await findRepo(ctx, 'model', id);
  const detail = await versionDetail(ctx, reg, 'model', id, revision);
  const commit = detail.version.id;
  const producer = detail.version.producer;

  const datasets: DatasetFacts[] = [];
  const inputModels: { repo: string; commit: string }[] = [];
  let workload: NonNullable<AnnexXiFacts['producer']>['workload'];
  let attempts: AttemptFacts[] = [];
  if (producer) {
    // Up two hops: commit ← attempt ← the versions that attempt read.
    const lineage = await lineageOf(ctx, 'model', id, commit, { direction: 'up', depth: 2 });
    const attemptKey = `attempt:${producer.workloadId}:${producer.attempt}`;
    const inputs = new Set(lineage.edges.filter((e) => e.to === attemptKey).map((e) => e.from));
    for (const n of lineage.nodes) {
      if (!inputs.has(n.key) || n.kind !== 'commit' || !n.repo || !n.commit) continue;
      const repo = `${n.repo.project}/${n.repo.name}`;
      if (n.repo.kind === 'model') {
        inputModels.push({ repo, commit: n.commit });
        continue;
      }
      datasets.push(
        n.repo.deleted
          ? await deletedDataset(ctx, repo, n.commit)
          : await versionDetail(ctx, reg, 'dataset', parseRepoIdText(repo), n.commit).then((d) => ({
              ...versionFacts(d),
              card: d.card,
            })),
      );
    }
    datasets.sort((a, b) => a.repo.localeCompare(b.repo) || a.commit.localeCompare(b.commit));
    const w = await ctx.db
      .selectFrom('workloads')
      .innerJoin('projects', 'projects.id', 'workloads.project_id')
      .innerJoin('orgs', 'orgs.id', 'workloads.org_id')
      .select(['workloads.name', 'workloads.kind', 'workloads.spec', 'projects.name as project', 'orgs.name as org'])
      .where('workloads.id', '=', producer.workloadId)
      .where('workloads.org_id', '=', r.org.id)
      .executeTakeFirst();
    if (w) {
      workload = {
        name: w.name,
        project: `${w.org}.${w.project}`,
        kind: w.kind,
        trainingTokens: trainingTokensOf(JSON.parse(w.spec) as WorkloadSpec),
      };
      attempts = await attemptFacts(ctx, site, producer.workloadId, producer.attempt);
    }
  }

  const facts: AnnexXiFacts = {
    generatedAt: new Date().toISOString(),
    generatedBy: ctx.caller.principal,
    provider: { org: r.org.name, displayName: r.org.display_name, project: `${r.org.name}.${r.project.name}` },
    revision,
    version: versionFacts(detail),
    card: detail.card,
    formats: detail.formatsSummary,
    producer: producer ? { ...producer, ...(workload ? { workload } : {}) } : null,
    datasets,
    inputModels,
    attempts,
    energyMethod: { pue: site.pue, gpuUtilisation: site.gpuUtilisation, grid: describeGrid(site.grid) },
  };
  return {
    facts,
    subject: { id, revision, orgId: r.org.id, projectId: r.project.id, resource: `${r.resource}/versions/${commit}` },
  };
}

/**
 * A dataset whose repo was deleted after training (an erasure, say): its version row stays until
 * the purge, so the card and manifest are still on record; it is not verified (no longer served).
 */
async function deletedDataset(ctx: Ctx, repo: string, commit: string): Promise<DatasetFacts> {
  const c = await ctx.db.selectFrom('commits').selectAll().where('id', '=', commit).executeTakeFirstOrThrow();
  const files = parseManifest(c);
  return {
    repo,
    commit,
    parent: c.parent_id || null,
    createdAt: c.created_at,
    createdBy: c.created_by,
    files: files.length,
    bytes: Number(c.total_bytes),
    manifestDigest: rootDigest(files.map((f) => f.sha256)),
    signatures: [],
    verification: { ok: false, signers: [], reason: 'the dataset repo has been deleted; its version is not verified' },
    card: c.card && c.card !== '{}' ? (JSON.parse(c.card) as ModelCard) : null,
  };
}

/** The attempts up to the producing one (earlier ones, preempted or retried, trained it too). */
async function attemptFacts(ctx: Ctx, site: EnergySite, workloadId: string, upTo: number): Promise<AttemptFacts[]> {
  const rows = await ctx.db
    .selectFrom('workload_attempts')
    .selectAll()
    .where('workload_id', '=', workloadId)
    .where('number', '<=', upTo)
    .orderBy('number')
    .execute();
  const fleet = await fleetFacts(ctx.db);
  const out: AttemptFacts[] = [];
  for (const a of rows) {
    const start = a.started_at ? Date.parse(a.started_at) : Number.NaN;
    const end = a.ended_at ? Date.parse(a.ended_at) : Date.now();
    const gpuModel = a.gpu_model || fleet.poolModel.get(a.pool) || a.pool;
    const samples = Number.isFinite(start) ? ((await powerSamples(ctx.db, [a.id], start, end)).get(a.id) ?? []) : [];
    const u = attemptUsage(
      { startedAt: start, endedAt: end, gpuModel, nodes: placementNodes(a.placement, fleet.nodeGpus), samples },
      site,
    );
    out.push({
      number: Number(a.number),
      pool: a.pool,
      gpuModel: gpuModel || gpuModelKey(a.pool),
      gpus: Number(a.gpus),
      startedAt: a.started_at,
      endedAt: a.ended_at,
      endReason: a.end_reason,
      gpuSeconds: u.gpuSeconds,
      energyWh: u.energyWh,
      co2g: u.co2g,
      estimated: u.estimated,
    });
  }
  return out;
}
