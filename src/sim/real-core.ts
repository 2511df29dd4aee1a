// The real scheduler core behind the engine's driver interface. The incremental form keeps the
// core's indexes between cycles (a cycle costs what changed); it decides exactly what
// `schedule(snapshot)` would, which the scenario tests check on a small trace.
import { IncrementalScheduler, schedule } from '../scheduler/index.js';
import type { ScheduleOptions } from '../scheduler/types.js';
import { type DriverFactory, snapshotDriver } from './core-driver.js';

export function incrementalDriver(options?: ScheduleOptions): DriverFactory {
  return ({ nodes, quotas, policy }) => {
    const core = new IncrementalScheduler({ nodes, quotas, policy, ...(options ? { options } : {}) });
    return {
      submit: (w) => core.submit(w),
      started: (r) => core.start(r),
      left: (id) => {
        core.remove(id);
      },
      cycle: (now, usage) => {
        core.setUsage(usage);
        return core.cycle(now);
      },
    };
  };
}

/** The driver the CLI and the bench use: `snapshot: true` rebuilds everything each cycle. */
export function realCore(opts: { snapshot?: boolean; options?: ScheduleOptions } = {}): DriverFactory {
  return opts.snapshot ? snapshotDriver(schedule) : incrementalDriver(opts.options);
}
