// The wait bound (docs/scheduler.md, "Starvation bound"), checked through the simulator on small
// fleets with random traces: every job whose shape fits the fleet is placed at the first cycle at
// or after submittedAt + agingHorizonS + drainAfterS at which no work started within the last
// preemptionCooldownS and no work runs that was starved itself when it started and has run less
// than drainGraceS, whole-pod gangs included: so within agingHorizonS + drainAfterS + drainGraceS
// plus the cooldown.
// The engine runs a cycle at each submission and finish, so "first cycle" is the first such event.
// Jobs held at their own project's quota limit after that time wait for their project, not for
// others, and are left out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IncrementalScheduler } from '../scheduler/index.js';
import type { PoolQuota, ScheduleOptions, SchedNode } from '../scheduler/types.js';
import type { DriverFactory } from './core-driver.js';
import { type SimJob, simulate } from './engine.js';

// Pool p: pod A of 4 nodes (two leaves), pod B of 2 nodes; 8 GPUs each.
const NODES: SchedNode[] = [...'AAAABB'].map((pod, i) => ({
  name: `n${i}`,
  pool: 'p',
  gpuModel: 'B200',
  pod: `pod${pod}`,
  rack: `r${i}`,
  leaf: `leaf${Math.floor(i / 2)}`,
  spine: 's1',
  gpus: 8,
  labels: {},
  schedulable: true,
}));
const PROJECTS = ['a', 'b', 'c'];
const QUOTAS: PoolQuota[] = PROJECTS.map((project, i) => ({
  project,
  pool: 'p',
  guaranteed: [24, 16, 8][i],
  limit: 48,
}));
// 1 GPU to whole pods: 4 nodes (pod A) and 2 nodes (pod B, or half of A).
const SHAPES = [
  [1, 1],
  [1, 2],
  [1, 4],
  [1, 8],
  [2, 8],
  [4, 8],
] as const;
const OPTIONS: ScheduleOptions = {
  agingHorizonS: 600,
  fairShareHorizonS: 300,
  drainAfterS: 3600,
  // The constant bound needs every victim of its class (the default; `borrowed` spares guaranteed work).
  drainVictims: 'any',
  drainGraceS: 1800,
  preemptionCooldownS: 30,
};
const GRACE_S = 1800;
const COOLDOWN_S = 30;
const BOUND_S = 600 + 3600;

interface Watch {
  /** Workloads told QuotaLimit at `now` ≥ `heldAfter(id)`. */
  readonly held: Set<string>;
  readonly heldAfter: (id: string) => number;
  /** Every start (first runs and restarts), in time order. */
  readonly starts: number[];
  /** Runs of work that had waited drainAfterS or more when it started (spared for drainGraceS). */
  readonly starved: { id: string; start: number; end: number }[];
}

function driver(options: ScheduleOptions, watch?: Watch): DriverFactory {
  return ({ nodes, quotas, policy }) => {
    const core = new IncrementalScheduler({ nodes, quotas, policy, options });
    const leaving: { end: number }[] = [];
    return {
      submit: (w) => core.submit(w),
      started: (r) => {
        watch?.starts.push(r.startedAt);
        if (watch && r.startedAt - r.submittedAt >= (options.drainAfterS ?? 0))
          watch.starved.push({ id: r.id, start: r.startedAt, end: Number.POSITIVE_INFINITY });
        core.start(r);
      },
      left: (id) => {
        // It left before the cycle that comes next (finishes and preemptions happen at events).
        const run = watch?.starved.find((w) => w.id === id && w.end === Number.POSITIVE_INFINITY);
        if (run && run.end === Number.POSITIVE_INFINITY) leaving.push(run);
        core.remove(id);
      },
      cycle: (now, usage) => {
        for (const run of leaving) run.end = now;
        leaving.length = 0;
        core.setUsage(usage);
        const d = core.cycle(now);
        if (watch) {
          for (const p of d.pending)
            if (p.reason === 'QuotaLimit' && now >= watch.heldAfter(p.workloadId)) watch.held.add(p.workloadId);
        }
        return d;
      },
    };
  };
}

const jobArb = fc.record({
  gap: fc.integer({ min: 0, max: 1800 }),
  dur: fc.integer({ min: 60, max: 8 * 3600 }),
  shape: fc.nat({ max: SHAPES.length - 1 }),
  project: fc.nat({ max: PROJECTS.length - 1 }),
  slack: fc.integer({ min: 1, max: 4 }),
});

