// The console's logic without a browser: floor-plan layout and hit-testing, allocations from
// placements, colour scales, cursor paging, the CSRF header, the SSE parser, reading result.json
// and its chart series, the live floor folded from events, per-deployment usage charts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseFleetFile } from '../../src/fleet/fleet-file.js';
import {
  FREE,
  STATE_COLOURS,
  allocationColour,
  mix,
  nodeColour,
  nodeWatts,
  projectColour,
} from '../../web/src/lib/colors.js';
import { csrfHeaders, cookieValue } from '../../web/src/lib/csrf.js';
import { allocations, hitTest, layoutFloorPlan, naturalCompare, owningProject } from '../../web/src/lib/floorplan.js';
import {
  answered,
  back,
  currentCursor,
  fetchAll,
  firstPage,
  forward,
  hasNext,
  hasPrev,
} from '../../web/src/lib/paging.js';
import { deploymentCharts, minuteLabel } from '../../web/src/lib/deployment-usage.js';
import { FLOOR_EVENT_TYPES, applyLiveEvent, liveFloorOf } from '../../web/src/lib/live-floor.js';
import {
  SimResultError,
  allocationLines,
  parseSimResult,
  queueCdfLines,
  timeUnit,
} from '../../web/src/lib/sim-result.js';
import { EVENT_TYPES, parseTypes, typeMatches } from '../../src/app/events.js';
import { SseParser } from '../../web/src/lib/sse.js';
import { REPO_ROOT } from '../helpers/child-server.js';

const munich = () => {
  const spec = parseFleetFile(readFileSync(join(REPO_ROOT, 'examples/fleets/munich.yaml'), 'utf8'));
  return spec.nodes.map((n) => ({ name: n.name, pod: n.pod, rack: n.rack }));
};

describe('floor plan layout', () => {
  it('lays out the Munich site: 1,250 cells, pods in natural order, no two cells overlapping', () => {
    const nodes = munich();
    assert.equal(nodes.length, 1250);
    const l = layoutFloorPlan(nodes, { width: 1180 });
    assert.equal(l.cells.length, 1250);
    assert.equal(l.pods.length, 40);
    assert.deepEqual(
      l.pods.slice(0, 3).map((p) => p.name),
      ['b200-su01', 'b200-su02', 'b200-su03'],
    );
    assert.ok(l.width <= 1180, `fits ${l.width}`);
    const seen = new Set<string>();
    for (const c of l.cells) {
      const k = `${c.x},${c.y}`;
      assert.ok(!seen.has(k), `overlap at ${k}`);
      seen.add(k);
      assert.ok(c.x >= 0 && c.y >= 0 && c.x + c.w <= l.width && c.y + c.h <= l.height);
    }
    // A rack's nodes stack in one column, in name order; each cell lies inside its pod.
    const i1 = l.index.get('b200-0001')!;
    const i2 = l.index.get('b200-0002')!;
    assert.equal(l.cells[i1]!.x, l.cells[i2]!.x);
    assert.ok(l.cells[i2]!.y > l.cells[i1]!.y);
    const pod = l.pods.find((p) => p.name === 'b200-su01')!;
    assert.equal(pod.racks.length, 8);
    const c = l.cells[i1]!;
    assert.ok(c.x >= pod.x && c.y >= pod.y && c.x + c.w <= pod.x + pod.w && c.y + c.h <= pod.y + pod.h);
  });

  it('finds the node under a point, and nothing between cells', () => {
    const nodes = munich();
    const l = layoutFloorPlan(nodes, { width: 1180 });
    for (const name of ['b200-0001', 'b200-0777', 'rtx-250']) {
      const c = l.cells[l.index.get(name)!]!;
      assert.equal(nodes[hitTest(l, c.x + c.w / 2, c.y + c.h / 2)]!.name, name);
    }
    assert.equal(hitTest(l, -5, -5), -1);
    assert.equal(hitTest(l, 1, 1), -1); // the pod's label area
  });

  it('wraps pods onto rows at the width', () => {
    const nodes = Array.from({ length: 6 }, (_, i) => ({ name: `n${i}`, pod: `p${i}`, rack: 'r' }));
    const l = layoutFloorPlan(nodes, { width: 60, cell: 10, gap: 2, podPadding: 5, label: 10 });
    // Each pod is 20 px wide, 10 apart: two per row.
    assert.deepEqual([...new Set(l.pods.map((p) => p.y))].length, 3);
    assert.ok(naturalCompare('su2', 'su10') < 0);
  });

  it('counts GPUs per node and the owning project from placements', () => {
    const a = allocations([
      {
        project: 'acme.train',
        placement: {
          nodes: [
            { node: 'n1', gpuIndexes: [0, 1] },
            { node: 'n2', gpuIndexes: [0] },
          ],
        },
      },
      { project: 'globex.ml', placement: { nodes: [{ node: 'n1', gpuIndexes: [2, 3, 4] }] } },
      { project: 'acme.train', placement: null },
    ]);
    assert.equal(a.get('n1')!.gpus, 5);
    assert.equal(owningProject(a.get('n1')), 'globex.ml');
    assert.equal(owningProject(a.get('n2')), 'acme.train');
    assert.equal(owningProject(a.get('n3')), undefined);
  });
});

