// `fabrik sim`: replay a job trace through the real scheduler core on a virtual clock, under
// fabrik's policy and the baselines, and write result.json and report.html.
// `fabrik sim generate`: write a seeded synthetic trace in the same CSV format.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FleetFileError } from '../../fleet/fleet-file.js';
import {
  DRAIN_VICTIMS,
  type DrainVictims,
  POLICIES,
  type PolicyName,
  type ScheduleOptions,
} from '../../scheduler/types.js';
import { SimInputError } from '../../sim/errors.js';
import { loadFleet, loadTenants, loadTrace, writeOutputs } from '../../sim/files.js';
import { generateTrace } from '../../sim/generator.js';
import { generateMixedTrace } from '../../sim/generator-mixed.js';
import type { LoadMode } from '../../sim/load.js';
import { terminalProgress } from '../../sim/progress.js';
import { realCore } from '../../sim/real-core.js';
import { commonUnit, inUnit, resultJson } from '../../sim/report.js';
import { runSimulation } from '../../sim/simulation.js';
import { formatTrace } from '../../sim/trace.js';
import { CliError } from '../client.js';
import { EXIT, table } from '../output.js';
import { action, addOutputOption, outputFormat } from '../run.js';

/** File and input errors become exit code 2 with the message that names the line. */
function badInput(err: unknown): never {
  if (err instanceof SimInputError || err instanceof FleetFileError) {
    throw new CliError(err.message, EXIT.usage, { error: { code: err.code, message: err.message, details: {} } });
  }
  throw err;
}

function num(name: string, v: string | undefined, check: (x: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || !check(x)) throw CliError.usage(`${name}: "${v}" is not ${what}`);
  return x;
}

function policies(v: string): PolicyName[] {
  if (v === 'all') return [...POLICIES];
  const names = v.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(POLICIES as readonly string[]).includes(n))
      throw CliError.usage(`--policy: "${n}" is not one of all, ${POLICIES.join(', ')}`);
  }
  return names as PolicyName[];
}

/** `--drain-after H|off` and `--drain-victims`: the fabrik policy's wait bound, as ScheduleOptions. */
function drainOptions(opts: { drainAfter?: string; drainVictims?: string }): ScheduleOptions {
  const out: { drainAfterS?: number; drainVictims?: DrainVictims } = {};
  if (opts.drainAfter !== undefined) {
    const h = Number(opts.drainAfter);
    if (opts.drainAfter === 'off') out.drainAfterS = Number.POSITIVE_INFINITY;
    else if (Number.isFinite(h) && h > 0) out.drainAfterS = h * 3600;
    else badInput(new SimInputError(`--drain-after: "${opts.drainAfter}" is not a positive number of hours or off`));
  }
  if (opts.drainVictims !== undefined) {
    if (!(DRAIN_VICTIMS as readonly string[]).includes(opts.drainVictims))
      badInput(new SimInputError(`--drain-victims: "${opts.drainVictims}" is not ${DRAIN_VICTIMS.join(' or ')}`));
    out.drainVictims = opts.drainVictims as DrainVictims;
  }
  return out;
}

