// Repository references as people type them (`acme.train/llama:v2`, `datasets/acme.train/corpus`)
// and the Hub paths they map to: /hub/api/<type>s/… for the JSON API, /hub/[datasets/]… for
// downloads and the LFS batch endpoint.
import { CliError } from '../client.js';

export type RepoType = 'model' | 'dataset';

export interface RepoRef {
  readonly type: RepoType;
  /** `<org>.<project>` */
  readonly namespace: string;
  readonly name: string;
  /** A branch or tag name, or a 40-hex commit id; `main` when the reference names none. */
  readonly revision: string;
  /** Whether the reference itself named the revision (`:<rev>`). */
  readonly explicitRevision: boolean;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const REPO_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$/;
const REVISION = /^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;

const REF_FORMAT = '<org>.<project>/<name>[:<rev>] (or datasets/<org>.<project>/<name>[:<rev>])';

/** `acme.train/llama[:rev]`, `datasets/acme.train/corpus[:rev]`; `dataset` = the --dataset flag. */
export function parseRef(input: string, opts: { dataset?: boolean; revision?: string } = {}): RepoRef {
  const bad = (why: string) => CliError.usage(`bad reference "${input}": ${why}; expected ${REF_FORMAT}`);
  let s = input.trim();
  let type: RepoType = opts.dataset ? 'dataset' : 'model';
  if (s.startsWith('datasets/')) {
    type = 'dataset';
    s = s.slice('datasets/'.length);
  } else if (s.startsWith('models/')) {
    if (opts.dataset) throw bad('models/ together with --dataset');
    s = s.slice('models/'.length);
  }
  const slash = s.indexOf('/');
  if (slash < 0) throw bad('no "/" between namespace and name');
  const namespace = s.slice(0, slash);
  let rest = s.slice(slash + 1);
  let revision: string | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    revision = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!revision) throw bad('empty revision after ":"');
  }
  const parts = namespace.split('.');
  if (parts.length !== 2 || !parts.every((p) => LABEL.test(p)))
    throw bad(`"${namespace}" is not <org>.<project> (lowercase letters, digits and dashes)`);
  if (!REPO_NAME.test(rest) || rest.endsWith('.git') || rest.includes('..'))
    throw bad(`"${rest}" is not a repository name (letters, digits, ".", "_", "-"; at most 96)`);
  if (opts.revision !== undefined && revision !== undefined && opts.revision !== revision)
    throw CliError.usage(`the reference names revision "${revision}" and --revision says "${opts.revision}"`);
  const rev = revision ?? opts.revision ?? 'main';
  if (!REVISION.test(rev) || rev.includes('..') || rev.endsWith('/') || rev.includes('//'))
    throw bad(`"${rev}" is not a revision (a branch, tag or 40-hex commit id)`);
  return { type, namespace, name: rest, revision: rev, explicitRevision: revision !== undefined };
}

/** `acme.train/llama` or `datasets/acme.train/corpus`: the form people type. */
export function formatRef(ref: RepoRef, withRevision = false): string {
  const base = `${ref.type === 'dataset' ? 'datasets/' : ''}${ref.namespace}/${ref.name}`;
  return withRevision ? `${base}:${ref.revision}` : base;
}

export function apiRepoPath(ref: RepoRef): string {
  return `/hub/api/${ref.type}s/${ref.namespace}/${ref.name}`;
}

export function gitRepoPath(ref: RepoRef): string {
  return `/hub/${ref.type === 'dataset' ? 'datasets/' : ''}${ref.namespace}/${ref.name}`;
}

export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}
