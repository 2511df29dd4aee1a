// The energy rules: what a GPU draws (measured, or its TDP × a stated utilisation), the per-node
// share of CPUs, memory and network, the data centre's PUE, and the grid's carbon intensity.
// Pure except `energySiteFromEnv`, which reads the configuration once at startup.
import { AppError } from '../domain/errors.js';
import { type GridIntensity, DEFAULT_GRID_G_PER_KWH, constantGrid, loadGridIntensity } from './grid.js';

/** TDP in watts by GPU model (lower case, spaces removed), from the vendors' figures. */
export const DEFAULT_TDP_WATTS: Readonly<Record<string, number>> = {
  b200: 1000,
  b300: 1100,
  gb200: 1200,
  h200: 700,
  h100: 700,
  a100: 400,
  l40s: 350,
  rtxpro6000: 600,
  // Development GPUs (`--dev-gpus`): nothing really draws power for them; a laptop-class figure.
  dev: 75,
};

export const DEFAULTS = {
  /** Power usage effectiveness of the site: facility power / IT power. */
  pue: 1.2,
  /** Share of TDP an estimated GPU draws on average. */
  gpuUtilisation: 0.7,
  /** A GPU model without a listed TDP. */
  unknownTdpWatts: 700,
  /** CPUs, memory, NICs and fans of one GPU node (shared by its GPUs): about a DGX B200's non-GPU draw under load. */
  nodeWatts: 2000,
} as const;

export interface EnergySite {
  readonly pue: number;
  readonly gpuUtilisation: number;
  /** Per GPU model (normalised with gpuModelKey); DEFAULT_TDP_WATTS where not listed. */
  readonly tdpWatts: Readonly<Record<string, number>>;
  readonly unknownTdpWatts: number;
  readonly nodeWatts: number;
  readonly grid: GridIntensity;
}

export function defaultEnergySite(over: Partial<EnergySite> = {}): EnergySite {
  return {
    pue: DEFAULTS.pue,
    gpuUtilisation: DEFAULTS.gpuUtilisation,
    tdpWatts: DEFAULT_TDP_WATTS,
    unknownTdpWatts: DEFAULTS.unknownTdpWatts,
    nodeWatts: DEFAULTS.nodeWatts,
    grid: constantGrid(DEFAULT_GRID_G_PER_KWH),
    ...over,
  };
}

/** "RTX PRO 6000" → "rtxpro6000", "B200" → "b200". */
export function gpuModelKey(model: string): string {
  return model.toLowerCase().replace(/[^a-z0-9]/g, '');
}

export function tdpOf(site: EnergySite, gpuModel: string): number {
  const k = gpuModelKey(gpuModel);
  return site.tdpWatts[k] ?? DEFAULT_TDP_WATTS[k] ?? site.unknownTdpWatts;
}

/** Estimated draw of `gpus` GPUs of a model: TDP × utilisation. */
export function estimatedGpuWatts(site: EnergySite, gpuModel: string, gpus: number): number {
  return tdpOf(site, gpuModel) * site.gpuUtilisation * gpus;
}

/** The attempt's share of its nodes' non-GPU power: each node's watts × the fraction of its GPUs it holds. */
export function nodeShareWatts(
  site: EnergySite,
  nodes: readonly { readonly gpus: number; readonly nodeGpus: number }[],
): number {
  let w = 0;
  for (const n of nodes) w += n.nodeGpus > 0 ? (site.nodeWatts * Math.min(n.gpus, n.nodeGpus)) / n.nodeGpus : 0;
  return w;
}

/** Facility energy in Wh of IT power `watts` over `seconds`: × PUE. */
export function facilityWh(site: EnergySite, watts: number, seconds: number): number {
  return (watts * site.pue * seconds) / 3600;
}

/** grams of CO2 for `wh` at `gPerKWh`. */
export function co2Grams(wh: number, gPerKWh: number): number {
  return (wh / 1000) * gPerKWh;
}

/**
 * The site's energy configuration from the server's options, else the environment:
 * FABRIK_PUE, FABRIK_GPU_UTILISATION (0..1), FABRIK_NODE_WATTS, FABRIK_GRID_INTENSITY (g/kWh or a
 * CSV path), FABRIK_GPU_TDP (`B200=1000,RTX PRO 6000=600`). Bad values refuse the start.
 */
export function energySiteFromEnv(env: NodeJS.ProcessEnv = process.env): EnergySite {
  const num = (name: string, fallback: number, ok: (n: number) => boolean, what: string): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new AppError('INVALID_ARGUMENT', `${name}: "${raw}" is not ${what}`);
    return n;
  };
  return defaultEnergySite({
    pue: num('FABRIK_PUE', DEFAULTS.pue, (n) => n >= 1 && n <= 5, 'a PUE between 1 and 5'),
    gpuUtilisation: num(
      'FABRIK_GPU_UTILISATION',
      DEFAULTS.gpuUtilisation,
      (n) => n > 0 && n <= 1,
      'a utilisation in (0, 1]',
    ),
    nodeWatts: num('FABRIK_NODE_WATTS', DEFAULTS.nodeWatts, (n) => n >= 0, 'watts (>= 0)'),
    tdpWatts: { ...DEFAULT_TDP_WATTS, ...parseTdpList(env.FABRIK_GPU_TDP) },
    grid: loadGridIntensity(env.FABRIK_GRID_INTENSITY),
  });
}

/** `B200=1000,RTX PRO 6000=600` → { b200: 1000, rtxpro6000: 600 }. */
export function parseTdpList(v: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (v ?? '').split(',')) {
    if (!part.trim()) continue;
    const [model, w] = part.split('=');
    const watts = Number(w);
    if (!model?.trim() || !Number.isFinite(watts) || watts <= 0)
      throw new AppError('INVALID_ARGUMENT', `FABRIK_GPU_TDP: "${part.trim()}" is not <GPU model>=<watts>`);
    out[gpuModelKey(model)] = watts;
  }
  return out;
}

let configured: EnergySite | undefined;

/** The server's energy configuration (set at start), else the environment's, read once. */
export function siteEnergy(): EnergySite {
  configured ??= energySiteFromEnv();
  return configured;
}

/** Called by the server at start with its options' configuration. */
export function configureSiteEnergy(site: EnergySite): void {
  configured = site;
}
