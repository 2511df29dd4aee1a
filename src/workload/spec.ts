// Workload specs: what `fabrik apply -f job.yaml` reads and `POST /api/v1/projects/{project}/workloads`
// receives. One reader for both (YAML/JSON text or a parsed body), so client and server agree.
//
//   kind: training
//   name: llama3-ft
//   resources: { gpu: "B200:8", nodes: 2, cpu: 64+, memory: 1TiB+ }
//   priority: normal
//   max_duration: 24h
//   env: { HF_HOME: /cache, WANDB_API_KEY: { secret: wandb } }
//   setup: pip install -r requirements.txt
//   run: torchrun --nnodes=$FABRIK_NUM_NODES --node_rank=$FABRIK_NODE_RANK train.py
//   inputs: [{ model: acme.vision/base:v1, path: /models/base }, { dataset: acme.vision/corpus, path: /data/corpus }]
//   outputs: [{ model: acme.vision/llama-ft, from: out/ }]
//   code: { dataset: acme.vision/trainer:v2 }
//
// Bad values are rejected here, at submit time, with the field path: never left pending forever.
import { durationSeconds } from '../domain/duration.js';
import {
  bool,
  describeValue,
  dnsLabel,
  fail,
  formatPath,
  formatProblem,
  InputProblem,
  integer,
  isRecord,
  labelMap,
  list,
  oneOf,
  type ParsedText,
  type Path,
  parseYamlText,
  record,
  string,
} from '../domain/input.js';
import type { PoolSpec } from '../fleet/fleet-file.js';
import { AppError } from '../domain/errors.js';
import { COMMIT_ID, DEFAULT_BRANCH, isRefName, parseVersionRef, pathProblem, repoIdText } from '../registry/names.js';
import type { RepoKind } from '../store/schema.js';
import { type EnvValue, readEnv } from './env.js';
import {
  PRIORITY_CLASSES,
  type PriorityClass,
  WORKLOAD_KINDS,
  type WorkloadKind,
  type WorkloadRequest,
} from '../scheduler/types.js';

export { type EnvValue, type SecretRef, envWarnings, isSecretRef, literalEnv, secretRefs } from './env.js';

