// Names in the registry, checked before anything is looked up: repo ids as the Hub writes them
// (`<org>.<project>/<name>`), revisions (a ref name or a 40-hex commit id) and file paths inside a
// version (relative, no `..`, nothing a filesystem would read differently). Pure.
import { AppError } from '../domain/errors.js';
import { isDnsLabel } from '../domain/ids.js';
import type { RepoKind } from '../store/schema.js';

/** Repo names as the Hub allows them: letters, digits, `-`, `_`, `.`; not `.git` at the end. */
const REPO_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$/;
/** Branch and tag names: a conservative subset of git's rules. */
const REF_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9_])?$/;
export const COMMIT_ID = /^[0-9a-f]{40}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;
export const MAX_PATH_LENGTH = 1024;
export const DEFAULT_BRANCH = 'main';

export interface RepoId {
  readonly org: string;
  readonly project: string;
  readonly name: string;
}

export function repoIdText(r: RepoId): string {
  return `${r.org}.${r.project}/${r.name}`;
}

/** The audit resource of a repo: `projects/<org.project>/models/<name>` (or datasets). */
export function repoResource(kind: RepoKind, r: RepoId): string {
  return `projects/${r.org}.${r.project}/${kind}s/${r.name}`;
}

export function isRepoName(name: string): boolean {
  return REPO_NAME.test(name) && !name.includes('..') && !name.endsWith('.git');
}

/** `<org>.<project>` and `<name>`, or a 404-worthy refusal (a malformed id names nothing). */
export function parseRepoId(namespace: string, name: string): RepoId {
  const dot = namespace.indexOf('.');
  const org = namespace.slice(0, dot);
  const project = namespace.slice(dot + 1);
  if (dot <= 0 || !isDnsLabel(org) || !isDnsLabel(project)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `repo namespace "${namespace}" is not <org>.<project> (DNS labels, e.g. acme.vision)`,
    );
  }
  if (!isRepoName(name)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `repo name "${name}" must be 1-96 letters, digits, "-", "_" or ".", start and end with a letter or digit, and not end in .git`,
    );
  }
  return { org, project, name };
}

/** A full repo id `<org>.<project>/<name>`. */
export function parseRepoIdText(text: string): RepoId {
  const slash = text.indexOf('/');
  if (slash <= 0 || text.indexOf('/', slash + 1) !== -1) {
    throw new AppError('INVALID_ARGUMENT', `repo id "${text}" is not <org>.<project>/<name>`);
  }
  return parseRepoId(text.slice(0, slash), text.slice(slash + 1));
}

export function isRefName(name: string): boolean {
  return REF_NAME.test(name) && !name.includes('..') && !COMMIT_ID.test(name);
}

export function checkRefName(name: string): void {
  if (!isRefName(name)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `ref name "${name}" must be 1-128 letters, digits, "-", "_" or ".", and not look like a commit id`,
    );
  }
}

/** Why a file path inside a version is refused, or undefined when it is fine. */
export function pathProblem(path: string): string | undefined {
  if (path.length === 0) return 'is empty';
  if (path.length > MAX_PATH_LENGTH) return `is longer than ${MAX_PATH_LENGTH} characters`;
  if (path.startsWith('/')) return 'is absolute';
  if (path.includes('\\')) return 'contains a backslash';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'contains a control character';
  const parts = path.split('/');
  if (parts.some((p) => p === '')) return 'has an empty segment';
  if (parts.some((p) => p === '.' || p === '..')) return 'contains "." or ".."';
  if (parts[0] === '.git') return 'is inside .git';
  return undefined;
}

export function checkPath(path: string): void {
  const problem = pathProblem(path);
  if (problem)
    throw new AppError('INVALID_ARGUMENT', `file path "${path.slice(0, 200)}" ${problem}`, {
      path: path.slice(0, 200),
    });
}

/** A reference as the CLI and specs write it: `[datasets/]<org>.<project>/<name>[:<rev>]`. */
export interface VersionRef extends RepoId {
  readonly kind: RepoKind;
  readonly revision: string;
}

export function parseVersionRef(text: string, kind: RepoKind = 'model'): VersionRef {
  let rest = text;
  let k = kind;
  if (rest.startsWith('datasets/')) {
    k = 'dataset';
    rest = rest.slice('datasets/'.length);
  } else if (rest.startsWith('models/')) {
    k = 'model';
    rest = rest.slice('models/'.length);
  }
  const colon = rest.lastIndexOf(':');
  const revision = colon > 0 ? rest.slice(colon + 1) : DEFAULT_BRANCH;
  const id = parseRepoIdText(colon > 0 ? rest.slice(0, colon) : rest);
  if (!COMMIT_ID.test(revision)) checkRefName(revision);
  return { ...id, kind: k, revision };
}

export function versionRefText(r: VersionRef): string {
  return `${r.kind === 'dataset' ? 'datasets/' : ''}${repoIdText(r)}:${r.revision}`;
}