function toJobs(raw: readonly { gap: number; dur: number; shape: number; project: number; slack: number }[]): SimJob[] {
  let t = 0;
  return raw.map((r, i) => {
    t += r.gap;
    const [nodes, gpusPerNode] = SHAPES[r.shape];
    return {
      id: `j${i}`,
      submitS: t,
      durationS: r.dur,
      maxRuntimeS: r.dur * r.slack,
      nodes,
      gpusPerNode,
      project: PROJECTS[r.project],
      pool: 'p',
      priority: 'normal',
    };
  });
}

describe('wait bound (fabrik)', () => {
  it('every job is placed by the first quiet cycle after submit + agingHorizonS + drainAfterS', () => {
    fc.assert(
      fc.property(fc.array(jobArb, { minLength: 20, maxLength: 120 }), (raw) => {
        const jobs = toJobs(raw);
        // The bound is on waiting for others: a job its own project's running work keeps at the
        // project's limit (QuotaLimit) after its due time is waiting for itself, and left out.
        const submitted = new Map(jobs.map((j) => [j.id, j.submitS]));
        const held = new Set<string>();
        const starts: number[] = [];
        const starved: { id: string; start: number; end: number }[] = [];
        const d = driver(OPTIONS, { held, heldAfter: (id) => (submitted.get(id) ?? 0) + BOUND_S, starts, starved });
        const r = simulate({ jobs, nodes: NODES, quotas: QUOTAS, policy: 'fabrik', driver: d });
        const events = [...jobs.map((j) => j.submitS), ...r.outcomes.map((o) => o.endS)].sort((a, b) => a - b);
        jobs.forEach((j, i) => {
          const start = r.outcomes[i].firstStartS;
          assert.ok(Number.isFinite(start), `${j.id} never started`);
          if (held.has(j.id)) return;
          // Due, it is placed at the first cycle at which no work started within the cooldown
          // (work placed ahead of it in that cycle, or older work a drain may not take yet) and
          // no work runs that was starved itself when it started and has run less than the grace
          // (a drain does not take that yet).
          const due = j.submitS + BOUND_S;
          for (const c of events) {
            if (c < due || c >= start) continue;
            const recent = starts.some((t) => t <= c && t > c - COOLDOWN_S);
            const starvedRunning = starved.some((w) => w.start <= c && c < Math.min(w.end, w.start + GRACE_S));
            assert.ok(
              recent || starvedRunning,
              `${j.id} (${j.nodes}×${j.gpusPerNode}, submitted ${j.submitS}) due at ${due}, not placed at ${c}, started ${start}`,
            );
          }
        });
      }),
      { numRuns: 60 },
    );
  });

  it('without the drain (drainAfterS = Infinity) whole-pod gangs can wait past that bound', () => {
    // A 4-node gang behind a stream of long 1-GPU jobs that keep a GPU of every node of pod A busy.
    const jobs: SimJob[] = [];
    for (let k = 0; k < 40; k++) {
      jobs.push({
        id: `s${k}`,
        submitS: k * 300,
        durationS: 4 * 3600,
        maxRuntimeS: 4 * 3600,
        nodes: 1,
        gpusPerNode: 1,
        project: 'a',
        pool: 'p',
        priority: 'normal',
      });
      if (k === 1)
        jobs.push({
          id: 'gang',
          submitS: 301,
          durationS: 600,
          maxRuntimeS: 3600,
          nodes: 4,
          gpusPerNode: 8,
          project: 'c',
          pool: 'p',
          priority: 'normal',
        });
    }
    const wait = (o: ScheduleOptions) => {
      const r = simulate({ jobs, nodes: NODES, quotas: QUOTAS, policy: 'fabrik', driver: driver(o) });
      const i = jobs.findIndex((j) => j.id === 'gang');
      return r.outcomes[i].firstStartS - jobs[i].submitS;
    };
    // Submissions come every 300 s, so a cycle runs within 300 s of the due time.
    const bounded = wait(OPTIONS);
    assert.ok(bounded <= BOUND_S + 300, `with the drain: ${bounded} s`);
    const unbounded = wait({ ...OPTIONS, drainAfterS: Number.POSITIVE_INFINITY });
    assert.ok(unbounded > BOUND_S + 300, `without the drain: ${unbounded} s`);
  });
});
