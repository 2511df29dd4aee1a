// The floor plan's geometry: pods (scalable units) flow left to right and wrap; inside a pod its
// racks stand side by side; inside a rack its nodes stack top to bottom, one cell each. Pure, so
// it is computed once per fleet and hit-tested without the DOM; drawing is one canvas pass.
export interface PlanNode {
  readonly name: string;
  readonly pod: string;
  readonly rack: string;
}

export interface Box {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

export interface PodBox extends Box {
  readonly name: string;
  readonly racks: readonly (Box & { readonly name: string })[];
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly pods: readonly PodBox[];
  /** Node i's cell, in the order of `names` (the input's order). */
  readonly cells: readonly Box[];
  readonly names: readonly string[];
  readonly index: ReadonlyMap<string, number>;
}

export interface LayoutOptions {
  readonly width: number;
  readonly cell?: number;
  readonly gap?: number;
  readonly podPadding?: number;
  /** Room above each pod for its name. */
  readonly label?: number;
}

/** Natural order: b200-su2 before b200-su10. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export function layoutFloorPlan(nodes: readonly PlanNode[], o: LayoutOptions): Layout {
  const cell = o.cell ?? 10;
  const gap = o.gap ?? 2;
  const pad = o.podPadding ?? 6;
  const label = o.label ?? 14;
  const podGap = 10;
  // pod → rack → node indexes, each level in natural order.
  const pods = new Map<string, Map<string, number[]>>();
  nodes.forEach((n, i) => {
    const racks = pods.get(n.pod) ?? new Map<string, number[]>();
    pods.set(n.pod, racks);
    const list = racks.get(n.rack) ?? [];
    racks.set(n.rack, list);
    list.push(i);
  });
  const cells: Box[] = new Array(nodes.length);
  const podBoxes: PodBox[] = [];
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  let width = 0;
  for (const podName of [...pods.keys()].sort(naturalCompare)) {
    const racks = pods.get(podName)!;
    const rackNames = [...racks.keys()].sort(naturalCompare);
    const tallest = Math.max(...rackNames.map((r) => racks.get(r)!.length));
    const w = pad * 2 + rackNames.length * cell + (rackNames.length - 1) * gap;
    const h = label + pad * 2 + tallest * cell + (tallest - 1) * gap;
    if (x > 0 && x + w > o.width) {
      x = 0;
      y += rowHeight + podGap;
      rowHeight = 0;
    }
    const rackBoxes = rackNames.map((r, ri) => {
      const rx = x + pad + ri * (cell + gap);
      const ry = y + label + pad;
      const members = racks.get(r)!.sort((a, b) => naturalCompare(nodes[a]!.name, nodes[b]!.name));
      members.forEach((ni, k) => {
        cells[ni] = { x: rx, y: ry + k * (cell + gap), w: cell, h: cell };
      });
      return { name: r, x: rx, y: ry, w: cell, h: members.length * (cell + gap) - gap };
    });
    podBoxes.push({ name: podName, x, y, w, h, racks: rackBoxes });
    x += w + podGap;
    width = Math.max(width, x - podGap);
    rowHeight = Math.max(rowHeight, h);
  }
  const names = nodes.map((n) => n.name);
  return {
    width,
    height: podBoxes.length ? y + rowHeight : 0,
    pods: podBoxes,
    cells,
    names,
    index: new Map(names.map((n, i) => [n, i])),
  };
}

/** The node under a point, or -1: a scan of the pods first, then of the cells of that pod's racks. */
export function hitTest(l: Layout, px: number, py: number): number {
  const inside = (b: Box) => px >= b.x && px < b.x + b.w && py >= b.y && py < b.y + b.h;
  for (const pod of l.pods) {
    if (!inside(pod)) continue;
    for (let i = 0; i < l.cells.length; i++) if (inside(l.cells[i]!)) return i;
    return -1;
  }
  return -1;
}

export interface Allocation {
  readonly gpus: number;
  /** GPUs per project on this node. */
  readonly byProject: ReadonlyMap<string, number>;
}

/** Per node: GPUs in use and by whom, from the placements of running workloads. */
export function allocations(
  workloads: readonly { project: string; placement: { nodes: { node: string; gpuIndexes: number[] }[] } | null }[],
): Map<string, Allocation> {
  const out = new Map<string, { gpus: number; byProject: Map<string, number> }>();
  for (const w of workloads) {
    for (const p of w.placement?.nodes ?? []) {
      const a = out.get(p.node) ?? { gpus: 0, byProject: new Map<string, number>() };
      out.set(p.node, a);
      a.gpus += p.gpuIndexes.length;
      a.byProject.set(w.project, (a.byProject.get(w.project) ?? 0) + p.gpuIndexes.length);
    }
  }
  return out;
}

/** The project holding the most GPUs on a node (ties: the first in name order). */
export function owningProject(a: Allocation | undefined): string | undefined {
  if (!a) return undefined;
  let best: string | undefined;
  let most = 0;
  for (const [p, g] of [...a.byProject].sort((x, y) => naturalCompare(x[0], y[0]))) {
    if (g > most) {
      best = p;
      most = g;
    }
  }
  return best;
}
