// Raw Slurm submission rate, without fabrik: the baseline the exec bench divides fabrik's Slurm
// rate by. `npm run bench -- exec-slurm [n]` on its own; `rawSbatchPerSec(n)` from the exec bench.
// Needs SLURM_CONF (scripts/slurm-dev up prints it).
import { clientEnv, execFileRunner, slurmCall } from '../src/exec/slurm-cmd.js';

const JOB_NAME = 'fabrik-bench-raw';

export interface RawSbatchOptions {
  readonly slurmConf?: string;
  /** sbatch processes in flight at once; 1 = a plain loop, as fabrik's reconciler submits. */
  readonly concurrency?: number;
  /** Cancel the submitted jobs afterwards, so they do not compete with what is measured next. */
  readonly cancel?: boolean;
}

/** Submits n trivial `sbatch --wrap` jobs directly and returns submissions per second. */
export async function rawSbatchPerSec(n: number, opts: RawSbatchOptions = {}): Promise<number> {
  const env = clientEnv(opts.slurmConf ?? process.env.SLURM_CONF);
  const call = (cmd: string, args: string[]) => slurmCall(execFileRunner, cmd, args, { env, timeoutMs: 60_000 });
  const args = ['--parsable', `--job-name=${JOB_NAME}`, '--output=/dev/null', '--time=1', '--wrap=true'];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await call('sbatch', args);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (opts.cancel ?? true) await call('scancel', [`--name=${JOB_NAME}`]).catch(() => undefined);
  return n / seconds;
}

export default async function (args: string[]): Promise<Record<string, unknown>> {
  const n = Number(args[0] ?? 200);
  return { bench: 'exec-slurm', n, rawSbatchPerSec: Math.round(await rawSbatchPerSec(n)) };
}
