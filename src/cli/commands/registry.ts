// `fabrik push DIR REF` and `fabrik pull REF DIR`: models and datasets in and out of the registry
// over the Hub protocol (the work is in ../transfer/; this file parses, renders and exits).
// A progress bar (bytes, MB/s, ETA) goes to stderr, only on a terminal and never with -o json.
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { CliError } from '../client.js';
import { loadConfig } from '../config.js';
import { EXIT } from '../output.js';
import { action, addOutputOption, outputFormat } from '../run.js';
import {
  type PullResult,
  type PushResult,
  parseRef,
  pull,
  push,
  type TransferOptions,
  type TransferProgress,
} from '../transfer/index.js';

const HELP = `
References: <org>.<project>/<name>[:<rev>] for a model, datasets/<org>.<project>/<name>[:<rev>]
(or --dataset) for a dataset; <rev> is a branch, a tag or a 40-hex commit id (default main).

push uploads the regular files of DIR (symlinks into DIR are followed, symlinks out of it are
refused; what is not pushed is listed on stderr) as one new commit, on top of the revision's
current one. Files the revision already holds as they are are not committed again, contents
the org already stores are not sent again, and an interrupted push resumes part by part
(digests are cached in ~/.cache/fabrik/hashes.json). pull downloads the revision's files into
DIR, resuming <file>.part with Range, and verifies each file's SHA-256.

Exit codes: 0 done, 1 unexpected (e.g. a digest mismatch), 2 usage (bad reference, bad DIR, a
symlink out of DIR), 3 not found (repo, revision, org or project), 4 not logged in or not
allowed, 5 conflict or limit (the revision moved meanwhile, storage quota), 7 server unreachable.`;

function positiveInt(flag: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw CliError.usage(`${flag}: "${v}" is not a whole number 1..${max}`);
  return n;
}

/** `20M`, `512K`, `1G`, `1000000`: bytes per second (K = 1024, as curl's --limit-rate). */
export function parseRate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(v.trim());
  const n = m ? Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase()) : Number.NaN;
  if (!(n >= 1)) throw CliError.usage(`--limit-rate: "${v}" is not a rate (e.g. 500K, 20M, 1G)`);
  return Math.floor(n);
}

/** Endpoint and key of the saved login (FABRIK_ENDPOINT / FABRIK_API_KEY override it). */
function login(): { endpoint: string; apiKey: string } {
  const config = loadConfig();
  if (!config.apiKey) {
    throw new CliError('not logged in: run `fabrik login --endpoint URL` (or set FABRIK_API_KEY)', EXIT.auth, {
      error: { code: 'UNAUTHENTICATED', message: 'no API key configured', details: {} },
    });
  }
  return { endpoint: (config.endpoint ?? 'http://127.0.0.1:8080').replace(/\/+$/, ''), apiKey: config.apiKey };
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function mbps(bytes: number, seconds: number): string {
  return seconds > 0 ? `${(bytes / 1e6 / seconds).toFixed(1)} MB/s` : '-';
}

const PHASE_LABEL: Record<TransferProgress['phase'], string> = {
  scan: 'Scanning ',
  hash: 'Hashing  ',
  upload: 'Uploading',
  commit: 'Committing',
  download: 'Pulling  ',
};

/** A cli-progress bar on stderr, one per phase; undefined when stderr is not a terminal or with JSON. */
function progressBar(json: boolean): { onProgress: (p: TransferProgress) => void; stop: () => void } | undefined {
  if (json || !process.stderr.isTTY || process.env.CI === 'true') return undefined;
  let bar: cliProgress.SingleBar | undefined;
  let phase: TransferProgress['phase'] | undefined;
  let phaseStart = 0;
  let phaseDone0 = 0;
  let lastDraw = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  // Ctrl-C: put the cursor back before going (an interrupted push or pull resumes next time).
  process.once('SIGINT', () => {
    stop();
    process.stderr.write('\ninterrupted: run the same command again to resume\n');
    process.exit(130);
  });
  return {
    stop,
    onProgress(p) {
      if (p.phase === 'scan' || p.phase === 'commit') {
        // No bytes move while scanning or committing: no bar.
        if (p.phase === 'commit') stop();
        phase = p.phase;
        return;
      }
      const now = performance.now();
      if (p.phase !== phase) {
        stop();
        phase = p.phase;
        phaseStart = now;
        phaseDone0 = p.doneBytes;
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: `${PHASE_LABEL[p.phase]} {bar} {percentage}% {done}/{all} {rate} ETA {eta_formatted} {file}`,
            hideCursor: true,
            clearOnComplete: false,
            barsize: 24,
            etaBuffer: 50,
            fps: 8,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(1, p.totalBytes), 0, {
          done: humanBytes(0),
          all: humanBytes(p.totalBytes),
          rate: '',
          file: '',
        });
      }
      if (now - lastDraw < 100 && p.doneBytes < p.totalBytes) return;
      lastDraw = now;
      const s = (now - phaseStart) / 1000;
      bar?.update(p.doneBytes, {
        done: humanBytes(p.doneBytes),
        all: humanBytes(p.totalBytes),
        rate: s > 0.2 ? mbps(p.doneBytes - phaseDone0, s) : '',
        file: p.file ?? '',
      });
    },
  };
}

