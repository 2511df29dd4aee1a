// An open-loop HTTP load generator at an even pace, shared by the benches (not a bench itself:
// `npm run bench -- paced` has nothing to run). Request i is due at start + i/rate and its latency
// counts from that moment, so a stall is not hidden. autocannon's overallRate is not even: each
// connection sends its share of a second back to back at the top of the second, then idles, so
// its "1,000 req/s" figure is the latency of a 1,000-request burst.
import { Agent, type OutgoingHttpHeaders, request as httpRequest } from 'node:http';

export interface PacedOptions {
  /** The full URL of every request. */
  url: string;
  /** Default GET. */
  method?: string;
  headers?: OutgoingHttpHeaders;
  /** Sent with every request (as `req.end(body)`); none by default. */
  body?: string | Buffer;
  /** Requests per second. */
  rate: number;
  seconds: number;
  /** The keep-alive agent's socket limit (default 64). */
  maxSockets?: number;
}

export interface PacedResult {
  /** Latency of every 2xx answer in ms, from its scheduled send time; sorted ascending. */
  samples: number[];
  /** Requests sent: round(rate × seconds). */
  sent: number;
  /** Answers with a status outside 2xx. */
  non2xx: number;
  /** Requests that got no answer (connection or socket error). */
  errors: number;
  /** non2xx + errors. */
  failed: number;
  /** From the first send to the last answer or error. */
  elapsedMs: number;
}

/** The p-th percentile of ascending `sorted` (nearest rank); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function paced(opts: PacedOptions): Promise<PacedResult> {
  const { url, method = 'GET', headers = {}, body, rate, seconds, maxSockets = 64 } = opts;
  const agent = new Agent({ keepAlive: true, maxSockets });
  const samples: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let done = 0;
  const total = Math.round(rate * seconds);
  const start = performance.now();
  await new Promise<void>((finish) => {
    if (total <= 0) return finish();
    const settle = () => {
      if (++done === total) finish();
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      while (sent < due) {
        const scheduled = start + (sent * 1000) / rate;
        sent++;
        const req = httpRequest(url, { agent, method, headers }, (res) => {
          res.resume();
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) samples.push(performance.now() - scheduled);
            else non2xx++;
            settle();
          });
        });
        req.on('error', () => {
          errors++;
          settle();
        });
        req.end(body);
      }
      if (sent < total) setTimeout(tick, 0);
    };
    tick();
  });
  agent.destroy();
  const elapsedMs = performance.now() - start;
  samples.sort((a, b) => a - b);
  return { samples, sent, non2xx, errors, failed: non2xx + errors, elapsedMs };
}
