// Running Slurm's command-line clients (sbatch, squeue, scancel, sinfo, scontrol): argv only,
// never a shell line, with a timeout, a clean environment and Slurm's own message on failure.
import { execFile } from 'node:child_process';
import { ExecError } from './types.js';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the command could not run at all (not installed, killed by the timeout). */
  readonly spawnError?: string;
}

export interface CommandOptions {
  readonly env: Record<string, string>;
  readonly timeoutMs: number;
}

/** How commands are run; tests replace it to feed recorded output or to simulate an outage. */
export type CommandRunner = (cmd: string, args: readonly string[], opts: CommandOptions) => Promise<CommandResult>;

export const execFileRunner: CommandRunner = (cmd, args, opts) =>
  new Promise((resolve) => {
    execFile(
      cmd,
      [...args],
      { env: opts.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        if (typeof e.code === 'number') return resolve({ code: e.code, stdout, stderr });
        const why = e.killed ? `timed out after ${opts.timeoutMs} ms` : (e.message ?? String(err));
        resolve({ code: -1, stdout, stderr, spawnError: `${cmd} ${why}` });
      },
    );
  });

// Environment names Slurm clients are allowed to see from the control plane: nothing of the
// server's own secrets, and no stray SLURM_*/SBATCH_* (fabrik may itself run inside a job).
const PASS_ENV = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'USER', 'SHELL'];

export function clientEnv(slurmConf: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of PASS_ENV) if (process.env[k]) env[k] = process.env[k]!;
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';
  if (slurmConf) env.SLURM_CONF = slurmConf;
  return env;
}

// Messages of a controller that is down, busy or unreachable, and of munge trouble: worth retrying.
const TRANSIENT = [
  /unable to contact slurm controller/i,
  /connection refused/i,
  /communication connection failure/i,
  /socket timed out/i,
  /zero bytes were transmitted/i,
  /temporarily unavailable/i,
  /temporarily unable/i,
  /slurm controller not responding/i,
  /backup controller in standby/i,
  /unable to establish controller/i,
  /munge/i,
  /invalid authentication credential/i,
];

export function isTransient(message: string): boolean {
  return TRANSIENT.some((re) => re.test(message));
}

/** Slurm's own words from stderr: its `error:`/`fatal:` lines, else the last lines. */
export function slurmMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errs = lines.filter((l) => /\b(error|fatal):/.test(l));
  const pick = (errs.length ? errs : lines).slice(-3);
  // "sbatch: error: Batch job submission failed: X" reads better as "X".
  return pick.map((l) => l.replace(/^\S+: (error|fatal): (Batch job submission failed: )?/, '')).join('; ');
}

/** Runs a Slurm client; its stdout on success, else an ExecError with Slurm's message. */
export async function slurmCall(
  run: CommandRunner,
  cmd: string,
  args: readonly string[],
  opts: CommandOptions,
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.spawnError) throw new ExecError(`${r.spawnError}`, true);
  if (r.code === 0) return r.stdout;
  const msg = slurmMessage(r.stderr) || `${cmd} exited with ${r.code}`;
  throw new ExecError(`${cmd}: ${msg}`, isTransient(msg));
}