export const CLASSIFICATIONS = ['public', 'internal', 'confidential', 'restricted'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

export interface WorkloadSpec {
  readonly kind: WorkloadKind;
  readonly name: string;
  readonly project?: string;
  /** Resolved from `resources.pool` or the GPU model when pools were given to the parser. */
  readonly pool?: string;
  /** As the pool names it (e.g. "RTX PRO 6000"); absent when any model will do. */
  readonly gpuModel?: string;
  readonly gpusPerNode: number;
  readonly nodes: number;
  /** Minimum CPUs per node. */
  readonly cpu?: number;
  /** Minimum memory per node, GiB (rounded up). */
  readonly memoryGiB?: number;
  readonly priority: PriorityClass;
  readonly maxDurationS: number;
  /** Literal values and `{secret: NAME}` references; references are resolved only at launch. */
  readonly env: Record<string, EnvValue>;
  readonly run?: string;
  readonly setup?: string;
  readonly workdir?: string;
  /** Put back in the queue after preemption or node failure instead of failing. */
  readonly requeue: boolean;
  readonly retries: number;
  /** Seconds between SIGTERM and SIGKILL. */
  readonly gracePeriodS: number;
  readonly nodeSelector: Record<string, string>;
  readonly exclusive: boolean;
  readonly classification: Classification;
  /** Registry versions mounted read-only into every task; absent when none. */
  readonly inputs?: readonly InputSpec[];
  /** Directories of the work directory published as new versions when an attempt succeeds. */
  readonly outputs?: readonly OutputSpec[];
  /** A registry version whose files are copied into the work directory before the first task. */
  readonly code?: ArtifactRef;
  /**
   * Set only by the system, never read from a spec (unknown fields are refused): host paths shown
   * read-only in the task after the registry inputs, e.g. a serving replica's runtime and local model.
   */
  readonly hostMounts?: readonly { readonly source: string; readonly target: string }[];
}

/** A version of a model or dataset as a spec names it. */
export interface ArtifactRef {
  readonly kind: RepoKind;
  /** `<org>.<project>/<name>` */
  readonly repo: string;
  /** As written (a branch, a tag or a commit id; default main). */
  readonly revision: string;
  /** The 40-hex commit the revision named at submit: what the workload uses, whatever refs do later. */
  readonly commit?: string;
}

export interface InputSpec extends ArtifactRef {
  /** Absolute path inside the task's filesystem where the version's files are shown read-only. */
  readonly path: string;
}

export interface OutputSpec {
  readonly kind: RepoKind;
  readonly repo: string;
  /** Relative to the workload's work directory ($FABRIK_WORKLOAD_DIR): a directory or one file. */
  readonly from: string;
  readonly branch: string;
}

export class WorkloadSpecError extends Error {
  readonly code = 'SPEC_INVALID';
  readonly status = 400;
  constructor(
    message: string,
    /** Field path, e.g. `resources.gpu`; empty for the whole spec. */
    readonly path: string,
    readonly source?: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'WorkloadSpecError';
  }
}

export interface ParseWorkloadOptions {
  /** Pools of the fleet; without them (e.g. on the client) pool and model are checked only for form. */
  readonly pools?: readonly PoolSpec[];
  /** Per pool: node count and GPUs per node, to reject requests no pool could ever hold. */
  readonly capacity?: Readonly<Record<string, { readonly nodes: number; readonly gpusPerNode: number }>>;
  /** File name (or "request body") used in messages. */
  readonly source?: string;
}

/** Simulation and digital twins go to the RTX PRO pool unless the spec names a GPU or a pool. */
export const SIMULATION_POOL = 'rtxpro6000';

const DAY = 86_400;
export const MAX_DURATION_S = 30 * DAY;
const MAX_GRACE_S = 3600;
const MAX_NODES = 1000;
const MAX_GPUS_PER_NODE = 16;
const MAX_CPU = 4096;
const MAX_MEMORY_GIB = 65_536;
const MAX_SCRIPT = 64 * 1024;
const MAX_TEXT_BYTES = 256 * 1024;

/** When the spec says nothing: serving replicas run long, notebooks a working day. */
const DEFAULT_MAX_DURATION_S: Record<WorkloadKind, number> = {
  training: 3 * DAY,
  batch: DAY,
  simulation: DAY,
  interactive: 8 * 3600,
  inference: MAX_DURATION_S,
};

/** Kinds that may leave out `run`: a notebook holds its GPUs; a serving replica's runtime supplies the command. */
const RUN_OPTIONAL: readonly WorkloadKind[] = ['interactive', 'inference'];

const FIELDS = [
  'kind',
  'name',
  'project',
  'resources',
  'priority',
  'max_duration',
  'env',
  'setup',
  'run',
  'workdir',
  'requeue',
  'retries',
  'grace_period',
  'node_selector',
  'exclusive',
  'classification',
  'inputs',
  'outputs',
  'code',
];
const RESOURCE_FIELDS = ['gpu', 'nodes', 'cpu', 'memory', 'pool'];

/** Reads a spec; the second argument is the options or just the source name. Throws WorkloadSpecError. */
export function parseWorkloadSpec(input: string | object, options: ParseWorkloadOptions | string = {}): WorkloadSpec {
  const opts: ParseWorkloadOptions = typeof options === 'string' ? { source: options } : options;
  let parsed: ParsedText | undefined;
  try {
    let value: unknown = input;
    if (typeof input === 'string') {
      if (input.length > MAX_TEXT_BYTES) fail([], `spec is larger than ${MAX_TEXT_BYTES / 1024} KiB`);
      parsed = parseYamlText(input);
      value = parsed.value;
    }
    return readSpec(value, opts);
  } catch (e) {
    if (!(e instanceof InputProblem)) throw e;
    const pos = e.position ?? parsed?.locate(e.path, e.atKey);
    const source = opts.source ?? (parsed ? 'spec' : undefined);
    throw new WorkloadSpecError(
      formatProblem(source, pos, e.path, e.message),
      formatPath(e.path),
      source,
      pos?.line,
      pos?.column,
    );
  }
}

function readSpec(value: unknown, opts: ParseWorkloadOptions): WorkloadSpec {
  if (value === null || value === undefined) fail([], 'the spec is empty; expected at least kind, name and run');
  if (isRecord(value) && 'pool' in value) fail(['pool'], 'unknown field "pool"; did you mean "resources.pool"?', true);
  const s = record(value, [], FIELDS, ['kind', 'name']);
  const kind = oneOf(s.kind, ['kind'], WORKLOAD_KINDS);
  if (s.run === undefined && !RUN_OPTIONAL.includes(kind)) {
    fail([], `missing required field "run" (the command a ${kind} workload runs)`);
  }
  const name = dnsLabel(s.name, ['name']);
  const project = s.project === undefined ? undefined : dnsLabel(s.project, ['project'], 'project');

  const res = s.resources === undefined ? {} : record(s.resources, ['resources'], RESOURCE_FIELDS);
  const gpu = readGpu(res.gpu);
  const nodes = res.nodes === undefined ? 1 : integer(res.nodes, ['resources', 'nodes'], 1, MAX_NODES);
  const cpu = res.cpu === undefined ? undefined : readAtLeast(res.cpu, ['resources', 'cpu'], MAX_CPU);
  const memoryGiB = res.memory === undefined ? undefined : readMemory(res.memory, ['resources', 'memory']);
  const { pool, gpuModel } = resolvePool(kind, gpu.model, res.pool, opts.pools);
  if (pool !== undefined) checkCapacity(pool, gpu.count, nodes, opts.capacity);

  const priority =
    s.priority === undefined
      ? kind === 'inference'
        ? 'critical'
        : 'normal'
      : oneOf(s.priority, ['priority'], PRIORITY_CLASSES);
  if (priority === 'critical' && kind !== 'inference') {
    fail(['priority'], 'critical is reserved for inference replicas; use high, normal or preemptible');
  }
  const maxDurationS =
    s.max_duration === undefined
      ? DEFAULT_MAX_DURATION_S[kind]
      : readDuration(s.max_duration, ['max_duration'], 1, MAX_DURATION_S);

  return {
    kind,
    name,
    ...(project === undefined ? {} : { project }),
    ...(pool === undefined ? {} : { pool }),
    ...(gpuModel === undefined ? {} : { gpuModel }),
    gpusPerNode: gpu.count,
    nodes,
    ...(cpu === undefined ? {} : { cpu }),
    ...(memoryGiB === undefined ? {} : { memoryGiB }),
    priority,
    maxDurationS,
    env: s.env === undefined ? {} : readEnv(s.env),
    ...(s.run === undefined ? {} : { run: string(s.run, ['run'], MAX_SCRIPT) }),
    ...(s.setup === undefined ? {} : { setup: string(s.setup, ['setup'], MAX_SCRIPT) }),
    ...(s.workdir === undefined ? {} : { workdir: string(s.workdir, ['workdir'], 4096) }),
    requeue: s.requeue === undefined ? false : bool(s.requeue, ['requeue']),
    retries: s.retries === undefined ? 0 : integer(s.retries, ['retries'], 0, 10),
    gracePeriodS: s.grace_period === undefined ? 30 : readDuration(s.grace_period, ['grace_period'], 0, MAX_GRACE_S),
    nodeSelector: s.node_selector === undefined ? {} : labelMap(s.node_selector, ['node_selector']),
    exclusive: s.exclusive === undefined ? false : bool(s.exclusive, ['exclusive']),
    classification:
      s.classification === undefined ? 'internal' : oneOf(s.classification, ['classification'], CLASSIFICATIONS),
    ...(s.inputs === undefined ? {} : { inputs: readInputs(s.inputs) }),
    ...(s.outputs === undefined ? {} : { outputs: readOutputs(s.outputs) }),
    ...(s.code === undefined ? {} : { code: readCode(s.code, s.workdir !== undefined) }),
  };
}

// ---- Registry artifacts -----------------------------------------------------------------------

const MAX_INPUTS = 32;
const MAX_OUTPUTS = 16;
const MAX_MOUNT_PATH = 1024;
/** Task paths an input may not take: the kernel's, the sandbox's own, and the read-only system. */
const RESERVED_MOUNT_ROOTS = ['/proc', '/dev', '/sys'];
const SYSTEM_MOUNT_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];
const WHOLE_ONLY = ['/tmp', '/run'];

