// Request and response shapes, declared once. Fastify validates requests with them and
// @fastify/swagger turns them into /openapi.json. Request bodies reject unknown fields.
import { type TSchema, Type as T } from '@sinclair/typebox';
import { ATTEMPT_STATES, END_REASONS, WORKLOAD_STATUSES } from '../domain/workload-states.js';
import { DNS_LABEL_PATTERN } from '../domain/ids.js';
import { BREAK_GLASS_STATES } from '../policy/break-glass.js';
import { ORG_ROLES } from '../policy/roles.js';

const strict = { additionalProperties: false } as const;

export const DnsLabel = T.String({
  pattern: DNS_LABEL_PATTERN,
  minLength: 1,
  maxLength: 63,
  description: 'a DNS label',
});
const DisplayName = T.String({ minLength: 1, maxLength: 200 });
const Role = T.Union(ORG_ROLES.map((r) => T.Literal(r)));
const Time = T.String({ format: 'date-time' });
const Nullable = <S extends TSchema>(s: S) => T.Union([s, T.Null()]);

export const ErrorBody = T.Object(
  {
    error: T.Object({
      code: T.String({ description: 'stable machine-readable code' }),
      message: T.String(),
      details: T.Record(T.String(), T.Unknown()),
    }),
  },
  { $id: 'Error' },
);

export const PageQuery = T.Object(
  {
    limit: T.Optional(T.Integer({ minimum: 1, maximum: 1000, description: 'page size (default 100)' })),
    cursor: T.Optional(T.String({ maxLength: 512, description: 'nextCursor of the previous page' })),
  },
  strict,
);

export const pageOf = <S extends TSchema>(item: S) =>
  T.Object({ items: T.Array(item), nextCursor: Nullable(T.String()) });

// Organizations
export const Org = T.Object({
  id: T.String(),
  name: T.String(),
  displayName: T.String(),
  residency: T.String({ description: "where the org's data must stay: de or eu" }),
  status: T.String(),
  createdAt: Time,
  updatedAt: Time,
});
export const OrgCreate = T.Object(
  { name: DnsLabel, displayName: T.Optional(DisplayName), residency: T.Union([T.Literal('de'), T.Literal('eu')]) },
  strict,
);
export const OrgPatch = T.Object(
  {
    displayName: T.Optional(DisplayName),
    residency: T.Optional(T.Union([T.Literal('de'), T.Literal('eu')])),
    status: T.Optional(T.Union([T.Literal('active'), T.Literal('suspended')])),
  },
  { ...strict, minProperties: 1 },
);

// Projects
export const Project = T.Object({
  id: T.String(),
  org: T.String(),
  name: T.String(),
  ref: T.String({ description: 'org.project' }),
  displayName: T.String(),
  uid: T.Integer({ description: "the project's Unix identity (uid = gid) that its tasks run under" }),
  createdAt: Time,
  updatedAt: Time,
});
export const ProjectCreate = T.Object({ name: DnsLabel, displayName: T.Optional(DisplayName) }, strict);
export const ProjectPatch = T.Object({ displayName: T.Optional(DisplayName) }, { ...strict, minProperties: 1 });

// Users, service accounts, members
export const User = T.Object({ id: T.String(), name: T.String(), operator: T.Boolean(), createdAt: Time });
export const UserCreate = T.Object({ name: DnsLabel, operator: T.Optional(T.Boolean()) }, strict);
export const ServiceAccount = T.Object({
  id: T.String(),
  org: T.String(),
  name: T.String(),
  principal: T.String(),
  createdAt: Time,
});
export const ServiceAccountCreate = T.Object({ name: DnsLabel, role: Role, project: T.Optional(DnsLabel) }, strict);
export const Member = T.Object({
  principal: T.String(),
  kind: T.String(),
  name: T.String(),
  role: T.String(),
  project: Nullable(T.String()),
  createdAt: Time,
});
export const MemberCreate = T.Object(
  { user: T.Optional(DnsLabel), serviceAccount: T.Optional(DnsLabel), role: Role, project: T.Optional(DnsLabel) },
  strict,
);
export const MemberRemoveQuery = T.Object({ project: T.Optional(DnsLabel) }, strict);

