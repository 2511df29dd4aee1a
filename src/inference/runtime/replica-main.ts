// The process of one llamacpp serving replica, as the workload of an inference deployment runs it:
//
//   node dist/inference/runtime/replica-main.js --model PATH [--model-file FILE] --port N
//     [--host 127.0.0.1] --name NAME [--threads T] [--context-size C] [--parallel P] [--max-queue Q]
//
// It listens at once (/health says 503 until the model is loaded, so the controller can tell a
// slow load from a dead process), then loads the model. Events go to stdout, one JSON line each;
// `--port 0` picks a free port and the `listening` line tells which. SIGTERM: stop taking
// requests, let the running ones finish for up to 10 s, exit 0.
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { LlamaEngine } from './llamacpp-engine.js';
import { startReplicaServer } from './replica-server.js';

const GRACE_MS = 10_000;

class UsageError extends Error {}

function log(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), event, ...fields })}\n`);
}

function int(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer of at least ${min}, got "${value}"`);
  return n;
}

interface ReplicaArgs {
  modelPath: string;
  host: string;
  port: number;
  name: string;
  threads: number;
  contextSize?: number;
  parallel: number;
  maxQueue?: number;
}

function parseReplicaArgs(argv: string[]): ReplicaArgs {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: Object.fromEntries(
        ['model', 'model-file', 'port', 'host', 'name', 'threads', 'context-size', 'parallel', 'max-queue'].map((k) => [
          k,
          { type: 'string' as const },
        ]),
      ),
    }) as { values: Record<string, string | undefined> });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!values.model) throw new UsageError('--model PATH is required (a .gguf file, or a directory holding one)');
  if (!values.name) throw new UsageError('--name NAME is required (the model name clients ask for)');
  if (values.port === undefined) throw new UsageError('--port N is required (0: any free port)');
  const threads = int('threads', values.threads, 0, 0);
  return {
    modelPath: resolveModelFile(values.model, values['model-file']),
    host: values.host ?? '127.0.0.1',
    port: int('port', values.port, 0, 0),
    name: values.name,
    // 0 or absent: every core this process may use (the sandbox's CPU share on cluster nodes).
    threads: threads === 0 ? availableParallelism() : threads,
    contextSize: values['context-size'] === undefined ? undefined : int('context-size', values['context-size'], 0, 16),
    parallel: int('parallel', values.parallel, 2, 1),
    maxQueue: values['max-queue'] === undefined ? undefined : int('max-queue', values['max-queue'], 0, 0),
  };
}

/**
 * The .gguf to load: `model` itself, `modelFile` inside the directory `model` (or an absolute
 * path), or the only .gguf under the directory (a registry snapshot may keep it in a subfolder).
 * Of a split model (`x-00001-of-00003.gguf`) llama.cpp wants the first part.
 */
function resolveModelFile(model: string, modelFile?: string): string {
  if (modelFile) return isAbsolute(modelFile) ? modelFile : join(model, modelFile);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(model);
  } catch (err) {
    throw new UsageError(`--model ${model}: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) return model;
  const firsts = findGguf(model, 3).filter((f) => {
    const part = /-(\d+)-of-\d+\.gguf$/i.exec(f);
    return !part || Number(part[1]) === 1;
  });
  if (firsts.length === 1) return firsts[0];
  if (firsts.length === 0) throw new UsageError(`--model ${model}: no .gguf file in this directory`);
  throw new UsageError(
    `--model ${model}: ${firsts.length} .gguf files (${firsts.map((f) => basename(f)).join(', ')}); choose one with --model-file`,
  );
}

function findGguf(dir: string, depth: number): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isFile() && e.name.toLowerCase().endsWith('.gguf')) out.push(p);
    else if (e.isDirectory() && depth > 1) out.push(...findGguf(p, depth - 1));
  }
  return out.sort();
}

async function main(): Promise<void> {
  let args: ReplicaArgs;
  try {
    args = parseReplicaArgs(process.argv.slice(2));
  } catch (err) {
    log('error', { error: (err as Error).message, usage: err instanceof UsageError });
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  const started = performance.now();
  const loading = LlamaEngine.load({
    modelPath: args.modelPath,
    threads: args.threads,
    contextSize: args.contextSize,
    parallel: args.parallel,
    maxQueue: args.maxQueue,
  });
  // Keep a load failure from becoming an unhandled rejection before the handler below is attached.
  loading.catch(() => {});
  const server = await startReplicaServer({
    engine: loading,
    name: args.name,
    host: args.host,
    port: args.port,
    log: ({ event, ...fields }) => log(String(event ?? 'error'), fields),
  });
  log('listening', { host: args.host, port: server.port, name: args.name });

  let engine: LlamaEngine | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal, load: engine?.load() });
    await server.close(GRACE_MS);
    await engine?.close();
    log('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  try {
    engine = await loading;
  } catch (err) {
    log('error', { phase: 'load', model: args.modelPath, error: (err as Error).message });
    process.exit(1);
  }
  log('loaded', {
    model: args.modelPath,
    loadMs: Math.round(performance.now() - started),
    engineLoadMs: engine.loadMs,
    contextSize: engine.contextSize,
    slots: engine.slots,
    threads: args.threads,
    gpu: engine.gpu,
    chatFormat: engine.chatFormat,
  });
}

main().catch((err) => {
  log('error', { error: (err as Error).message });
  process.exit(1);
});
