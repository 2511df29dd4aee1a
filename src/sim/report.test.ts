// The whole pipeline (prepare → simulate → metrics → report) on a tiny fleet, with a TEST-ONLY
// first-fit scheduler so it does not depend on any policy; the real core is tested in scenarios.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decisions, SchedNode, Snapshot } from '../scheduler/types.js';
import { snapshotDriver } from './core-driver.js';
import { generateTrace } from './generator.js';
import { commonUnit, humanSeconds, inUnit, renderReport, resultJson } from './report.js';
import { runSimulation } from './simulation.js';

const nodes: SchedNode[] = Array.from({ length: 8 }, (_, i) => ({
  name: `n${i}`,
  pool: 'b200',
  gpuModel: 'B200',
  pod: 'pod1',
  rack: 'r1',
  leaf: `leaf${i >> 2}`,
  spine: 's1',
  gpus: 8,
  labels: {},
  schedulable: true,
}));

/** TEST-ONLY: greedy first fit in submit order, skipping what does not fit. */
function testOnlyFirstFit(s: Snapshot): Decisions {
  const free = new Map(s.nodes.map((n) => [n.name, Array.from({ length: n.gpus }, (_, g) => g)]));
  for (const r of s.running) {
    for (const a of r.placement.nodes)
      free.set(
        a.node,
        free.get(a.node)!.filter((g) => !a.gpuIndexes.includes(g)),
      );
  }
  const place = [];
  for (const w of [...s.pending].sort((a, b) => a.submittedAt - b.submittedAt)) {
    const fit = s.nodes.filter((n) => free.get(n.name)!.length >= w.gpusPerNode).slice(0, w.nodes);
    if (fit.length < w.nodes) continue;
    const assign = fit.map((n) => {
      const f = free.get(n.name)!;
      free.set(n.name, f.slice(w.gpusPerNode));
      return { node: n.name, gpuIndexes: f.slice(0, w.gpusPerNode) };
    });
    place.push({
      workloadId: w.id,
      borrowed: false,
      placement: { pod: 'pod1', nodes: assign, leaves: [...new Set(fit.map((n) => n.leaf))] },
    });
  }
  return { place, preempt: [], pending: [] };
}

describe('simulation and report', () => {
  const jobs = generateTrace({
    seed: 4,
    jobs: 300,
    projects: 3,
    sizes: [
      { gpus: 1, weight: 3 },
      { gpus: 8, weight: 1 },
      { gpus: 16, weight: 1 },
      { gpus: 128, weight: 1 },
    ],
  });
  const r = runSimulation({
    traceName: 'synthetic',
    jobs,
    nodes,
    policies: ['fifo', 'fabrik'],
    load: 0.8,
    driver: snapshotDriver(testOnlyFirstFit),
  });

  it('rejects jobs the fleet can never run and reports the load reached', () => {
    assert.ok(r.rejected > 0, '128-GPU jobs do not fit 64 GPUs');
    assert.match(r.rejectedExamples[0], /pool b200 has 8 such nodes/);
    assert.equal(r.jobs + r.rejected, 300);
    assert.ok(Math.abs(r.load - 0.8) < 0.016);
    assert.equal(r.quotaRule, 'gpu-hour-share');
    assert.equal(r.policies.fifo!.finished, r.jobs);
  });

  it('writes the bench keys first in result.json', () => {
    const j = resultJson(r) as {
      policies: Record<string, Record<string, unknown>>;
      ratiosToFifo: Record<string, Record<string, number>>;
    };
    assert.deepEqual(Object.keys(j.policies.fabrik).slice(0, 8), [
      'avgJctS',
      'p99JctS',
      'avgQueueS',
      'p99QueueS',
      'avgBoundedSlowdown',
      'utilization',
      'jain',
      'preemptions',
    ]);
    assert.equal(j.ratiosToFifo.fifo.avgJct, 1);
  });

  it('renders a self-contained HTML report with SVG charts', () => {
    const html = renderReport(r);
    assert.equal((html.match(/<svg/g) ?? []).length, 3);
    assert.ok(!/<script/i.test(html), 'no scripts');
    assert.ok(!/(src|href)="https?:/i.test(html), 'no network references');
    assert.match(html, /Offered load: <b>80\.0 %/);
    assert.match(html, /synthetic/);
  });

  it('has jobsPerSec and maxQueueS per policy in result.json', () => {
    const j = resultJson(r) as { policies: Record<string, Record<string, number>> };
    for (const p of ['fifo', 'fabrik']) {
      assert.ok(j.policies[p].jobsPerSec > 0, p);
      assert.equal(j.policies[p].maxQueueS, r.policies[p as 'fifo']!.maxQueueS);
    }
  });

  it("carries the time charts' series in result.json (allocation over time, queueing-delay CDF)", () => {
    const j = resultJson(r) as {
      series: Record<string, { allocation: { t: number[]; gpus: number[] }; queueCdf: [number, number][] }>;
    };
    for (const p of ['fifo', 'fabrik']) {
      const s = j.series[p];
      assert.ok(s.allocation.t.length > 1 && s.allocation.t.length === s.allocation.gpus.length, p);
      assert.equal(s.queueCdf.at(-1)?.[1], 1, `${p}: the CDF ends at 1`);
    }
  });

  it('fixes seen by a new user: one unit per row, the leaf-switch row, the capacity label', () => {
    const html = renderReport(r);
    const row = (label: string) => {
      const m = html.match(new RegExp(`<tr><td>${label}</td>(.*?)</tr>`));
      assert.ok(m, label);
      return [...m[1].matchAll(/<td>(.*?)<\/td>/g)].map((x) => x[1]);
    };
    for (const label of ['average JCT', 'p99 queueing delay', 'max queueing delay \\(starvation bound\\)']) {
      const units = new Set(row(label).map((c) => c.split(' ').pop()));
      assert.equal(units.size, 1, `${label}: ${row(label).join(', ')}`);
    }
    assert.match(row('multi-node placements by leaf switches spanned')[0], /^1 leaf: \d+/);
    assert.match(html, /capacity 64/);
    assert.match(row('jobs simulated / wall second')[0], /^[\d,]+$/);
  });

  it('formats durations in one unit', () => {
    assert.equal(humanSeconds(95), '95 s');
    assert.equal(humanSeconds(3 * 3600), '3.0 h');
    const unit = commonUnit([672, 552, 0, 207_360]);
    assert.equal(unit.name, 'min');
    assert.deepEqual(
      [672, 0, 207_360].map((x) => inUnit(x, unit)),
      ['11.2 min', '0 min', '3,456 min'],
    );
  });
});
