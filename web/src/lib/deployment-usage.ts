// Per-deployment charts of the Deployments page: each deployment's per-minute token usage
// (GET …/usage/tokens?deployment=&by=minute) on one shared minute axis. Minutes a deployment
// served nothing count 0 requests and 0 tokens, and no latency (a gap, not a zero).
export interface MinuteRow {
  /** The minute's start, RFC 3339. */
  readonly group: string;
  readonly requests: number;
  readonly tokensOut: number;
  readonly meanTtftMs: number | null;
}

export interface DeploymentMinutes {
  readonly name: string;
  readonly rows: readonly MinuteRow[];
}

export interface DeploymentSeries {
  readonly name: string;
  /** Requests per second, the minute's mean. */
  readonly requestsPerSec: number[];
  /** Mean time to the first byte, ms; null where nothing was served. */
  readonly latencyMs: (number | null)[];
  /** Output tokens per second of wall time, the minute's mean. */
  readonly tokensPerSec: number[];
}

export interface DeploymentCharts {
  /** Minute starts, sorted, every minute any deployment served in. */
  readonly minutes: string[];
  readonly series: DeploymentSeries[];
}

const perSec = (n: number) => Math.round((n / 60) * 1000) / 1000;

export function deploymentCharts(deployments: readonly DeploymentMinutes[]): DeploymentCharts {
  const minutes = [...new Set(deployments.flatMap((d) => d.rows.map((r) => r.group)))].sort();
  const series = deployments.map((d) => {
    const at = new Map(d.rows.map((r) => [r.group, r]));
    return {
      name: d.name,
      requestsPerSec: minutes.map((m) => perSec(at.get(m)?.requests ?? 0)),
      latencyMs: minutes.map((m) => {
        const r = at.get(m);
        return r && r.requests > 0 && r.meanTtftMs !== null ? r.meanTtftMs : null;
      }),
      tokensPerSec: minutes.map((m) => perSec(at.get(m)?.tokensOut ?? 0)),
    };
  });
  return { minutes, series };
}

/** HH:MM of a minute's RFC 3339 start (UTC), for the axis. */
export const minuteLabel = (iso: string) => iso.slice(11, 16);
