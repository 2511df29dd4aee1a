// `fabrik dev …`: helpers for development and tests that need no server. `dev tiny-model` writes a
// tiny random llama GGUF (about 0.5 MB) that the llamacpp runtime loads and serves, so that
// deployments can be tried end to end without downloading a model.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { writeTinyModel } from '../../inference/runtime/tiny-model.js';
import { CliError } from '../client.js';
import { action, addOutputOption, printOne } from '../run.js';

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error (invalid value, or the file cannot be written).`;

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('Development helpers (no server needed)');

  addOutputOption(
    dev
      .command('tiny-model <out>')
      .description('Write a tiny random llama GGUF model (about 0.5 MB) for tests and local deployments')
      .option('--seed <n>', 'weights are drawn from this seed: the same seed writes the same file', '1')
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (out: string, opts) => {
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
        throw CliError.usage(`--seed must be an integer from 0 to ${0xffffffff}, got "${opts.seed}"`);
      const started = performance.now();
      let info: Awaited<ReturnType<typeof writeTinyModel>>;
      try {
        info = await writeTinyModel(out, { seed });
      } catch (err) {
        throw CliError.usage(`cannot write ${out}: ${(err as Error).message}`);
      }
      const ms = Math.round(performance.now() - started);
      printOne(
        opts,
        { ...info, path: resolve(info.path), seed, ms },
        () =>
          `wrote ${info.path} (${info.bytes} bytes, ${info.tensors} tensors, vocabulary ${info.vocabSize}) in ${ms} ms`,
      );
    }),
  );
}