export function registerSimCommand(program: Command): void {
  const sim = addOutputOption(
    program
      .command('sim')
      .description(
        'Replay a job trace through the scheduler on a virtual clock; compare fabrik with FIFO, FIFO+backfill, Slurm multifactor, Tiresias LAS and an SRTF oracle',
      )
      .option('--fleet <file>', 'fleet file (YAML)')
      .option(
        '--trace <file>',
        'job trace (CSV: submit_s,duration_s,gpus,project[,job_id,nodes,gpus_per_node,priority,pool])',
      )
      .option(
        '--tenants <file>',
        'per-project quotas (YAML); default: guarantees in proportion to GPU-hours in the trace',
      )
      .option('--policy <name>', `all, or a comma-separated list of ${POLICIES.join(', ')}`, 'all')
      .option('--out <dir>', 'write result.json and report.html there')
      .option('--load <x>', 'reach this offered load of the pools used (e.g. 0.85) by rescaling arrivals')
      .option(
        '--load-mode <mode>',
        'compress (scale inter-arrival times) or replicate (overlay shifted copies, then scale)',
        'compress',
      )
      .option('--seed <n>', 'seed for --load-mode replicate', '1')
      .option('--pool <name>', 'pool for jobs whose trace row names none (default: the first pool of the fleet)')
      .option('--usage-half-life <s>', 'half-life of the usage that fair share reads, seconds', '86400')
      .option('--drain-after <h>', 'fabrik: the starvation bound, hours past the aging key (default 1.5), or off')
      .option(
        '--drain-victims <which>',
        'fabrik: what a drain may preempt: any (default: whatever the quotas) or borrowed (guarantees hold)',
      )
      .option(
        '--checkpoint-interval <s>',
        'a preempted job loses the work since its last checkpoint; 0 = none lost',
        '0',
      ),
  );
  sim.action(
    action(async (opts) => {
      const format = outputFormat(opts);
      if (!opts.fleet) throw CliError.usage('--fleet <file> is required');
      if (!opts.trace) throw CliError.usage('--trace <file> is required');
      const load = num('--load', opts.load, (x) => x > 0 && x <= 100, 'a load above 0 (e.g. 0.85)');
      const seed = num('--seed', opts.seed, Number.isInteger, 'an integer')!;
      const halfLife = num('--usage-half-life', opts.usageHalfLife, (x) => x > 0, 'a positive number of seconds')!;
      const ckpt = num('--checkpoint-interval', opts.checkpointInterval, (x) => x >= 0, 'a number of seconds ≥ 0')!;
      if (opts.loadMode !== 'compress' && opts.loadMode !== 'replicate') {
        throw CliError.usage(`--load-mode: "${opts.loadMode}" is not compress or replicate`);
      }
      const chosen = policies(opts.policy);

      const progress = terminalProgress();
      let result: ReturnType<typeof runSimulation>;
      try {
        const nodes = loadFleet(opts.fleet);
        const trace = loadTrace(opts.trace);
        const quotas = opts.tenants ? loadTenants(opts.tenants, nodes) : undefined;
        result = runSimulation({
          traceName: trace.name,
          jobs: trace.jobs,
          nodes,
          quotas,
          defaultPool: opts.pool,
          policies: chosen,
          load,
          loadMode: opts.loadMode as LoadMode,
          seed,
          driver: realCore({ options: drainOptions(opts) }),
          usageHalfLifeS: halfLife,
          checkpointIntervalS: ckpt,
          onStart: progress ? (p, n) => progress.start(p, n) : undefined,
          onProgress: progress ? (p, x) => progress.update(p, x) : undefined,
        });
      } catch (err) {
        badInput(err);
      } finally {
        progress?.stop();
      }

      const files = opts.out ? writeOutputs(opts.out, result) : undefined;
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify({ ...resultJson(result), ...(files ? { files } : {}) }, null, 2)}\n`);
        return;
      }
      const rows = Object.entries(result.policies).map(([name, m]) => ({ name, m: m! }));
      // One unit per column (all in min, say, rather than min in one row and d in the next).
      const time = (header: string, get: (m: (typeof rows)[number]['m']) => number) => {
        const unit = commonUnit(rows.map((r) => get(r.m)));
        return { header, get: (r: (typeof rows)[number]) => inUnit(get(r.m), unit) };
      };
      process.stdout.write(
        `trace ${result.trace}: ${result.jobs} jobs on ${result.capacityGpus} GPUs (${result.pools.join(', ')}), ` +
          `offered load ${(result.load * 100).toFixed(1)} %${result.rejected ? `, ${result.rejected} rejected` : ''}\n\n`,
      );
      process.stdout.write(
        `${table(rows, [
          { header: 'POLICY', get: (r) => r.name },
          time('AVG JCT', (m) => m.avgJctS),
          time('P99 JCT', (m) => m.p99JctS),
          time('AVG QUEUE', (m) => m.avgQueueS),
          time('P99 QUEUE', (m) => m.p99QueueS),
          time('MAX QUEUE', (m) => m.maxQueueS),
          time('AVG WAIT', (m) => m.avgWaitS),
          time('P99 WAIT', (m) => m.p99WaitS),
          { header: 'SLOWDOWN', get: (r) => r.m.avgBoundedSlowdown.toFixed(2) },
          { header: 'UTIL', get: (r) => `${(r.m.utilization * 100).toFixed(1)}%` },
          { header: 'JAIN', get: (r) => r.m.jain.toFixed(3) },
          { header: 'PREEMPT', get: (r) => r.m.preemptions },
          { header: 'JOBS/S', get: (r) => Math.round(r.m.jobsPerSec) },
          { header: 'WALL', get: (r) => `${r.m.wallS.toFixed(1)} s` },
        ])}\n`,
      );
      if (files) process.stdout.write(`\nwrote ${files.result} and ${files.report}\n`);
    }),
  );

  sim
    .command('generate')
    .description('Write a seeded synthetic trace (CSV) with heavy-tailed run times and arrival bursts')
    .option('--jobs <n>', 'number of jobs', '2000')
    .option('--projects <n>', 'number of projects', '8')
    .option('--seed <n>', 'random seed', '1')
    .option('--span-hours <h>', 'hours over which submissions are spread', '168')
    .option('--median-duration <s>', 'median run time, seconds', '3600')
    .option(
      '--shape <name>',
      'default, or mixed: a site week (two pools, 1 GPU to whole-pod gangs, 40 projects, diurnal, median 30 min)',
      'default',
    )
    .option('--big-pool <name>', 'mixed: pool of the big jobs', 'b200')
    .option('--small-pool <name>', 'mixed: pool that takes a share of the single-node jobs', 'rtxpro6000')
    .option('--small-pool-share <x>', 'mixed: share of the jobs of ≤ 8 GPUs sent to --small-pool', '0.12')
    .option('--out <file>', 'write there instead of standard output')
    .action(
      action(async (local, cmd: Command) => {
        // `sim` has --out and --seed too, and commander may hand them to it (when the program
        // parses options anywhere): take whichever of the two commands saw them on the line.
        const opts = { ...local };
        for (const name of ['out', 'seed']) {
          if (cmd.getOptionValueSource(name) !== 'cli' && sim.getOptionValueSource(name) === 'cli')
            opts[name] = sim.opts()[name];
        }
        const int = (name: string, v: string) =>
          num(name, v, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer')!;
        let csv: string;
        const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
        if (opts.shape !== 'default' && opts.shape !== 'mixed') {
          badInput(new SimInputError(`--shape: "${opts.shape}" is not default or mixed`));
        }
        try {
          if (opts.shape === 'mixed') {
            csv = formatTrace(
              generateMixedTrace({
                jobs: int('--jobs', opts.jobs),
                seed: int('--seed', opts.seed),
                spanS: num('--span-hours', opts.spanHours, (x) => x > 0, 'a positive number')! * 3600,
                ...(given('projects') ? { projects: int('--projects', opts.projects) } : {}),
                ...(given('medianDuration')
                  ? {
                      medianDurationS: num(
                        '--median-duration',
                        opts.medianDuration,
                        (x) => x > 0,
                        'a positive number',
                      )!,
                    }
                  : {}),
                pool: opts.bigPool,
                smallPool: opts.smallPool,
                smallPoolShare: num('--small-pool-share', opts.smallPoolShare, (x) => x >= 0 && x <= 1, 'in [0, 1]')!,
              }),
            );
          } else
            csv = formatTrace(
              generateTrace({
                jobs: int('--jobs', opts.jobs),
                projects: int('--projects', opts.projects),
                seed: int('--seed', opts.seed),
                spanS: num('--span-hours', opts.spanHours, (x) => x > 0, 'a positive number')! * 3600,
                medianDurationS: num('--median-duration', opts.medianDuration, (x) => x > 0, 'a positive number')!,
              }),
            );
        } catch (err) {
          badInput(err);
        }
        if (opts.out) {
          writeFileSync(opts.out, csv);
          process.stderr.write(`wrote ${opts.out}\n`);
        } else process.stdout.write(csv);
      }),
    );
}
