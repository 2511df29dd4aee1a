// Deployment commands: `fabrik deploy` (a registry model, a local GGUF, or an external upstream),
// `fabrik deployment list|describe` (also `get deployments`, `describe deployment NAME`),
// `fabrik scale`, `fabrik undeploy`. Usage and limits live in ./usage.ts, registered from here.
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, q } from '../client.js';
import { loadConfig } from '../config.js';
import { EXIT, age, duration, table } from '../output.js';
import { action, addOutputOption, client, outputFormat, printList, printOne } from '../run.js';

type Obj = Record<string, any>;

const EXIT_CODES = `
Exit codes: 0 done, 2 usage error or invalid value, 3 not found (or not yours to see),
4 not logged in or not allowed, 5 conflict (the name is taken), 6 --wait timed out,
7 server unreachable.`;

const DEPLOY_HELP = `
What to serve, one of:
  REF                      a registry model org.project/name[:rev] (default rev main); the project
                           is the reference's unless -p, the name its repo name unless --name
  NAME --model-path FILE   a GGUF file; the path is made absolute here, but the SERVER reads it,
                           so it must exist on the server's machine (local executor only)
  NAME --upstream URL      an OpenAI-compatible upstream (…/v1) behind fabrik's keys and limits

Examples:
  fabrik deploy acme.vision/llama-ft:v3 --replicas 1..8 --gpu B200:1
  fabrik deploy tiny --model-path ./out/model.gguf -p acme.vision --replicas 0..2 --wait
  fabrik deploy gpt --upstream https://llm.internal/v1 -p acme.vision
${EXIT_CODES}`;

/** -p, else the context's project (FABRIK_PROJECT, `fabrik context set`). */
export function projectOf(opts: Obj, fallback?: string): string {
  const p = opts.project ?? fallback ?? process.env.FABRIK_PROJECT ?? loadConfig().project;
  if (!p)
    throw CliError.usage('no project: pass -p org.project, or set one with `fabrik context set --project org.project`');
  return p;
}

export function intFlag(
  flag: string,
  v: string | undefined,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw CliError.usage(`${flag}: "${v}" is not a whole number from ${min} to ${max}`);
  return n;
}

/** `300`, `90s`, `5m`, `1h`: seconds. */
export function secondsFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,7})(s|m|h|d)?$/.exec(v.trim());
  if (!m) throw CliError.usage(`${flag}: "${v}" is not a duration such as 90s, 5m or 1h`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
}

/** A repo name as a deployment name (a DNS label): `Llama-3.1-8B` → `llama-3-1-8b`. */
export function deploymentNameOf(repo: string): string {
  return repo
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
}

/** The deploy request's body and project from the command line. */
export function deployRequest(arg: string, opts: Obj, cwd = process.cwd()): { project: string; body: Obj } {
  const sources = [opts.modelPath !== undefined, opts.upstream !== undefined].filter(Boolean).length;
  if (sources > 1) throw CliError.usage('give either --model-path or --upstream, not both');
  let name: string;
  let project: string;
  const body: Obj = {};
  if (sources === 0) {
    const m = /^([^/\s]+)\/([^:/\s]+)(?::(\S+))?$/.exec(arg);
    if (!m || !m[1]!.includes('.'))
      throw CliError.usage(
        `"${arg}" is not a registry model org.project/name[:rev]; for a local file or an upstream give NAME with --model-path FILE or --upstream URL`,
      );
    project = projectOf(opts, m[1]);
    name = opts.name ?? deploymentNameOf(m[2]!);
    body.model = arg;
  } else {
    if (opts.name !== undefined && opts.name !== arg) throw CliError.usage(`give the name once: "${arg}" or --name`);
    name = arg;
    project = projectOf(opts);
    if (opts.modelPath !== undefined) body.modelPath = resolve(cwd, opts.modelPath);
    else body.upstreamUrl = opts.upstream;
  }
  const gpu = opts.gpu === undefined ? undefined : /^\d+$/.test(opts.gpu) ? Number(opts.gpu) : opts.gpu;
  Object.assign(body, {
    name,
    ...(opts.runtime !== undefined ? { runtime: opts.runtime } : {}),
    ...(gpu !== undefined ? { gpu } : {}),
    ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
    ...(opts.contextSize !== undefined ? { contextSize: intFlag('--context-size', opts.contextSize, 1) } : {}),
    ...(opts.threads !== undefined ? { threads: intFlag('--threads', opts.threads, 1) } : {}),
    ...(opts.parallel !== undefined ? { parallel: intFlag('--parallel', opts.parallel, 1) } : {}),
    ...(opts.alias?.length ? { aliases: opts.alias } : {}),
    ...(opts.targetInflight !== undefined
      ? { targetInflight: intFlag('--target-inflight', opts.targetInflight, 1) }
      : {}),
    ...(opts.idleTimeout !== undefined ? { idleTimeoutS: secondsFlag('--idle-timeout', opts.idleTimeout) } : {}),
    ...(opts.storePrompts ? { storePrompts: true } : {}),
  });
  return { project, body };
}

