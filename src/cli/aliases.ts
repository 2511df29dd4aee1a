// kubectl-style verbs over the command groups: `fabrik get nodes` is `fabrik fleet nodes`,
// `fabrik describe node b200-0001` is `fabrik fleet get b200-0001`. Rewriting argv keeps one
// implementation per command. `fabrik set storage-quota P SIZE` is `fabrik storage-quota set P SIZE`.

const GET: Record<string, { list: string[]; one?: string[] }> = {
  workloads: { list: ['ps'], one: ['describe'] },
  nodes: { list: ['fleet', 'nodes'], one: ['fleet', 'get'] },
  pools: { list: ['fleet', 'pools'] },
  orgs: { list: ['org', 'list'], one: ['org', 'get'] },
  projects: { list: ['project', 'list'], one: ['project', 'get'] },
  quotas: { list: ['quota', 'list'] },
  keys: { list: ['key', 'list'] },
  members: { list: ['member', 'list'] },
  serviceaccounts: { list: ['sa', 'list'] },
  users: { list: ['user', 'list'] },
  audit: { list: ['audit', 'list'] },
  'break-glass': { list: ['break-glass', 'list'] },
  models: { list: ['model', 'list'], one: ['model', 'describe'] },
  datasets: { list: ['dataset', 'list'], one: ['dataset', 'describe'] },
  'storage-quota': { list: ['storage-quota', 'get'], one: ['storage-quota', 'get'] },
  'blob-stores': { list: ['blob-store', 'list'] },
  deployments: { list: ['deployment', 'list'], one: ['deployment', 'describe'] },
  'inference-limits': { list: ['inference-limits', 'get'] },
};

const SET: Record<string, string[]> = {
  'storage-quota': ['storage-quota', 'set'],
  'inference-limits': ['inference-limits', 'set'],
};

const SINGULAR: Record<string, string> = {
  workload: 'workloads',
  wl: 'workloads',
  node: 'nodes',
  pool: 'pools',
  org: 'orgs',
  organization: 'orgs',
  project: 'projects',
  quota: 'quotas',
  key: 'keys',
  member: 'members',
  sa: 'serviceaccounts',
  serviceaccount: 'serviceaccounts',
  user: 'users',
  model: 'models',
  dataset: 'datasets',
  'storage-quotas': 'storage-quota',
  'blob-store': 'blob-stores',
  deployment: 'deployments',
  deploy: 'deployments',
  'inference-limit': 'inference-limits',
  'break-glass-grants': 'break-glass',
};

export const GET_RESOURCES = Object.keys(GET);

/** Rewrites `get RESOURCE [NAME] …`, `describe RESOURCE NAME …` and `set RESOURCE …`; other argv pass unchanged. */
export function expandAliases(argv: string[]): string[] {
  const [node, script, verb, resource, ...rest] = argv;
  if (verb === 'set' && resource && SET[resource]) return [node, script, ...SET[resource], ...rest];
  if ((verb !== 'get' && verb !== 'describe') || !resource || resource.startsWith('-')) return argv;
  const kind = GET[resource] ? resource : SINGULAR[resource];
  if (!kind) {
    // `describe NAME` (a workload) stays as it is; `get` of an unknown kind gets a usage error.
    return verb === 'describe' ? argv : [node, script, 'get-unknown', resource];
  }
  const name = rest[0] && !rest[0].startsWith('-') ? rest[0] : undefined;
  const target = GET[kind];
  if (name && (verb === 'describe' || target.one)) {
    if (!target.one) return [node, script, 'get-unknown', resource];
    return [node, script, ...target.one, ...rest];
  }
  return [node, script, ...target.list, ...rest];
}
