// The scheduler core: a pure function of a snapshot to decisions, an incremental variant for
// callers that run many cycles, submit-time checks and fair-share usage accounting.
export { schedule } from './schedule.js';
export { IncrementalScheduler, type IncrementalInit } from './incremental.js';
export { checkFeasible, type Feasibility, MAX_RUNTIME_S } from './feasibility.js';
export { decayUsage, fairShareFactor } from './fair-share.js';
export { DEFAULT_OPTIONS } from './options.js';
export type {
  Decisions,
  NodeAssignment,
  PendingDecision,
  PendingReason,
  PlaceDecision,
  Placement,
  PolicyName,
  PoolQuota,
  PreemptDecision,
  PriorityClass,
  RunningWorkload,
  SchedNode,
  ScheduleOptions,
  Snapshot,
  WorkloadKind,
  WorkloadRequest,
} from './types.js';
export { PENDING_REASONS, POLICIES, PRIORITY_CLASSES, WORKLOAD_KINDS } from './types.js';