// API keys
export const ApiKey = T.Object({
  id: T.String(),
  prefix: T.String(),
  name: T.String(),
  principal: T.String(),
  org: Nullable(T.String()),
  project: Nullable(T.String()),
  state: T.String(),
  createdAt: Time,
  createdBy: T.String(),
  expiresAt: Nullable(Time),
  revokedAt: Nullable(Time),
  lastUsedAt: Nullable(Time),
});
export const CreatedApiKey = T.Intersect([
  ApiKey,
  T.Object({
    token: Nullable(T.String({ description: 'shown once: null when an Idempotency-Key replay answers' })),
    tokenShownOnce: T.Optional(T.Boolean({ description: 'true on a replay: the token was shown only the first time' })),
  }),
]);
const KeyName = T.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9._ -]*$' });
export const KeyCreate = T.Object(
  {
    name: KeyName,
    user: T.Optional(DnsLabel),
    serviceAccount: T.Optional(DnsLabel),
    project: T.Optional(DnsLabel),
    ttlDays: T.Optional(T.Integer({ minimum: 1, maximum: 3650 })),
    expiresAt: T.Optional(Time),
  },
  strict,
);
export const PlatformKeyCreate = T.Object(
  {
    name: KeyName,
    user: DnsLabel,
    ttlDays: T.Optional(T.Integer({ minimum: 1, maximum: 3650 })),
    expiresAt: T.Optional(Time),
  },
  strict,
);

// Quotas
export const Quota = T.Object({
  project: T.String(),
  pool: T.String(),
  guaranteed: T.Integer(),
  limit: T.Integer(),
  used: T.Integer({
    description: "GPUs held now by the project's live attempts in the pool (running or still stopping)",
  }),
  borrowed: T.Integer({
    description: 'GPUs used above guaranteed (borrowed idle capacity): max(0, used − guaranteed)',
  }),
  updatedAt: Time,
});
export const QuotaSet = T.Object(
  {
    guaranteed: T.Integer({ minimum: 0, maximum: 1_000_000 }),
    limit: T.Integer({ minimum: 0, maximum: 1_000_000 }),
  },
  strict,
);

// Fleet
export const Node = T.Object({
  name: T.String(),
  pool: T.String(),
  gpuModel: T.String(),
  gpuCount: T.Integer(),
  gpuMemoryGiB: T.Number(),
  region: T.String(),
  pod: T.String(),
  rack: T.String(),
  ibLeaf: T.String(),
  ibSpine: T.String(),
  cpu: T.Integer(),
  ramGiB: T.Number(),
  labels: T.Record(T.String(), T.String()),
  state: T.String(),
  devGpus: T.Boolean({ description: 'development GPUs of a machine without real ones' }),
  isolation: T.Optional(
    T.String({ description: "how tasks placed here are kept apart: sandbox, uid or none (the executor's level)" }),
  ),
  createdAt: Time,
  updatedAt: Time,
});
export const Pool = T.Object({
  name: T.String(),
  gpuModel: T.String(),
  gpuMemoryGiB: T.Number(),
  nodes: T.Integer(),
  gpus: T.Integer(),
  schedulableGpus: T.Integer(),
  guaranteed: T.Integer({ description: 'GPUs guaranteed to all projects (operators) or to the projects you can see' }),
  devGpus: T.Boolean(),
});
export const FleetApply = T.Object(
  {
    file: T.String({ maxLength: 4_000_000, description: 'the fleet file (YAML or JSON) as text' }),
    source: T.Optional(T.String({ maxLength: 200, description: 'file name used in error messages' })),
    prune: T.Optional(T.Boolean({ description: 'remove nodes the file no longer lists' })),
  },
  strict,
);
export const ApplyResult = T.Object({
  pools: T.Integer(),
  nodes: T.Integer(),
  created: T.Integer(),
  updated: T.Integer(),
  unchanged: T.Integer(),
  pruned: T.Integer(),
  gpus: T.Integer(),
});
export const NodeStatePatch = T.Object(
  { state: T.Union(['ready', 'cordoned', 'draining', 'down'].map((s) => T.Literal(s))) },
  strict,
);

