// Command groups for setting up the factory: org, project, user, sa, member, key, quota, fleet, audit.
// Each command is a thin adapter: parse flags, call the API, print a table or JSON.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { age } from '../output.js';
import { action, addOutputOption, client, readInput, printList, printOne } from '../run.js';

type Obj = Record<string, any>;

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw CliError.usage(`${name}: "${v}" is not a non-negative integer`);
  return n;
}

function requireOrg(opts: Obj): string {
  if (!opts.org) throw CliError.usage('--org is required');
  return opts.org;
}

function principalFlags(opts: Obj): Obj {
  if (opts.user && opts.sa) throw CliError.usage('give either --user or --sa, not both');
  return { ...(opts.user ? { user: opts.user } : {}), ...(opts.sa ? { serviceAccount: opts.sa } : {}) };
}

export function registerAdminCommands(program: Command): void {
  const sub = (group: Command, name: string, description: string) =>
    addOutputOption(group.command(name).description(description));

  // org
  const org = program.command('org').description('Organizations (tenants): create, list, inspect, update, delete');
  sub(org, 'create <name>', 'Create an organization (operators)')
    .requiredOption('--residency <where>', 'where its data must stay: de or eu')
    .option('--display-name <text>', 'human-readable name')
    .action(
      action(async (name, opts) => {
        const o = await client().request<Obj>('POST', '/api/v1/orgs', {
          name,
          residency: opts.residency,
          ...(opts.displayName ? { displayName: opts.displayName } : {}),
        });
        printOne(opts, o, () => `organization/${o.name} created (residency ${o.residency})`);
      }),
    );
  sub(org, 'list', 'List organizations you can see').action(
    action(async (opts) => {
      const items = await client().all<Obj>('/api/v1/orgs');
      printList(opts, items, [
        { header: 'NAME', get: (o) => o.name },
        { header: 'DISPLAY NAME', get: (o) => o.displayName },
        { header: 'RESIDENCY', get: (o) => o.residency },
        { header: 'STATUS', get: (o) => o.status },
        { header: 'AGE', get: (o) => age(o.createdAt) },
        { header: 'ID', get: (o) => o.id, wide: true },
      ]);
    }),
  );
  sub(org, 'get <name>', 'Show one organization').action(
    action(async (name, opts) => printOne(opts, await client().get(`/api/v1/orgs/${q(name)}`))),
  );
  sub(org, 'update <name>', 'Change display name (owners), residency or status (operators)')
    .option('--display-name <text>')
    .option('--residency <where>', 'de or eu')
    .option('--status <status>', 'active or suspended')
    .action(
      action(async (name, opts) => {
        const patch = {
          ...(opts.displayName ? { displayName: opts.displayName } : {}),
          ...(opts.residency ? { residency: opts.residency } : {}),
          ...(opts.status ? { status: opts.status } : {}),
        };
        if (Object.keys(patch).length === 0)
          throw CliError.usage('nothing to update: give --display-name, --residency or --status');
        printOne(opts, await client().request('PATCH', `/api/v1/orgs/${q(name)}`, patch));
      }),
    );
  sub(org, 'delete <name>', 'Delete an empty organization (operators)').action(
    action(async (name, opts) => {
      await client().request('DELETE', `/api/v1/orgs/${q(name)}`);
      printOne(opts, { deleted: `organization/${name}` }, () => `organization/${name} deleted`);
    }),
  );

  // project
  const project = program
    .command('project')
    .description("Projects: an org's unit of quota and billing (refer to them as org.project)");
  sub(project, 'create <name>', 'Create a project in an org (org admins)')
    .requiredOption('--org <org>', 'organization')
    .option('--display-name <text>')
    .action(
      action(async (name, opts) => {
        const p = await client().request<Obj>('POST', `/api/v1/orgs/${q(opts.org)}/projects`, {
          name,
          ...(opts.displayName ? { displayName: opts.displayName } : {}),
        });
        printOne(opts, p, () => `project/${p.ref} created`);
      }),
    );
  sub(project, 'list', 'List the projects of an org')
    .requiredOption('--org <org>', 'organization')
    .action(
      action(async (opts) => {
        const items = await client().all<Obj>(`/api/v1/orgs/${q(opts.org)}/projects`);
        printList(opts, items, [
          { header: 'NAME', get: (p) => p.ref },
          { header: 'DISPLAY NAME', get: (p) => p.displayName },
          { header: 'AGE', get: (p) => age(p.createdAt) },
          { header: 'ID', get: (p) => p.id, wide: true },
        ]);
      }),
    );
  sub(project, 'get <project>', 'Show a project (org.project or id) with its quotas').action(
    action(async (ref, opts) => {
      const c = client();
      const p = await c.get<Obj>(`/api/v1/projects/${q(ref)}`);
      const quotas = await c.get<{ items: Obj[] }>(`/api/v1/projects/${q(ref)}/quotas`);
      printOne(opts, { ...p, quotas: quotas.items }, () =>
        [
          `name:          ${p.ref}`,
          `id:            ${p.id}`,
          `display name:  ${p.displayName}`,
          `created:       ${p.createdAt}`,
          'quotas:',
          ...(quotas.items.length
            ? quotas.items.map(
                (x) =>
                  `  ${x.pool}: guaranteed ${x.guaranteed}, limit ${x.limit} GPUs, used ${x.used} (borrowed ${x.borrowed})`,
              )
            : ['  none']),
        ].join('\n'),
      );
    }),
  );
  sub(project, 'delete <project>', 'Delete a project and its quotas (org admins)').action(
    action(async (ref, opts) => {
      await client().request('DELETE', `/api/v1/projects/${q(ref)}`);
      printOne(opts, { deleted: `project/${ref}` }, () => `project/${ref} deleted`);
    }),
  );

  // user
  const user = program.command('user').description('Platform users (operators)');
  sub(user, 'create <name>', 'Create a user')
    .option('--operator', 'make the user a platform operator')
    .action(
      action(async (name, opts) => {
        const u = await client().request<Obj>('POST', '/api/v1/users', {
          name,
          ...(opts.operator ? { operator: true } : {}),
        });
        printOne(opts, u, () => `user/${u.name} created${u.operator ? ' (operator)' : ''}`);
      }),
    );
  sub(user, 'list', 'List users').action(
    action(async (opts) => {
      const items = await client().all<Obj>('/api/v1/users');
      printList(opts, items, [
        { header: 'NAME', get: (u) => u.name },
        { header: 'OPERATOR', get: (u) => (u.operator ? 'yes' : 'no') },
        { header: 'AGE', get: (u) => age(u.createdAt) },
      ]);
    }),
  );

  // service accounts
  const sa = program.command('sa').description('Service accounts: identities for automation inside an org');
  sub(sa, 'create <name>', 'Create a service account with a role (org admins)')
    .requiredOption('--org <org>', 'organization')
    .requiredOption('--role <role>', 'viewer, member, admin or owner')
    .option('--project <project>', 'limit the role to one project (name within the org)')
    .action(
      action(async (name, opts) => {
        const s = await client().request<Obj>('POST', `/api/v1/orgs/${q(opts.org)}/serviceaccounts`, {
          name,
          role: opts.role,
          ...(opts.project ? { project: opts.project } : {}),
        });
        printOne(opts, s, () => `serviceaccount/${s.name} created in ${s.org}`);
      }),
    );
  sub(sa, 'list', 'List service accounts of an org')
    .requiredOption('--org <org>', 'organization')
    .action(
      action(async (opts) => {
        const items = await client().all<Obj>(`/api/v1/orgs/${q(opts.org)}/serviceaccounts`);
        printList(opts, items, [
          { header: 'NAME', get: (s) => s.name },
          { header: 'PRINCIPAL', get: (s) => s.principal },
          { header: 'AGE', get: (s) => age(s.createdAt) },
        ]);
      }),
    );

  // members
  const member = program.command('member').description('Who holds which role in an org or project');
  sub(member, 'add', 'Grant a role to a user or service account (org admins)')
    .requiredOption('--org <org>', 'organization')
    .option('--user <name>', 'a person (created if new)')
    .option('--sa <name>', 'a service account of the org')
    .requiredOption('--role <role>', 'viewer, member, admin or owner')
    .option('--project <project>', 'grant on one project only')
    .action(
      action(async (opts) => {
        const m = await client().request<Obj>('POST', `/api/v1/orgs/${q(opts.org)}/members`, {
          ...principalFlags(opts),
          role: opts.role,
          ...(opts.project ? { project: opts.project } : {}),
        });
        printOne(opts, m, () => `${m.principal} is ${m.role} of ${opts.org}${m.project ? `.${m.project}` : ''}`);
      }),
    );
  sub(member, 'list', 'List the members of an org')
    .requiredOption('--org <org>', 'organization')
    .action(
      action(async (opts) => {
        const items = await client().all<Obj>(`/api/v1/orgs/${q(opts.org)}/members`);
        printList(opts, items, [
          { header: 'PRINCIPAL', get: (m) => m.principal },
          { header: 'ROLE', get: (m) => m.role },
          { header: 'PROJECT', get: (m) => m.project ?? '(all)' },
          { header: 'AGE', get: (m) => age(m.createdAt) },
        ]);
      }),
    );
  sub(member, 'remove', 'Remove a role (org admins)')
    .requiredOption('--org <org>', 'organization')
    .option('--user <name>')
    .option('--sa <name>')
    .option('--project <project>', 'the project of a project-scoped grant')
    .action(
      action(async (opts) => {
        const p = principalFlags(opts);
        const who = p.user ? `user:${p.user}` : p.serviceAccount ? `serviceaccount:${p.serviceAccount}` : undefined;
        if (!who) throw CliError.usage('give --user or --sa');
        await client().request(
          'DELETE',
          `/api/v1/orgs/${q(opts.org)}/members/${q(who)}${opts.project ? `?project=${q(opts.project)}` : ''}`,
        );
        printOne(
          opts,
          { removed: who },
          () => `${who} removed from ${opts.org}${opts.project ? `.${opts.project}` : ''}`,
        );
      }),
    );

  // keys
  const key = program.command('key').description('API keys: shown once at creation, stored only as a hash');
  sub(key, 'create <name>', 'Create an API key (for yourself, or with --user/--sa for others as an org admin)')
    .option('--org <org>', 'organization the key is scoped to')
    .option('--project <project>', 'narrow the key to one project')
    .option('--user <name>')
    .option('--sa <name>')
    .option('--ttl-days <days>', 'expiry in days (default 90)')
    .option('--expires-at <time>', 'expiry as an RFC 3339 time')
    .option('--platform', 'an unscoped key for an operator user (operators; needs --user)')
    .action(
      action(async (name, opts) => {
        const expiry = {
          ...(opts.ttlDays ? { ttlDays: intFlag('--ttl-days', opts.ttlDays) } : {}),
          ...(opts.expiresAt ? { expiresAt: opts.expiresAt } : {}),
        };
        const k = opts.platform
          ? await client().request<Obj>('POST', '/api/v1/keys', { name, user: opts.user, ...expiry })
          : await client().request<Obj>('POST', `/api/v1/orgs/${q(requireOrg(opts))}/keys`, {
              name,
              ...principalFlags(opts),
              ...(opts.project ? { project: opts.project } : {}),
              ...expiry,
            });
        printOne(opts, k, () =>
          [
            `key ${k.prefix} created for ${k.principal}${k.org ? ` in ${k.org}${k.project ? `.${k.project}` : ''}` : ' (platform)'}, expires ${k.expiresAt ?? 'never'}`,
            '',
            `  ${k.token}`,
            '',
            'The token is shown only now; fabrik keeps only its hash.',
          ].join('\n'),
        );
      }),
    );
  sub(key, 'list', 'List API keys (admins see all of the org, others their own)')
    .option('--org <org>', 'organization')
    .option('--platform', 'platform keys (operators)')
    .action(
      action(async (opts) => {
        const items = await client().all<Obj>(
          opts.platform ? '/api/v1/keys' : `/api/v1/orgs/${q(requireOrg(opts))}/keys`,
        );
        printList(opts, items, [
          { header: 'PREFIX', get: (k) => k.prefix },
          { header: 'NAME', get: (k) => k.name },
          { header: 'PRINCIPAL', get: (k) => k.principal },
          { header: 'PROJECT', get: (k) => k.project ?? '(all)' },
          { header: 'STATE', get: (k) => k.state },
          { header: 'EXPIRES', get: (k) => k.expiresAt?.slice(0, 10) ?? 'never' },
          { header: 'LAST USED', get: (k) => (k.lastUsedAt ? `${age(k.lastUsedAt)} ago` : 'never') },
          { header: 'ID', get: (k) => k.id, wide: true },
          { header: 'CREATED BY', get: (k) => k.createdBy, wide: true },
        ]);
      }),
    );
  sub(key, 'revoke <key>', 'Revoke an API key by prefix or id; takes effect within a second')
    .option('--org <org>', 'organization')
    .option('--platform', 'a platform key (operators)')
    .action(
      action(async (ref, opts) => {
        const k = await client().request<Obj>(
          'DELETE',
          opts.platform ? `/api/v1/keys/${q(ref)}` : `/api/v1/orgs/${q(requireOrg(opts))}/keys/${q(ref)}`,
        );
        printOne(opts, k, () => `key ${k.prefix} revoked`);
      }),
    );

  // quotas
  const quota = program
    .command('quota')
    .description('GPU quotas per project and pool: guaranteed (never taken away) and limit (borrowing)');
  sub(quota, 'set <project> <pool>', 'Set a quota (operators); the guarantees of a pool must fit its capacity')
    .requiredOption('--guaranteed <gpus>', 'GPUs always available to the project')
    .requiredOption('--limit <gpus>', 'most GPUs it may use, borrowing idle ones')
    .action(
      action(async (project, pool, opts) => {
        const body = { guaranteed: intFlag('--guaranteed', opts.guaranteed), limit: intFlag('--limit', opts.limit) };
        const x = await client().request<Obj>('PUT', `/api/v1/projects/${q(project)}/quotas/${q(pool)}`, body);
        printOne(opts, x, () => `quota ${x.project}/${x.pool}: guaranteed ${x.guaranteed}, limit ${x.limit} GPUs`);
      }),
    );
  sub(quota, 'list', 'List quotas (all for operators)')
    .option('--org <org>', 'only this organization')
    .option('--pool <pool>', 'only this pool')
    .action(
      action(async (opts) => {
        const params = new URLSearchParams({
          ...(opts.org ? { org: opts.org } : {}),
          ...(opts.pool ? { pool: opts.pool } : {}),
        });
        const items = await client().all<Obj>(`/api/v1/quotas${params.size ? `?${params}` : ''}`);
        printList(opts, items, [
          { header: 'PROJECT', get: (x) => x.project },
          { header: 'POOL', get: (x) => x.pool },
          { header: 'GUARANTEED', get: (x) => x.guaranteed },
          { header: 'LIMIT', get: (x) => x.limit },
          { header: 'USED', get: (x) => x.used },
          { header: 'BORROWED', get: (x) => x.borrowed },
          { header: 'UPDATED', get: (x) => age(x.updatedAt) },
        ]);
      }),
    );
  sub(quota, 'delete <project> <pool>', 'Remove a quota (operators)').action(
    action(async (project, pool, opts) => {
      await client().request('DELETE', `/api/v1/projects/${q(project)}/quotas/${q(pool)}`);
      printOne(opts, { deleted: `${project}/${pool}` }, () => `quota ${project}/${pool} deleted`);
    }),
  );

  // fleet
  const fleet = program.command('fleet').description('Nodes and pools of the factory (operators change them)');
  sub(fleet, 'apply', 'Create or update nodes and pools from a fleet file')
    .requiredOption('-f, --file <file>', 'fleet file (YAML or JSON)')
    .option('--prune', 'remove nodes the file no longer lists')
    .action(
      action(async (opts) => {
        const text = readInput(opts.file);
        const r = await client().request<Obj>('POST', '/api/v1/fleet/apply', {
          file: text,
          source: basename(opts.file),
          ...(opts.prune ? { prune: true } : {}),
        });
        printOne(
          opts,
          r,
          () =>
            `fleet applied: ${r.nodes} nodes (${r.gpus} GPUs) in ${r.pools} pools; ${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged, ${r.pruned} pruned`,
        );
      }),
    );
  sub(fleet, 'pools', 'Pools with capacity and guaranteed GPUs').action(
    action(async (opts) => {
      const { items } = await client().get<{ items: Obj[] }>('/api/v1/fleet/pools');
      printList(opts, items, [
        { header: 'POOL', get: (p) => p.name },
        { header: 'GPU', get: (p) => `${p.gpuModel}${p.devGpus ? ' (development)' : ''}` },
        { header: 'MEMORY', get: (p) => `${p.gpuMemoryGiB}GiB` },
        { header: 'NODES', get: (p) => p.nodes },
        { header: 'GPUS', get: (p) => p.gpus },
        { header: 'SCHEDULABLE', get: (p) => p.schedulableGpus },
        { header: 'GUARANTEED', get: (p) => p.guaranteed },
      ]);
    }),
  );
  sub(fleet, 'nodes', 'List nodes')
    .option('--pool <pool>')
    .option('--state <state>', 'ready, cordoned, draining or down')
    .option('--pod <pod>')
    .action(
      action(async (opts) => {
        const params = new URLSearchParams({
          ...(opts.pool ? { pool: opts.pool } : {}),
          ...(opts.state ? { state: opts.state } : {}),
          ...(opts.pod ? { pod: opts.pod } : {}),
        });
        const items = await client().all<Obj>(`/api/v1/fleet/nodes${params.size ? `?${params}` : ''}`);
        printList(opts, items, [
          { header: 'NAME', get: (n) => n.name },
          { header: 'POOL', get: (n) => n.pool },
          { header: 'GPUS', get: (n) => `${n.gpuCount}×${n.gpuModel}${n.devGpus ? ' (development)' : ''}` },
          { header: 'STATE', get: (n) => n.state },
          { header: 'POD', get: (n) => n.pod },
          { header: 'LEAF', get: (n) => n.ibLeaf },
          { header: 'ISOLATION', get: (n) => n.isolation ?? '' },
          { header: 'RACK', get: (n) => n.rack, wide: true },
          { header: 'SPINE', get: (n) => n.ibSpine, wide: true },
          { header: 'CPU', get: (n) => n.cpu, wide: true },
          { header: 'RAM', get: (n) => `${n.ramGiB}GiB`, wide: true },
        ]);
      }),
    );
  sub(fleet, 'get <node>', 'Show one node').action(
    action(async (name, opts) => printOne(opts, await client().get(`/api/v1/fleet/nodes/${q(name)}`))),
  );
  for (const [verb, text] of [
    ['cordon', 'Stop placing new work on a node'],
    ['drain', 'Stop new work and let running work finish, then the node is empty'],
    ['uncordon', 'Return a node to service (state ready)'],
  ] as const) {
    sub(fleet, `${verb} <node>`, text).action(
      action(async (name, opts) => {
        const n = await client().request<Obj>('POST', `/api/v1/fleet/nodes/${q(name)}/${verb}`);
        printOne(opts, n, () => `node/${n.name} ${n.state}`);
      }),
    );
  }
  sub(fleet, 'set-state <node> <state>', 'Set a node state directly: ready, cordoned, draining or down').action(
    action(async (name, state, opts) => {
      const n = await client().request<Obj>('PATCH', `/api/v1/fleet/nodes/${q(name)}`, { state });
      printOne(opts, n, () => `node/${n.name} ${n.state}`);
    }),
  );

  // audit
  const audit = program.command('audit').description('The audit trail of every change');
  sub(audit, 'list', 'List audit entries you may see, oldest first')
    .option('--org <org>')
    .option('--action <action>', 'e.g. quota.set')
    .option('--resource <prefix>', 'resource prefix, e.g. orgs/acme')
    .option('--limit <n>', 'at most this many entries (default all)')
    .option('--break-glass', "only operators' break-glass: grants opened and revoked, each access (with its reason)")
    .action(
      action(async (opts) => {
        const params = new URLSearchParams({
          ...(opts.org ? { org: opts.org } : {}),
          ...(opts.action ? { action: opts.action } : {}),
          ...(opts.resource ? { resource: opts.resource } : {}),
          ...(opts.breakGlass ? { breakGlass: 'true' } : {}),
        });
        const limit = intFlag('--limit', opts.limit);
        const c = client();
        const items = limit
          ? (await c.get<{ items: Obj[] }>(`/api/v1/audit/entries?${params}&limit=${limit}`)).items
          : await c.all<Obj>(`/api/v1/audit/entries${params.size ? `?${params}` : ''}`);
        printList(opts, items, [
          { header: 'SEQ', get: (e) => e.seq },
          { header: 'TIME', get: (e) => e.time },
          { header: 'ACTOR', get: (e) => e.actor.principal },
          { header: 'ACTION', get: (e) => e.action },
          { header: 'RESOURCE', get: (e) => e.resource },
          { header: 'OUTCOME', get: (e) => e.outcome },
          ...(opts.breakGlass
            ? [
                { header: 'GRANT', get: (e: Obj) => e.breakGlass?.grant },
                { header: 'REASON', get: (e: Obj) => e.breakGlass?.reason },
              ]
            : []),
          { header: 'REQUEST', get: (e) => e.requestId, wide: true },
          { header: 'AFTER', get: (e) => e.afterDigest, wide: true },
        ]);
      }),
    );
}