describe('colour scales', () => {
  it('allocation: free is its own colour, more allocated is darker', () => {
    assert.equal(allocationColour(0), FREE);
    const lum = (c: string) => [1, 3, 5].reduce((s, i) => s + Number.parseInt(c.slice(i, i + 2), 16), 0);
    assert.ok(lum(allocationColour(0.25)) > lum(allocationColour(0.75)));
    assert.equal(mix('#000000', '#ffffff', 0.5), '#808080');
  });
  it('project colours are stable and differ between most projects', () => {
    assert.equal(projectColour('acme.train'), projectColour('acme.train'));
    const distinct = new Set(['a.x', 'b.y', 'c.z', 'd.w', 'e.v'].map(projectColour));
    assert.ok(distinct.size >= 3);
    assert.equal(projectColour(undefined), FREE);
  });
  it('out-of-service states override every mode; power grows with allocation', () => {
    const n = { state: 'cordoned', gpuModel: 'B200', gpuCount: 8, allocatedGpus: 0 };
    for (const m of ['allocation', 'project', 'power'] as const)
      assert.equal(nodeColour(n, m, 10_000), STATE_COLOURS.cordoned);
    assert.ok(nodeWatts('B200', 8, 8) > nodeWatts('B200', 8, 0));
    assert.equal(nodeWatts('B200', 8, 8), 800 + 8 * 1000);
    assert.notEqual(
      nodeColour({ ...n, state: 'ready' }, 'power', 8800),
      nodeColour({ ...n, state: 'ready', allocatedGpus: 8 }, 'power', 8800),
    );
  });
});

describe('cursor paging', () => {
  it('goes forward with nextCursor and back through the cursors that led here', () => {
    let p = answered(firstPage, 'c1');
    assert.equal(currentCursor(p), undefined);
    assert.ok(hasNext(p) && !hasPrev(p));
    p = answered(forward(p), 'c2');
    assert.equal(currentCursor(p), 'c1');
    p = answered(forward(p), null);
    assert.equal(currentCursor(p), 'c2');
    assert.ok(!hasNext(p));
    assert.equal(forward(p), p);
    p = back(p);
    assert.equal(currentCursor(p), 'c1');
    p = back(back(p));
    assert.equal(currentCursor(p), undefined);
  });
  it('fetchAll follows every page, and stops at a bound', async () => {
    const pages: Record<string, { items: number[]; nextCursor: string | null }> = {
      '': { items: [1, 2], nextCursor: 'a' },
      a: { items: [3], nextCursor: 'b' },
      b: { items: [4], nextCursor: null },
    };
    assert.deepEqual(await fetchAll(async (c) => pages[c ?? '']!), [1, 2, 3, 4]);
    await assert.rejects(
      fetchAll(async () => ({ items: [0], nextCursor: 'x' }), 3),
      /more than 3 pages/,
    );
  });
});