/** What a deployment serves, in one cell. */
export function modelColumn(d: Obj): string {
  if (d.model) return `${d.model.repo}:${d.model.revision}`;
  if (d.modelPath) return basename(d.modelPath);
  return d.upstreamUrl ?? '-';
}

export function gpuColumn(d: Obj): string {
  if (!d.gpu.perReplica) return '-';
  return d.gpu.model ? `${d.gpu.model}:${d.gpu.perReplica}` : String(d.gpu.perReplica);
}

/** `2 ready/desired 3 (1 pending, 1 starting)`: for --wait's progress. */
function replicaSummary(d: Obj): string {
  const states: Record<string, number> = {};
  for (const r of d.replicaList ?? []) states[r.state] = (states[r.state] ?? 0) + 1;
  const parts = Object.entries(states).map(([s, n]) => `${n} ${s}`);
  return `${d.replicas.ready}/${d.replicas.desired} replicas ready${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function describeLines(d: Obj): string[] {
  const lines = [
    `Name:            ${d.name}`,
    `ID:              ${d.id}`,
    `Project:         ${d.project}`,
    `Runtime:         ${d.runtime}`,
    `Model:           ${modelColumn(d)}${d.model?.commit ? ` (commit ${d.model.commit})` : ''}`,
    ...(d.aliases.length ? [`Aliases:         ${d.aliases.join(', ')}`] : []),
    `GPU per replica: ${gpuColumn(d)}`,
    `Replicas:        ${d.replicas.ready} ready / ${d.replicas.desired} desired (range ${d.replicas.min}..${d.replicas.max}, ${d.replicas.total} existing)`,
    `Context size:    ${d.contextSize} tokens`,
    `Threads:         ${d.threads}   Parallel: ${d.parallel}`,
    `Autoscaling:     ${d.targetInflight} in flight per replica; idle after ${duration(d.idleTimeoutS)}`,
    `Store prompts:   ${d.storePrompts ? 'yes' : 'no'}`,
    `Created:         ${d.createdAt} by ${d.createdBy}`,
    `Updated:         ${d.updatedAt}`,
  ];
  if (d.load) {
    lines.push(
      `Load:            ${d.load.inflight ?? 0} in flight, ${d.load.queued ?? 0} queued${d.load.lastRequestAt ? `, last request ${age(new Date(d.load.lastRequestAt).toISOString())} ago` : ''}`,
    );
  }
  lines.push('', 'Replicas:');
  if (!d.replicaList.length) lines.push('  (none yet)');
  else
    lines.push(
      table(d.replicaList, [
        { header: '  ORDINAL', get: (r: Obj) => `  ${r.ordinal}` },
        { header: 'STATE', get: (r: Obj) => r.state },
        { header: 'WORKLOAD', get: (r: Obj) => r.workload },
        { header: 'STATUS', get: (r: Obj) => r.workloadStatus },
        { header: 'NODE', get: (r: Obj) => r.node },
        { header: 'ENDPOINT', get: (r: Obj) => r.endpoint },
        { header: 'ATTEMPT', get: (r: Obj) => r.attempt || '-' },
        { header: 'READY SINCE', get: (r: Obj) => (r.readyAt ? age(r.readyAt) : '-') },
        { header: 'MESSAGE', get: (r: Obj) => r.message },
      ]),
    );
  return lines;
}

export function registerDeploymentCommands(program: Command): void {
  const collect = (v: string, prev?: string[]) => [...(prev ?? []), v];
  addOutputOption(
    program
      .command('deploy <ref-or-name>')
      .description('Serve a model behind the OpenAI-compatible gateway under /v1')
      .option('-p, --project <project>', "org.project (default: the reference's, or the context's)")
      .option('--model-path <file>', "a GGUF file on the server's machine (made absolute here)")
      .option('--upstream <url>', 'an external OpenAI-compatible upstream (…/v1)')
      .option('--name <name>', 'the `model` applications ask for (default: the repo name)')
      .option('--replicas <range>', 'a count or min..max, e.g. 1..8 (min 0 scales to zero; default 1)')
      .option('--gpu <gpu>', 'GPUs per replica: 1, B200, B200:2 (default 1)')
      .option('--runtime <runtime>', 'llamacpp (default), vllm or external')
      .option('--context-size <n>', 'context window in tokens (default 2048)')
      .option('--threads <n>', 'CPU threads per replica (default 2)')
      .option('--parallel <n>', 'requests a replica answers at once (default 2)')
      .option('--alias <name>', 'another name applications may use (repeatable)', collect)
      .option('--target-inflight <n>', 'requests in flight per replica the autoscaler aims at (default 4)')
      .option('--idle-timeout <duration>', 'idle time before scaling to min, e.g. 5m (default 5m)')
      .option('--store-prompts', 'keep prompts and completions (off by default)')
      .option('--wait', 'wait until at least one replica is ready')
      .option('--timeout <duration>', 'with --wait: give up after this long (default 5m)')
      .addHelpText('after', DEPLOY_HELP),
  ).action(
    action(async (arg: string, opts: Obj) => {
      const format = outputFormat(opts);
      const timeoutS = secondsFlag('--timeout', opts.timeout) ?? 300;
      const { project, body } = deployRequest(arg, opts);
      const c = client();
      let d = await c.request<Obj>('POST', `/api/v1/projects/${q(project)}/deployments`, body);
      if (opts.wait) d = await waitReady(c, project, d, timeoutS, format === 'json');
      const base = `${c.endpoint}/v1`;
      printOne(opts, d, () =>
        [
          `deployment/${d.name} created in ${d.project}: ${modelColumn(d)}, ${d.runtime}, replicas ${d.replicas.min}..${d.replicas.max}${gpuColumn(d) === '-' ? '' : ` × ${gpuColumn(d)} GPU`}`,
          ...(opts.wait ? [`ready: ${replicaSummary(d)}`] : []),
          `model:    ${d.name}${d.aliases.length ? ` (also ${d.aliases.join(', ')})` : ''}`,
          `base URL: ${base}`,
          `  curl ${base}/chat/completions -H "Authorization: Bearer $FABRIK_API_KEY" \\`,
          `    -H 'content-type: application/json' -d '{"model":"${d.name}","messages":[{"role":"user","content":"Hello"}]}'`,
        ].join('\n'),
      );
    }),
  );

  const group = program
    .command('deployment')
    .description('Deployments: list, describe (also `fabrik get deployments`, `fabrik describe deployment NAME`)')
    .addHelpText('after', EXIT_CODES);
  addOutputOption(
    group
      .command('list')
      .description('Deployments of a project, or of every project you can see')
      .option('-p, --project <project>', "org.project (default: the context's, else every project)")
      .option('-A, --all-projects', 'every project you can see'),
  ).action(
    action(async (opts: Obj) => {
      const project = opts.allProjects
        ? undefined
        : (opts.project ?? process.env.FABRIK_PROJECT ?? loadConfig().project);
      const path = project ? `/api/v1/projects/${q(project)}/deployments` : '/api/v1/deployments';
      const { items } = await client().get<{ items: Obj[] }>(path);
      printList(opts, items, [
        { header: 'NAME', get: (d) => d.name },
        { header: 'PROJECT', get: (d) => d.project },
        { header: 'RUNTIME', get: (d) => d.runtime },
        { header: 'MODEL', get: modelColumn },
        { header: 'READY', get: (d) => `${d.replicas.ready}/${d.replicas.desired}` },
        { header: 'REPLICAS', get: (d) => `${d.replicas.min}..${d.replicas.max}` },
        { header: 'GPU', get: gpuColumn },
        { header: 'AGE', get: (d) => age(d.createdAt) },
        { header: 'ALIASES', get: (d) => d.aliases.join(','), wide: true },
        { header: 'ID', get: (d) => d.id, wide: true },
      ]);
    }),
  );
  addOutputOption(
    group
      .command('describe <name>')
      .description('A deployment with its replicas: state, workload, node, endpoint')
      .option('-p, --project <project>', "org.project (default: the context's)"),
  ).action(
    action(async (name: string, opts: Obj) => {
      const d = await client().get<Obj>(`/api/v1/projects/${q(projectOf(opts))}/deployments/${q(name)}`);
      printOne(opts, d, () => describeLines(d).join('\n'));
    }),
  );

  addOutputOption(
    program
      .command('scale <name>')
      .description('Set the replica range of a deployment; the controller moves toward it')
      .requiredOption('--replicas <range>', 'a count or min..max, e.g. 2..8')
      .option('-p, --project <project>', "org.project (default: the context's)")
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (name: string, opts: Obj) => {
      const d = await client().request<Obj>('PATCH', `/api/v1/projects/${q(projectOf(opts))}/deployments/${q(name)}`, {
        replicas: opts.replicas,
      });
      printOne(
        opts,
        d,
        () =>
          `deployment/${d.name} scaled to ${d.replicas.min}..${d.replicas.max} (desired ${d.replicas.desired}, ready ${d.replicas.ready})`,
      );
    }),
  );

  addOutputOption(
    program
      .command('undeploy <name>')
      .description('Remove a deployment: the name is free at once, its replicas stop')
      .option('-p, --project <project>', "org.project (default: the context's)")
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (name: string, opts: Obj) => {
      const d = await client().request<Obj>('DELETE', `/api/v1/projects/${q(projectOf(opts))}/deployments/${q(name)}`);
      printOne(opts, d, () => `deployment/${d.name} undeployed from ${d.project}`);
    }),
  );
}

/** Polls the deployment until a replica is ready; progress on stderr; exit 6 on timeout. */
async function waitReady(
  c: ReturnType<typeof client>,
  project: string,
  first: Obj,
  timeoutS: number,
  quiet: boolean,
): Promise<Obj> {
  const path = `/api/v1/projects/${q(project)}/deployments/${q(first.name)}`;
  const deadline = Date.now() + timeoutS * 1000;
  let d = first;
  let last = '';
  for (;;) {
    if (d.replicas.ready >= 1) return d;
    const line = replicaSummary(d);
    if (!quiet && line !== last) process.stderr.write(`waiting for deployment/${d.name}: ${line}\n`);
    last = line;
    if (Date.now() >= deadline) {
      throw new CliError(
        `timed out after ${duration(timeoutS)} waiting for deployment/${d.name}: ${line}; see \`fabrik describe deployment ${d.name} -p ${d.project}\``,
        EXIT.timeout,
        {
          error: { code: 'TIMEOUT', message: `no replica of ${d.name} became ready within ${timeoutS}s`, details: {} },
        },
      );
    }
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    d = await c.get<Obj>(path);
  }
}