// Audit
export const AuditEntry = T.Object({
  version: T.Optional(
    T.Literal(1, { description: 'entry format version (hashed into the log); absent before the log' }),
  ),
  seq: T.Integer(),
  time: Time,
  orgId: T.String(),
  actor: T.Object({ keyId: T.String(), principal: T.String() }),
  action: T.String(),
  resource: T.String(),
  requestId: T.String(),
  beforeDigest: Nullable(T.String()),
  afterDigest: Nullable(T.String()),
  outcome: T.String(),
  subject: T.Optional(
    T.String({ description: 'whom the change is for, besides the actor (the principal of an API key)' }),
  ),
  suppressed: T.Optional(
    T.Object(
      { count: T.Integer(), since: Time },
      { description: 'on a summary of denials: how many were not recorded one by one' },
    ),
  ),
  policy: T.Optional(
    T.Object(
      {
        hash: T.String(),
        ids: T.Optional(T.Unsafe<readonly string[]>(T.Array(T.String()))),
        version: T.Optional(T.Integer()),
      },
      { description: 'the sovereignty policy set that decided (placement, storage, access) or was loaded' },
    ),
  ),
  location: T.Optional(
    T.Object(
      {
        store: T.String(),
        region: T.String(),
        also: T.Optional(
          T.Unsafe<readonly { store: string; region: string }[]>(
            T.Array(T.Object({ store: T.String(), region: T.String() })),
          ),
        ),
      },
      { description: 'where bytes were written (the first store; the others of the same write under also)' },
    ),
  ),
  breakGlass: T.Optional(
    T.Object(
      { grant: T.String(), reason: T.String() },
      { description: "an operator's break-glass grant: opened, revoked, or used to read the org's data" },
    ),
  ),
  canonical: T.String({ description: 'the entry serialised canonically (RFC 8785)' }),
});

// Break-glass: an operator's access to one org's data, with a reason and an expiry.
export const BreakGlassOpen = T.Object(
  {
    reason: T.String({ minLength: 10, maxLength: 500, description: 'why: the tenant reads it' }),
    expiresIn: T.String({
      minLength: 1,
      maxLength: 20,
      description: 'how long the grant lasts: 30m, 2h, 1h30m (at most 24h)',
    }),
  },
  strict,
);
export const BreakGlassGrant = T.Object({
  id: T.String(),
  org: T.String(),
  principal: T.String({ description: 'the operator it lets in' }),
  reason: T.String(),
  createdAt: Time,
  expiresAt: Time,
  revokedAt: Nullable(Time),
  revokedBy: Nullable(T.String()),
  state: oneOf(BREAK_GLASS_STATES, 'active until expiresAt unless revoked'),
});

export const WhoAmI = T.Object({
  principal: T.String(),
  keyPrefix: T.String(),
  operator: T.Boolean(),
  org: Nullable(T.String()),
  project: Nullable(T.String()),
  grants: T.Array(T.Object({ org: T.String(), project: Nullable(T.String()), role: T.String() })),
});

// Workloads
export const WorkloadSpecBody = T.Object(
  {},
  {
    additionalProperties: true,
    description: 'a workload spec (see docs/workloads.md); validated field by field with paths in errors',
  },
);
/** A string from a fixed list (a typed union end to end: the enum validates, the static type narrows). */
export function oneOf<S extends string>(values: readonly S[], description?: string) {
  return T.Unsafe<S>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });
}

