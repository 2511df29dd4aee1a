// The overview's fold of the events stream over a read of the fleet (web/src/lib/live-floor.ts):
// the stream opens at `latest` before the read, so the events folded over the read may already be
// in it. Each must count once: the floor ends the same wherever among the events the read was.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocations } from '../../web/src/lib/floorplan.js';
import type { LiveEvent } from '../../web/src/lib/live.js';
import { type LiveFloor, applyLiveEvent, floorOf, liveFloorOf } from '../../web/src/lib/live-floor.js';

const placement = (node: string, gpus: number, from = 0) => ({
  pod: 'su1',
  nodes: [{ node, gpuIndexes: Array.from({ length: gpus }, (_, i) => from + i) }],
});
const wl = (type: string, id: string, status: string, p: unknown): LiveEvent => ({
  type,
  data: { id, project: 'acme.train', pool: 'b200', status, placement: p },
});
const nodes = ['n1', 'n2', 'n3'].map((name) => ({ name, state: 'ready' }));

/** What the page shows of a floor: GPUs per node and each node's state. */
function shown(f: LiveFloor) {
  const alloc = allocations([...f.running.values()]);
  return nodes.map((n) => [n.name, f.states.get(n.name), alloc.get(n.name)?.gpus ?? 0]);
}

/** The fleet and running workloads as the API would answer after these events. */
function readAfter(events: readonly LiveEvent[]) {
  const f = events.reduce(applyLiveEvent, liveFloorOf(nodes, []));
  return {
    nodes: nodes.map((n) => ({ name: n.name, state: f.states.get(n.name)! })),
    running: [...f.running.values()],
  };
}

describe('the overview floor folded over a read', () => {
  it('counts a placement the read already shows once', () => {
    const running = [{ id: 'wl_a', project: 'acme.train', pool: 'b200', placement: placement('n1', 4) }];
    const read = liveFloorOf(nodes, running);
    const placed = applyLiveEvent(read, wl('workload.placed', 'wl_a', 'running', placement('n1', 4)));
    assert.equal(placed, read, 'the same floor: nothing to redraw');
    const f = floorOf(nodes, running, [
      wl('workload.placed', 'wl_a', 'running', placement('n1', 4)),
      wl('workload.started', 'wl_a', 'running', placement('n1', 4)),
      wl('workload.placed', 'wl_a', 'running', placement('n1', 4)),
    ]);
    assert.equal(allocations([...f.running.values()]).get('n1')?.gpus, 4, 'not 8, not 12');
    assert.equal(f.running.size, 1);
  });

  it('replaces a workload placed anew elsewhere, and a node state once set', () => {
    const read = liveFloorOf(nodes, [
      { id: 'wl_a', project: 'acme.train', pool: 'b200', placement: placement('n1', 4) },
    ]);
    const moved = [
      wl('workload.requeued', 'wl_a', 'pending', null),
      wl('workload.placed', 'wl_a', 'running', placement('n2', 2)),
    ].reduce(applyLiveEvent, read);
    assert.deepEqual(shown(moved), [
      ['n1', 'ready', 0],
      ['n2', 'ready', 2],
      ['n3', 'ready', 0],
    ]);
    // Placed twice without a requeue in between (an event seen twice): still one placement.
    const twice = applyLiveEvent(moved, wl('workload.placed', 'wl_a', 'running', placement('n3', 8)));
    assert.deepEqual(shown(twice), [
      ['n1', 'ready', 0],
      ['n2', 'ready', 0],
      ['n3', 'ready', 8],
    ]);
    const cordoned = applyLiveEvent(twice, { type: 'node.cordoned', data: { name: 'n1' } });
    assert.equal(applyLiveEvent(cordoned, { type: 'node.cordoned', data: { name: 'n1' } }), cordoned);
  });

  it('ends the same wherever among the events the read was taken', () => {
    const events: LiveEvent[] = [
      wl('workload.placed', 'wl_a', 'running', placement('n1', 4)),
      wl('workload.placed', 'wl_b', 'running', placement('n1', 4, 4)),
      { type: 'node.cordoned', data: { name: 'n2' } },
      wl('workload.started', 'wl_a', 'running', placement('n1', 4)),
      wl('workload.finished', 'wl_b', 'succeeded', placement('n1', 4, 4)),
      wl('workload.placed', 'wl_c', 'running', placement('n3', 8)),
      { type: 'node.uncordoned', data: { name: 'n2' } },
      { type: 'node.down', data: { name: 'n3' } },
      wl('workload.finished', 'wl_c', 'failed', placement('n3', 8)),
    ];
    const truth = shown(floorOf(nodes, [], events));
    assert.deepEqual(truth, [
      ['n1', 'ready', 4],
      ['n2', 'ready', 0],
      ['n3', 'down', 0],
    ]);
    for (let k = 0; k <= events.length; k++) {
      const read = readAfter(events.slice(0, k));
      assert.deepEqual(shown(floorOf(read.nodes, read.running, events)), truth, `read after event ${k}`);
    }
    // Mid-way too: a read after 6 events, with those 6 folded over it, shows wl_a and wl_c once each.
    const mid = readAfter(events.slice(0, 6));
    const f = floorOf(mid.nodes, mid.running, events.slice(0, 6));
    assert.deepEqual(shown(f), [
      ['n1', 'ready', 4],
      ['n2', 'cordoned', 0],
      ['n3', 'ready', 8],
    ]);
  });
});
