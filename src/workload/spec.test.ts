import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PoolSpec } from '../fleet/fleet-file.js';
import {
  envWarnings,
  literalEnv,
  parseWorkloadSpec,
  secretRefs,
  toWorkloadRequest,
  type WorkloadSpec,
  WorkloadSpecError,
} from './spec.js';

const POOLS: PoolSpec[] = [
  { name: 'b200', gpuModel: 'B200', gpuMemoryGiB: 180 },
  { name: 'rtxpro6000', gpuModel: 'RTX PRO 6000', gpuMemoryGiB: 96 },
];
const CAPACITY = { b200: { nodes: 1000, gpusPerNode: 8 }, rtxpro6000: { nodes: 250, gpusPerNode: 8 } };
const OPTS = { pools: POOLS, capacity: CAPACITY, source: 'job.yaml' };

const JOB = `kind: training
name: llama3-ft
project: nlp
resources:
  gpu: B200:8
  nodes: 2
  cpu: 64+
  memory: 1TiB+
priority: high
max_duration: 1d12h
env: { HF_HOME: /cache, PORT: 8080 }
setup: pip install -r requirements.txt
run: torchrun --nnodes=$FABRIK_NUM_NODES --node_rank=$FABRIK_NODE_RANK train.py
workdir: /workspace
requeue: true
retries: 2
grace_period: 2m
node_selector: { nvlink: 5 }
exclusive: true
classification: confidential
`;

/** Parses and returns the error. Text gets the file name `job.yaml`, objects (HTTP bodies) none. */
function errorOf(input: string | object, opts?: Parameters<typeof parseWorkloadSpec>[1]): WorkloadSpecError {
  opts ??= typeof input === 'string' ? OPTS : { pools: POOLS, capacity: CAPACITY };
  try {
    parseWorkloadSpec(input, opts);
  } catch (e) {
    assert.ok(e instanceof WorkloadSpecError, String(e));
    assert.equal(e.code, 'SPEC_INVALID');
    return e;
  }
  assert.fail('expected a WorkloadSpecError');
}

const minimal = (extra: object) => ({
  kind: 'batch',
  name: 'job',
  run: 'python x.py',
  resources: { gpu: 'B200' },
  ...extra,
});

