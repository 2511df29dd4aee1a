// What the server holds, asked by both push and pull: the commit a revision points at (push
// creates the repository when it is missing) and the files of a commit's tree.
import { errorOf, notFound, protocolError } from './errors.js';
import { type Hub, nextLink } from './http.js';
import { apiRepoPath, formatRef, type RepoRef } from './refs.js';

export interface TreeEntry {
  type: 'file' | 'directory';
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

/**
 * The commit the revision points at; undefined when the repository has no such revision yet.
 * With `create`, a missing repository is created (409: someone else just did; fine).
 */
export async function revisionCommit(hub: Hub, ref: RepoRef, create: boolean): Promise<string | undefined> {
  const path = `${apiRepoPath(ref)}/revision/${encodeURIComponent(ref.revision)}`;
  const info = await hub.retry(() =>
    hub.json<{ sha?: string }>('GET', path, { what: `repo info ${formatRef(ref, true)}`, allow: [404] }),
  );
  if (info.status === 200) return info.body?.sha ?? undefined;
  // Either the repository is missing, or it is there without this revision (no commit yet).
  const repo = await hub.retry(() =>
    hub.json('GET', apiRepoPath(ref), { what: `repo info ${formatRef(ref)}`, allow: [404] }),
  );
  if (repo.status === 200) {
    if (!create) throw notFound(`revision "${ref.revision}" of ${formatRef(ref)}`, 'RevisionNotFound');
    return undefined;
  }
  if (!create) throw errorOf(info, `repo info ${formatRef(ref, true)}`);
  await hub
    .fetch('POST', '/hub/api/repos/create', {
      what: `create ${formatRef(ref)}`,
      json: { name: ref.name, organization: ref.namespace, type: ref.type },
      allow: [409],
    })
    .then((r) => r.arrayBuffer());
  return undefined;
}

/** Every file of the tree at `commit`, by path (following `Link: rel=next`). */
export async function listTree(hub: Hub, ref: RepoRef, commit: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  let url: string | undefined = hub.url(`${apiRepoPath(ref)}/tree/${encodeURIComponent(commit)}?recursive=true`);
  for (let pages = 0; url; pages++) {
    if (pages > 100_000) throw protocolError('tree: the listing does not end');
    const page: { res: Response; body: TreeEntry[] } = await hub.retry(() =>
      hub.json<TreeEntry[]>('GET', url as string, { what: `tree of ${formatRef(ref)}@${commit.slice(0, 12)}` }),
    );
    if (!Array.isArray(page.body)) throw protocolError('tree: the answer is not a list');
    for (const e of page.body) if (e.type === 'file') out.set(e.path, e);
    url = nextLink(page.res.headers.get('link'), url);
  }
  return out;
}
