// The per-task supervisor of the local executor, run as its own detached process (a process-group
// leader) so that tasks outlive a restart of the control plane. It runs the task's shell command
// in its group, copies output into a size-capped log, and on exit writes the exit status to a file
// (atomically) so a restarted control plane learns how the task ended.
//   node supervisor.js <task.json>
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';

export interface SupervisorConfig {
  readonly command: string;
  readonly cwd: string;
  readonly env: Record<string, string>;
  readonly logFile: string;
  readonly logCapBytes: number;
  readonly exitFile: string;
}

export interface ExitRecord {
  readonly code: number | null;
  readonly signal: string | null;
  readonly endedAt: string;
  readonly logTruncated: boolean;
}

function run(cfg: SupervisorConfig): void {
  const log = openSync(cfg.logFile, 'a');
  let written = 0;
  let truncated = false;
  const sink = (chunk: Buffer) => {
    if (truncated) return; // keep draining so the task never blocks on a full pipe
    const room = cfg.logCapBytes - written;
    if (chunk.length <= room) {
      writeSync(log, chunk);
      written += chunk.length;
      return;
    }
    if (room > 0) writeSync(log, chunk.subarray(0, room));
    writeSync(log, `\n[fabrik: log truncated at ${cfg.logCapBytes} bytes; output after this point was discarded]\n`);
    written = cfg.logCapBytes;
    truncated = true;
  };

  const child = spawn('/bin/sh', ['-c', cfg.command], { cwd: cfg.cwd, env: cfg.env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', sink);
  child.stderr.on('data', sink);
  // SIGTERM reaches the whole group (the task too); the supervisor stays to record how it ended.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  child.on('error', (err) => {
    writeSync(log, `[fabrik: could not start the task: ${err.message}]\n`);
  });
  child.on('close', (code, signal) => {
    closeSync(log);
    const rec: ExitRecord = { code, signal, endedAt: new Date().toISOString(), logTruncated: truncated };
    writeFileSync(`${cfg.exitFile}.tmp`, JSON.stringify(rec));
    renameSync(`${cfg.exitFile}.tmp`, cfg.exitFile);
    process.exit(0);
  });
}

const configPath = process.argv[2];
if (configPath) run(JSON.parse(readFileSync(configPath, 'utf8')) as SupervisorConfig);
