// The EU AI Act Annex XI, section 1 technical documentation of one model version, built from the
// records only (pure: facts in, document out). Sections:
//   general       the model card's fields (README.md front matter and body) and what the weights hold
//   trainingData  the dataset versions the producing workload read (lineage), their cards and licences
//   compute       GPU-hours by GPU model over the producing workload's attempts, training time, and
//                 FLOPs ≈ 6·N·D only where N (parameters, from the weights) and D (training tokens,
//                 the workload's TRAINING_TOKENS) are both known
//   energy        per attempt, measured where power samples exist, else estimated (and labelled so)
//   versions      the commit, its manifest digest and signatures, and the inputs' commits
// A section the records cannot fill is null and named in `missing` with the reason: a version
// pushed by hand has no lineage, and nothing here is ever invented for it.
import type { ModelCard } from '../registry/model-card.js';
import type { FormatsSummary, SignatureInfo, Verification } from '../registry/views.js';

export const ANNEX_XI_SCHEMA = 'fabrik.compliance/annex-xi/v1';

export type AnnexXiSection = 'general' | 'trainingData' | 'compute' | 'energy';

export interface MissingSection {
  readonly section: AnnexXiSection;
  readonly reason: string;
}

export interface VersionFacts {
  readonly repo: string;
  readonly commit: string;
  readonly parent: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly files: number;
  readonly bytes: number;
  /** Hex SHA-256 over the files' digests in manifest order (src/registry/signing.ts rootDigest). */
  readonly manifestDigest: string;
  readonly signatures: readonly SignatureInfo[];
  readonly verification: Verification;
}

export interface DatasetFacts extends VersionFacts {
  readonly card: ModelCard | null;
}

export interface AttemptFacts {
  readonly number: number;
  readonly pool: string;
  readonly gpuModel: string;
  readonly gpus: number;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly endReason: string;
  readonly gpuSeconds: number;
  readonly energyWh: number;
  readonly co2g: number;
  readonly estimated: boolean;
}

export interface AnnexXiFacts {
  readonly generatedAt: string;
  readonly generatedBy: string;
  readonly provider: { readonly org: string; readonly displayName: string; readonly project: string };
  readonly revision: string;
  readonly version: VersionFacts;
  readonly card: ModelCard | null;
  readonly formats: FormatsSummary;
  /** The workload attempt that produced the version; null when none did (pushed by hand). */
  readonly producer: {
    readonly workloadId: string;
    readonly attempt: number;
    /** Undefined when the workload is gone or not visible to the caller. */
    readonly workload?: {
      readonly name: string;
      readonly project: string;
      readonly kind: string;
      readonly trainingTokens: number | null;
    };
  } | null;
  readonly datasets: readonly DatasetFacts[];
  /** Model versions the producing workload read (e.g. a base model), by commit. */
  readonly inputModels: readonly { readonly repo: string; readonly commit: string }[];
  readonly attempts: readonly AttemptFacts[];
  readonly energyMethod: { readonly pue: number; readonly gpuUtilisation: number; readonly grid: string };
}

export interface Flops {
  /** 6·N·D, or null when N or D is unknown. */
  readonly estimate: number | null;
  readonly method: '6·N·D';
  readonly parameters: number | null;
  readonly trainingTokens: number | null;
  /** Why no estimate; absent when there is one. */
  readonly unknown?: string;
}

export interface AnnexXiDocument {
  readonly schema: typeof ANNEX_XI_SCHEMA;
  readonly kind: 'annex-xi';
  readonly generatedAt: string;
  readonly generatedBy: string;
  readonly model: { readonly repo: string; readonly revision: string; readonly commit: string };
  readonly provider: AnnexXiFacts['provider'];
  readonly general: {
    readonly card: ModelCard;
    readonly parameters: number | null;
    readonly formats: readonly string[];
    readonly dtypes: Readonly<Record<string, number>>;
    readonly quantization: readonly string[];
  } | null;
  readonly trainingData: {
    readonly datasets: readonly {
      readonly repo: string;
      readonly commit: string;
      readonly license: string | null;
      readonly title: string | null;
      readonly summary: string | null;
      readonly tags: readonly string[];
      readonly files: number;
      readonly bytes: number;
    }[];
    readonly inputModels: AnnexXiFacts['inputModels'];
  } | null;
  readonly compute: {
    readonly workload: { readonly id: string; readonly name: string; readonly project: string; readonly kind: string };
    readonly producingAttempt: number;
    readonly attempts: readonly Omit<AttemptFacts, 'energyWh' | 'co2g' | 'estimated'>[];
    readonly gpuHours: number;
    readonly gpuHoursByModel: Readonly<Record<string, number>>;
    /** Seconds the attempts ran, summed. */
    readonly trainingTimeSeconds: number;
    readonly firstStart: string | null;
    readonly lastEnd: string | null;
    readonly flops: Flops;
  } | null;
  readonly energy: {
    readonly energyKWh: number;
    readonly co2Kg: number;
    /** measured: every attempt had power samples; estimated: none had; partly-estimated: some. */
    readonly basis: 'measured' | 'estimated' | 'partly-estimated';
    readonly perAttempt: readonly { number: number; energyKWh: number; co2Kg: number; estimated: boolean }[];
    readonly method: string;
  } | null;
  readonly versions: {
    readonly model: VersionFacts;
    readonly datasets: readonly { readonly repo: string; readonly commit: string; readonly verified: boolean }[];
  };
  readonly missing: MissingSection[];
}

/** Nine significant digits: figures people read, not bits that differ by summation order. */
const round = (x: number) => (x === 0 ? 0 : Number(x.toPrecision(9)));

