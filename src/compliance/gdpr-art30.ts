// GDPR Art. 30 records of processing of one org, built from the records only (pure: facts in,
// document out): the controller (the org), the platform as processor, the org's projects and what
// they process, the datasets tagged as personal data, residency and the sovereignty policy set in
// force, where the bytes are (blob stores and their regions) and where compute ran, the configured
// sub-processors, retention periods, and who has access (memberships and service accounts).
//
// The personal-data rule: a dataset holds personal data when a version of it still stored has a
// README.md card whose `tags` include `personal-data` (case-insensitive). Only the tag decides;
// nothing is guessed from names or contents.
import type { Subprocessor } from './subprocessors.js';

export const GDPR_ART30_SCHEMA = 'fabrik.compliance/gdpr-art30/v1';
export const PERSONAL_DATA_TAG = 'personal-data';

/** Pure: whether a card's tags mark personal data. */
export function tagsPersonalData(tags: readonly string[] | undefined): boolean {
  return (tags ?? []).some((t) => t.trim().toLowerCase() === PERSONAL_DATA_TAG);
}

export interface DatasetVersionFacts {
  readonly project: string;
  readonly name: string;
  readonly commit: string;
  readonly createdAt: string;
  readonly tags: readonly string[];
  readonly license: string | null;
  readonly bytes: number;
  /** Blob stores holding this version's files: label and region. */
  readonly stores: readonly { readonly store: string; readonly region: string }[];
}

export interface GdprFacts {
  readonly generatedAt: string;
  readonly generatedBy: string;
  readonly org: {
    readonly name: string;
    readonly displayName: string;
    readonly residency: string;
    readonly createdAt: string;
  };
  readonly site: { readonly region: string; readonly country: string; readonly inEU: boolean };
  readonly policy: { readonly hash: string } | null;
  readonly projects: readonly {
    readonly name: string;
    readonly displayName: string;
    readonly createdAt: string;
    readonly workloads: Readonly<Record<string, number>>;
    readonly models: number;
    readonly datasets: number;
    readonly deployments: readonly { readonly name: string; readonly storesPrompts: boolean }[];
  }[];
  readonly datasetVersions: readonly DatasetVersionFacts[];
  readonly storage: readonly {
    readonly store: string;
    readonly kind: string;
    readonly region: string;
    readonly country: string;
    readonly inEU: boolean;
    readonly objects: number;
    readonly bytes: number;
  }[];
  readonly compute: readonly { readonly pool: string; readonly regions: readonly string[] }[];
  readonly subprocessors: readonly Subprocessor[];
  readonly retention: readonly { readonly what: string; readonly period: string }[];
  readonly members: readonly {
    readonly principal: string;
    readonly kind: string;
    readonly role: string;
    readonly scope: string;
  }[];
  readonly serviceAccounts: readonly {
    readonly name: string;
    readonly createdAt: string;
    readonly activeKeys: number;
  }[];
  readonly breakGlass: { readonly grants: number; readonly active: number };
}

export interface GdprArt30Document {
  readonly schema: typeof GDPR_ART30_SCHEMA;
  readonly kind: 'gdpr-art30';
  readonly generatedAt: string;
  readonly generatedBy: string;
  readonly controller: GdprFacts['org'];
  readonly processor: { readonly role: string; readonly site: GdprFacts['site'] };
  readonly residency: { readonly org: string; readonly policyHash: string | null };
  readonly projects: GdprFacts['projects'];
  readonly personalData: {
    readonly rule: string;
    readonly datasets: readonly {
      readonly repo: string;
      readonly license: string | null;
      readonly tags: readonly string[];
      readonly versions: readonly { readonly commit: string; readonly createdAt: string; readonly bytes: number }[];
      readonly stores: readonly { readonly store: string; readonly region: string }[];
    }[];
  };
  readonly storageLocations: GdprFacts['storage'];
  readonly processingLocations: GdprFacts['compute'];
  readonly subprocessors: readonly Subprocessor[];
  readonly retention: GdprFacts['retention'];
  readonly access: {
    readonly members: GdprFacts['members'];
    readonly serviceAccounts: GdprFacts['serviceAccounts'];
    readonly breakGlass: GdprFacts['breakGlass'];
  };
  /** What the records leave open, said rather than filled in. */
  readonly notes: string[];
}

/** Pure: the document from the facts. */
export function buildGdprArt30(f: GdprFacts): GdprArt30Document {
  const byRepo = new Map<string, DatasetVersionFacts[]>();
  for (const v of f.datasetVersions) {
    if (!tagsPersonalData(v.tags)) continue;
    const key = `${v.project}/${v.name}`;
    byRepo.set(key, [...(byRepo.get(key) ?? []), v]);
  }
  const datasets = [...byRepo]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([repo, versions]) => {
      const sorted = [...versions].sort(
        (a, b) => a.createdAt.localeCompare(b.createdAt) || a.commit.localeCompare(b.commit),
      );
      const latest = sorted[sorted.length - 1]!;
      const stores = new Map<string, { store: string; region: string }>();
      for (const v of sorted) for (const s of v.stores) stores.set(`${s.store}\0${s.region}`, s);
      return {
        repo,
        license: latest.license,
        tags: latest.tags,
        versions: sorted.map((v) => ({ commit: v.commit, createdAt: v.createdAt, bytes: v.bytes })),
        stores: [...stores.values()].sort((a, b) => a.store.localeCompare(b.store)),
      };
    });
  const notes: string[] = [];
  if (f.subprocessors.length === 0) notes.push('no sub-processors are configured on this site (FABRIK_SUBPROCESSORS)');
  if (datasets.length === 0) notes.push(`no dataset version of this org is tagged ${PERSONAL_DATA_TAG}`);
  const prompts = f.projects.flatMap((p) =>
    p.deployments.filter((d) => d.storesPrompts).map((d) => `${p.name}/${d.name}`),
  );
  if (prompts.length > 0)
    notes.push(`deployments that store prompts and completions (may hold personal data): ${prompts.join(', ')}`);
  if (!f.policy) notes.push('no sovereignty policy set could be read: storage and placement are closed');
  return {
    schema: GDPR_ART30_SCHEMA,
    kind: 'gdpr-art30',
    generatedAt: f.generatedAt,
    generatedBy: f.generatedBy,
    controller: f.org,
    processor: {
      role: 'the platform operator of this fabrik site, processing on behalf of the controller',
      site: f.site,
    },
    residency: { org: f.org.residency, policyHash: f.policy?.hash ?? null },
    projects: f.projects,
    personalData: {
      rule: `a dataset version whose README.md card tags include "${PERSONAL_DATA_TAG}"`,
      datasets,
    },
    storageLocations: f.storage,
    processingLocations: f.compute,
    subprocessors: f.subprocessors,
    retention: f.retention,
    access: { members: f.members, serviceAccounts: f.serviceAccounts, breakGlass: f.breakGlass },
    notes,
  };
}