/** `{model: ref}` or `{dataset: ref}` (exactly one), plus `fields`; the ref parsed. */
function readArtifactRef(
  v: unknown,
  path: Path,
  fields: readonly string[],
  required: readonly string[],
): { ref: ArtifactRef; rest: Record<string, unknown> } {
  const r = record(v, path, ['model', 'dataset', ...fields], required);
  const kinds = (['model', 'dataset'] as const).filter((k) => r[k] !== undefined);
  if (kinds.length !== 1) {
    fail(
      path,
      kinds.length === 0
        ? 'name a model or a dataset: {model: <org>.<project>/<name>[:<rev>]}'
        : 'name either a model or a dataset, not both',
    );
  }
  const kind = kinds[0]!;
  const text = string(r[kind], [...path, kind], 300);
  let parsed: ReturnType<typeof parseVersionRef>;
  try {
    parsed = parseVersionRef(text, kind);
  } catch (err) {
    if (err instanceof AppError) fail([...path, kind], `${err.message} (expected <org>.<project>/<name>[:<revision>])`);
    throw err;
  }
  if (parsed.kind !== kind) fail([...path, kind], `"${text}" names a ${parsed.kind}; use the ${parsed.kind} field`);
  const ref: ArtifactRef = { kind, repo: repoIdText(parsed), revision: parsed.revision };
  return { ref, rest: r };
}

