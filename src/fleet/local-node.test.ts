import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import {
  type CommandRunner,
  detectLocalNode,
  hostLabel,
  modelName,
  NVIDIA_SMI_ARGS,
  parseNvidiaSmi,
} from './local-node.js';

// Recorded from `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` on an H200 box.
const H200_SMI = `0, NVIDIA H200, 143771
1, NVIDIA H200, 143771
2, NVIDIA H200, 143771
3, NVIDIA H200, 143771
4, NVIDIA H200, 143771
5, NVIDIA H200, 143771
6, NVIDIA H200, 143771
7, NVIDIA H200, 143771
`;

function recorded(stdout: string): CommandRunner & { calls: [string, readonly string[]][] } {
  const calls: [string, readonly string[]][] = [];
  const run = async (file: string, args: readonly string[]) => {
    calls.push([file, args]);
    return stdout;
  };
  return Object.assign(run, { calls });
}

const missing: CommandRunner = async () => {
  throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
};

describe('detectLocalNode', () => {
  it('registers real GPUs from nvidia-smi', async () => {
    const exec = recorded(H200_SMI);
    const node = await detectLocalNode({ devGpus: 2, hostname: 'gpu-box.lab.example', exec });
    assert.deepEqual(exec.calls, [['nvidia-smi', NVIDIA_SMI_ARGS]]);
    assert.deepEqual(node, {
      name: 'gpu-box',
      region: 'local',
      pod: 'local',
      rack: 'local',
      ibLeaf: 'local',
      ibSpine: 'local',
      cpu: os.cpus().length,
      ramGiB: Math.round(os.totalmem() / 2 ** 30),
      pool: 'h200',
      gpuModel: 'H200',
      gpuCount: 8,
      gpuMemoryGiB: 140,
      labels: {},
      devGpus: false,
    });
  });

  it('falls back to labelled development GPUs without nvidia-smi', async () => {
    const node = await detectLocalNode({ devGpus: 4, hostname: 'Laptop_01', exec: missing });
    assert.equal(node.devGpus, true);
    assert.equal(node.name, 'laptop-01');
    assert.deepEqual([node.pool, node.gpuModel, node.gpuCount], ['dev', 'DEV', 4]);
    assert.deepEqual(node.labels, { 'fabrik.dev/development-gpus': 'true' });
  });

  it('treats an nvidia-smi with no GPUs or garbled output as no GPUs', async () => {
    assert.equal((await detectLocalNode({ devGpus: 1, exec: recorded('') })).devGpus, true);
    assert.equal((await detectLocalNode({ devGpus: 1, exec: recorded('No devices were found\n') })).devGpus, true);
  });

  it('rejects an absurd number of development GPUs', async () => {
    await assert.rejects(detectLocalNode({ devGpus: 100, exec: missing }), RangeError);
    await assert.rejects(detectLocalNode({ devGpus: -1, exec: missing }), RangeError);
  });
});

describe('nvidia-smi parsing', () => {
  it('names models and pools the way the fleet file does', () => {
    assert.equal(modelName('NVIDIA RTX PRO 6000 Blackwell Server Edition'), 'RTX PRO 6000');
    assert.equal(modelName('NVIDIA H100 80GB HBM3'), 'H100');
    assert.equal(modelName('NVIDIA A100-SXM4-80GB'), 'A100');
    assert.equal(modelName('NVIDIA B200'), 'B200');
    assert.equal(modelName('NVIDIA GeForce RTX 4090'), 'RTX 4090');
  });

  it('takes the most common model on a mixed machine', () => {
    const gpus = parseNvidiaSmi(
      '0, NVIDIA RTX PRO 6000 Blackwell Server Edition, 97887\n1, NVIDIA RTX PRO 6000 Blackwell Server Edition, 97887\n2, NVIDIA T400, 2048\n',
    );
    assert.deepEqual(gpus, { model: 'RTX PRO 6000', count: 2, memoryGiB: 96 });
  });

  it('makes DNS labels of host names', () => {
    assert.equal(hostLabel('GPU-Box.lab.example'), 'gpu-box');
    assert.equal(hostLabel('--weird__name--'), 'weird-name');
    assert.equal(hostLabel('...'), 'localhost');
    assert.equal(hostLabel('a'.repeat(70)).length, 63);
  });
});