describe('parseWorkloadSpec', () => {
  it('reads a full spec', () => {
    const spec = parseWorkloadSpec(JOB, OPTS);
    assert.deepEqual(spec, {
      kind: 'training',
      name: 'llama3-ft',
      project: 'nlp',
      pool: 'b200',
      gpuModel: 'B200',
      gpusPerNode: 8,
      nodes: 2,
      cpu: 64,
      memoryGiB: 1024,
      priority: 'high',
      maxDurationS: 36 * 3600,
      env: { HF_HOME: '/cache', PORT: '8080' },
      setup: 'pip install -r requirements.txt',
      run: 'torchrun --nnodes=$FABRIK_NUM_NODES --node_rank=$FABRIK_NODE_RANK train.py',
      workdir: '/workspace',
      requeue: true,
      retries: 2,
      gracePeriodS: 120,
      nodeSelector: { nvlink: '5' },
      exclusive: true,
      classification: 'confidential',
    } satisfies WorkloadSpec);
  });

  it('fills defaults and reads JSON bodies', () => {
    const spec = parseWorkloadSpec(
      { kind: 'batch', name: 'eval-7', run: 'python eval.py', resources: { gpu: 'b200' } },
      { pools: POOLS },
    );
    assert.deepEqual(spec, {
      kind: 'batch',
      name: 'eval-7',
      pool: 'b200',
      gpuModel: 'B200',
      gpusPerNode: 1,
      nodes: 1,
      priority: 'normal',
      maxDurationS: 86_400,
      env: {},
      run: 'python eval.py',
      requeue: false,
      retries: 0,
      gracePeriodS: 30,
      nodeSelector: {},
      exclusive: false,
      classification: 'internal',
    });
    assert.equal(
      parseWorkloadSpec(JSON.stringify(minimal({ max_duration: 5400 })), { pools: POOLS.slice(0, 1) }).maxDurationS,
      5400,
    );
  });

  it('resolves pools: model shorthand, explicit pool, simulation default', () => {
    const pool = (extra: object, kind = 'batch') =>
      parseWorkloadSpec(minimal({ kind, ...extra }), { pools: POOLS }).pool;
    assert.equal(pool({ resources: { gpu: 'RTX PRO 6000:4' } }), 'rtxpro6000');
    assert.equal(pool({ resources: { gpu: 'rtx-pro-6000:4' } }), 'rtxpro6000');
    assert.equal(pool({ resources: { pool: 'b200', gpu: 8 } }), 'b200');
    assert.equal(pool({ resources: { gpu: 4 } }, 'simulation'), 'rtxpro6000');
    assert.equal(pool({ resources: undefined }, 'simulation'), 'rtxpro6000');
    assert.equal(pool({ resources: { gpu: 'B200:2' } }, 'simulation'), 'b200');
    assert.equal(pool({ resources: { gpu: 'B200:8' } }, 'training'), 'b200');
    assert.equal(parseWorkloadSpec(minimal({ resources: { gpu: 2 } }), { pools: POOLS.slice(0, 1) }).pool, 'b200');
    // Without pools (the CLI before it knows the fleet) only the form is checked.
    const client = parseWorkloadSpec(minimal({ resources: { gpu: 'H100:8' } }));
    assert.deepEqual([client.pool, client.gpuModel, client.gpusPerNode], [undefined, 'H100', 8]);
  });

  it('reports unknown GPU models with the known ones', () => {
    const e = errorOf({ ...minimal({}), resources: { gpu: 'H1OO:8' } }, { pools: POOLS });
    assert.equal(e.message, 'resources.gpu: unknown GPU model "H1OO"; known: B200, RTX PRO 6000');
    assert.equal(e.path, 'resources.gpu');
    assert.equal(e.line, undefined);
    const t = errorOf(JOB.replace('gpu: B200:8', 'gpu: H1OO:8'));
    assert.equal(t.message, 'job.yaml:5:8: resources.gpu: unknown GPU model "H1OO"; known: B200, RTX PRO 6000');
    assert.deepEqual([t.line, t.column, t.source], [5, 8, 'job.yaml']);
  });

  it('reports pool problems', () => {
    assert.match(
      errorOf(minimal({ resources: { pool: 'h100' } })).message,
      /^resources\.pool: unknown pool "h100"; known: b200, rtxpro6000$/,
    );
    assert.match(
      errorOf(minimal({ resources: { pool: 'b200', gpu: 'RTX PRO 6000:1' } })).message,
      /does not match pool "b200" \(B200\)/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 8 } })).message,
      /^resources\.gpu: name a GPU model, e\.g\. "B200:8", or set resources\.pool/,
    );
    const twice = [...POOLS, { name: 'b200-eu', gpuModel: 'B200', gpuMemoryGiB: 180 }];
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200' } }), { pools: twice }).message,
      /in several pools \(b200, b200-eu\); set resources\.pool/,
    );
    assert.match(
      errorOf({ ...minimal({}), pool: 'b200' }).message,
      /^pool: unknown field "pool"; did you mean "resources\.pool"\?/,
    );
  });

  it('rejects requests no pool can hold', () => {
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200:8', nodes: 1001 } })).message,
      /resources\.nodes: must be an integer between 1 and 1000, got 1001/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'RTX PRO 6000:8', nodes: 300 } })).message,
      /resources\.nodes: 300 nodes, but pool "rtxpro6000" has 250/,
    );
    const small = { b200: { nodes: 4, gpusPerNode: 4 }, rtxpro6000: { nodes: 0, gpusPerNode: 0 } };
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200:8' } }), { pools: POOLS, capacity: small }).message,
      /8 GPUs per node, but nodes in pool "b200" have at most 4/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'RTX PRO 6000' } }), { pools: POOLS, capacity: small }).message,
      /pool "rtxpro6000" has no nodes/,
    );
  });

  it('rejects bad GPU, CPU and memory values', () => {
    for (const gpu of [0, 17, -1, 1.5, 'B200:0', 'B200:99', 'B200:', ':8', true]) {
      assert.match(errorOf(minimal({ resources: { gpu } })).message, /^resources\.gpu: /, String(gpu));
    }
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200:99' } })).message,
      /GPUs per node must be between 1 and 16, got 99/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200', cpu: '32++' } })).message,
      /^resources\.cpu: must be a number like 32 or "32\+"/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200', cpu: 0 } })).message,
      /^resources\.cpu: must be an integer between 1 and 4096, got 0/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200', memory: '12 parsecs' } })).message,
      /^resources\.memory: must be a size like/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200', memory: 0 } })).message,
      /^resources\.memory: must be more than 0/,
    );
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200', memory: '100TiB' } })).message,
      /at most 65536 GiB per node, got 102400 GiB/,
    );
    const mem = (memory: unknown) =>
      parseWorkloadSpec(minimal({ resources: { gpu: 'B200', memory } }), { pools: POOLS }).memoryGiB;
    assert.deepEqual([mem('512GB+'), mem('2TiB'), mem('1536Gi'), mem(64), mem('512Mi')], [477, 2048, 1536, 64, 1]);
    assert.match(
      errorOf(minimal({ resources: { gpu: 'B200', disk: '1TB' } })).message,
      /^resources\.disk: unknown field "disk"; known: gpu, nodes, cpu, memory, pool$/,
    );
  });

  it('rejects absurd and malformed durations', () => {
    assert.match(
      errorOf(minimal({ max_duration: '31d' })).message,
      /^max_duration: must be at most 30d \(2592000 s\), got a string \("31d"\)$/,
    );
    assert.match(errorOf(minimal({ max_duration: 0 })).message, /^max_duration: must be more than 0/);
    assert.match(errorOf(minimal({ max_duration: '0h' })).message, /^max_duration: must be more than 0/);
    assert.match(
      errorOf(minimal({ max_duration: -60 })).message,
      /^max_duration: must be more than 0, got a number \(-60\)/,
    );
    for (const d of ['24', '1.5h', 'h', '1h1h', '1 day', 90.5]) {
      assert.match(
        errorOf(minimal({ max_duration: d })).message,
        /^max_duration: must be a duration like "24h"/,
        String(d),
      );
    }
    assert.equal(parseWorkloadSpec(minimal({ max_duration: '90m' }), { pools: POOLS.slice(0, 1) }).maxDurationS, 5400);
    assert.match(errorOf(minimal({ grace_period: '2h' })).message, /^grace_period: must be at most 1h/);
    assert.match(errorOf(minimal({ grace_period: -1 })).message, /^grace_period: must not be negative/);
  });

  it('rejects unknown fields, missing fields and wrong enums', () => {
    const e = errorOf(JOB.replace('requeue: true', 'requeu: true'));
    assert.equal(e.message, 'job.yaml:15:1: requeu: unknown field "requeu"; did you mean "requeue"?');
    assert.match(
      errorOf(JOB.replace('  nodes: 2\n', '  nodes: 2\n  image: x\n')).message,
      /^job\.yaml:7:3: resources\.image: unknown field "image"/,
    );
    assert.match(errorOf({ name: 'x', run: 'y' }).message, /^missing required field "kind"$/);
    assert.match(errorOf({ kind: 'training', name: 'x' }).message, /missing required field "run"/);
    assert.equal(
      parseWorkloadSpec({ kind: 'interactive', name: 'nb', resources: { gpu: 'B200' } }, OPTS).run,
      undefined,
    );
    assert.match(
      errorOf(minimal({ kind: 'notebook' })).message,
      /^kind: must be one of training, batch, simulation, interactive, inference, got a string \("notebook"\)$/,
    );
    assert.match(
      errorOf(minimal({ priority: 'low' })).message,
      /^priority: must be one of critical, high, normal, preemptible/,
    );
    assert.match(
      errorOf(minimal({ priority: 'critical' })).message,
      /^priority: critical is reserved for inference replicas/,
    );
    assert.equal(
      parseWorkloadSpec({ kind: 'inference', name: 'llm', resources: { gpu: 'B200' } }, OPTS).priority,
      'critical',
    );
    assert.match(
      errorOf(minimal({ classification: 'secret' })).message,
      /^classification: must be one of public, internal, confidential, restricted/,
    );
    assert.match(
      errorOf(minimal({ requeue: 'yes' })).message,
      /^requeue: must be true or false, got a string \("yes"\)$/,
    );
    assert.match(errorOf(minimal({ retries: 100 })).message, /^retries: must be an integer between 0 and 10/);
    assert.match(errorOf(minimal({ run: '' })).message, /^run: must not be empty/);
    assert.match(
      errorOf(minimal({ node_selector: { 'bad key!': 'x' } })).message,
      /^node_selector\["bad key!"\]: label name/,
    );
  });

  it('rejects names that are not DNS labels', () => {
    assert.match(errorOf(minimal({ name: 'Llama3_FT' })).message, /^name: name "Llama3_FT" is not a DNS label/);
    assert.match(errorOf(minimal({ name: 'x'.repeat(64) })).message, /^name: /);
    assert.match(errorOf(minimal({ project: 'NLP' })).message, /^project: project "NLP" is not a DNS label/);
  });

  it('rejects reserved environment variables', () => {
    for (const k of [
      'FABRIK_NODE_RANK',
      'CUDA_VISIBLE_DEVICES',
      'NVIDIA_VISIBLE_DEVICES',
      'MASTER_ADDR',
      'MASTER_PORT',
      'WORLD_SIZE',
      'RANK',
      'LOCAL_RANK',
      'NODE_RANK',
    ]) {
      const e = errorOf(minimal({ env: { [k]: '1' } }));
      assert.match(e.message, new RegExp(`^env\\.${k}: ${k} is set by fabrik and cannot be overridden`));
      assert.equal(e.path, `env.${k}`);
    }
    assert.deepEqual(
      parseWorkloadSpec(minimal({ env: { rank: '1', MY_CUDA_HOME: '/x' } }), { pools: POOLS.slice(0, 1) }).env,
      { rank: '1', MY_CUDA_HOME: '/x' },
    );
    assert.match(errorOf(minimal({ env: { '1X': 'a' } })).message, /^env\["1X"\]: "1X" is not a variable name/);
    assert.match(
      errorOf(minimal({ env: { A: [1] } })).message,
      /^env\.A: must be a string or \{secret: NAME\}, got a list/,
    );
    assert.match(errorOf(minimal({ env: { A: { b: 1 } } })).message, /^env\.A\.b: unknown field "b"; a reference is/);
    const t = errorOf(JOB.replace('HF_HOME: /cache', 'CUDA_HOME: /cuda'));
    assert.match(t.message, /^job\.yaml:11:8: env\.CUDA_HOME: /);
  });

  it('reports YAML syntax errors with line and column', () => {
    const e = errorOf('kind: batch\nname: [x\nrun: y\n');
    assert.match(e.message, /^job\.yaml:\d+:\d+: YAML syntax error: /);
    assert.ok(e.line! >= 2);
    assert.match(
      errorOf('kind: batch\nkind: training\n').message,
      /^job\.yaml:2:1: YAML syntax error: Map keys must be unique/,
    );
    assert.match(errorOf('kind: [\n', 'x.yaml').message, /^x\.yaml:/);
    assert.match(errorOf('').message, /the spec is empty/);
    assert.match(errorOf('- a\n').message, /^job\.yaml:1:1: must be a mapping, got a list$/);
  });
});

