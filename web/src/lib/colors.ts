// Colour scales of the floor plan: allocation (share of a node's GPUs in use), owning project
// (a stable categorical colour per project) and power (estimated from the GPUs' TDP). Node
// states that take a node out of service override the scale, in every mode.
export type ColourMode = 'allocation' | 'project' | 'power';

export const STATE_COLOURS: Readonly<Record<string, string>> = {
  cordoned: '#f0b429',
  draining: '#de7c12',
  down: '#b42318',
  unhealthy: '#b42318',
};
export const FREE = '#dfe5ec';

function hex(n: number): string {
  return Math.round(Math.max(0, Math.min(255, n)))
    .toString(16)
    .padStart(2, '0');
}

/** Linear interpolation between two #rrggbb colours, t in [0, 1]. */
export function mix(a: string, b: string, t: number): string {
  const c = (s: string, i: number) => Number.parseInt(s.slice(1 + i * 2, 3 + i * 2), 16);
  const u = Math.max(0, Math.min(1, t));
  return `#${[0, 1, 2].map((i) => hex(c(a, i) + (c(b, i) - c(a, i)) * u)).join('')}`;
}

/** 0 → the free colour, 1 → dark blue; anything allocated is visibly different from free. */
export function allocationColour(fraction: number): string {
  if (!(fraction > 0)) return FREE;
  return mix('#9ec5fe', '#0a3d91', fraction);
}

const PALETTE = [
  '#1b7f5b',
  '#7b3fb5',
  '#c2410c',
  '#0e7490',
  '#be185d',
  '#4d7c0f',
  '#1d4ed8',
  '#a16207',
  '#6d28d9',
  '#047857',
];

/** A stable colour per project ref (FNV-1a of its name into the palette). */
export function projectColour(project: string | undefined): string {
  if (!project) return FREE;
  let h = 0x811c9dc5;
  for (let i = 0; i < project.length; i++) {
    h ^= project.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return PALETTE[h % PALETTE.length]!;
}

/** Thermal design power per GPU, watts; what a node draws is estimated from it (no measurement here). */
const TDP_W: Readonly<Record<string, number>> = {
  B200: 1000,
  B300: 1100,
  H200: 700,
  H100: 700,
  A100: 400,
  L40S: 350,
  'RTX PRO 6000': 600,
};
const DEFAULT_TDP_W = 500;
const HOST_W = 800;
const IDLE_SHARE = 0.15;

/** Estimated node power: host plus each GPU at idle share of its TDP, and its full TDP when allocated. */
export function nodeWatts(gpuModel: string, gpuCount: number, allocatedGpus: number): number {
  const tdp = TDP_W[gpuModel] ?? DEFAULT_TDP_W;
  const busy = Math.min(allocatedGpus, gpuCount);
  return HOST_W + gpuCount * tdp * IDLE_SHARE + busy * tdp * (1 - IDLE_SHARE);
}

/** Power relative to the hungriest node of the fleet: green (low) → yellow → red (high). */
export function powerColour(watts: number, maxWatts: number): string {
  const t = maxWatts > 0 ? watts / maxWatts : 0;
  return t < 0.5 ? mix('#2e9e5b', '#f2c94c', t * 2) : mix('#f2c94c', '#c0392b', (t - 0.5) * 2);
}

export interface NodeLook {
  readonly state: string;
  readonly gpuModel: string;
  readonly gpuCount: number;
  readonly allocatedGpus: number;
  /** The project holding most of its GPUs, if any. */
  readonly project?: string;
}

export function nodeColour(n: NodeLook, mode: ColourMode, maxWatts: number): string {
  const override = STATE_COLOURS[n.state];
  if (override) return override;
  if (mode === 'allocation') return allocationColour(n.gpuCount > 0 ? n.allocatedGpus / n.gpuCount : 0);
  if (mode === 'project') return projectColour(n.project);
  return powerColour(nodeWatts(n.gpuModel, n.gpuCount, n.allocatedGpus), maxWatts);
}