function readInputs(v: unknown): InputSpec[] {
  const items = list(v, ['inputs'], 0, MAX_INPUTS);
  const out: InputSpec[] = [];
  items.forEach((item, i) => {
    const path: Path = ['inputs', i];
    const { ref, rest } = readArtifactRef(item, path, ['path'], ['path']);
    const target = readMountPath(rest.path, [...path, 'path']);
    for (const [j, other] of out.entries()) {
      if (overlaps(target, other.path)) {
        fail([...path, 'path'], `${target} overlaps inputs[${j}].path (${other.path}); mount points must be apart`);
      }
    }
    out.push({ ...ref, path: target });
  });
  return out;
}

/** Whether one path is the other or lies under it. */
export function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

function readMountPath(v: unknown, path: Path): string {
  const text = string(v, path, MAX_MOUNT_PATH);
  if (!text.startsWith('/')) fail(path, `must be an absolute path like /data/corpus, got ${describeValue(v)}`);
  const trimmed = text.length > 1 ? text.replace(/\/+$/, '') : text;
  const parts = trimmed.split('/').slice(1);
  if (trimmed === '/' || parts.length === 0) fail(path, 'must not be / (the whole filesystem)');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..')
      fail(path, `must be a normalized absolute path (no "//", "." or ".."), got ${describeValue(v)}`);
    if (!/^[A-Za-z0-9._@+=,-]+$/.test(p)) {
      fail(path, `path segment "${p}" may hold only letters, digits and . _ @ + = , -`);
    }
  }
  const under = (root: string) => trimmed === root || trimmed.startsWith(`${root}/`);
  const reserved = RESERVED_MOUNT_ROOTS.find(under);
  if (reserved) fail(path, `must not be under ${reserved}: the sandbox provides it`);
  const system = SYSTEM_MOUNT_DIRS.find(under);
  if (system) fail(path, `must not be under ${system}: system directories are shown read-only as they are`);
  if (WHOLE_ONLY.includes(trimmed))
    fail(path, `must not be ${trimmed} itself; a directory below it (e.g. ${trimmed}/data) is fine`);
  return trimmed;
}

