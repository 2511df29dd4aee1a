import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeNodes, request, running } from './fixtures.js';
import { schedule } from './schedule.js';
import type { RunningWorkload, SchedNode, WorkloadRequest } from './types.js';

// 2 pods × 4 leaves × 4 nodes.
const NODES = makeNodes({ pods: 2, leavesPerPod: 4, nodesPerLeaf: 4 });
const names = NODES.map((n) => n.name);

function place(pending: WorkloadRequest[], run: RunningWorkload[] = [], nodes: SchedNode[] = NODES) {
  return schedule({ now: 0, nodes, quotas: [], running: run, pending, policy: 'fifo' }).place;
}

describe('placement', () => {
  it('puts a multi-node gang in one pod on the fewest leaf switches', () => {
    // Leaf 0 of pod 0 has one node busy: a 4-node gang fits whole into leaf 1.
    const [p] = place([request('g', { nodes: 4 })], [running('r', [names[0]])]);
    assert.equal(p.placement.leaves.length, 1);
    assert.deepEqual(p.placement.leaves, ['b200-leaf00-01']);
    const [q] = place([request('g', { nodes: 6 })]);
    assert.equal(q.placement.leaves.length, 2);
    assert.equal(new Set(q.placement.nodes.map((a) => a.node.slice(0, 7))).size, 1);
  });

  it('best-fits small work onto partly used nodes and keeps whole nodes free', () => {
    const r = running('r', [names[5]], { gpusPerNode: 6, gpuIndexes: [0, 1, 2, 3, 4, 5] });
    const [p] = place([request('s', { gpusPerNode: 2 })], [r]);
    assert.deepEqual(p.placement.nodes, [{ node: names[5], gpuIndexes: [6, 7] }]);
  });

  it('gives whole nodes to 8-GPU and exclusive work', () => {
    const r = running('r', [names[0]], { gpusPerNode: 1, gpuIndexes: [0] });
    const [p] = place([request('x', { gpusPerNode: 2, exclusive: true })], [r]);
    assert.notEqual(p.placement.nodes[0].node, names[0]);
    assert.deepEqual(p.placement.nodes[0].gpuIndexes, [0, 1]);
    // The exclusive node then takes nothing else.
    const held = running('x', [p.placement.nodes[0].node], { gpusPerNode: 2, exclusive: true, gpuIndexes: [0, 1] });
    const only = NODES.filter((n) => n.name === p.placement.nodes[0].node);
    assert.deepEqual(place([request('y', { gpusPerNode: 1 })], [held], only), []);
  });

  it('places a gang all or nothing', () => {
    const busy = names.filter((_, k) => k % 2 === 0).map((n, k) => running(`r${k}`, [n]));
    // 16 nodes are free but at most 8 per pod: a 9-node gang gets nothing.
    assert.deepEqual(place([request('g', { nodes: 9 })], busy), []);
  });

  it('skips cordoned nodes and honours the nodeSelector', () => {
    const nodes = NODES.map((n, k) => ({
      ...n,
      schedulable: k !== 0,
      labels: { rack: k === 3 ? 'special' : 'plain' },
    }));
    const [p] = place([request('a', { gpusPerNode: 1 })], [], nodes);
    assert.notEqual(p.placement.nodes[0].node, names[0]);
    const [q] = place([request('b', { nodeSelector: { rack: 'special' } })], [], nodes);
    assert.equal(q.placement.nodes[0].node, names[3]);
  });
});