describe('CSRF header', () => {
  it('sends the fabrik_csrf cookie as x-csrf-token on mutations only', () => {
    const cookies = 'theme=dark; fabrik_csrf=tok%2Fen; other=1';
    assert.equal(cookieValue(cookies, 'fabrik_csrf'), 'tok/en');
    assert.deepEqual(csrfHeaders('POST', cookies), { 'x-csrf-token': 'tok/en' });
    assert.deepEqual(csrfHeaders('delete', cookies), { 'x-csrf-token': 'tok/en' });
    assert.deepEqual(csrfHeaders('GET', cookies), {});
    assert.deepEqual(csrfHeaders('POST', 'theme=dark'), {});
    assert.deepEqual(csrfHeaders('PUT', '', 'from-session'), { 'x-csrf-token': 'from-session' });
    assert.equal(cookieValue('xfabrik_csrf=1', 'fabrik_csrf'), undefined);
  });
});

describe('SSE parser', () => {
  it('assembles events across chunks, skips comments, keeps the last id', () => {
    const p = new SseParser();
    assert.deepEqual(p.feed(': heartbeat\n\nid: evt_1\nevent: workload.placed\ndata: {"a"'), []);
    assert.deepEqual(p.feed(':1}\n\nid: evt_2\r\ndata: x\r\ndata: y\r\n\r\n'), [
      { id: 'evt_1', event: 'workload.placed', data: '{"a":1}' },
      { id: 'evt_2', event: 'message', data: 'x\ny' },
    ]);
    assert.equal(p.lastId, 'evt_2');
  });
});

describe('simulator result.json', () => {
  const good = {
    trace: 't.csv',
    jobs: 3,
    capacityGpus: 16,
    policies: {
      fifo: {
        avgJctS: 10,
        p99JctS: 20,
        avgQueueS: 1,
        p99QueueS: 2,
        avgBoundedSlowdown: 1.5,
        utilization: 0.5,
        jain: 0.9,
        preemptions: 0,
        projects: {},
      },
    },
    ratiosToFifo: { fifo: { avgQueue: 1 } },
  };
  it('reads a result and says which field is wrong', () => {
    assert.equal(parseSimResult(JSON.stringify(good)).policies.fifo!.avgJctS, 10);
    assert.throws(() => parseSimResult('{'), SimResultError);
    const bad = { ...good, policies: { fifo: { ...good.policies.fifo, p99JctS: 'x' } } };
    assert.throws(() => parseSimResult(JSON.stringify(bad)), /policies\.fifo\.p99JctS: expected a number/);
    assert.throws(() => parseSimResult(JSON.stringify({ ...good, policies: {} })), /at least one policy/);
    assert.deepEqual(timeUnit(30), { name: 's', div: 1 });
    assert.deepEqual(timeUnit(10_000), { name: 'h', div: 3600 });
  });
});

