// The machine fabrik runs on, as one node: on the embedded default the control plane schedules
// onto itself. Real GPUs come from nvidia-smi; without them, a configured number of development
// GPUs stands in, labelled so everywhere they appear (no real work should be mistaken for GPU work).
import { execFile } from 'node:child_process';
import os from 'node:os';
import type { NodeSpec } from './fleet-file.js';

/** Runs a program and resolves with its stdout; rejects when it is missing or fails. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<string>;

export const DEV_GPU_LABEL = 'fabrik.dev/development-gpus';
export const DEV_POOL = 'dev';
export const DEV_GPU_MODEL = 'DEV';
// Nominal: nothing is allocated on a development GPU, but pools need a memory size.
const DEV_GPU_MEMORY_GIB = 16;
const LOCAL_ID = 'local';

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'] as const;

export interface LocalNodeOptions {
  /** Development GPUs to register when the machine has no NVIDIA GPU (0 to 16). */
  readonly devGpus: number;
  readonly hostname?: string;
  readonly exec?: CommandRunner;
  /** The site's region (where this machine is); placement policies read its country. */
  readonly region?: string;
}

export async function detectLocalNode(opts: LocalNodeOptions): Promise<NodeSpec & { devGpus: boolean }> {
  if (!Number.isInteger(opts.devGpus) || opts.devGpus < 0 || opts.devGpus > 16) {
    throw new RangeError(`devGpus must be an integer between 0 and 16, got ${opts.devGpus}`);
  }
  const exec = opts.exec ?? runCommand;
  let gpus: LocalGpus | undefined;
  try {
    gpus = parseNvidiaSmi(await exec('nvidia-smi', NVIDIA_SMI_ARGS));
  } catch {
    // No driver, no binary, or a broken GPU: this machine counts as one without GPUs.
    gpus = undefined;
  }
  const base = {
    name: hostLabel(opts.hostname ?? os.hostname()),
    region: opts.region ?? LOCAL_ID,
    pod: LOCAL_ID,
    rack: LOCAL_ID,
    ibLeaf: LOCAL_ID,
    ibSpine: LOCAL_ID,
    cpu: Math.max(1, os.cpus().length),
    ramGiB: Math.max(1, Math.round(os.totalmem() / 2 ** 30)),
  };
  if (gpus) {
    return {
      ...base,
      pool: modelSlug(gpus.model),
      gpuModel: gpus.model,
      gpuCount: gpus.count,
      gpuMemoryGiB: gpus.memoryGiB,
      labels: {},
      devGpus: false,
    };
  }
  return {
    ...base,
    pool: DEV_POOL,
    gpuModel: DEV_GPU_MODEL,
    gpuCount: opts.devGpus,
    gpuMemoryGiB: DEV_GPU_MEMORY_GIB,
    labels: { [DEV_GPU_LABEL]: 'true' },
    devGpus: true,
  };
}

interface LocalGpus {
  readonly model: string;
  readonly count: number;
  readonly memoryGiB: number;
}

/**
 * Reads `index, name, memory.total` lines (memory in MiB). A node has one GPU model; on a
 * machine with mixed cards the most common model is taken and the others are left out.
 * Returns undefined when there is no GPU line.
 */
export function parseNvidiaSmi(stdout: string): LocalGpus | undefined {
  const byModel = new Map<string, number[]>();
  for (const line of stdout.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const cols = line.split(',').map((c) => c.trim());
    const mib = Number(cols[2]);
    if (cols.length !== 3 || !/^\d+$/.test(cols[0]!) || !cols[1] || !Number.isFinite(mib) || mib <= 0) {
      throw new Error(`unexpected nvidia-smi line: ${JSON.stringify(line)}`);
    }
    const model = modelName(cols[1]);
    const list = byModel.get(model) ?? [];
    list.push(mib);
    byModel.set(model, list);
  }
  let best: [string, number[]] | undefined;
  for (const entry of byModel) if (!best || entry[1].length > best[1].length) best = entry;
  if (!best) return undefined;
  const [model, mibs] = best;
  return { model, count: mibs.length, memoryGiB: Math.max(1, Math.round(Math.min(...mibs) / 1024)) };
}

// Words in nvidia-smi names that say vendor, generation, edition or form factor rather than model.
const NOISE =
  /^(nvidia|geforce|tesla|quadro|blackwell|hopper|server|workstation|edition|generation|max-q|pcie|sxm\d*|nvl|hbm\d*e?|\d+gb)$/i;

/** "NVIDIA H100 80GB HBM3" → "H100", "NVIDIA RTX PRO 6000 Blackwell Server Edition" → "RTX PRO 6000". */
export function modelName(smiName: string): string {
  const words = smiName.split(/[\s-]+/).filter((w) => w && !NOISE.test(w));
  return words.length > 0 ? words.join(' ') : smiName.trim();
}

/** Pool name for a model: "RTX PRO 6000" → "rtxpro6000", "H200" → "h200". */
export function modelSlug(model: string): string {
  return (
    model
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 63) || 'gpu'
  );
}

/** The short host name as a DNS label: "GPU-Box.lab.example" → "gpu-box". */
export function hostLabel(hostname: string): string {
  const label = (hostname.split('.')[0] ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || 'localhost';
}

function runCommand(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
  });
}