const PlacementSchema = T.Object({
  pod: T.String(),
  nodes: T.Array(T.Object({ node: T.String(), gpuIndexes: T.Array(T.Integer()) })),
  leaves: T.Array(T.String()),
});
export const Workload = T.Object({
  id: T.String(),
  name: T.String(),
  project: T.String(),
  kind: T.String(),
  pool: T.String(),
  priority: T.String(),
  nodes: T.Integer(),
  gpusPerNode: T.Integer(),
  gpus: T.Integer(),
  maxRuntimeS: T.Integer(),
  status: oneOf(WORKLOAD_STATUSES, 'pending, running, succeeded, failed, cancelled or preempted'),
  reason: T.String({ description: 'why pending (QuotaLimit, WaitingForCapacity, …) or the last transition' }),
  message: T.String(),
  estimatedStart: Nullable(Time),
  placement: Nullable(PlacementSchema),
  borrowed: T.Boolean(),
  attempts: T.Integer(),
  preemptions: T.Integer(),
  submittedAt: Time,
  startedAt: Nullable(Time),
  finishedAt: Nullable(Time),
  createdBy: T.String(),
  spec: T.Unknown({ description: 'the validated spec' }),
});
export const Attempt = T.Object({
  number: T.Integer(),
  state: oneOf(ATTEMPT_STATES),
  placement: PlacementSchema,
  pool: T.String(),
  gpuModel: T.String(),
  gpus: T.Integer(),
  executor: T.String(),
  createdAt: Time,
  launchedAt: Nullable(Time),
  startedAt: Nullable(Time),
  stoppingSince: Nullable(Time),
  endedAt: Nullable(Time),
  exitCode: Nullable(T.Integer()),
  endReason: Nullable(oneOf(END_REASONS)),
  message: T.String(),
});
export const WorkloadDetail = T.Intersect([
  Workload,
  T.Object({
    events: T.Array(T.Object({ time: Time, type: T.String(), reason: T.String(), message: T.String() })),
    attemptRecords: T.Array(Attempt, { description: 'every launch: placement, times, exit code, end reason' }),
  }),
]);

// Submit's answer: the workload and what the server noticed about its spec.
export const SubmittedWorkload = T.Intersect([
  Workload,
  T.Object({
    warnings: T.Array(T.String(), {
      description: 'e.g. an env value that looks like a credential; never repeats the value',
    }),
  }),
]);

// Secrets: values go in, never come out of the API.
export const SecretPut = T.Object(
  {
    value: T.String({
      minLength: 1,
      maxLength: 65536,
      description: 'the value (at most 64 KiB, no NUL); stored sealed, never returned',
    }),
  },
  strict,
);
export const Secret = T.Object({
  name: T.String(),
  scope: T.Union([T.Literal('org'), T.Literal('project')]),
  org: T.String(),
  project: Nullable(T.String({ description: 'org.project' })),
  shadowed: T.Boolean({ description: "an org secret hidden by the project's own of that name" }),
  createdAt: Time,
  updatedAt: Time,
  createdBy: T.String(),
  updatedBy: T.String(),
});