describe('simulator chart series', () => {
  const policy = {
    avgJctS: 10,
    p99JctS: 20,
    avgQueueS: 1,
    p99QueueS: 2,
    avgBoundedSlowdown: 1.5,
    utilization: 0.5,
    jain: 0.9,
    preemptions: 0,
    avgWaitS: 3,
    p99WaitS: 7,
    maxWaitS: 9,
    projects: {},
  };
  const doc = {
    trace: 't.csv',
    jobs: 3,
    capacityGpus: 16,
    policies: { fifo: policy, fabrik: { ...policy, avgWaitS: 1 } },
    ratiosToFifo: {},
    series: {
      fifo: {
        allocation: { t: [0, 1800, 7200], gpus: [0, 8.26, 16] },
        queueCdf: [
          [0, 0.5],
          [30, 0.8333333],
          [600, 1],
        ],
      },
      fabrik: { allocation: { t: [0, 3600], gpus: [4, 4] }, queueCdf: [[0, 1]] },
    },
  };
  it('maps allocation to hours and GPUs, and the CDF to a log axis with 0 at 1 s', () => {
    const r = parseSimResult(JSON.stringify(doc));
    assert.equal(r.policies.fifo!.p99WaitS, 7);
    assert.equal(r.policies.fabrik!.avgWaitS, 1);
    assert.deepEqual(allocationLines(r), [
      {
        name: 'fifo',
        data: [
          [0, 0],
          [0.5, 8.3],
          [2, 16],
        ],
      },
      {
        name: 'fabrik',
        data: [
          [0, 4],
          [1, 4],
        ],
      },
    ]);
    assert.deepEqual(queueCdfLines(r), [
      {
        name: 'fifo',
        data: [
          [1, 0.5],
          [30, 0.8333],
          [600, 1],
        ],
      },
      { name: 'fabrik', data: [[1, 1]] },
    ]);
  });
  it('reads files without series or waits, and says what is wrong with bad ones', () => {
    const { series: _s, ...old } = doc;
    const r = parseSimResult(JSON.stringify({ ...old, policies: { fifo: { ...policy, avgWaitS: undefined } } }));
    assert.deepEqual(r.series, {});
    assert.deepEqual(allocationLines(r), []);
    assert.equal(r.policies.fifo!.avgWaitS, undefined);
    const bad = (series: unknown) => () => parseSimResult(JSON.stringify({ ...doc, series }));
    assert.throws(bad([]), /series: expected an object/);
    assert.throws(bad({ fifo: { allocation: { t: [0, 1], gpus: [1] }, queueCdf: [] } }), /t has 2 points, gpus 1/);
    assert.throws(bad({ fifo: { allocation: { t: [0], gpus: ['x'] }, queueCdf: [] } }), /series\.fifo\.allocation/);
    assert.throws(bad({ fifo: { allocation: { t: [], gpus: [] }, queueCdf: [[1, 2, 3]] } }), /queueCdf/);
    assert.throws(
      () => parseSimResult(JSON.stringify({ ...doc, policies: { fifo: { ...policy, maxWaitS: '9' } } })),
      /policies\.fifo\.maxWaitS: expected a number/,
    );
  });
});

