// Request and response shapes of the inference routes (deployments, limits, token usage), declared
// once: fastify validates with them and /openapi.json shows them. Bodies reject unknown fields;
// what a shape cannot say (one model source, a range, a readable GGUF) the services check.
import { type TSchema, Type as T } from '@sinclair/typebox';
import { REPLICA_STATES, RUNTIMES } from '../domain/inference-states.js';
import { WORKLOAD_STATUSES } from '../domain/workload-states.js';
import { MAX_MONTHLY_TOKENS, MAX_PER_MINUTE } from '../inference/limits.js';
import { USAGE_GROUPS } from '../inference/usage.js';
import { DnsLabel, oneOf } from './schemas.js';

const strict = { additionalProperties: false } as const;
const Time = T.String({ format: 'date-time' });
const Nullable = <S extends TSchema>(s: S) => T.Union([s, T.Null()]);

const ReplicaRange = T.String({
  minLength: 1,
  maxLength: 20,
  description: 'a count ("2") or a range min..max ("1..8"); min 0 scales to zero when idle',
});

export const DeployBody = T.Object(
  {
    name: DnsLabel,
    model: T.Optional(
      T.String({ minLength: 1, maxLength: 300, description: 'a registry model: org.project/name[:revision]' }),
    ),
    modelPath: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 4096,
        description: "an absolute path of a GGUF file on the server's machine (local executor only)",
      }),
    ),
    runtime: T.Optional(
      T.Union(
        RUNTIMES.map((r) => T.Literal(r)),
        { description: 'llamacpp (default), vllm, or external (an upstream URL)' },
      ),
    ),
    upstreamUrl: T.Optional(
      T.String({ minLength: 1, maxLength: 2048, description: "external: the OpenAI-compatible upstream's base URL" }),
    ),
    gpu: T.Optional(
      T.Union([T.Integer({ minimum: 0, maximum: 64 }), T.String({ minLength: 1, maxLength: 100 })], {
        description: 'GPUs per replica: a count, a GPU model, or MODEL:COUNT such as "B200:2" (default 1)',
      }),
    ),
    replicas: T.Optional(ReplicaRange),
    contextSize: T.Optional(T.Integer({ minimum: 128, maximum: 1_048_576, description: 'tokens (default 2048)' })),
    threads: T.Optional(T.Integer({ minimum: 1, maximum: 256, description: 'CPU threads per replica (default 2)' })),
    parallel: T.Optional(
      T.Integer({ minimum: 1, maximum: 256, description: 'requests a replica answers at once (default 2)' }),
    ),
    aliases: T.Optional(
      T.Array(T.String({ minLength: 1, maxLength: 128 }), {
        maxItems: 16,
        description: 'more names applications may send as `model`',
      }),
    ),
    targetInflight: T.Optional(
      T.Integer({ minimum: 1, maximum: 10_000, description: 'in-flight requests per replica the autoscaler aims at' }),
    ),
    idleTimeoutS: T.Optional(
      T.Integer({ minimum: 1, maximum: 604_800, description: 'idle seconds before scaling to min (default 300)' }),
    ),
    storePrompts: T.Optional(T.Boolean({ description: 'keep prompts and completions (off by default)' })),
  },
  strict,
);

export const ScaleBody = T.Object({ replicas: ReplicaRange }, strict);

export const Replica = T.Object({
  id: T.String(),
  deploymentId: T.String(),
  ordinal: T.Integer(),
  state: oneOf(REPLICA_STATES),
  message: T.String(),
  workload: T.String({ description: "the serving workload's name ('' before it exists)" }),
  workloadId: T.String(),
  workloadStatus: T.Union([oneOf(WORKLOAD_STATUSES), T.Literal('')]),
  attempt: T.Integer(),
  node: T.String(),
  endpoint: T.String({ description: "http://host:port where it listens ('' until placed)" }),
  readyAt: Nullable(Time),
  createdAt: Time,
});