describe('toWorkloadRequest', () => {
  it('builds the scheduler request', () => {
    const spec = parseWorkloadSpec(JOB, OPTS);
    assert.deepEqual(toWorkloadRequest(spec, { id: 'w-1', project: 'nlp', submittedAt: 1000 }), {
      id: 'w-1',
      project: 'nlp',
      pool: 'b200',
      kind: 'training',
      priority: 'high',
      nodes: 2,
      gpusPerNode: 8,
      maxRuntimeS: 36 * 3600,
      submittedAt: 1000,
      nodeSelector: { nvlink: '5' },
      exclusive: true,
    });
    const plain = toWorkloadRequest(parseWorkloadSpec(minimal({ resources: { gpu: 'B200' } }), OPTS), {
      id: 'w-2',
      project: 'cv',
      submittedAt: 5,
    });
    assert.equal('nodeSelector' in plain, false);
    assert.equal('exclusive' in plain, false);
  });

  it('refuses a spec naming another project, or without a pool', () => {
    const spec = parseWorkloadSpec(JOB, OPTS);
    assert.throws(
      () => toWorkloadRequest(spec, { id: 'w', project: 'vision', submittedAt: 0 }),
      /names project "nlp" but was submitted to "vision"/,
    );
    const client = parseWorkloadSpec(minimal({ resources: { gpu: 'B200' } }));
    assert.throws(() => toWorkloadRequest(client, { id: 'w', project: 'p', submittedAt: 0 }), WorkloadSpecError);
  });
});

