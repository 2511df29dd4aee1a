// The gateway's Prometheus metrics, in its own Registry (the server or `fabrik gateway` serves it
// on /metrics). Labels are bounded: deployment (`org.project/name`), project, replica, endpoint,
// status — never the API key (one series per key would grow without bound; the key is in each
// UsageRecord instead) and never any text of a prompt or completion.
//
// Label children are looked up once and cached: prom-client hashes the label values on every
// `labels()` call, which would otherwise cost more than the rest of the metering.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeploymentLoad } from '../types.js';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKENS_PER_SECOND = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

export interface ReplicaLabels {
  readonly project: string;
  readonly deployment: string;
  readonly replica: string;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'deployment' | 'endpoint' | 'status'>;
  readonly #promptTokens: Counter<'project' | 'deployment' | 'replica'>;
  readonly #completionTokens: Counter<'project' | 'deployment' | 'replica'>;
  readonly #ttft: Histogram<'deployment' | 'endpoint'>;
  readonly #duration: Histogram<'deployment' | 'endpoint'>;
  readonly #tokensPerSecond: Histogram<'deployment'>;
  readonly #upstreamFailures: Counter<'deployment' | 'reason'>;
  readonly #cache = new Map<string, unknown>();

  /** `load`: the per-deployment counts, read when metrics are scraped. */
  constructor(load: () => readonly (DeploymentLoad & { deployment: string })[]) {
    const registers = [this.registry];
    this.#requests = new Counter({
      name: 'fabrik_gateway_requests_total',
      help: 'Inference calls answered, by deployment (org.project/name; empty before one is known), endpoint and HTTP status.',
      labelNames: ['deployment', 'endpoint', 'status'],
      registers,
    });
    this.#promptTokens = new Counter({
      name: 'fabrik_gateway_prompt_tokens_total',
      help: 'Prompt tokens of finished calls, as the replica reported them.',
      labelNames: ['project', 'deployment', 'replica'],
      registers,
    });
    this.#completionTokens = new Counter({
      name: 'fabrik_gateway_completion_tokens_total',
      help: 'Completion tokens of finished calls, as the replica reported them.',
      labelNames: ['project', 'deployment', 'replica'],
      registers,
    });
    this.#ttft = new Histogram({
      name: 'fabrik_gateway_time_to_first_token_seconds',
      help: 'From the call arriving to the first byte of the answer (the first token when streaming).',
      labelNames: ['deployment', 'endpoint'],
      buckets: SECONDS,
      registers,
    });
    this.#duration = new Histogram({
      name: 'fabrik_gateway_request_duration_seconds',
      help: 'From the call arriving to the end of its answer.',
      labelNames: ['deployment', 'endpoint'],
      buckets: SECONDS,
      registers,
    });
    this.#tokensPerSecond = new Histogram({
      name: 'fabrik_gateway_tokens_per_second',
      help: 'Completion tokens per second of generation (after the first token when streaming).',
      labelNames: ['deployment'],
      buckets: TOKENS_PER_SECOND,
      registers,
    });
    this.#upstreamFailures = new Counter({
      name: 'fabrik_gateway_upstream_failures_total',
      help: 'Replicas this gateway could not use for a call (refused, reset, 502/503), each then retried elsewhere.',
      labelNames: ['deployment', 'reason'],
      registers,
    });
    const gauge = (name: string, help: string, field: 'inflight' | 'queued') =>
      new Gauge({
        name,
        help,
        labelNames: ['deployment'],
        registers,
        collect() {
          this.reset();
          for (const d of load()) this.set({ deployment: d.deployment }, d[field]);
        },
      });
    gauge('fabrik_gateway_inflight', 'Calls being answered now.', 'inflight');
    gauge('fabrik_gateway_queued', 'Calls held while no replica is ready or all are at their cap.', 'queued');
  }

  #child<T>(key: string, make: () => T): T {
    let c = this.#cache.get(key) as T | undefined;
    if (c === undefined) {
      c = make();
      this.#cache.set(key, c);
    }
    return c;
  }

  request(deployment: string, endpoint: string, status: number): void {
    this.#child(`r\0${deployment}\0${endpoint}\0${status}`, () =>
      this.#requests.labels(deployment, endpoint, String(status)),
    ).inc();
  }

  tokens(r: ReplicaLabels, prompt: number, completion: number): void {
    const key = `${r.deployment}\0${r.replica}`;
    if (prompt > 0)
      this.#child(`p\0${key}`, () => this.#promptTokens.labels(r.project, r.deployment, r.replica)).inc(prompt);
    if (completion > 0)
      this.#child(`c\0${key}`, () => this.#completionTokens.labels(r.project, r.deployment, r.replica)).inc(completion);
  }

  timing(deployment: string, endpoint: string, ttftMs: number, durationMs: number, tokensPerSecond: number): void {
    const key = `${deployment}\0${endpoint}`;
    this.#child(`t\0${key}`, () => this.#ttft.labels(deployment, endpoint)).observe(ttftMs / 1000);
    this.#child(`d\0${key}`, () => this.#duration.labels(deployment, endpoint)).observe(durationMs / 1000);
    if (tokensPerSecond > 0)
      this.#child(`s\0${deployment}`, () => this.#tokensPerSecond.labels(deployment)).observe(tokensPerSecond);
  }

  upstreamFailure(deployment: string, reason: string): void {
    this.#upstreamFailures.labels(deployment, reason).inc();
  }

  /** A replica left the routing table: its token series go (they would otherwise pile up as replicas churn). */
  forgetReplica(r: ReplicaLabels): void {
    const key = `${r.deployment}\0${r.replica}`;
    if (this.#cache.delete(`p\0${key}`)) this.#promptTokens.remove(r.project, r.deployment, r.replica);
    if (this.#cache.delete(`c\0${key}`)) this.#completionTokens.remove(r.project, r.deployment, r.replica);
  }
}
