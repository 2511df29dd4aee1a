// Working directories: a spec's `workdir` is relative to the root the operator allows
// (the server's --workdir-root); anything that escapes it is refused at submit time.
import { existsSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';

export function resolveWorkdir(root: string, workdir: string | undefined): string {
  const dir = resolve(root, workdir ?? '.');
  const rel = relative(resolve(root), dir);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new Error(`workdir "${workdir}" is outside the allowed root ${root}`);
  }
  return dir;
}

/** Shell words that are not programs on PATH. */
const SHELL_WORDS = new Set([
  'cd',
  'echo',
  'exec',
  'exit',
  'export',
  'for',
  'if',
  'printf',
  'read',
  'set',
  'sleep',
  'test',
  'true',
  'false',
  'trap',
  'wait',
  'while',
  'until',
  'case',
  '[',
  '.',
  ':',
  'eval',
  'ulimit',
  'umask',
  'unset',
  'kill',
  'source',
  '{',
  '(',
]);

/**
 * The program a shell command starts with, if it cannot be found: a name on PATH, a path relative
 * to the working directory, or a shell word. Returns undefined when it looks runnable.
 */
export function missingProgram(command: string, cwd: string, path = process.env.PATH ?? ''): string | undefined {
  const words = command.trim().split(/\s+/);
  let i = 0;
  while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i])) i++; // VAR=value prefixes
  const program = words[i];
  if (!program || SHELL_WORDS.has(program) || /[$`"'|;&<>()]/.test(program)) return undefined;
  if (program.includes('/')) return existsSync(resolve(cwd, program)) ? undefined : program;
  return path.split(delimiter).some((d) => d && existsSync(join(d, program))) ? undefined : program;
}