function readOutputs(v: unknown): OutputSpec[] {
  const items = list(v, ['outputs'], 0, MAX_OUTPUTS);
  const out: OutputSpec[] = [];
  items.forEach((item, i) => {
    const path: Path = ['outputs', i];
    const { ref, rest } = readArtifactRef(item, path, ['from', 'branch'], ['from']);
    if (String(rest[ref.kind]).includes(':')) {
      fail(
        [...path, ref.kind],
        'an output names a repo (<org>.<project>/<name>), not a version; choose the branch with `branch:`',
      );
    }
    const from = readRelativePath(rest.from, [...path, 'from']);
    let branch = DEFAULT_BRANCH;
    if (rest.branch !== undefined) {
      branch = string(rest.branch, [...path, 'branch'], 128);
      if (!isRefName(branch) || COMMIT_ID.test(branch)) {
        fail([...path, 'branch'], `"${branch}" is not a branch name (letters, digits, "-", "_", ".")`);
      }
    }
    const same = out.findIndex((o) => o.kind === ref.kind && o.repo === ref.repo && o.branch === branch);
    if (same !== -1) fail(path, `outputs[${same}] already publishes to ${ref.kind} ${ref.repo} (branch ${branch})`);
    out.push({ kind: ref.kind, repo: ref.repo, from, branch });
  });
  return out;
}

/** A path relative to the work directory: `out/`, `out/model`, `model.safetensors` or `.` (all of it). */
function readRelativePath(v: unknown, path: Path): string {
  const text = string(v, path, 1024);
  const trimmed = text.replace(/\/+$/, '');
  if (trimmed === '.' || trimmed === './') return '.';
  const rel = trimmed.startsWith('./') ? trimmed.slice(2) : trimmed;
  if (rel === '' || text.startsWith('/')) {
    fail(
      path,
      `must be a path relative to the work directory ($FABRIK_WORKLOAD_DIR), like out/, got ${describeValue(v)}`,
    );
  }
  const problem = pathProblem(rel);
  if (problem) fail(path, `"${text}" ${problem}; it must stay inside the work directory`);
  return rel;
}

function readCode(v: unknown, hasWorkdir: boolean): ArtifactRef {
  if (hasWorkdir) {
    fail(
      ['code'],
      'code and workdir exclude each other: code is copied into the work directory, which is then the working directory',
      true,
    );
  }
  return readArtifactRef(v, ['code'], [], []).ref;
}

/** `gpu: "B200:8"` (model and count per node), `"B200"` (one), `8` or `"8"` (any model). Default: one GPU. */
function readGpu(v: unknown): { model?: string; count: number } {
  const path: Path = ['resources', 'gpu'];
  if (v === undefined) return { count: 1 };
  if (typeof v === 'number') return { count: integer(v, path, 1, MAX_GPUS_PER_NODE) };
  if (typeof v !== 'string') fail(path, `must be like "B200:8", "B200" or 8, got ${describeValue(v)}`);
  const text = v.trim();
  if (/^\d+$/.test(text)) return { count: integer(Number(text), path, 1, MAX_GPUS_PER_NODE) };
  const colon = text.lastIndexOf(':');
  const model = (colon < 0 ? text : text.slice(0, colon)).trim();
  const countText = colon < 0 ? '1' : text.slice(colon + 1).trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(model) || !/^\d+$/.test(countText)) {
    fail(path, `must be like "B200:8", "B200" or 8, got ${describeValue(v)}`);
  }
  const count = Number(countText);
  if (count < 1 || count > MAX_GPUS_PER_NODE) {
    fail(path, `GPUs per node must be between 1 and ${MAX_GPUS_PER_NODE}, got ${count}`);
  }
  return { model, count };
}

