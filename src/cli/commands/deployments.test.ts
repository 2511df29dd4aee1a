// `fabrik deploy`'s argument handling (pure): what it sends for a registry reference, a local file
// and an upstream, and what it refuses before calling the server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandAliases } from '../aliases.js';
import { CliError } from '../client.js';
import { EXIT } from '../output.js';
import { deployRequest, deploymentNameOf, secondsFlag } from './deployments.js';
import { countFlag } from './usage.js';

const usage = (fn: () => unknown) =>
  assert.throws(fn, (e: unknown) => e instanceof CliError && e.exitCode === EXIT.usage);

describe('fabrik deploy arguments', () => {
  it('takes project and name from a registry reference unless -p or --name', () => {
    assert.deepEqual(deployRequest('acme.vision/llama-ft:v3', { replicas: '1..8', gpu: 'B200:1' }), {
      project: 'acme.vision',
      body: { model: 'acme.vision/llama-ft:v3', name: 'llama-ft', gpu: 'B200:1', replicas: '1..8' },
    });
    const other = deployRequest('acme.vision/Llama-3.1-8B', { project: 'acme.serve', name: 'chat', gpu: '2' });
    assert.equal(other.project, 'acme.serve');
    assert.deepEqual(other.body, { model: 'acme.vision/Llama-3.1-8B', name: 'chat', gpu: 2 });
    assert.equal(deployRequest('acme.vision/Llama-3.1-8B', {}).body.name, 'llama-3-1-8b');
  });

  it('makes a model path absolute from the working directory', () => {
    const r = deployRequest('tiny', { project: 'acme.train', modelPath: 'out/m.gguf', alias: ['t'] }, '/home/a');
    assert.deepEqual(r, {
      project: 'acme.train',
      body: { modelPath: '/home/a/out/m.gguf', name: 'tiny', aliases: ['t'] },
    });
    assert.equal(deployRequest('t', { project: 'p.q', modelPath: '/abs/m.gguf' }, '/x').body.modelPath, '/abs/m.gguf');
  });

  it('sends numbers and durations as the API wants them', () => {
    const r = deployRequest('gpt', {
      project: 'acme.train',
      upstream: 'https://llm/v1',
      contextSize: '8192',
      threads: '4',
      parallel: '8',
      targetInflight: '2',
      idleTimeout: '10m',
      storePrompts: true,
      runtime: 'external',
    });
    assert.deepEqual(r.body, {
      upstreamUrl: 'https://llm/v1',
      name: 'gpt',
      runtime: 'external',
      contextSize: 8192,
      threads: 4,
      parallel: 8,
      targetInflight: 2,
      idleTimeoutS: 600,
      storePrompts: true,
    });
  });

  it('refuses what cannot be meant', () => {
    usage(() => deployRequest('just-a-name', { project: 'a.b' }));
    usage(() => deployRequest('noproject/model', {}));
    usage(() => deployRequest('x', { project: 'a.b', modelPath: 'm', upstream: 'http://h' }));
    usage(() => deployRequest('x', { project: 'a.b', modelPath: 'm', name: 'y' }));
    usage(() => deployRequest('x', { project: 'a.b', modelPath: 'm', threads: 'two' }));
    usage(() => deployRequest('x', { project: 'a.b', modelPath: 'm', threads: '0' }));
    usage(() => deployRequest('x', { project: 'a.b', modelPath: 'm', idleTimeout: 'soon' }));
  });

  it('reads durations and counts', () => {
    assert.equal(secondsFlag('--timeout', '90'), 90);
    assert.equal(secondsFlag('--timeout', '5m'), 300);
    assert.equal(secondsFlag('--timeout', '2h'), 7200);
    assert.equal(secondsFlag('--timeout', undefined), undefined);
    assert.equal(countFlag('--tpm', '100k'), 100_000);
    assert.equal(countFlag('--monthly-tokens', '1.5M'), 1_500_000);
    assert.equal(countFlag('--rpm', '0'), 0);
    usage(() => countFlag('--rpm', '-1'));
    usage(() => countFlag('--rpm', '1.5'));
    assert.equal(deploymentNameOf('--Weird__Name--'), 'weird-name');
  });

  it('maps kubectl-style verbs onto the deployment commands', () => {
    const x = (...a: string[]) => expandAliases(['node', 'fabrik', ...a]).slice(2);
    assert.deepEqual(x('get', 'deployments', '-p', 'a.b'), ['deployment', 'list', '-p', 'a.b']);
    assert.deepEqual(x('get', 'deployment', 'tiny'), ['deployment', 'describe', 'tiny']);
    assert.deepEqual(x('describe', 'deploy', 'tiny', '-p', 'a.b'), ['deployment', 'describe', 'tiny', '-p', 'a.b']);
    assert.deepEqual(x('get', 'inference-limits', '-p', 'a.b'), ['inference-limits', 'get', '-p', 'a.b']);
    assert.deepEqual(x('set', 'inference-limits', '--rpm', '5'), ['inference-limits', 'set', '--rpm', '5']);
  });
});
