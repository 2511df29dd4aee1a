// The overview's live state, folded from the events stream: node states from the platform's
// node.* events (operators only) and running placements from workload.* events, so a cordon or
// a placement recolours its nodes without re-reading the fleet. Pure: the page keeps the state,
// tests feed it events. The fold is idempotent per node and per workload id (an event sets what
// it says, never adds to it), so events the fleet read already shows count once.
import type { LiveEvent } from './live.js';

export interface PlacedWorkload {
  readonly id: string;
  readonly project: string;
  readonly pool: string;
  readonly placement: { readonly pod?: string; readonly nodes: { node: string; gpuIndexes: number[] }[] } | null;
}

export interface LiveFloor {
  /** Node name → state (ready, cordoned, draining, down). */
  readonly states: ReadonlyMap<string, string>;
  /** Workload id → what it holds, for workloads placed or running. */
  readonly running: ReadonlyMap<string, PlacedWorkload>;
}

/** The event types the overview follows on the stream. */
export const FLOOR_EVENT_TYPES = 'node.*,workload.*';

/** A node event's type → the state the node is in afterwards. */
export const NODE_EVENT_STATES: Readonly<Record<string, string>> = {
  'node.cordoned': 'cordoned',
  'node.uncordoned': 'ready',
  'node.draining': 'draining',
  'node.down': 'down',
};

export function liveFloorOf(
  nodes: readonly { name: string; state: string }[],
  running: readonly PlacedWorkload[],
): LiveFloor {
  return {
    states: new Map(nodes.map((n) => [n.name, n.state])),
    running: new Map(
      running.map((w) => [w.id, { id: w.id, project: w.project, pool: w.pool, placement: w.placement }]),
    ),
  };
}

/**
 * The floor from a read of the fleet and the running workloads, with the events that came on the
 * stream since it started (in order) folded over it. The read lies somewhere within those events,
 * and each event sets a node's or a workload's whole state, so the last one about each wins,
 * whether the read already showed it or not.
 */
export function floorOf(
  nodes: readonly { name: string; state: string }[],
  running: readonly PlacedWorkload[],
  since: readonly LiveEvent[],
): LiveFloor {
  return since.reduce(applyLiveEvent, liveFloorOf(nodes, running));
}

function samePlacement(a: PlacedWorkload['placement'], b: PlacedWorkload['placement']): boolean {
  if (a === null || b === null) return a === b;
  return (
    (a.pod ?? '') === (b.pod ?? '') &&
    a.nodes.length === b.nodes.length &&
    a.nodes.every(
      (n, i) =>
        n.node === b.nodes[i]!.node &&
        n.gpuIndexes.length === b.nodes[i]!.gpuIndexes.length &&
        n.gpuIndexes.every((g, j) => g === b.nodes[i]!.gpuIndexes[j]),
    )
  );
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function placementOf(v: unknown): PlacedWorkload['placement'] {
  if (typeof v !== 'object' || v === null || !Array.isArray((v as { nodes?: unknown }).nodes)) return null;
  const nodes = (v as { nodes: unknown[] }).nodes.flatMap((n) => {
    const o = n as { node?: unknown; gpuIndexes?: unknown };
    return typeof o?.node === 'string' && Array.isArray(o.gpuIndexes)
      ? [{ node: o.node, gpuIndexes: o.gpuIndexes.filter((g): g is number => typeof g === 'number') }]
      : [];
  });
  return { pod: str((v as { pod?: unknown }).pod), nodes };
}

/**
 * The floor after one event; the same object when the event changes nothing on it (so React
 * skips the redraw, and a replayed event is a no-op). A workload holds its GPUs while its status is running (placed or started);
 * anything else (finished, preempted, requeued) frees them.
 */
export function applyLiveEvent(floor: LiveFloor, e: LiveEvent): LiveFloor {
  const nodeState = NODE_EVENT_STATES[e.type];
  if (nodeState !== undefined) {
    const name = str(e.data?.name);
    if (!name || floor.states.get(name) === nodeState) return floor;
    const states = new Map(floor.states);
    states.set(name, nodeState);
    return { ...floor, states };
  }
  if (!e.type.startsWith('workload.')) return floor;
  const id = str(e.data?.id);
  if (!id) return floor;
  const placement = placementOf(e.data?.placement);
  const holds = e.data?.status === 'running' && placement !== null && placement.nodes.length > 0;
  if (!holds) {
    if (!floor.running.has(id)) return floor;
    const running = new Map(floor.running);
    running.delete(id);
    return { ...floor, running };
  }
  const held: PlacedWorkload = { id, project: str(e.data?.project) ?? '', pool: str(e.data?.pool) ?? '', placement };
  const was = floor.running.get(id);
  // Already there as it says (the read showed it, or placed then started): nothing to redraw.
  if (was && was.project === held.project && was.pool === held.pool && samePlacement(was.placement, placement))
    return floor;
  const running = new Map(floor.running);
  running.set(id, held);
  return { ...floor, running };
}
