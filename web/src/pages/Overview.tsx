// The factory floor: every node of the fleet by pod and rack, coloured by allocation, owning
// project or estimated power. It follows the events stream: node.* events (operators only) redraw
// a node's state, workload.* events its allocation. The stream opens at `latest` first, and the
// fleet and the running workloads are read once it says where it starts: the events after that
// point are folded over the read (idempotent per node and workload), so none is missed and no
// history is replayed. While the stream is down, they are re-read every 15 s instead.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, get } from '../api/client.js';
import { ErrorBox } from '../components/common.js';
import { FloorPlan, type FloorNode, Legend } from '../components/FloorPlan.js';
import type { ColourMode } from '../lib/colors.js';
import { allocations, owningProject } from '../lib/floorplan.js';
import { type LiveEvent, followEvents } from '../lib/live.js';
import { FLOOR_EVENT_TYPES, type LiveFloor, type PlacedWorkload, applyLiveEvent, floorOf } from '../lib/live-floor.js';
import { fetchAll } from '../lib/paging.js';
import type { SessionInfo } from '../session.js';

type Node = Awaited<ReturnType<typeof fetchNodes>>[number];

const fetchNodes = () => fetchAll((cursor) => get('/api/v1/fleet/nodes', { query: { cursor, limit: 1000 } }));
const fetchRunning = () =>
  fetchAll((cursor) => get('/api/v1/workloads', { query: { cursor, limit: 1000, status: 'running' } }));
/** How often the fleet is re-read while the events stream is down (and only then). */
const FALLBACK_POLL_MS = 15_000;
const EMPTY: LiveFloor = { states: new Map(), running: new Map() };

export function Overview({ session }: { session: SessionInfo }) {
  const [nodes, setNodes] = useState<Node[]>([]);
  const [floor, setFloor] = useState<LiveFloor>(EMPTY);
  const [mode, setMode] = useState<ColourMode>('allocation');
  const [error, setError] = useState<unknown>();
  const [live, setLive] = useState(0);
  const [streaming, setStreaming] = useState<boolean>();
  // Events that came while a read was in flight: folded over its answer, so none is lost to it.
  const since = useRef<LiveEvent[] | undefined>(undefined);
  // Whether a read was started yet (the first waits for the stream's start, unless it is down).
  const read = useRef(false);
  const operator = session.operator;

  const load = useCallback(async () => {
    // Synchronous up to the first await: events handled after this call are all in `seen`.
    const seen: LiveEvent[] = [];
    since.current = seen;
    read.current = true;
    try {
      const [ns, rs] = await Promise.all([operator ? fetchNodes() : Promise.resolve([]), fetchRunning()]);
      if (since.current !== seen) return; // a newer read is on its way
      since.current = undefined;
      setNodes(ns);
      setFloor(floorOf(ns, rs, seen));
    } catch (e) {
      if (since.current === seen) since.current = undefined;
      setError(e);
    }
  }, [operator]);

  useEffect(
    () =>
      followEvents(
        (e) => {
          since.current?.push(e);
          setLive((n) => n + 1);
          setFloor((f) => applyLiveEvent(f, e));
        },
        {
          types: FLOOR_EVENT_TYPES,
          after: 'latest',
          onStatus: setStreaming,
          // The stream's start is fixed now: what it brings from here on goes over this read.
          onStart: (_cursor, fresh) => {
            if (fresh) void load();
          },
        },
      ),
    [load],
  );
  useEffect(() => {
    if (streaming !== false) return;
    // Down before it ever started: read now rather than in 15 s. A resumed stream (from the last
    // id) misses nothing, so a drop later needs no read of its own.
    if (!read.current) void load();
    const t = setInterval(() => void load(), FALLBACK_POLL_MS);
    return () => clearInterval(t);
  }, [streaming, load]);

  const running = useMemo(() => [...floor.running.values()], [floor.running]);
  const plan: FloorNode[] = useMemo(() => {
    const alloc = allocations(running);
    return nodes.map((n) => {
      const a = alloc.get(n.name);
      return {
        name: n.name,
        pod: n.pod,
        rack: n.rack,
        pool: n.pool,
        state: floor.states.get(n.name) ?? n.state,
        gpuModel: n.gpuModel,
        gpuCount: n.gpuCount,
        allocatedGpus: a?.gpus ?? 0,
        project: owningProject(a),
      };
    });
  }, [nodes, running, floor.states]);
  const gpus = plan.reduce((s, n) => s + n.gpuCount, 0);
  const used = plan.reduce((s, n) => s + Math.min(n.allocatedGpus, n.gpuCount), 0);

  return (
    <section aria-labelledby="overview-h">
      <h1 id="overview-h">Overview</h1>
      <ErrorBox error={error instanceof ApiError && error.status === 403 ? undefined : error} />
      <p>
        {running.length} running workload{running.length === 1 ? '' : 's'} visible to you
        {session.operator ? ` · ${plan.length} nodes · ${used} of ${gpus} GPUs allocated` : ''} ·{' '}
        <span data-testid="live-count">{live}</span> live events
        {streaming === false ? ' · event stream down, re-reading every 15 s' : ''}
      </p>
      {session.operator ? (
        <>
          <fieldset className="modes">
            <legend>Colour by</legend>
            {(['allocation', 'project', 'power'] as const).map((m) => (
              <label key={m}>
                <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => setMode(m)} /> {m}
              </label>
            ))}
          </fieldset>
          <FloorPlan nodes={plan} mode={mode} label="Floor plan of the site" />
          <Legend mode={mode} />
        </>
      ) : (
        <TenantPlacements running={running} />
      )}
    </section>
  );
}

/** Tenants see no fleet listing: where their own running work is placed, by pod. */
function TenantPlacements({ running }: { running: readonly PlacedWorkload[] }) {
  const floor: FloorNode[] = running.flatMap((w) =>
    (w.placement?.nodes ?? []).map((p) => ({
      name: p.node,
      pod: w.placement?.pod ?? '',
      rack: p.node,
      pool: w.pool,
      state: 'ready',
      gpuModel: '',
      gpuCount: p.gpuIndexes.length,
      allocatedGpus: p.gpuIndexes.length,
      project: w.project,
    })),
  );
  return floor.length === 0 ? (
    <p>None of your workloads is running.</p>
  ) : (
    <FloorPlan nodes={floor} mode="project" label="Nodes running your workloads" />
  );
}
