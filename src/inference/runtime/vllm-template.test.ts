import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { renderVllmScript, shellQuote, VLLM_HEALTH_PATH } from './vllm-template.js';

const dir = mkdtempSync(join(tmpdir(), 'fabrik-vllm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  modelPath: '/models/llama',
  host: '0.0.0.0',
  port: 20013,
  gpus: 2,
  name: 'llama-70b',
  contextSize: 8192,
};

/**
 * Runs the script with a fake `vllm` first on PATH that prints each argument on its own line:
 * what the real one would receive, word for word.
 */
function argvOf(script: string, env: Record<string, string> = {}): string[] {
  const bin = mkdtempSync(join(dir, 'bin-'));
  writeFileSync(join(bin, 'vllm'), '#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n');
  chmodSync(join(bin, 'vllm'), 0o755);
  const file = join(bin, 'run.sh');
  writeFileSync(file, script);
  const out = execFileSync('bash', [file], { env: { PATH: `${bin}:${process.env.PATH}`, ...env }, encoding: 'utf8' });
  return out.replace(/\n$/, '').split('\n');
}

describe('renderVllmScript', () => {
  it('execs vllm serve with the deployment settings', () => {
    const script = renderVllmScript(base);
    assert.match(script, /^#!\/usr\/bin\/env bash\n/);
    assert.match(script, /\nexec vllm serve \/models\/llama --host 0\.0\.0\.0 --port 20013 /);
    assert.deepEqual(argvOf(script), [
      'serve',
      '/models/llama',
      '--host',
      '0.0.0.0',
      '--port',
      '20013',
      '--tensor-parallel-size',
      '2',
      '--served-model-name',
      'llama-70b',
      '--max-model-len',
      '8192',
    ]);
    assert.equal(VLLM_HEALTH_PATH, '/health');
  });

  it('sets tensor parallelism to the GPUs per replica', () => {
    for (const gpus of [1, 4, 8]) {
      const argv = argvOf(renderVllmScript({ ...base, gpus }));
      assert.equal(argv[argv.indexOf('--tensor-parallel-size') + 1], String(gpus));
    }
  });

  it('passes hostile names, paths and extra arguments through as single literal words', () => {
    const name = `x'; rm -rf / #$(touch ${dir}/pwned)\`id\` "q"`;
    const modelPath = `/models/a b/$HOME/'it's'`;
    const extraArgs = ['--dtype', 'bfloat16', '--chat-template', '{{ $x }} && echo no'];
    const argv = argvOf(renderVllmScript({ ...base, name, modelPath, extraArgs }));
    assert.equal(argv[1], modelPath);
    assert.equal(argv[argv.indexOf('--served-model-name') + 1], name);
    assert.deepEqual(argv.slice(-4), extraArgs);
    assert.equal(argv.length, 12 + 4);
    assert.equal(existsSync(join(dir, 'pwned')), false);
  });

  it('expands a bare variable reference for the model path (the task input), quoted', () => {
    const script = renderVllmScript({ ...base, modelPath: '$FABRIK_INPUT_0' });
    assert.match(script, /vllm serve "\$FABRIK_INPUT_0" /);
    assert.equal(argvOf(script, { FABRIK_INPUT_0: '/in/my model' })[1], '/in/my model');
    const braced = '$' + '{IN}'; // written in two parts only so that it does not read as a template mistake
    assert.equal(argvOf(renderVllmScript({ ...base, modelPath: braced }), { IN: '/x' })[1], '/x');
    // Anything more than a bare reference is literal text.
    assert.equal(argvOf(renderVllmScript({ ...base, modelPath: '$IN/sub' }), { IN: '/x' })[1], '$IN/sub');
  });

  it('refuses values that would make a broken command', () => {
    assert.throws(() => renderVllmScript({ ...base, gpus: 0 }), /gpus/);
    assert.throws(() => renderVllmScript({ ...base, gpus: 1.5 }), /gpus/);
    assert.throws(() => renderVllmScript({ ...base, port: 70000 }), /port/);
    assert.throws(() => renderVllmScript({ ...base, contextSize: -1 }), /contextSize/);
    assert.throws(() => renderVllmScript({ ...base, modelPath: '' }), /modelPath/);
  });

  it('quotes only what needs it', () => {
    assert.equal(shellQuote('plain-name_1.0'), 'plain-name_1.0');
    assert.equal(shellQuote(''), "''");
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
  });
});