describe('the live floor', () => {
  const nodes = [
    { name: 'n1', state: 'ready' },
    { name: 'n2', state: 'cordoned' },
  ];
  const placement = (node: string, gpus: number) => ({
    pod: 'su1',
    nodes: [{ node, gpuIndexes: Array.from({ length: gpus }, (_, i) => i) }],
  });
  const wl = (type: string, id: string, status: string, p: unknown) => ({
    type,
    data: { id, project: 'acme.train', pool: 'b200', status, placement: p },
  });

  it('follows only types the server knows', () => {
    assert.ok(parseTypes(FLOOR_EVENT_TYPES));
    assert.ok(typeMatches(parseTypes(FLOOR_EVENT_TYPES), 'node.cordoned'));
    assert.ok(EVENT_TYPES.includes('node.uncordoned'));
  });

  it('redraws a node from its state events, and keeps the same floor when nothing changes', () => {
    const f0 = liveFloorOf(nodes, []);
    const f1 = applyLiveEvent(f0, { type: 'node.cordoned', data: { name: 'n1', state: 'cordoned' } });
    assert.equal(f1.states.get('n1'), 'cordoned');
    assert.equal(f0.states.get('n1'), 'ready', 'the old floor is not changed');
    const f2 = applyLiveEvent(f1, { type: 'node.uncordoned', data: { name: 'n2', state: 'ready' } });
    assert.equal(f2.states.get('n2'), 'ready');
    assert.equal(applyLiveEvent(f2, { type: 'node.draining', data: { name: 'n2' } }).states.get('n2'), 'draining');
    assert.equal(applyLiveEvent(f2, { type: 'node.down', data: { name: 'n1' } }).states.get('n1'), 'down');
    assert.equal(applyLiveEvent(f2, { type: 'node.cordoned', data: { name: 'n1' } }), f2, 'already cordoned');
    assert.equal(applyLiveEvent(f2, { type: 'node.cordoned', data: {} }), f2, 'no name');
    assert.equal(applyLiveEvent(f2, { type: 'project.created', data: { name: 'n1' } }), f2);
  });

  it('recolours by allocation as workloads are placed, start and finish', () => {
    const f0 = liveFloorOf(nodes, [
      { id: 'wl_old', project: 'acme.train', pool: 'b200', placement: placement('n2', 8) },
    ]);
    assert.equal(allocations([...f0.running.values()]).get('n2')?.gpus, 8);
    const placed = applyLiveEvent(f0, wl('workload.placed', 'wl_a', 'running', placement('n1', 4)));
    let alloc = allocations([...placed.running.values()]);
    assert.equal(alloc.get('n1')?.gpus, 4);
    assert.equal(owningProject(alloc.get('n1')), 'acme.train');
    const started = applyLiveEvent(placed, wl('workload.started', 'wl_a', 'running', placement('n1', 4)));
    assert.equal(allocations([...started.running.values()]).get('n1')?.gpus, 4, 'started: still the same GPUs');
    const finished = applyLiveEvent(started, wl('workload.finished', 'wl_a', 'succeeded', placement('n1', 4)));
    alloc = allocations([...finished.running.values()]);
    assert.equal(alloc.get('n1'), undefined, 'finished: the node is free again');
    const preempted = applyLiveEvent(finished, wl('workload.preempted', 'wl_old', 'pending', null));
    assert.equal(preempted.running.size, 0);
    assert.equal(applyLiveEvent(preempted, wl('workload.submitted', 'wl_b', 'pending', null)), preempted);
    // Replayed in order from the start of the feed, events end where the fleet is now.
    const replay = [
      wl('workload.placed', 'wl_c', 'running', placement('n1', 2)),
      { type: 'node.cordoned', data: { name: 'n1' } },
      wl('workload.finished', 'wl_c', 'failed', placement('n1', 2)),
      { type: 'node.uncordoned', data: { name: 'n1' } },
    ].reduce(applyLiveEvent, f0);
    assert.equal(replay.states.get('n1'), 'ready');
    assert.equal(replay.running.has('wl_c'), false);
  });
});

describe('per-deployment usage charts', () => {
  const m = (min: number) => `2026-03-02T10:${String(min).padStart(2, '0')}:00.000Z`;
  it('puts every deployment on one minute axis, gaps for latency where nothing was served', () => {
    const c = deploymentCharts([
      {
        name: 'llama',
        rows: [
          { group: m(1), requests: 120, tokensOut: 6000, meanTtftMs: 80 },
          { group: m(3), requests: 30, tokensOut: 600, meanTtftMs: 95.5 },
        ],
      },
      { name: 'tiny', rows: [{ group: m(2), requests: 6, tokensOut: 60, meanTtftMs: 12 }] },
      { name: 'idle', rows: [] },
    ]);
    assert.deepEqual(c.minutes, [m(1), m(2), m(3)]);
    assert.deepEqual(c.minutes.map(minuteLabel), ['10:01', '10:02', '10:03']);
    assert.deepEqual(c.series[0], {
      name: 'llama',
      requestsPerSec: [2, 0, 0.5],
      latencyMs: [80, null, 95.5],
      tokensPerSec: [100, 0, 10],
    });
    assert.deepEqual(c.series[1]!.requestsPerSec, [0, 0.1, 0]);
    assert.deepEqual(c.series[2], {
      name: 'idle',
      requestsPerSec: [0, 0, 0],
      latencyMs: [null, null, null],
      tokensPerSec: [0, 0, 0],
    });
    assert.deepEqual(deploymentCharts([]), { minutes: [], series: [] });
  });
});
