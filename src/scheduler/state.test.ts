// The state's indexes of running work stay what a fresh sort of the running set gives, through
// random starts, finishes and rebuilds: `byAge` (per account and class, oldest first; the victim
// search reads it backwards), `byEnd` (the backfill timeline) and the drain's
// candidates (`drainCandidates`: in drain order, less work in its grace, as time moves on).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { randomSnapshot, rng, int } from './random-snapshot.js';
import { drainCandidates, olderFirst, type RunningRec, runningByEnd, SchedulerState } from './state.js';
import { runCycle } from './cycle.js';

// Small enough that work moves out of its grace within a run.
const DRAIN_AFTER_S = 300;
const GRACE_S = 300;

function check(st: SchedulerState, seed: number, now: number): void {
  for (const pool of st.pools.values()) {
    const want = new Map<string, RunningRec[]>();
    for (const rec of pool.running) {
      const k = `${rec.account.project}\u0000${rec.rank}`;
      want.set(k, [...(want.get(k) ?? []), rec]);
    }
    const got = new Map<string, RunningRec[]>();
    for (const [a, ranks] of pool.byAge) {
      ranks.forEach((list, rank) => {
        if (list.length > 0) got.set(`${a.project}\u0000${rank}`, list);
      });
    }
    const sorted = new Map(
      [...want].map(([k, recs]) => [k, [...recs].sort((x, y) => (olderFirst(x, y) ? -1 : olderFirst(y, x) ? 1 : 0))]),
    );
    assert.deepEqual(
      [...got.keys()].sort(),
      [...sorted.keys()].sort(),
      `seed ${seed}: accounts and classes of pool ${pool.name}`,
    );
    for (const [k, list] of sorted) {
      assert.deepEqual(
        got.get(k)?.map((r) => r.w.id),
        list.map((r) => r.w.id),
        `seed ${seed}: byAge of ${k} in ${pool.name}`,
      );
    }
    const pre = new Map<string, number>();
    for (const rec of pool.running) {
      if (rec.w.priority !== 'preemptible' || rec.w.terminating || rec.nodes.length === 0) continue;
      pre.set(rec.account.project, (pre.get(rec.account.project) ?? 0) + rec.shape.charge);
    }
    assert.deepEqual(
      new Map([...pool.preemptibleGpus].map(([a, g]) => [a.project, g])),
      pre,
      `seed ${seed}: preemptible GPUs per account in ${pool.name}`,
    );
    assert.deepEqual(
      [...pool.restarted].map((r) => r.w.id).sort(),
      [...pool.running]
        .filter((r) => r.w.priority === 'preemptible' && (r.w.preemptions ?? 0) > 0)
        .map((r) => r.w.id)
        .sort(),
      `seed ${seed}: restarted preemptible work in ${pool.name}`,
    );
    const ends = runningByEnd(pool).map((r) => r.w.id);
    const byEnd = [...pool.running]
      .sort((a, b) => a.end - b.end || (a.w.id < b.w.id ? -1 : a.w.id > b.w.id ? 1 : 0))
      .map((r) => r.w.id);
    assert.deepEqual(ends, byEnd, `seed ${seed}: byEnd of ${pool.name}`);
    // The drain's order (starvation.ts): lower class first, then youngest, then id; less work
    // that started starved and started less than GRACE_S ago.
    const drain = drainCandidates(pool, now, DRAIN_AFTER_S, GRACE_S).map((r) => r.w.id);
    const byDrain = [...pool.running]
      .filter((r) => !(r.w.startedAt - r.w.submittedAt >= DRAIN_AFTER_S && now - r.w.startedAt < GRACE_S))
      .sort(
        (a, b) => b.rank - a.rank || b.w.startedAt - a.w.startedAt || (a.w.id < b.w.id ? -1 : a.w.id > b.w.id ? 1 : 0),
      )
      .map((r) => r.w.id);
    assert.deepEqual(drain, byDrain, `seed ${seed}: drain candidates of ${pool.name} at ${now}`);
  }
}

describe('SchedulerState running indexes', () => {
  it('stay sorted through random starts, finishes and rebuilds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const s = randomSnapshot(seed);
        const r = rng(seed ^ 0x51ed);
        const st = SchedulerState.fromSnapshot(s);
        let now = s.now;
        check(st, seed, now);
        for (let step = 0; step < 6; step++) {
          // Finish some running work, oldest or random.
          const ids = [...st.running.keys()];
          for (let k = int(r, 0, Math.min(3, ids.length)); k > 0; k--) st.remove(ids[int(r, 0, ids.length - 1)]);
          // Start what a cycle places, at a time that may repeat (same-time starts order by id).
          if (r() < 0.7) now += int(r, 0, 3) * 60;
          const d = runCycle(st, now);
          for (const p of d.preempt) st.remove(p.workloadId);
          for (const p of d.place) {
            const req = st.pending.get(p.workloadId)?.req;
            const again = r() < 0.3 ? { preemptions: int(r, 1, 2) } : {};
            if (req) st.start({ ...req, startedAt: now, placement: p.placement, borrowed: p.borrowed, ...again });
          }
          // Work reported as started in the past lands in the middle of a list.
          const late = [...st.pending.values()][0];
          if (late && d.place.length === 0 && r() < 0.3) {
            const again = runCycle(st, now);
            const p = again.place.find((x) => x.workloadId === late.req.id);
            if (p)
              st.start({ ...late.req, startedAt: now - int(r, 1, 5000), placement: p.placement, borrowed: p.borrowed });
          }
          check(st, seed, now);
        }
        st.setQuotas(st.quotas); // a rebuild
        check(st, seed, now);
      }),
      { numRuns: 120 },
    );
  });

  it('bumps a pool version for changes to that pool only, and the inputs version for usage', () => {
    const s = randomSnapshot(11);
    const st = SchedulerState.fromSnapshot(s);
    const versions = () => new Map([...st.pools].map(([name, p]) => [name, p.version]));
    const req = s.pending[0];
    st.remove(req.id);
    const before = versions();
    st.submit(req);
    const running = new Map([...st.pools].map(([name, p]) => [name, p.runningVersion]));
    for (const [name, v] of versions()) assert.equal(v, before.get(name)! + (name === req.pool ? 1 : 0), name);
    for (const [name, p] of st.pools) assert.equal(p.runningVersion, running.get(name), `submit: ${name}`);
    const w = s.running[0];
    if (w) {
      st.remove(w.id);
      assert.equal(st.pools.get(w.pool)?.runningVersion, (running.get(w.pool) ?? 0) + 1, 'a finish');
    }
    const inputs = st.inputs;
    st.setUsage(st.usage);
    assert.equal(st.inputs, inputs, 'the same usage object changes nothing');
    st.setUsage({ ...st.usage });
    assert.equal(st.inputs, inputs + 1);
  });
});
