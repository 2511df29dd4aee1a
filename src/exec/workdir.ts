// Working directories: a spec's `workdir` is relative to the root the operator allows (the
// server's --workdir-root), is shown to the task read-only, and is resolved with realpath so that a
// symlink inside the root cannot lead out of it; checked at submit and again at launch. Without a
// `workdir` a task starts in its workload's own directory.
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';

/** The real path of a spec's workdir, which must exist and lie inside the root's real path. */
export function resolveWorkdir(root: string, workdir: string): string {
  const realRoot = realpathSync(root);
  const lexical = resolve(realRoot, workdir);
  if (outside(realRoot, lexical)) throw new Error(`workdir "${workdir}" is outside the allowed root ${root}`);
  let real: string;
  try {
    real = realpathSync(lexical);
  } catch {
    throw new Error(`workdir "${workdir}" does not exist under ${root}`);
  }
  if (outside(realRoot, real)) {
    throw new Error(`workdir "${workdir}" leads outside the allowed root ${root} (through a symbolic link)`);
  }
  return real;
}

function outside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel.startsWith('..') || isAbsolute(rel);
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