export const Deployment = T.Object({
  id: T.String(),
  name: T.String({ description: 'the `model` applications ask for' }),
  project: T.String({ description: 'org.project' }),
  aliases: T.Array(T.String()),
  runtime: oneOf(RUNTIMES),
  model: Nullable(T.Object({ repo: T.String(), revision: T.String(), commit: T.String() })),
  modelPath: Nullable(T.String()),
  upstreamUrl: Nullable(T.String()),
  gpu: T.Object({ model: Nullable(T.String()), perReplica: T.Integer() }),
  replicas: T.Object({
    min: T.Integer(),
    max: T.Integer(),
    desired: T.Integer(),
    ready: T.Integer(),
    total: T.Integer(),
  }),
  contextSize: T.Integer(),
  threads: T.Integer(),
  parallel: T.Integer(),
  targetInflight: T.Integer(),
  idleTimeoutS: T.Integer(),
  storePrompts: T.Boolean(),
  replicaList: T.Array(Replica),
  load: T.Optional(
    T.Object(
      {
        inflight: T.Integer({ description: 'requests being answered now, over every gateway' }),
        queued: T.Integer({ description: 'requests held for want of a ready replica' }),
        lastRequestAt: T.Union([T.Integer(), T.Null()], { description: 'Unix ms of the newest request' }),
      },
      { description: 'what the gateways report (each every second); absent in listings' },
    ),
  ),
  createdAt: Time,
  createdBy: T.String(),
  updatedAt: Time,
  deletedAt: T.Optional(Time),
});

export const DeploymentList = T.Object({ items: T.Array(Deployment) });

const perMinute = (description: string) => T.Integer({ minimum: 0, maximum: MAX_PER_MINUTE, description });
export const LimitsPut = T.Object(
  {
    rpm: T.Optional(perMinute('requests per minute; 0 removes the limit')),
    tpm: T.Optional(perMinute('tokens (in + out) per minute; 0 removes the limit')),
    monthlyTokens: T.Optional(
      T.Integer({
        minimum: 0,
        maximum: MAX_MONTHLY_TOKENS,
        description: 'project only: tokens per calendar month (UTC); 0 removes the budget',
      }),
    ),
    key: T.Optional(
      T.String({ minLength: 1, maxLength: 100, description: "an API key's prefix or id: limits of that key instead" }),
    ),
  },
  strict,
);
export const LimitsDeleteQuery = T.Object(
  { key: T.Optional(T.String({ minLength: 1, maxLength: 100, description: "an API key's prefix or id" })) },
  strict,
);
const LimitFields = {
  rpm: Nullable(T.Integer({ description: 'null: no limit' })),
  tpm: Nullable(T.Integer()),
  monthlyTokens: Nullable(T.Integer()),
  updatedAt: Time,
};
export const InferenceLimits = T.Object({
  project: T.String(),
  limits: Nullable(T.Object(LimitFields, { description: "the project's own limits; null when none are set" })),
  keys: T.Array(
    T.Object({
      keyId: T.String(),
      keyPrefix: T.String(),
      keyName: T.String(),
      principal: T.String(),
      ...LimitFields,
    }),
  ),
  monthTokens: T.Integer({ description: 'tokens used this calendar month (UTC)' }),
  monthStart: Time,
});

const TimeArg = T.String({ minLength: 1, maxLength: 40, description: 'RFC 3339, or a duration ago: 30m, 24h, 7d' });
export const UsageQuery = T.Object(
  {
    since: T.Optional(TimeArg),
    until: T.Optional(TimeArg),
    deployment: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 63,
        description: "only this deployment's usage: its name (a live deployment) or its id (dep_…, deleted ones too)",
      }),
    ),
    by: T.Optional(
      T.Union(
        USAGE_GROUPS.map((g) => T.Literal(g)),
        { description: 'deployment (default), key, replica, minute, hour or day' },
      ),
    ),
  },
  strict,
);
const UsageTotals = {
  requests: T.Integer(),
  errors: T.Integer(),
  tokensIn: T.Integer(),
  tokensOut: T.Integer(),
  meanTtftMs: Nullable(T.Number({ description: 'mean time to the first byte, ms' })),
  tokensPerSec: Nullable(T.Number({ description: 'output tokens per second of answering time' })),
};
export const TokenUsage = T.Object({
  project: T.String(),
  since: Time,
  until: Time,
  by: oneOf(USAGE_GROUPS),
  rows: T.Array(
    T.Object({
      group: T.String({ description: "deployment name, key prefix, replica's workload, or the bucket's start" }),
      id: Nullable(T.String()),
      deployment: T.Optional(T.String()),
      ...UsageTotals,
    }),
  ),
  totals: T.Object(UsageTotals),
  deployment: T.Optional(T.Object({ id: T.String(), name: T.String() }, { description: 'the deployment asked for' })),
  truncated: T.Boolean(),
});