export function registerRegistryCommands(program: Command): void {
  addOutputOption(
    program
      .command('push <dir> <ref>')
      .description('Upload a directory as a new version of a model or dataset (resumable, deduplicated)')
      .option('--dataset', 'the reference names a dataset')
      .option('--revision <rev>', "branch to commit to (default: the reference's, else main)")
      .option('-m, --message <summary>', 'commit summary')
      .option('--description <text>', 'commit description')
      .option('--parallel <n>', 'parts in flight at once', '4')
      .option('--limit-rate <rate>', 'at most this many bytes per second (500K, 20M, 1G)')
      .addHelpText('after', HELP),
  ).action(
    action(async (dir: string, refText: string, opts) => {
      const format = outputFormat(opts);
      const ref = parseRef(refText, { dataset: opts.dataset, revision: opts.revision });
      const bar = progressBar(format === 'json');
      const transfer: TransferOptions = {
        ...login(),
        parallel: positiveInt('--parallel', opts.parallel, 4, 64),
        maxBytesPerSecond: parseRate(opts.limitRate),
        onProgress: bar?.onProgress,
      };
      let result: PushResult;
      try {
        result = await push(dir, ref, { ...transfer, message: opts.message, description: opts.description });
      } finally {
        bar?.stop();
      }
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      for (const s of result.skipped) process.stderr.write(`skipped: ${s.path} (${s.reason})\n`);
      const what = `${result.type} ${result.repo}:${result.revision}`;
      process.stdout.write(
        result.unchanged
          ? `${what} already holds these ${result.files} files (${humanBytes(result.bytes)}) at ${result.commit}: nothing to commit\n`
          : `${what} is now ${result.commit}\n` +
              `  ${result.files} files, ${humanBytes(result.bytes)}: sent ${humanBytes(result.sentBytes)}, ` +
              `${humanBytes(result.skippedBytes)} already stored; ${result.seconds.toFixed(1)}s ` +
              `(${mbps(result.sentBytes, result.seconds)})\n`,
      );
    }),
  );

  addOutputOption(
    program
      .command('pull <ref> <dir>')
      .description('Download a version of a model or dataset into a directory (resumable, verified)')
      .option('--dataset', 'the reference names a dataset')
      .option('--revision <rev>', "branch, tag or commit (default: the reference's, else main)")
      .option('--parallel <n>', 'files in flight at once', '4')
      .option('--limit-rate <rate>', 'at most this many bytes per second (500K, 20M, 1G)')
      .addHelpText('after', HELP),
  ).action(
    action(async (refText: string, dir: string, opts) => {
      const format = outputFormat(opts);
      const ref = parseRef(refText, { dataset: opts.dataset, revision: opts.revision });
      const bar = progressBar(format === 'json');
      let result: PullResult;
      try {
        result = await pull(ref, dir, {
          ...login(),
          parallel: positiveInt('--parallel', opts.parallel, 4, 64),
          maxBytesPerSecond: parseRate(opts.limitRate),
          onProgress: bar?.onProgress,
        });
      } finally {
        bar?.stop();
      }
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const resumed = result.resumedBytes ? `, resumed ${humanBytes(result.resumedBytes)}` : '';
      const kept = result.skippedBytes ? `, ${humanBytes(result.skippedBytes)} already there` : '';
      process.stdout.write(
        `${result.type} ${result.repo}:${result.revision} (${result.commit}) → ${result.dir}\n` +
          `  ${result.files} files, ${humanBytes(result.bytes)}: received ${humanBytes(result.receivedBytes)}${resumed}${kept}; ` +
          `all sha256 verified; ${result.seconds.toFixed(1)}s (${mbps(result.receivedBytes, result.seconds)})\n`,
      );
    }),
  );
}