describe('env: secret references and credential warnings', () => {
  const env = (e: object) => parseWorkloadSpec(minimal({ env: e }), { pools: POOLS.slice(0, 1) }).env;

  it('reads {secret: NAME} beside literal values, from YAML and JSON', () => {
    const yaml = JOB.replace(
      'env: { HF_HOME: /cache, PORT: 8080 }',
      'env: { HF_HOME: /cache, WANDB_API_KEY: { secret: wandb } }',
    );
    const spec = parseWorkloadSpec(yaml, OPTS);
    assert.deepEqual(spec.env, { HF_HOME: '/cache', WANDB_API_KEY: { secret: 'wandb' } });
    assert.deepEqual(env({ T: { secret: 'hf-token' } }), { T: { secret: 'hf-token' } });
    assert.deepEqual(secretRefs(spec.env), [{ variable: 'WANDB_API_KEY', secret: 'wandb' }]);
    // The stored form is the reference; it reads back the same.
    assert.deepEqual(
      parseWorkloadSpec(JSON.parse(JSON.stringify({ ...minimal({}), env: spec.env })), OPTS).env,
      spec.env,
    );
  });

  it('refuses malformed references without echoing what was written', () => {
    const pasted = 'hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789';
    const e = errorOf(minimal({ env: { HF_TOKEN: { secret: pasted } } }));
    assert.equal(e.path, 'env.HF_TOKEN.secret');
    assert.match(e.message, /must name a secret \(a DNS label/);
    assert.ok(!e.message.includes(pasted));
    assert.match(errorOf(minimal({ env: { A: { secret: 7 } } })).message, /^env\.A\.secret: must name a secret/);
    assert.match(errorOf(minimal({ env: { A: {} } })).message, /^env\.A: a reference is \{secret: NAME\}/);
    assert.match(errorOf(minimal({ env: { A: { secret: 'a', key: 'b' } } })).message, /^env\.A\.key: unknown field/);
    const t = errorOf(JOB.replace('PORT: 8080', 'PORT: { secret: Bad_Name }'));
    assert.match(t.message, /^job\.yaml:11:\d+: env\.PORT\.secret: /);
  });

  it('gives the literal environment only when there are no references', () => {
    assert.deepEqual(literalEnv({ A: '1' }), { A: '1' });
    assert.throws(() => literalEnv({ A: '1', K: { secret: 'k' } }), /env\.K refers to secret "k"/);
  });

  it('warns about literal values that look like credentials, naming the variable and never the value', () => {
    const values: Record<string, string> = {
      HF_TOKEN: 'hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567',
      OPENAI: 'sk-proj-abcdefghijklmnopqrstuvwxyz',
      GH: 'ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ',
      AWS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      RANDOM: 'q8Zr3LmX0vTn5KpW9yBc2HdF7jGs4AeQ',
      DB_PASSWORD: 'hunter2',
      CLIENT_SECRET: 'abc',
      MY_API_KEY: 'x-123',
    };
    const warnings = envWarnings(values);
    assert.equal(warnings.length, Object.keys(values).length, warnings.join('\n'));
    for (const [k, v] of Object.entries(values)) {
      const w = warnings.find((x) => x.startsWith(`env.${k}: `));
      assert.ok(w, `no warning for ${k}`);
      assert.ok(!w.includes(v), `the warning for ${k} repeats the value`);
    }
    assert.match(
      warnings[0],
      /looks like a Hugging Face token.*fabrik secret create hf-token.*HF_TOKEN: \{secret: hf-token\}/,
    );
  });

  it('does not warn about ordinary values, flags, hashes, paths or references', () => {
    assert.deepEqual(
      envWarnings({
        HF_HOME: '/cache',
        TOKENIZERS_PARALLELISM: 'false',
        MAX_TOKENS: '4096',
        USE_AUTH_TOKEN: 'true',
        GIT_COMMIT: 'f7cd8e7a1b2c3d4e5f60718293a4b5c6d7e8f901',
        MODEL: 'meta-llama/Llama-3.1-8B-Instruct',
        CKPT: '/data/llama3-8b/checkpoint-1000/shard-00001',
        WANDB_PROJECT: 'acme-llm',
        WANDB_API_KEY: { secret: 'wandb' },
      }),
      [],
    );
  });
});

describe('registry inputs, outputs and code', () => {
  const ART = `kind: training
name: ft
resources: { gpu: B200:8 }
run: ./train.sh
inputs:
  - model: acme.vision/base:v1
    path: /models/base/
  - dataset: datasets/acme.vision/corpus
    path: /data/corpus
outputs:
  - model: acme.vision/llama-ft
    from: out/
  - dataset: acme.data/evals
    from: ./eval/results
    branch: nightly
code: { dataset: acme.vision/trainer:0123456789abcdef0123456789abcdef01234567 }
`;
  const withArt = (extra: object) => minimal(extra);

  it('reads inputs, outputs and code, normalizing paths and defaulting the branch', () => {
    const spec = parseWorkloadSpec(ART, OPTS);
    assert.deepEqual(spec.inputs, [
      { kind: 'model', repo: 'acme.vision/base', revision: 'v1', path: '/models/base' },
      { kind: 'dataset', repo: 'acme.vision/corpus', revision: 'main', path: '/data/corpus' },
    ]);
    assert.deepEqual(spec.outputs, [
      { kind: 'model', repo: 'acme.vision/llama-ft', from: 'out', branch: 'main' },
      { kind: 'dataset', repo: 'acme.data/evals', from: 'eval/results', branch: 'nightly' },
    ]);
    assert.deepEqual(spec.code, {
      kind: 'dataset',
      repo: 'acme.vision/trainer',
      revision: '0123456789abcdef0123456789abcdef01234567',
    });
    // Without them, the spec has none of the three fields (stored specs stay as they were).
    const plain = parseWorkloadSpec(minimal({}), { pools: POOLS });
    assert.ok(!('inputs' in plain) && !('outputs' in plain) && !('code' in plain));
  });

  it('says where in the file a reference is wrong', () => {
    const e = errorOf(ART.replace('path: /data/corpus', 'path: /proc/corpus'));
    assert.equal(e.message, 'job.yaml:9:11: inputs[1].path: must not be under /proc: the sandbox provides it');
    assert.deepEqual([e.line, e.column, e.path], [9, 11, 'inputs[1].path']);
    const r = errorOf(ART.replace('acme.vision/base:v1', 'acme/base:v1'));
    assert.match(r.message, /^job\.yaml:6:12: inputs\[0\]\.model: repo namespace "acme" is not <org>\.<project>/);
  });

  it('refuses mount paths the sandbox cannot honour, and overlapping ones', () => {
    const path = (p: unknown) => errorOf(withArt({ inputs: [{ dataset: 'a.b/c', path: p }] })).message;
    assert.match(path('data/x'), /inputs\[0\]\.path: must be an absolute path/);
    assert.match(path('/'), /must not be \//);
    assert.match(path('/data/../etc'), /normalized absolute path/);
    assert.match(path('/data//x'), /normalized absolute path/);
    assert.match(path('/dev/shm/x'), /must not be under \/dev/);
    assert.match(path('/sys'), /must not be under \/sys/);
    assert.match(path('/usr/share/x'), /must not be under \/usr: system directories/);
    assert.match(path('/tmp'), /must not be \/tmp itself/);
    assert.match(path('/data/a b'), /may hold only letters/);
    assert.equal(
      parseWorkloadSpec(withArt({ inputs: [{ dataset: 'a.b/c', path: '/tmp/data' }] }), { pools: POOLS }).inputs?.[0]
        ?.path,
      '/tmp/data',
    );
    const overlap = errorOf(
      withArt({
        inputs: [
          { dataset: 'a.b/c', path: '/data' },
          { model: 'a.b/m', path: '/data/m' },
        ],
      }),
    );
    assert.equal(
      overlap.message,
      'inputs[1].path: /data/m overlaps inputs[0].path (/data); mount points must be apart',
    );
  });

  it('refuses malformed references', () => {
    const input = (x: object) => errorOf(withArt({ inputs: [{ path: '/d', ...x }] })).message;
    assert.match(input({}), /inputs\[0\]: name a model or a dataset/);
    assert.match(input({ model: 'a.b/m', dataset: 'a.b/d' }), /name either a model or a dataset, not both/);
    assert.match(input({ model: 'datasets/a.b/d' }), /names a dataset; use the dataset field/);
    assert.match(input({ dataset: 'a.b/d:bad..ref' }), /inputs\[0\]\.dataset: ref name "bad\.\.ref"/);
    assert.match(input({ dataset: 'a.b/d', mount: '/x' }), /inputs\[0\]\.mount: unknown field "mount"/);
    assert.match(errorOf(withArt({ inputs: [{ dataset: 'a.b/d' }] })).message, /missing required field "path"/);
    assert.match(errorOf(withArt({ code: { dataset: 'a.b/d', path: '/x' } })).message, /code\.path: unknown field/);
  });

  it('refuses outputs that name versions, escape the work directory or repeat', () => {
    const out = (x: object) => errorOf(withArt({ outputs: [{ model: 'a.b/m', from: 'out', ...x }] })).message;
    assert.match(out({ model: 'a.b/m:v2' }), /outputs\[0\]\.model: an output names a repo/);
    assert.match(out({ from: '../x' }), /outputs\[0\]\.from: "\.\.\/x" contains "\." or "\.\."; it must stay inside/);
    assert.match(out({ from: '/abs/out' }), /outputs\[0\]\.from: must be a path relative to the work directory/);
    assert.match(out({ branch: 'a..b' }), /outputs\[0\]\.branch: "a\.\.b" is not a branch name/);
    assert.match(out({ branch: '0123456789abcdef0123456789abcdef01234567' }), /is not a branch name/);
    const twice = errorOf(
      withArt({
        outputs: [
          { model: 'a.b/m', from: 'x' },
          { model: 'a.b/m', from: 'y' },
        ],
      }),
    );
    assert.equal(twice.message, 'outputs[1]: outputs[0] already publishes to model a.b/m (branch main)');
    assert.deepEqual(
      parseWorkloadSpec(withArt({ outputs: [{ model: 'a.b/m', from: '.' }] }), { pools: POOLS }).outputs?.[0]?.from,
      '.',
    );
  });

  it('refuses code together with a workdir', () => {
    const e = errorOf(withArt({ workdir: 'src', code: { dataset: 'a.b/code' } }));
    assert.match(e.message, /^code: code and workdir exclude each other/);
  });
});
