// findReservation against a reference that replays every release and looks for a placement at
// every instant: the shortcuts (a search only when a node that came back suits the shape, and for
// whole-node gangs only when such a node's pod has enough whole free nodes; the scratch capacity;
// the timeline's cached head) must give the same start and the same GPUs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { findReservation, type Release, Timeline } from './backfill.js';
import { Capacity, lowestBits } from './capacity.js';
import { makeNodes } from './fixtures.js';
import { findPlacement, type Plan } from './placement.js';
import { int, pick, rng } from './random-snapshot.js';
import { type Shape, shapeOf } from './shape.js';
import { Topology } from './topology.js';

function reference(
  cap: Capacity,
  topo: Topology,
  shape: Shape,
  eligible: Uint8Array | null,
  releases: readonly Release[],
  now: number,
): { start: number; plan: Plan } | null {
  const sim = cap.clone();
  const pool = topo.poolByName.get('b200');
  if (!pool) throw new Error('no pool');
  for (let k = 0; k < releases.length; ) {
    const t = Math.max(now, releases[k].end);
    while (k < releases.length && Math.max(now, releases[k].end) === t) {
      const r = releases[k++];
      for (let j = 0; j < r.nodes.length; j++) sim.release(r.nodes[j], r.masks[j]);
    }
    const plan = findPlacement(sim, pool, shape, eligible);
    if (plan) return { start: t, plan };
  }
  return null;
}

/** A busy fleet: random work (1 GPU to 6-node gangs) placed by the core's own placement. */
function world(seed: number) {
  const r = rng(seed);
  const nodes = makeNodes({ pods: int(r, 1, 3), leavesPerPod: int(r, 1, 3), nodesPerLeaf: int(r, 2, 6) });
  const topo = new Topology(nodes);
  const pool = topo.poolByName.get('b200');
  if (!pool) throw new Error('no pool');
  const cap = Capacity.empty(topo);
  const releases: Release[] = [];
  for (let k = 0; k < 200; k++) {
    const gpn = pick(r, [1, 2, 4, 8]);
    const shape = shapeOf(
      {
        id: `r${k}`,
        project: 'p',
        pool: 'b200',
        kind: 'training',
        priority: 'normal',
        nodes: gpn === 8 && r() < 0.3 ? int(r, 2, 6) : 1,
        gpusPerNode: gpn,
        maxRuntimeS: 3600,
        submittedAt: 0,
      },
      8,
    );
    const plan = findPlacement(cap, pool, shape, null);
    if (!plan) continue;
    for (let j = 0; j < plan.nodes.length; j++) cap.allocate(plan.nodes[j], plan.masks[j]);
    // Few distinct end times: several releases at one instant, as in the simulator.
    releases.push({ nodes: plan.nodes, masks: plan.masks, end: int(r, 0, 30) * 600 });
  }
  // Some GPUs given back in odd pieces, so partial nodes are everywhere.
  for (let k = 0; k < 10; k++) {
    const i = int(r, 0, nodes.length - 1);
    const m = lowestBits((~cap.free[i] & 0xff) >>> 0, int(r, 0, 3));
    if (m !== 0) cap.release(i, m);
  }
  releases.sort((a, b) => a.end - b.end);
  return { r, nodes, topo, pool, cap, releases };
}

describe('findReservation', () => {
  it('finds the start and GPUs of a replay that searches at every instant', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const { r, nodes, topo, pool, cap, releases } = world(seed);
        for (let q = 0; q < 12; q++) {
          const gpn = pick(r, [1, 2, 4, 8]);
          const n = gpn === 8 ? int(r, 1, nodes.length) : gpn === 4 && r() < 0.3 ? int(r, 2, 4) : 1;
          const shape = shapeOf(
            {
              id: `q${q}`,
              project: 'p',
              pool: 'b200',
              kind: 'training',
              priority: 'normal',
              nodes: n,
              gpusPerNode: gpn,
              maxRuntimeS: 3600,
              submittedAt: 0,
            },
            8,
          );
          // Some shapes may use only some nodes (a selector or the sovereignty policies).
          const eligible = r() < 0.3 ? Uint8Array.from(nodes, () => (r() < 0.7 ? 1 : 0)) : null;
          if (findPlacement(cap, pool, shape, eligible)) continue; // findReservation is for what does not fit now
          const now = int(r, 0, 6000);
          const timeline = new Timeline([releases, []], () => false);
          const got = findReservation(cap, pool, shape, eligible, timeline, now);
          assert.deepEqual(
            got,
            reference(cap, topo, shape, eligible, releases, now),
            `seed ${seed}, shape ${shape.key}`,
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  it('leaves the capacity it was given as it was', () => {
    const { pool, cap, releases } = world(7);
    const before = cap.clone();
    const shape = shapeOf(
      {
        id: 'g',
        project: 'p',
        pool: 'b200',
        kind: 'training',
        priority: 'normal',
        nodes: 2,
        gpusPerNode: 8,
        maxRuntimeS: 3600,
        submittedAt: 0,
      },
      8,
    );
    findReservation(cap, pool, shape, null, new Timeline([releases, []], () => false), 0);
    assert.deepEqual(cap.free, before.free);
    assert.deepEqual(cap.buckets, before.buckets);
    assert.deepEqual(cap.podWhole, before.podWhole);
  });
});
