// A progress bar for long simulations, on stderr and only on a terminal: pipes and CI logs stay clean.
import cliProgress from 'cli-progress';
import type { PolicyName } from '../scheduler/types.js';

export interface SimProgress {
  start(policy: PolicyName, jobs: number): void;
  update(policy: PolicyName, p: { simS: number; finished: number; total: number }): void;
  stop(): void;
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): SimProgress | undefined {
  if (!stream.isTTY) return undefined;
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(policy, jobs) {
      bar?.stop();
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${policy.padEnd(13)} {bar} {percentage}% | {value}/{total} jobs done | {simH} simulated h | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(jobs, 0, { simH: 0 });
    },
    update(_policy, p) {
      bar?.update(p.finished, { simH: Math.round(p.simS / 3600) });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
