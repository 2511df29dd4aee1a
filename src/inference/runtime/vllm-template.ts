// The vllm runtime: fabrik does not serve these models itself, it renders the script the workload
// runs (`vllm serve …` with the deployment's settings). Every value is quoted for the shell, since
// names and paths come from users; only a bare variable reference for the model path (the task's
// input, e.g. $FABRIK_INPUT_0) is left for the shell to expand, inside double quotes.

/** vLLM's OpenAI-compatible server answers 200 here once the model is loaded. */
export const VLLM_HEALTH_PATH = '/health';

export interface VllmScriptOptions {
  /** A path, or a variable reference (`$NAME` or `${NAME}`) that the shell expands at run time. */
  modelPath: string;
  host: string;
  port: number;
  /** GPUs per replica; vLLM shards the model over them (tensor parallelism). */
  gpus: number;
  /** The model name clients ask for (`--served-model-name`). */
  name: string;
  /** `--max-model-len`: prompt plus completion, in tokens. */
  contextSize: number;
  /** More `vllm serve` arguments, each passed as one word. */
  extraArgs?: readonly string[];
}

/** Single quotes keep every character literal; a single quote itself is closed, escaped and reopened. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const VARIABLE = /^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})$/;

function positiveInt(what: string, n: number, min = 1): number {
  if (!Number.isInteger(n) || n < min) throw new Error(`vllm: ${what} must be an integer of at least ${min}, got ${n}`);
  return n;
}

export function renderVllmScript(o: VllmScriptOptions): string {
  if (o.modelPath === '') throw new Error('vllm: modelPath is empty');
  const model = VARIABLE.test(o.modelPath) ? `"${o.modelPath}"` : shellQuote(o.modelPath);
  const port = positiveInt('port', o.port);
  if (port > 65535) throw new Error(`vllm: port ${port} is out of range`);
  const args = [
    'vllm',
    'serve',
    model,
    '--host',
    shellQuote(o.host),
    '--port',
    String(port),
    '--tensor-parallel-size',
    String(positiveInt('gpus', o.gpus)),
    '--served-model-name',
    shellQuote(o.name),
    '--max-model-len',
    String(positiveInt('contextSize', o.contextSize)),
    ...(o.extraArgs ?? []).map(shellQuote),
  ];
  // exec: vLLM becomes the workload's process, so the executor's SIGTERM reaches it directly.
  return ['#!/usr/bin/env bash', 'set -euo pipefail', `exec ${args.join(' ')}`, ''].join('\n');
}
