// The floor plan on one canvas: a cell per node (thousands stay fast, unlike an element each),
// pods and racks outlined, placement highlighted. Keyboard: focus the plan, arrows move between
// nodes, the selected node is read out in a live region; hovering shows the same.
import { type KeyboardEvent, type MouseEvent, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { type ColourMode, type NodeLook, nodeColour, nodeWatts } from '../lib/colors.js';
import { type Layout, type PlanNode, hitTest, layoutFloorPlan } from '../lib/floorplan.js';

export interface FloorNode extends PlanNode, NodeLook {
  readonly pool: string;
}

declare global {
  interface Window {
    /** For tests and the benchmark: where a node's cell is and what colour it was drawn. */
    fabrikFloorPlan?: {
      cellOf(name: string): { x: number; y: number; w: number; h: number } | undefined;
      colourOf(name: string): string | undefined;
      draws: number;
    };
  }
}

export function FloorPlan({
  nodes,
  mode,
  highlight,
  label,
  width = 1180,
}: {
  nodes: readonly FloorNode[];
  mode: ColourMode;
  highlight?: ReadonlySet<string>;
  label: string;
  width?: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const box = useRef<HTMLElement>(null);
  const [selected, setSelected] = useState(-1);
  // As wide as the page leaves room for (at most `width`): pods wrap instead of overflowing.
  const [room, setRoom] = useState(width);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setRoom(Math.max(200, Math.min(width, Math.floor(el.clientWidth))));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [width]);
  const layout: Layout = useMemo(() => layoutFloorPlan(nodes, { width: room }), [nodes, room]);
  const maxWatts = useMemo(
    () => nodes.reduce((m, n) => Math.max(m, nodeWatts(n.gpuModel, n.gpuCount, n.gpuCount)), 0),
    [nodes],
  );
  const colours = useMemo(() => nodes.map((n) => nodeColour(n, mode, maxWatts)), [nodes, mode, maxWatts]);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const h = Math.max(layout.height, 20);
    c.width = Math.ceil(layout.width * dpr);
    c.height = Math.ceil(h * dpr);
    c.style.width = `${layout.width}px`;
    c.style.height = `${h}px`;
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, layout.width, h);
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'top';
    for (const pod of layout.pods) {
      g.strokeStyle = '#8a96a3';
      g.lineWidth = 1;
      g.strokeRect(pod.x + 0.5, pod.y + 0.5, pod.w - 1, pod.h - 1);
      g.fillStyle = '#1f2933';
      g.fillText(pod.name, pod.x + 4, pod.y + 2, pod.w - 6);
    }
    for (let i = 0; i < layout.cells.length; i++) {
      const b = layout.cells[i]!;
      g.fillStyle = colours[i]!;
      g.fillRect(b.x, b.y, b.w, b.h);
    }
    if (highlight?.size) {
      g.strokeStyle = '#e11d48';
      g.lineWidth = 2;
      for (const name of highlight) {
        const i = layout.index.get(name);
        if (i === undefined) continue;
        const b = layout.cells[i]!;
        g.strokeRect(b.x - 1, b.y - 1, b.w + 2, b.h + 2);
      }
    }
    if (selected >= 0 && selected < layout.cells.length) {
      const b = layout.cells[selected]!;
      g.strokeStyle = '#111';
      g.lineWidth = 2;
      g.strokeRect(b.x - 2, b.y - 2, b.w + 4, b.h + 4);
    }
    const prev = window.fabrikFloorPlan?.draws ?? 0;
    window.fabrikFloorPlan = {
      cellOf: (name) => {
        const i = layout.index.get(name);
        return i === undefined ? undefined : layout.cells[i];
      },
      colourOf: (name) => {
        const i = layout.index.get(name);
        return i === undefined ? undefined : colours[i];
      },
      draws: prev + 1,
    };
    if (nodes.length > 0 && performance.getEntriesByName('fabrik:floorplan').length === 0)
      performance.mark('fabrik:floorplan');
  }, [layout, colours, highlight, selected, nodes.length]);

  const point = (e: MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    return hitTest(layout, e.clientX - r.left, e.clientY - r.top);
  };
  const key = (e: KeyboardEvent<HTMLCanvasElement>) => {
    const n = nodes.length;
    if (n === 0) return;
    const step: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -n, End: n };
    const d = step[e.key];
    if (d === undefined) return;
    e.preventDefault();
    setSelected((s) => Math.max(0, Math.min(n - 1, s < 0 ? 0 : s + d)));
  };
  const sel = selected >= 0 ? nodes[selected] : undefined;
  return (
    <figure className="floorplan" ref={box}>
      <canvas
        ref={canvas}
        role="img"
        tabIndex={0}
        aria-label={`${label}: ${nodes.length} nodes in ${layout.pods.length} pods. Use the arrow keys to read nodes.`}
        onMouseMove={(e) => setSelected(point(e))}
        onKeyDown={key}
      />
      <figcaption aria-live="polite" className="node-readout">
        {sel
          ? `${sel.name} · pod ${sel.pod} · rack ${sel.rack} · ${sel.state} · ${sel.allocatedGpus}/${sel.gpuCount} GPUs in use${sel.project ? ` · ${sel.project}` : ''} · ~${Math.round(nodeWatts(sel.gpuModel, sel.gpuCount, sel.allocatedGpus) / 100) / 10} kW (estimated)`
          : 'Point at a node, or focus the plan and use the arrow keys.'}
      </figcaption>
    </figure>
  );
}

export function Legend({ mode }: { mode: ColourMode }) {
  const items: [string, string][] =
    mode === 'allocation'
      ? [
          ['#dfe5ec', 'free'],
          ['#9ec5fe', 'some GPUs in use'],
          ['#0a3d91', 'all GPUs in use'],
        ]
      : mode === 'power'
        ? [
            ['#2e9e5b', 'low power'],
            ['#f2c94c', 'medium'],
            ['#c0392b', 'near the fleet maximum (TDP estimate)'],
          ]
        : [['#dfe5ec', 'no project']];
  return (
    <ul className="legend" aria-label="Colour legend">
      {[
        ...items,
        ['#f0b429', 'cordoned'] as [string, string],
        ['#de7c12', 'draining'] as [string, string],
        ['#b42318', 'down'] as [string, string],
      ].map(([c, t]) => (
        <li key={t}>
          <span className="swatch" style={{ background: c }} aria-hidden="true" /> {t}
        </li>
      ))}
    </ul>
  );
}