/** "RTX PRO 6000", "rtx-pro-6000" and "rtxpro6000" are one model. */
function modelKey(model: string): string {
  return model
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .replace(/^nvidia/, '');
}

function resolvePool(
  kind: WorkloadKind,
  model: string | undefined,
  poolField: unknown,
  pools: readonly PoolSpec[] | undefined,
): { pool?: string; gpuModel?: string } {
  const poolName = poolField === undefined ? undefined : dnsLabel(poolField, ['resources', 'pool'], 'pool');
  if (!pools) return { pool: poolName, gpuModel: model };
  const known = () => [...new Set(pools.map((p) => p.gpuModel))].join(', ');

  if (poolName !== undefined) {
    const pool = pools.find((p) => p.name === poolName);
    if (!pool) fail(['resources', 'pool'], `unknown pool "${poolName}"; known: ${pools.map((p) => p.name).join(', ')}`);
    if (model !== undefined && modelKey(model) !== modelKey(pool.gpuModel)) {
      fail(['resources', 'gpu'], `GPU model "${model}" does not match pool "${pool.name}" (${pool.gpuModel})`);
    }
    return { pool: pool.name, gpuModel: pool.gpuModel };
  }
  if (model !== undefined) {
    const matches = pools.filter((p) => modelKey(p.gpuModel) === modelKey(model));
    if (matches.length === 0) fail(['resources', 'gpu'], `unknown GPU model "${model}"; known: ${known()}`);
    if (matches.length > 1) {
      fail(
        ['resources', 'gpu'],
        `GPU model "${model}" is in several pools (${matches.map((p) => p.name).join(', ')}); set resources.pool`,
      );
    }
    return { pool: matches[0]!.name, gpuModel: matches[0]!.gpuModel };
  }
  const sim = kind === 'simulation' ? pools.find((p) => p.name === SIMULATION_POOL) : undefined;
  if (sim) return { pool: sim.name, gpuModel: sim.gpuModel };
  if (pools.length === 1) return { pool: pools[0]!.name, gpuModel: pools[0]!.gpuModel };
  if (pools.length === 0) fail(['resources'], 'no GPU pools are configured');
  return fail(
    ['resources', 'gpu'],
    `name a GPU model, e.g. "${pools[0]!.gpuModel}:8", or set resources.pool; known: ${known()}`,
  );
}

function checkCapacity(
  pool: string,
  gpusPerNode: number,
  nodes: number,
  capacity: ParseWorkloadOptions['capacity'],
): void {
  if (!capacity) return;
  const c = Object.hasOwn(capacity, pool) ? capacity[pool] : undefined;
  if (!c || c.nodes === 0) fail(['resources'], `pool "${pool}" has no nodes`);
  if (gpusPerNode > c.gpusPerNode) {
    fail(
      ['resources', 'gpu'],
      `${gpusPerNode} GPUs per node, but nodes in pool "${pool}" have at most ${c.gpusPerNode}`,
    );
  }
  if (nodes > c.nodes) fail(['resources', 'nodes'], `${nodes} nodes, but pool "${pool}" has ${c.nodes}`);
}

/** `32`, `"32"` or `"32+"`: a minimum either way, the "+" only says so. */
function readAtLeast(v: unknown, path: Path, max: number): number {
  if (typeof v === 'number') return integer(v, path, 1, max);
  const m = typeof v === 'string' ? /^\s*(\d+)\s*\+?\s*$/.exec(v) : null;
  if (!m) fail(path, `must be a number like 32 or "32+", got ${describeValue(v)}`);
  return integer(Number(m[1]), path, 1, max);
}

