// Workload commands: apply a spec, list with a REASON column (like squeue), describe with events
// (like kubectl), cancel. The project comes from -p, the spec, or `fabrik context set --project`.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { WORKLOAD_STATUSES } from '../../domain/workload-states.js';
import { type WorkloadSpec, WorkloadSpecError, parseWorkloadSpec } from '../../workload/spec.js';
import { CliError, q } from '../client.js';
import { loadConfig, saveConfig } from '../config.js';
import { age, duration, figure, table } from '../output.js';
import { action, addOutputOption, client, readInput, outputFormat, printList, printOne } from '../run.js';

type Obj = Record<string, any>;

/** `fabrik ps` shows workloads that ended this recently, too (as kubectl shows Completed pods). */
const RECENTLY_ENDED_S = 3600;

function projectOf(opts: Obj, specProject?: string): string {
  const p =
    opts.project ??
    (specProject?.includes('.') ? specProject : undefined) ??
    process.env.FABRIK_PROJECT ??
    loadConfig().project;
  if (!p)
    throw CliError.usage('no project: pass -p org.project, or set one with `fabrik context set --project org.project`');
  return p;
}

/** Where it runs, or why it waits: one column, as squeue shows NODELIST(REASON). */
export function reasonColumn(w: Obj): string {
  if (w.status === 'running' && w.placement) return w.placement.nodes.map((n: Obj) => n.node).join(',');
  if (w.status === 'pending')
    return `${w.reason}${w.estimatedStart ? ` (est. ${w.estimatedStart.slice(11, 16)}Z)` : ''}`;
  return w.reason;
}

