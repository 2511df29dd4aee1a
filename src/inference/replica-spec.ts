// What a deployment's replica runs: one workload spec per replica (kind inference, priority
// critical), built here from the deployment row. The llamacpp runtime is fabrik's own replica
// process (src/inference/runtime/replica-main.ts); vllm renders a launch script; external runs
// nothing (the gateway calls the upstream URL).
import { createHmac, hkdfSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeploymentsTable } from '../store/schema.js';
import type { WorkloadSpec } from '../workload/spec.js';
import { renderVllmScript, shellQuote } from './runtime/vllm-template.js';

/** Where the replica process's code lives, and how node runs it (compiled, or TypeScript under tsx). */
export interface ReplicaRuntime {
  /** argv before the replica's own arguments, e.g. [node, /opt/fabrik/dist/inference/runtime/replica-main.js]. */
  readonly command: readonly string[];
  /** Host paths the replica needs to read (shown read-only at the same place inside the sandbox). */
  readonly paths: readonly string[];
}

/** The install this server runs from: dist/ after `npm run build`, else src/ through tsx (tests). */
export function locateReplicaRuntime(): ReplicaRuntime {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(here, '..', '..');
  const compiled = join(root, 'dist', 'inference', 'runtime', 'replica-main.js');
  const common = [join(root, 'node_modules'), join(root, 'package.json')];
  if (!import.meta.url.endsWith('.ts') && existsSync(compiled)) {
    return { command: ['node', compiled], paths: [join(root, 'dist'), ...common] };
  }
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  return {
    command: ['node', '--import', tsx, join(root, 'src', 'inference', 'runtime', 'replica-main.ts')],
    paths: [join(root, 'src'), join(root, 'tsconfig.json'), ...common],
  };
}

/**
 * The bearer token the gateway sends to a replica: an HMAC of the replica id under a key derived
 * from the master key, so no token is stored anywhere; the replica holds only its SHA-256.
 */
export function replicaTokenKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'fabrik replica tokens v1', 32));
}

export function replicaToken(key: Buffer, replicaId: string): string {
  return createHmac('sha256', key).update(replicaId).digest('base64url');
}

export interface ReplicaPlan {
  readonly replicaId: string;
  readonly ordinal: number;
  readonly port: number;
  /** Address the replica binds: 127.0.0.1 on the local executor, 0.0.0.0 on cluster nodes. */
  readonly bindHost: string;
  readonly tokenSha256: string;
}

/** The workload name of a replica: `<deployment>-<ordinal>`, cut to a DNS label. */
export function replicaWorkloadName(deployment: string, ordinal: number): string {
  const suffix = `-r${ordinal}`;
  return `${deployment.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

const MODEL_DIR = '/models';

/** The spec body (as `fabrik apply` would send it) of one replica, plus the system-only mounts. */
export function replicaWorkload(
  d: DeploymentsTable,
  plan: ReplicaPlan,
  runtime: ReplicaRuntime,
): { body: Record<string, unknown>; extend: (spec: WorkloadSpec) => WorkloadSpec } {
  const gpu = d.gpu_model ? `${d.gpu_model}:${d.gpus_per_replica}` : d.gpus_per_replica;
  const modelMounts: { source: string; target: string }[] = [];
  const inputs: Record<string, unknown>[] = [];
  if (d.model_repo) {
    const rev = d.model_commit || d.model_revision;
    inputs.push({ model: `${d.model_repo}:${rev}`, path: `${MODEL_DIR}/${d.name}` });
  } else if (d.model_path) {
    modelMounts.push({ source: d.model_path, target: `${MODEL_DIR}/${d.name}/${basename(d.model_path)}` });
  }
  // Input 0 is the model either way: FABRIK_INPUT_0 names where this task finds it.
  const run =
    d.runtime === 'vllm'
      ? renderVllmScript({
          modelPath: '$FABRIK_INPUT_0',
          host: plan.bindHost,
          port: plan.port,
          gpus: d.gpus_per_replica,
          name: d.name,
          contextSize: d.context_size,
        })
      : [
          ...runtime.command.map(shellQuote),
          '--model',
          '"$FABRIK_INPUT_0"',
          '--port',
          String(plan.port),
          '--host',
          plan.bindHost,
          '--name',
          shellQuote(d.name),
          '--threads',
          String(d.threads),
          '--context-size',
          String(d.context_size),
          '--parallel',
          String(d.parallel),
        ].join(' ');
  const body: Record<string, unknown> = {
    kind: 'inference',
    name: replicaWorkloadName(d.name, plan.ordinal),
    priority: 'critical',
    resources: { gpu, ...(d.threads > 0 ? { cpu: d.threads } : {}) },
    run,
    // A failed replica is replaced by the controller; the workload itself is not retried.
    retries: 0,
    requeue: true,
    grace_period: '10s',
    ...(inputs.length > 0 ? { inputs } : {}),
  };
  const runtimeMounts = d.runtime === 'llamacpp' ? runtime.paths.map((p) => ({ source: p, target: p })) : [];
  const hostMounts = [...modelMounts, ...runtimeMounts];
  // FABRIK_* names are the system's: a tenant's spec may not set them, the controller does here.
  const env = { FABRIK_REPLICA_TOKEN_SHA256: plan.tokenSha256, FABRIK_REPLICA_ID: plan.replicaId };
  return {
    body,
    extend: (spec) => ({ ...spec, env: { ...spec.env, ...env }, ...(hostMounts.length > 0 ? { hostMounts } : {}) }),
  };
}
