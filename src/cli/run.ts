// Shared plumbing for commands: the API client from the saved login, output selection, and a
// wrapper that turns failures into a message on stderr and a meaningful exit code.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ApiClient, CliError } from './client.js';
import { loadConfig } from './config.js';
import { type Column, EXIT, type OutputFormat, table } from './output.js';

export interface OutputOpts {
  output?: string;
}

export function addOutputOption(cmd: Command): Command {
  return cmd.option('-o, --output <format>', 'table, wide or json', 'table');
}

export function outputFormat(opts: OutputOpts): OutputFormat {
  const f = opts.output ?? 'table';
  if (f !== 'table' && f !== 'wide' && f !== 'json')
    throw CliError.usage(`unknown output format "${f}": use table, wide or json`);
  return f;
}

/** A file named on the command line; an unreadable one is a usage error (exit 2). */
export function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw CliError.usage(`cannot read ${path}: ${(err as Error).message}`);
  }
}

export function client(): ApiClient {
  return new ApiClient(loadConfig());
}

/** Prints a list as a table, or `{ "items": [...] }` with -o json. */
export function printList<T>(opts: OutputOpts, items: readonly T[], columns: readonly Column<T>[]): void {
  const f = outputFormat(opts);
  if (f === 'json') process.stdout.write(`${JSON.stringify({ items }, null, 2)}\n`);
  else if (items.length === 0) process.stderr.write('No resources found.\n');
  else process.stdout.write(`${table(items, columns, f === 'wide')}\n`);
}

/** Prints one object: JSON with -o json, else `key: value` lines (or a custom rendering). */
export function printOne(opts: OutputOpts, obj: unknown, render?: () => string): void {
  const f = outputFormat(opts);
  if (f === 'json') {
    process.stdout.write(`${JSON.stringify(obj, null, 2)}\n`);
    return;
  }
  if (render) {
    process.stdout.write(`${render()}\n`);
    return;
  }
  const o = obj as Record<string, unknown>;
  const width = Math.max(...Object.keys(o).map((k) => k.length));
  for (const [k, v] of Object.entries(o)) {
    process.stdout.write(
      `${`${k}:`.padEnd(width + 2)}${v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : v}\n`,
    );
  }
}

/** Wraps a command action: sets process.exitCode from failures, prints errors in the chosen format. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const cmd = args[args.length - 1] as Command | undefined;
      const json = typeof cmd?.opts === 'function' && cmd.opts().output === 'json';
      if (err instanceof CliError) {
        if (json) process.stderr.write(`${JSON.stringify(err.body)}\n`);
        else
          process.stderr.write(
            `error: ${err.message}${err.body.error.code && !err.body.error.code.startsWith('HTTP_') ? ` (${err.body.error.code})` : ''}\n`,
          );
        process.exitCode = err.exitCode;
      } else {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = EXIT.internal;
      }
    }
  };
}
