// The Cedar schema every sovereignty policy set is validated against, and the policy set a fresh
// site starts with (version 1). Operators replace the policies with `fabrik policy apply`; the
// schema is part of fabrik: it names what the server hands to Cedar (src/policy/sovereignty.ts).

/** What placement, storage and access decisions see. A policy that names anything else is refused at load. */
export const SOVEREIGNTY_SCHEMA = `// fabrik sovereignty schema (Cedar). Entities are built per decision by the server.
entity Org = {
  residency: String,       // "de" or "eu": where the org's data must stay
};
entity Workload = {
  org: String,
  project: String,         // org.project
  residency: String,       // the org's residency
  classification: String,  // public, internal, confidential, restricted
  kind: String,            // training, batch, simulation, interactive, inference
};
entity Node = {
  region: String,          // e.g. eu-de-muc1
  country: String,         // ISO 3166 code read from the region ("de"), "" if none
  inEU: Bool,              // the country is an EU member state
  exclusive: Bool,         // the node is dedicated to one tenant at a time (label exclusive=true)
  pool: String,
  gpuModel: String,
};
entity BlobStore = {
  region: String,
  country: String,
  inEU: Bool,
};
entity Operator;
entity TenantData = {
  org: String,
  residency: String,
  kind: String,            // logs, artifacts, secrets
};
action place appliesTo { principal: Workload, resource: Node };
action store appliesTo { principal: Org, resource: BlobStore };
action access appliesTo {
  principal: Operator,
  resource: TenantData,
  context: { breakGlass: Bool },   // an unexpired, unrevoked break-glass grant for this org
};
`;

/** Version 1 of the policies. Forbid wins over permit; what no policy permits is denied (fail closed). */
export const DEFAULT_POLICIES = `// fabrik sovereignty policies. Every policy needs an @id: decisions and pending reasons name it.

// Placement: work runs only where its org's data may be.
@id("placement")
permit (principal is Workload, action == Action::"place", resource is Node);

// Residency "de": only nodes in Germany. Covers every classification, confidential included.
@id("residency-de")
forbid (principal is Workload, action == Action::"place", resource is Node)
when { principal.residency == "de" && resource.country != "de" };

// Residency "eu": only nodes in an EU member state.
@id("residency-eu")
forbid (principal is Workload, action == Action::"place", resource is Node)
when { principal.residency == "eu" && !resource.inEU };

// Restricted work: only nodes dedicated to one tenant (and residency-matching, above).
@id("restricted-exclusive")
forbid (principal is Workload, action == Action::"place", resource is Node)
when { principal.classification == "restricted" && !resource.exclusive };

// Storage: an org's artifacts are written only to stores where its data may be.
@id("storage")
permit (principal is Org, action == Action::"store", resource is BlobStore);

@id("storage-residency-de")
forbid (principal is Org, action == Action::"store", resource is BlobStore)
when { principal.residency == "de" && resource.country != "de" };

@id("storage-residency-eu")
forbid (principal is Org, action == Action::"store", resource is BlobStore)
when { principal.residency == "eu" && !resource.inEU };

// Access: an operator reaches a tenant's logs, artifacts and secrets only through break-glass.
@id("operator-break-glass")
permit (principal is Operator, action == Action::"access", resource is TenantData)
when { context.breakGlass };
`;