const BYTES: Record<string, number> = {
  '': 2 ** 30, // a bare number is GiB
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
};

/** `512GB+`, `2TiB`, `1536Gi`, or a number of GiB; decimal and binary units as written. Result in GiB, rounded up. */
function readMemory(v: unknown, path: Path): number {
  const rule = 'must be a size like "512GiB", "1TB+" or a number of GiB';
  let bytes: number;
  if (typeof v === 'number') {
    bytes = v * 2 ** 30;
  } else {
    const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*\+?\s*$/.exec(v) : null;
    const unit = m ? BYTES[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) fail(path, `${rule}, got ${describeValue(v)}`);
    bytes = Number(m[1]) * unit;
  }
  if (!Number.isFinite(bytes) || bytes <= 0) fail(path, `must be more than 0, got ${describeValue(v)}`);
  const gib = Math.ceil(bytes / 2 ** 30 - 1e-9);
  if (gib > MAX_MEMORY_GIB) fail(path, `must be at most ${MAX_MEMORY_GIB} GiB per node, got ${gib} GiB`);
  return gib;
}

/** `24h`, `90m`, `1h30m`, `2d`, `45s`, or a number of seconds. */
function readDuration(v: unknown, path: Path, min: number, max: number): number {
  const rule = 'must be a duration like "24h", "90m" or "1h30m", or a number of seconds';
  let seconds: number;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) fail(path, `${rule}, got ${v}`);
    seconds = v;
  } else {
    const parsed = typeof v === 'string' ? durationSeconds(v) : undefined;
    if (parsed === undefined) fail(path, `${rule}, got ${describeValue(v)}`);
    seconds = parsed;
  }
  if (seconds < min)
    fail(path, min > 0 ? `must be more than 0, got ${describeValue(v)}` : `must not be negative, got ${v}`);
  if (seconds > max) fail(path, `must be at most ${formatDuration(max)} (${max} s), got ${describeValue(v)}`);
  return seconds;
}

function formatDuration(s: number): string {
  if (s % DAY === 0) return `${s / DAY}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/**
 * The scheduler's view of a stored spec whose project was checked when it was submitted (the
 * server's snapshot and submit-time checks): the spec's own `project` field is not compared again.
 */
export function storedSpecRequest(
  spec: WorkloadSpec,
  meta: { readonly id: string; readonly project: string; readonly submittedAt: number },
): WorkloadRequest {
  return toWorkloadRequest({ ...spec, project: undefined }, meta);
}

/**
 * The scheduler's view of a spec. The project is the one the spec was submitted to; a spec that
 * names another project is refused rather than silently moved.
 */
export function toWorkloadRequest(
  spec: WorkloadSpec,
  meta: { readonly id: string; readonly project: string; readonly submittedAt: number },
): WorkloadRequest {
  if (spec.project !== undefined && spec.project !== meta.project) {
    throw new WorkloadSpecError(
      `project: the spec names project "${spec.project}" but was submitted to "${meta.project}"`,
      'project',
    );
  }
  if (spec.pool === undefined) {
    throw new WorkloadSpecError(
      "resources.pool: no pool resolved; parse the spec with the fleet's pools",
      'resources.pool',
    );
  }
  return {
    id: meta.id,
    project: meta.project,
    pool: spec.pool,
    kind: spec.kind,
    priority: spec.priority,
    nodes: spec.nodes,
    gpusPerNode: spec.gpusPerNode,
    maxRuntimeS: spec.maxDurationS,
    submittedAt: meta.submittedAt,
    ...(Object.keys(spec.nodeSelector).length > 0 ? { nodeSelector: spec.nodeSelector } : {}),
    // Restricted work never shares a node with anyone: it holds its nodes whole.
    ...(spec.exclusive || spec.classification === 'restricted' ? { exclusive: true } : {}),
  };
}
