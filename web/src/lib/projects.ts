// The project refs (`org.project`) the caller can see, walking every page of orgs and projects.
import { get } from '../api/client.js';
import { fetchAll } from './paging.js';

export async function visibleProjects(): Promise<string[]> {
  const orgs = await fetchAll((cursor) => get('/api/v1/orgs', { query: { cursor, limit: 200 } }));
  const out: string[] = [];
  for (const o of orgs) {
    const ps = await fetchAll((cursor) =>
      get('/api/v1/orgs/{org}/projects', { path: { org: o.name }, query: { cursor, limit: 200 } }),
    );
    out.push(...ps.map((p) => `${o.name}.${p.name}`));
  }
  return out.sort();
}