export function registerWorkloadCommands(program: Command): void {
  addOutputOption(
    program
      .command('apply')
      .description('Submit a workload spec (YAML or JSON); it is checked locally, then against the fleet')
      .requiredOption('-f, --file <file>', 'the spec')
      .option('-p, --project <project>', "org.project (default: the spec's, or the context's)")
      .option('--dry-run', 'validate only'),
  ).action(
    action(async (opts) => {
      const text = readInput(opts.file);
      let spec: WorkloadSpec;
      try {
        spec = parseWorkloadSpec(text, basename(opts.file));
      } catch (err) {
        if (err instanceof WorkloadSpecError) throw CliError.usage(err.message);
        throw err;
      }
      if (opts.dryRun) {
        printOne(
          opts,
          spec,
          () => `${basename(opts.file)}: valid ${spec.kind} "${spec.name}" (${spec.nodes}×${spec.gpusPerNode} GPUs)`,
        );
        return;
      }
      const project = projectOf(opts, spec.project);
      const body = parseYaml(text) as Obj;
      if (typeof body.project === 'string' && body.project.includes('.')) delete body.project;
      const c = client();
      let w = await c.request<Obj>('POST', `/api/v1/projects/${q(project)}/workloads`, body);
      for (const warning of w.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
      // Give the scheduler a moment so the first answer already says where it runs or why it waits.
      for (let i = 0; i < 10 && w.status === 'pending' && w.reason === 'Queued'; i++) {
        await new Promise((r) => setTimeout(r, 200));
        w = await c.get<Obj>(`/api/v1/projects/${q(project)}/workloads/${q(w.id)}`);
      }
      printOne(
        opts,
        w,
        () =>
          `workload/${w.name} submitted to ${w.project}: ${w.status} ${reasonColumn(w)}${w.status === 'pending' ? ` — ${w.message}` : ''}`,
      );
    }),
  );

  addOutputOption(
    program
      .command('ps')
      .description(
        'Pending and running workloads (and those ended in the last hour), by submit time, with where they run or why they wait (REASON)',
      )
      .option('-p, --project <project>', "org.project (default: the context's)")
      .option('-A, --all-projects', 'every project you can see')
      .option('-a, --all', 'include every ended workload')
      .option('--status <status>', `only this status: ${WORKLOAD_STATUSES.join(', ')}`),
  ).action(
    action(async (opts) => {
      if (opts.status !== undefined && !(WORKLOAD_STATUSES as readonly string[]).includes(opts.status)) {
        throw CliError.usage(`--status: unknown status "${opts.status}"; valid: ${WORKLOAD_STATUSES.join(', ')}`);
      }
      const params = new URLSearchParams({
        ...(opts.all ? { all: 'true' } : opts.status ? {} : { endedWithin: String(RECENTLY_ENDED_S) }),
        ...(opts.status ? { status: opts.status } : {}),
      });
      const path = opts.allProjects ? '/api/v1/workloads' : `/api/v1/projects/${q(projectOf(opts))}/workloads`;
      const items = await client().all<Obj>(`${path}${params.size ? `?${params}` : ''}`);
      printList(opts, items, [
        { header: 'NAME', get: (w) => w.name },
        ...(opts.allProjects ? [{ header: 'PROJECT', get: (w: Obj) => w.project }] : []),
        { header: 'KIND', get: (w) => w.kind },
        { header: 'GPUS', get: (w) => `${w.nodes}x${w.gpusPerNode} ${w.pool}` },
        { header: 'PRIORITY', get: (w) => w.priority, wide: true },
        { header: 'STATUS', get: (w) => w.status },
        { header: 'AGE', get: (w) => age(w.submittedAt) },
        { header: 'REASON', get: reasonColumn },
        { header: 'MESSAGE', get: (w) => w.message, wide: true },
      ]);
    }),
  );

  addOutputOption(
    program
      .command('describe <workload>')
      .description('The full story of a workload: spec, placement, reason, preemptions, events')
      .option('-p, --project <project>', 'org.project'),
  ).action(
    action(async (name, opts) => {
      const w = await client().get<Obj>(`/api/v1/projects/${q(projectOf(opts))}/workloads/${q(name)}`);
      // Per-attempt GPU-hours, energy and CO2 (src/metering/); absent from a server without them.
      const usage = await client()
        .get<Obj>(`/api/v1/projects/${q(projectOf(opts))}/workloads/${q(name)}/usage`)
        .catch(() => undefined);
      const used = new Map<number, Obj>((usage?.attempts ?? []).map((a: Obj) => [a.number, a]));
      if (outputFormat(opts) === 'json') return printOne(opts, usage ? { ...w, usage } : w);
      const lines = [
        `Name:          ${w.name}`,
        `ID:            ${w.id}`,
        `Project:       ${w.project}`,
        `Kind:          ${w.kind}`,
        `Priority:      ${w.priority}`,
        `Resources:     ${w.nodes} node(s) × ${w.gpusPerNode} GPU in pool ${w.pool}`,
        `Max runtime:   ${duration(w.maxRuntimeS)}`,
        `Status:        ${w.status}`,
        `Reason:        ${w.reason}: ${w.message}`,
        ...(w.estimatedStart ? [`Est. start:    ${w.estimatedStart}`] : []),
        `Submitted:     ${w.submittedAt} by ${w.createdBy}`,
        ...(w.startedAt ? [`Started:       ${w.startedAt}`] : []),
        ...(w.finishedAt
          ? [
              `Finished:      ${w.finishedAt}${w.startedAt ? ` (ran ${duration((Date.parse(w.finishedAt) - Date.parse(w.startedAt)) / 1000)})` : ''}`,
            ]
          : []),
        `Attempts:      ${w.attempts}   Preemptions: ${w.preemptions}`,
      ];
      if (w.placement) {
        lines.push(
          `Placement:     pod ${w.placement.pod}, ${w.placement.leaves.length} leaf switch(es): ${w.placement.leaves.join(', ')}${w.borrowed ? ' (borrowed capacity)' : ''}`,
        );
        for (const n of w.placement.nodes) lines.push(`  ${n.node}  GPUs ${n.gpuIndexes.join(',')}`);
      }
      if (w.attemptRecords?.length) {
        lines.push('', 'Attempts:');
        lines.push(
          table(w.attemptRecords, [
            { header: '  #', get: (a: Obj) => `  ${a.number}` },
            { header: 'STATE', get: (a: Obj) => a.state },
            { header: 'NODES', get: (a: Obj) => a.placement.nodes.map((n: Obj) => n.node).join(',') },
            { header: 'GPUS', get: (a: Obj) => a.gpus },
            { header: 'STARTED', get: (a: Obj) => a.startedAt ?? '-' },
            { header: 'ENDED', get: (a: Obj) => a.endedAt ?? '-' },
            { header: 'EXIT', get: (a: Obj) => a.exitCode ?? '-' },
            { header: 'END REASON', get: (a: Obj) => a.endReason ?? (a.stoppingSince ? 'stopping' : '-') },
            { header: 'GPU-H', get: (a: Obj) => figureOf(used.get(a.number)?.gpuHours, 2) },
            { header: 'ENERGY kWh', get: (a: Obj) => usedKWh(used.get(a.number)) },
            { header: 'CO2 kg', get: (a: Obj) => usedCo2(used.get(a.number)) },
            { header: 'EST.', get: (a: Obj) => (used.get(a.number)?.estimated ? 'EST.' : '') },
          ]),
        );
        if (usage)
          lines.push(
            `Usage:         ${figure(usage.totals.gpuHours, 2)} GPU-hours, ${usedKWh(usage.totals)} kWh, ${usedCo2(usage.totals)} kg CO2${usage.totals.estimated ? ' (estimated: GPU power from TDP × utilisation, no measurement)' : ' (measured GPU power)'}`,
          );
      }
      lines.push('', 'Events:');
      lines.push(
        table(w.events, [
          { header: '  TYPE', get: (e: Obj) => `  ${e.type}` },
          { header: 'REASON', get: (e: Obj) => e.reason },
          { header: 'AGE', get: (e: Obj) => age(e.time) },
          { header: 'MESSAGE', get: (e: Obj) => e.message },
        ]),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    }),
  );

  addOutputOption(
    program
      .command('cancel <workload>')
      .description('Cancel a pending or running workload')
      .option('-p, --project <project>', 'org.project'),
  ).action(
    action(async (name, opts) => {
      const w = await client().request<Obj>(
        'POST',
        `/api/v1/projects/${q(projectOf(opts))}/workloads/${q(name)}/cancel`,
      );
      printOne(opts, w, () => `workload/${w.name} cancelled`);
    }),
  );

  const context = program.command('context').description('Defaults for commands that take a project');
  addOutputOption(
    context.command('set').description('Set the default project').requiredOption('--project <project>', 'org.project'),
  ).action(
    action(async (opts) => {
      const path = saveConfig({ project: opts.project });
      printOne(opts, { project: opts.project, config: path }, () => `default project: ${opts.project}`);
    }),
  );
}

const usedKWh = (u: Obj | undefined) => (u ? figure(u.energyWh / 1000, 3) : undefined);
const usedCo2 = (u: Obj | undefined) => (u ? figure(u.co2g / 1000, 3) : undefined);
const figureOf = (n: number | undefined, d: number) => (n === undefined ? undefined : figure(n, d));

export function registerLogsCommand(program: Command): void {
  program
    .command('logs <workload>')
    .description("Print a task's log; --follow streams it while the workload runs")
    .option('-p, --project <project>', 'org.project')
    .option('-f, --follow', 'keep streaming until the attempt ends')
    .option('--task <n>', 'task (node rank) of a multi-node workload', '0')
    .option('--tail <n>', 'only the last N lines')
    .option('--attempt <n>', 'an earlier attempt (default: the latest)')
    .action(
      action(async (name, opts) => {
        const params = new URLSearchParams({ task: String(opts.task) });
        if (opts.tail !== undefined) params.set('tail', String(opts.tail));
        if (opts.attempt !== undefined) params.set('attempt', String(opts.attempt));
        if (opts.follow) params.set('follow', 'true');
        const res = await client().stream(`/api/v1/projects/${q(projectOf(opts))}/workloads/${q(name)}/logs?${params}`);
        for await (const chunk of res) process.stdout.write(chunk);
      }),
    );
}
