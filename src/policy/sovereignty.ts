// The three questions sovereignty policies answer, in fabrik's words: may this workload run on
// that node (placement), may this org's bytes go to that store (storage), may this operator reach
// that org's data (access). Pure over a compiled policy set: entities are built here from plain
// facts, decisions come back with the policy ids that made them and the set's hash.
import { type CedarDecision, type CompiledPolicies, decide } from './cedar.js';

/** EU member states (ISO 3166-1 alpha-2, lower case; Greece as "gr"). */
const EU_COUNTRIES = new Set(
  'at be bg hr cy cz dk ee fi fr de gr ie it lv lt lu mt nl pl pt ro sk si es se hu'.split(' '),
);
/** Countries a region name may name besides the EU's (so "ch" is read as Switzerland, outside the EU). */
const OTHER_COUNTRIES = new Set('ch no is li gb uk us ca jp sg au in br'.split(' '));

/** Where a site is when nobody says: a development machine counts as a German site. */
export const DEFAULT_SITE_REGION = 'eu-de-local';

/** The site's region: FABRIK_REGION, else the default. */
export function siteRegion(env: NodeJS.ProcessEnv = process.env): string {
  return env.FABRIK_REGION?.trim() || DEFAULT_SITE_REGION;
}

export interface Jurisdiction {
  /** ISO code read from the region name, '' when it names none. */
  readonly country: string;
  readonly inEU: boolean;
}

/**
 * Where a region lies, read from its name: the first dash-separated part that is a country code
 * (`eu-de-muc1` → de, `de-fra-2` → de, `ch-zrh` → ch). A region that names no country (`local`)
 * lies nowhere, so residency-bound work is never placed there: name regions for where they are.
 */
export function jurisdictionOf(region: string): Jurisdiction {
  for (const part of region.toLowerCase().split('-')) {
    if (EU_COUNTRIES.has(part)) return { country: part, inEU: true };
    if (OTHER_COUNTRIES.has(part)) return { country: part === 'uk' ? 'gb' : part, inEU: false };
  }
  return { country: '', inEU: false };
}

export interface PolicyVerdict {
  readonly allowed: boolean;
  readonly policyIds: readonly string[];
  /** Hash of the policy set that decided. */
  readonly policyHash: string;
  readonly error?: string;
}

const verdict = (p: CompiledPolicies, d: CedarDecision): PolicyVerdict => ({
  allowed: d.allowed,
  policyIds: d.policyIds,
  policyHash: p.hash,
  ...(d.error ? { error: d.error } : {}),
});

/** Who asks for placement: the workload's facts that policies may read. */
export interface PlacementSubject {
  readonly org: string;
  /** `org.project`. */
  readonly project: string;
  readonly residency: string;
  readonly classification: string;
  readonly kind: string;
}

/** A node's facts that policies may read. Not its name: decisions are shared by nodes alike. */
export interface NodeFacts {
  readonly region: string;
  readonly pool: string;
  readonly gpuModel: string;
  readonly exclusive: boolean;
}

/** Identifies a kind of workload: subjects with the same key get the same decisions. */
export const subjectKey = (s: PlacementSubject) => `${s.org}|${s.project}|${s.residency}|${s.classification}|${s.kind}`;
/** Identifies a kind of node: what placement policies may read of it. */
export const nodeKey = (n: NodeFacts) => `${n.region}|${n.pool}|${n.gpuModel}|${n.exclusive ? 1 : 0}`;

/** Whether a node is dedicated to one tenant: the fleet marks it with the label `exclusive: "true"`. */
export function nodeIsExclusive(labels: Readonly<Record<string, string>>): boolean {
  return labels.exclusive === 'true';
}

export function decidePlacement(p: CompiledPolicies, s: PlacementSubject, n: NodeFacts): PolicyVerdict {
  const where = jurisdictionOf(n.region);
  return verdict(
    p,
    decide(p, {
      principal: { type: 'Workload', id: subjectKey(s), attrs: { ...s } },
      action: 'place',
      resource: {
        type: 'Node',
        id: nodeKey(n),
        attrs: {
          region: n.region,
          country: where.country,
          inEU: where.inEU,
          exclusive: n.exclusive,
          pool: n.pool,
          gpuModel: n.gpuModel,
        },
      },
    }),
  );
}

export function decideStorage(
  p: CompiledPolicies,
  org: { name: string; residency: string },
  storeRegion: string,
): PolicyVerdict {
  const where = jurisdictionOf(storeRegion);
  return verdict(
    p,
    decide(p, {
      principal: { type: 'Org', id: org.name, attrs: { residency: org.residency } },
      action: 'store',
      resource: { type: 'BlobStore', id: storeRegion, attrs: { region: storeRegion, ...where } },
    }),
  );
}

export type TenantDataKind = 'logs' | 'artifacts' | 'secrets';

export function decideOperatorAccess(
  p: CompiledPolicies,
  operator: string,
  org: { name: string; residency: string },
  kind: TenantDataKind,
  breakGlass: boolean,
): PolicyVerdict {
  return verdict(
    p,
    decide(p, {
      principal: { type: 'Operator', id: operator, attrs: {} },
      action: 'access',
      resource: {
        type: 'TenantData',
        id: `${org.name}/${kind}`,
        attrs: { org: org.name, residency: org.residency, kind },
      },
      context: { breakGlass },
    }),
  );
}

/**
 * Placement decisions for many workloads over many nodes, shared by workloads and nodes alike
 * (a cycle asks a few classes × a few node kinds, not every pair). One memo per policy set.
 */
export class PlacementMemo {
  private readonly memo = new Map<string, PolicyVerdict>();
  constructor(readonly policies: CompiledPolicies) {}

  decide(s: PlacementSubject, n: NodeFacts): PolicyVerdict {
    const key = `${subjectKey(s)}#${nodeKey(n)}`;
    let v = this.memo.get(key);
    if (!v) {
      if (this.memo.size >= 200_000) this.memo.clear();
      v = decidePlacement(this.policies, s, n);
      this.memo.set(key, v);
    }
    return v;
  }
}