// Events (CloudEvents 1.0, structured JSON) and webhooks
const EventCursor = T.Union(
  [
    T.String({ pattern: '^(evt_)?[0-9]{1,15}$', description: 'an event id (evt_123) or its number' }),
    T.Literal('latest', { description: 'the newest event at the moment of the request' }),
  ],
  {
    description:
      'the events after this cursor: an event id (evt_123), its number, or `latest` (only events after the request; the first message of the stream, `event: cursor`, or nextCursor of the page says which cursor that was)',
  },
);
const EventTypes = T.String({
  maxLength: 1000,
  description: 'comma-separated event types, or prefixes such as workload.*; default all',
});
export const CloudEvent = T.Object({
  specversion: T.Literal('1.0'),
  id: T.String({ description: 'evt_<seq>: unique per source, in commit order; also a cursor' }),
  source: T.String(),
  type: T.String({ description: 'e.g. workload.finished (see docs/workloads.md, "Events and webhooks")' }),
  subject: T.String({ description: 'the resource, e.g. projects/acme.train/workloads/finetune' }),
  time: Time,
  datacontenttype: T.Literal('application/json'),
  fabrikorg: T.Optional(T.String({ description: 'the org id (absent for platform events)' })),
  fabrikproject: T.Optional(T.String({ description: 'the project id, where the resource belongs to one' })),
  data: T.Record(T.String(), T.Unknown(), { description: 'the resource after the change (never secret values)' }),
});
export const EventPage = T.Object({
  items: T.Array(CloudEvent),
  nextCursor: T.String({ description: 'pass as after= to continue (also when no event came)' }),
  hasMore: T.Boolean({ description: 'more events are there already' }),
});
export const EventListQuery = T.Object(
  {
    after: T.Optional(EventCursor),
    types: T.Optional(EventTypes),
    limit: T.Optional(T.Integer({ minimum: 1, maximum: 1000, description: 'page size (default 100)' })),
    wait: T.Optional(
      T.Integer({
        minimum: 0,
        maximum: 30,
        description: 'long-poll: seconds to wait for an event when none is there yet (answers as soon as one is)',
      }),
    ),
  },
  strict,
);
export const EventStreamQuery = T.Object(
  {
    after: T.Optional(EventCursor),
    types: T.Optional(EventTypes),
    timeout: T.Optional(
      T.Integer({ minimum: 1, maximum: 600, description: 'end the stream after this many seconds (default 600)' }),
    ),
  },
  strict,
);

export const Webhook = T.Object({
  id: T.String(),
  org: T.String(),
  url: T.String(),
  types: T.Array(T.String(), { description: 'event types (or prefix.*) delivered; empty: all of the org' }),
  description: T.String(),
  createdAt: Time,
  createdBy: T.String(),
  deliveries: T.Object({ pending: T.Integer(), delivered: T.Integer(), failed: T.Integer() }),
});
export const CreatedWebhook = T.Intersect([
  Webhook,
  T.Object({
    secret: Nullable(
      T.String({
        description: 'whsec_…: the signing secret, shown once (null when an Idempotency-Key replay answers)',
      }),
    ),
    secretShownOnce: T.Optional(
      T.Boolean({ description: 'true on a replay: the secret was shown only the first time' }),
    ),
  }),
]);
export const WebhookCreate = T.Object(
  {
    url: T.String({ minLength: 1, maxLength: 2048, description: 'http:// or https:// URL that receives the POSTs' }),
    types: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })),
    description: T.Optional(T.String({ maxLength: 200 })),
  },
  strict,
);
export const WebhookDelivery = T.Object({
  id: T.String(),
  webhook: T.String(),
  event: T.Object({ id: T.String(), type: T.String() }),
  status: T.String({ description: 'pending, delivered or failed (given up)' }),
  attempts: T.Integer(),
  lastStatusCode: Nullable(T.Integer()),
  lastError: Nullable(T.String()),
  nextAttemptAt: Nullable(Time),
  createdAt: Time,
  updatedAt: Time,
  deliveredAt: Nullable(Time),
});

