import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkFeasible } from './feasibility.js';
import { makeNodes, request } from './fixtures.js';

const NODES = [
  ...makeNodes({ pool: 'b200', pods: 2, leavesPerPod: 2, nodesPerLeaf: 4, labels: { fabric: 'infiniband' } }),
  ...makeNodes({ pool: 'rtxpro6000', pods: 1, leavesPerPod: 1, nodesPerLeaf: 4 }),
];

function refused(over: Parameters<typeof request>[1]) {
  const r = checkFeasible(request('w', over), NODES);
  assert.equal(r.ok, false);
  return r as { ok: false; code: string; field: string; message: string };
}

describe('checkFeasible', () => {
  it('accepts what can run some day, even on a busy or cordoned fleet', () => {
    assert.deepEqual(checkFeasible(request('w', { nodes: 8 }), NODES), { ok: true });
    const cordoned = NODES.map((n) => ({ ...n, schedulable: false }));
    assert.deepEqual(checkFeasible(request('w'), cordoned), { ok: true });
  });

  it('names the pools when the pool does not exist', () => {
    const r = refused({ pool: 'h100' });
    assert.equal(r.code, 'POOL_NOT_FOUND');
    assert.equal(r.field, 'pool');
    assert.equal(r.message, 'pool "h100" does not exist; pools: b200, rtxpro6000');
  });

  it('refuses more GPUs per node than any node has, more nodes than the pool, or a gang larger than a pod', () => {
    assert.equal(refused({ gpusPerNode: 16 }).code, 'TOO_MANY_GPUS_PER_NODE');
    assert.equal(refused({ nodes: 17 }).code, 'TOO_MANY_NODES');
    const r = refused({ nodes: 9 });
    assert.equal(r.code, 'TOPOLOGY_UNSATISFIABLE');
    assert.match(r.message, /largest pod of pool "b200" has 8 usable nodes; ask for at most 8 nodes/);
  });

  it('refuses a nodeSelector no node matches', () => {
    const r = refused({ nodeSelector: { fabric: 'ethernet' } });
    assert.equal(r.code, 'NO_MATCHING_NODES');
    assert.equal(r.field, 'nodeSelector');
  });

  it('refuses non-positive, fractional and absurd values and unknown classes', () => {
    assert.equal(refused({ nodes: 0 }).field, 'nodes');
    assert.equal(refused({ gpusPerNode: 1.5 }).field, 'gpusPerNode');
    assert.equal(refused({ maxRuntimeS: -1 }).field, 'maxRuntimeS');
    assert.equal(refused({ maxRuntimeS: Number.POSITIVE_INFINITY }).field, 'maxRuntimeS');
    assert.equal(refused({ maxRuntimeS: 400 * 86_400 }).field, 'maxRuntimeS');
    assert.equal(refused({ priority: 'urgent' as never }).field, 'priority');
    assert.equal(refused({ kind: 'mining' as never }).field, 'kind');
  });
});
