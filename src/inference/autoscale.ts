// How many replicas a deployment wants: a pure decision from its load, in the manner of the
// Kubernetes HPA and Knative's KPA. Scale up at once to what in-flight plus held requests need at
// the target concurrency; scale down only to the highest need seen over the stabilization window,
// so a short lull does not drop warm replicas; after an idle period with no request at all, go to
// the minimum (zero when min is 0). A request held at zero asks for one replica right away.

export interface ScaleInput {
  readonly min: number;
  readonly max: number;
  /** What the deployment wants now. */
  readonly desired: number;
  /** In-flight requests per replica to aim at. */
  readonly targetInflight: number;
  readonly idleTimeoutS: number;
  /** Summed over the gateways: requests being answered, and requests held (no ready replica). */
  readonly inflight: number;
  readonly queued: number;
  /** Unix ms of the newest request any gateway saw; 0 for never. */
  readonly lastRequestAt: number;
  /** Replicas needed at each sample of the stabilization window (the controller keeps them). */
  readonly recentNeeds: readonly number[];
  readonly now: number;
}

export interface ScaleDecision {
  readonly desired: number;
  /** Replicas the current load alone needs: the controller adds it to its window. */
  readonly need: number;
  readonly reason: 'load' | 'scale-from-zero' | 'idle' | 'stabilized' | 'bounds' | 'steady';
}

export const STABILIZATION_WINDOW_S = 30;

export function decideReplicas(i: ScaleInput): ScaleDecision {
  const clamp = (n: number) => Math.min(i.max, Math.max(i.min, n));
  const demand = i.inflight + i.queued;
  const need = Math.ceil(demand / Math.max(1, i.targetInflight));
  if (i.desired < i.min || i.desired > i.max) return { desired: clamp(i.desired), need, reason: 'bounds' };
  if (i.queued > 0 && i.desired === 0) return { desired: clamp(Math.max(1, need)), need, reason: 'scale-from-zero' };
  if (need > i.desired) return { desired: clamp(need), need, reason: 'load' };
  const idle = demand === 0 && i.now - i.lastRequestAt >= i.idleTimeoutS * 1000;
  if (idle) return { desired: i.min, need, reason: i.desired === i.min ? 'steady' : 'idle' };
  // Not idle: keep at least one replica while requests keep coming, and the window's peak.
  const peak = Math.max(need, 1, ...i.recentNeeds);
  const desired = clamp(Math.min(i.desired, peak));
  return { desired, need, reason: desired === i.desired ? 'steady' : 'stabilized' };
}