// Registry: models and datasets (docs/registry.md). Names as isRepoName in src/registry/names.ts
// allows them (dots included; the service refuses "..", and a ".git" ending); revisions are a ref
// name or a 40-hex commit id.
export const RepoName = T.String({
  pattern: '^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$',
  minLength: 1,
  maxLength: 96,
  description: 'a model or dataset name: letters, digits, "-", "_", "."',
});
export const Revision = T.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
  minLength: 1,
  maxLength: 128,
  description: 'a branch, a tag, or a 40-hex commit id',
});
const Sha256 = T.String({ description: 'hex SHA-256' });
export const Repo = T.Object({
  id: T.String({ description: '<org>.<project>/<name>' }),
  kind: oneOf(['model', 'dataset'] as const),
  name: T.String(),
  project: T.String({ description: 'org.project' }),
  private: T.Boolean(),
  createdAt: Time,
  createdBy: T.String(),
  updatedAt: Time,
});
export const RepoCreate = T.Object({ name: RepoName }, strict);
export const VersionSummary = T.Object({
  id: T.String({ description: '40-hex commit id' }),
  seq: T.Integer({ description: '1, 2, … per repo' }),
  parent: Nullable(T.String()),
  summary: T.String(),
  files: T.Integer(),
  bytes: T.Integer(),
  createdAt: Time,
  createdBy: T.String(),
  producer: Nullable(T.Object({ workloadId: T.String(), attempt: T.Integer() })),
});
export const RepoListItem = T.Intersect([Repo, T.Object({ latest: Nullable(VersionSummary) })]);
export const Ref = T.Object({
  name: T.String(),
  kind: oneOf(['branch', 'tag'] as const),
  commit: T.String(),
  updatedAt: Time,
  updatedBy: T.String(),
});
export const RefPut = T.Object({ revision: Revision }, strict);
export const ModelCard = T.Object(
  {
    license: T.Optional(T.String()),
    licenseName: T.Optional(T.String()),
    licenseLink: T.Optional(T.String()),
    baseModel: T.Optional(T.Array(T.String())),
    datasets: T.Optional(T.Array(T.String())),
    pipelineTag: T.Optional(T.String()),
    libraryName: T.Optional(T.String()),
    tags: T.Optional(T.Array(T.String())),
    language: T.Optional(T.Array(T.String())),
    evalResults: T.Optional(
      T.Array(
        T.Object({
          task: T.String(),
          dataset: T.String(),
          datasetConfig: T.Optional(T.String()),
          split: T.Optional(T.String()),
          metric: T.String(),
          value: T.Union([T.Number(), T.String()]),
        }),
      ),
    ),
    title: T.Optional(T.String()),
    summary: T.Optional(T.String()),
  },
  { description: "the README.md model card's structured fields" },
);
export const FileFormat = T.Object(
  {
    format: oneOf(['safetensors', 'gguf'] as const),
    tensors: T.Integer(),
    parameters: T.Optional(T.Integer()),
    dtypes: T.Optional(T.Record(T.String(), T.Integer(), { description: 'safetensors: parameters per dtype' })),
    metadata: T.Optional(T.Record(T.String(), T.String())),
    tensorsSample: T.Optional(T.Array(T.Object({ name: T.String(), dtype: T.String(), shape: T.Array(T.Integer()) }))),
    architecture: T.Optional(T.String()),
    name: T.Optional(T.String()),
    contextLength: T.Optional(T.Integer()),
    quantization: T.Optional(T.String({ description: 'GGUF file type, e.g. Q4_K_M' })),
  },
  { description: 'what a weight file header says' },
);
export const FormatsSummary = T.Object({
  parameters: T.Integer(),
  formats: T.Array(T.String()),
  dtypes: T.Record(T.String(), T.Integer()),
  quantization: T.Array(T.String()),
});
export const RepoDetail = T.Intersect([
  Repo,
  T.Object({
    refs: T.Array(Ref),
    latest: Nullable(VersionSummary),
    card: Nullable(ModelCard),
    formats: FormatsSummary,
    storage: T.Object({
      versions: T.Integer(),
      latestBytes: T.Integer(),
      storedBytes: T.Integer({ description: 'distinct contents of all versions' }),
    }),
  }),
]);
export const DsseEnvelope = T.Object(
  {
    payloadType: T.String(),
    payload: T.String({ description: 'base64 of the in-toto statement (model-signing v1.0)' }),
    signatures: T.Array(T.Object({ keyid: T.String(), sig: T.String() })),
  },
  { description: 'DSSE envelope' },
);
const SignatureInfo = T.Object({
  keyid: T.String(),
  platform: T.Boolean({ description: "the platform's signature; others are countersignatures" }),
});
const VerificationFields = {
  ok: T.Boolean(),
  signers: T.Array(T.String(), { description: 'keyids whose signatures verified' }),
  reason: Nullable(T.String({ description: 'why not, when not ok' })),
};
export const VersionDetail = T.Object({
  repo: T.String(),
  kind: oneOf(['model', 'dataset'] as const),
  version: VersionSummary,
  files: T.Array(T.Object({ path: T.String(), size: T.Integer(), sha256: Sha256 })),
  card: Nullable(ModelCard),
  formats: T.Record(T.String(), FileFormat, { description: 'per file path' }),
  formatsSummary: FormatsSummary,
  envelope: DsseEnvelope,
  signatures: T.Array(SignatureInfo),
  verification: T.Object(VerificationFields, { description: "the server's verdict on the platform signature" }),
});
export const VersionVerification = T.Object({
  repo: T.String(),
  kind: oneOf(['model', 'dataset'] as const),
  commit: T.String(),
  signatures: T.Array(SignatureInfo),
  ...VerificationFields,
});
export const Countersign = T.Object(
  {
    keyid: T.String({ pattern: '^[0-9a-f]{64}$', description: 'hex SHA-256 of the DER SPKI of publicKeyPem' }),
    sig: T.String({ minLength: 1, maxLength: 200, description: 'base64 Ed25519 signature over the DSSE PAE' }),
    publicKeyPem: T.String({ minLength: 1, maxLength: 1000, description: 'Ed25519 public key, SPKI PEM' }),
  },
  strict,
);
export const SigningKeyInfo = T.Object({
  keyid: T.String(),
  publicKeyPem: T.String(),
  algorithm: T.Literal('ed25519'),
  format: T.String(),
});
export const LineageQuery = T.Object(
  {
    direction: T.Optional(
      T.Union([T.Literal('up'), T.Literal('down'), T.Literal('both')], {
        description: 'up: what it came from; down: what came of it (default both)',
      }),
    ),
    depth: T.Optional(T.Integer({ minimum: 1, maximum: 20, description: 'hops (default 5)' })),
  },
  strict,
);
export const Lineage = T.Object({
  root: T.String(),
  direction: T.String(),
  depth: T.Integer(),
  nodes: T.Array(
    T.Object({
      key: T.String({ description: '<kind>:<id>, as edges name it' }),
      kind: oneOf(['commit', 'attempt', 'deployment'] as const),
      id: T.String(),
      label: T.String(),
      depth: T.Integer(),
      repo: T.Optional(
        T.Object({
          kind: oneOf(['model', 'dataset'] as const),
          name: T.String(),
          project: T.String(),
          deleted: T.Boolean(),
        }),
      ),
      commit: T.Optional(T.String()),
      workload: T.Optional(T.Object({ id: T.String(), name: T.String(), project: T.String(), status: T.String() })),
      attempt: T.Optional(T.Integer()),
    }),
  ),
  edges: T.Array(T.Object({ from: T.String(), to: T.String() })),
  truncated: T.Boolean(),
});
export const StorageUsage = T.Object({
  project: T.String(),
  limitBytes: Nullable(T.Integer({ description: 'null: no limit' })),
  usedBytes: T.Integer(),
  uploadingBytes: T.Integer({ description: 'open uploads, counted against the limit while they last' }),
});
export const BlobStore = T.Object({
  name: T.String({ description: 'default for the --blob-store store, else its --blob-store-at name' }),
  kind: oneOf(['fs', 's3'] as const),
  region: T.String(),
  country: T.String({ description: "ISO 3166 code read from the region, '' when it names none" }),
  inEU: T.Boolean(),
  default: T.Boolean(),
  location: T.String({ description: 'a directory or s3://bucket/prefix' }),
});
export const BlobStoreList = T.Object({
  items: T.Array(BlobStore, { description: 'in the order uploads try them: the first the policy allows is used' }),
});
export const StorageQuotaSet = T.Object(
  { limitBytes: Nullable(T.Integer({ minimum: 0, description: "null: back to the server's default" })) },
  strict,
);