/** Pure: 6·N·D when both are known, else why not. */
export function flopsEstimate(parameters: number | null, trainingTokens: number | null): Flops {
  const base = { method: '6·N·D' as const, parameters, trainingTokens };
  if (!parameters && !trainingTokens)
    return { ...base, estimate: null, unknown: 'parameter count and training tokens are unknown' };
  if (!parameters) return { ...base, estimate: null, unknown: 'the parameter count is unknown (no readable weights)' };
  if (!trainingTokens)
    return {
      ...base,
      estimate: null,
      unknown: 'training tokens are unknown (the producing workload sets no TRAINING_TOKENS)',
    };
  return { ...base, estimate: 6 * parameters * trainingTokens };
}

/** Pure: the document from the facts; sections without records are null and listed in `missing`. */
export function buildAnnexXi(f: AnnexXiFacts): AnnexXiDocument {
  const missing: MissingSection[] = [];
  const general = f.card
    ? {
        card: f.card,
        parameters: f.formats.parameters || null,
        formats: f.formats.formats,
        dtypes: f.formats.dtypes,
        quantization: f.formats.quantization,
      }
    : null;
  if (!general) missing.push({ section: 'general', reason: 'the version has no README.md model card' });

  const p = f.producer;
  const noLineage = 'no lineage: no workload attempt on this platform produced this version';
  const workload = p?.workload;
  let trainingData: AnnexXiDocument['trainingData'] = null;
  if (!p) missing.push({ section: 'trainingData', reason: noLineage });
  else if (f.datasets.length === 0)
    missing.push({
      section: 'trainingData',
      reason: `the producing workload ${p.workloadId} read no dataset versions`,
    });
  else
    trainingData = {
      datasets: f.datasets.map((d) => ({
        repo: d.repo,
        commit: d.commit,
        license: d.card?.license ?? null,
        title: d.card?.title ?? null,
        summary: d.card?.summary ?? null,
        tags: d.card?.tags ?? [],
        files: d.files,
        bytes: d.bytes,
      })),
      inputModels: f.inputModels,
    };

  let compute: AnnexXiDocument['compute'] = null;
  let energy: AnnexXiDocument['energy'] = null;
  const ran = f.attempts.filter((a) => a.startedAt !== '');
  if (!p) {
    missing.push({ section: 'compute', reason: noLineage });
    missing.push({ section: 'energy', reason: noLineage });
  } else if (!workload || ran.length === 0) {
    const why = !workload
      ? `the producing workload ${p.workloadId} is no longer on record`
      : `no attempt of workload ${workload.name} has a start on record`;
    missing.push({ section: 'compute', reason: why });
    missing.push({ section: 'energy', reason: why });
  } else {
    const byModel: Record<string, number> = {};
    let gpuSeconds = 0;
    let seconds = 0;
    for (const a of ran) {
      byModel[a.gpuModel] = (byModel[a.gpuModel] ?? 0) + a.gpuSeconds / 3600;
      gpuSeconds += a.gpuSeconds;
      // An attempt still on record as running (its end not yet observed) counts until now.
      seconds += (Date.parse(a.endedAt || f.generatedAt) - Date.parse(a.startedAt)) / 1000;
    }
    const ends = ran
      .map((a) => a.endedAt)
      .filter(Boolean)
      .sort();
    compute = {
      workload: { id: p.workloadId, name: workload.name, project: workload.project, kind: workload.kind },
      producingAttempt: p.attempt,
      attempts: ran.map(({ energyWh: _e, co2g: _c, estimated: _s, ...a }) => ({
        ...a,
        gpuSeconds: round(a.gpuSeconds),
      })),
      gpuHours: round(gpuSeconds / 3600),
      gpuHoursByModel: Object.fromEntries(Object.entries(byModel).map(([m, h]) => [m, round(h)])),
      trainingTimeSeconds: round(seconds),
      firstStart: ran.map((a) => a.startedAt).sort()[0] ?? null,
      lastEnd: ends[ends.length - 1] ?? null,
      flops: flopsEstimate(f.formats.parameters || null, workload.trainingTokens),
    };
    const estimatedCount = ran.filter((a) => a.estimated).length;
    energy = {
      energyKWh: round(ran.reduce((s, a) => s + a.energyWh, 0) / 1000),
      co2Kg: round(ran.reduce((s, a) => s + a.co2g, 0) / 1000),
      basis: estimatedCount === 0 ? 'measured' : estimatedCount === ran.length ? 'estimated' : 'partly-estimated',
      perAttempt: ran.map((a) => ({
        number: a.number,
        energyKWh: round(a.energyWh / 1000),
        co2Kg: round(a.co2g / 1000),
        estimated: a.estimated,
      })),
      method:
        `GPU power (measured by nvidia-smi/DCGM samples where present, else TDP × ${f.energyMethod.gpuUtilisation} ` +
        `utilisation: estimated) plus the node's share for CPUs, memory and network, × time × PUE ${f.energyMethod.pue}; ` +
        `CO₂ from the grid intensity ${f.energyMethod.grid}`,
    };
  }

  return {
    schema: ANNEX_XI_SCHEMA,
    kind: 'annex-xi',
    generatedAt: f.generatedAt,
    generatedBy: f.generatedBy,
    model: { repo: f.version.repo, revision: f.revision, commit: f.version.commit },
    provider: f.provider,
    general,
    trainingData,
    compute,
    energy,
    versions: {
      model: f.version,
      datasets: f.datasets.map((d) => ({ repo: d.repo, commit: d.commit, verified: d.verification.ok })),
    },
    missing,
  };
}
