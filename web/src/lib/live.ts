// The events stream (/api/v1/events/stream) read with fetch (so the session cookie or the key
// goes along), resumed from the last id after a drop; each event handed to `onEvent`, and
// `onStatus` told when the stream is up (answered) or down (failed, ended), for fallbacks.
// The stream's first message (`event: cursor`) is the cursor it starts from: with
// `after: 'latest'` that is the newest event of the moment, so a page that reads its state
// once it is told (`onStart`) misses nothing and replays no history.
import { raw } from '../api/client.js';
import { SseParser } from './sse.js';

export interface LiveEvent {
  readonly id?: string;
  readonly type: string;
  readonly subject?: string;
  readonly fabrikproject?: string;
  readonly data?: Record<string, unknown>;
}

export interface FollowOptions {
  /** Comma-separated types or prefixes (`node.*`); default all. */
  readonly types?: string;
  /** Where to start: a cursor, or `latest` (only what comes after); default the feed's start. */
  readonly after?: string;
  /** The stream answered (true), or failed or ended (false; it retries after a second). */
  readonly onStatus?: (up: boolean) => void;
  /**
   * The stream told the cursor it starts from; `fresh` when it was `latest` resolved (a first
   * start), not a resume from the last id seen.
   */
  readonly onStart?: (cursor: string, fresh: boolean) => void;
}

export function followEvents(onEvent: (e: LiveEvent) => void, opts: FollowOptions = {}): () => void {
  const ac = new AbortController();
  let after = opts.after;
  (async () => {
    while (!ac.signal.aborted) {
      try {
        const q = new URLSearchParams();
        if (after) q.set('after', after);
        if (opts.types) q.set('types', opts.types);
        const fresh = after === 'latest';
        const res = await raw('GET', `/api/v1/events/stream?${q}`, undefined, ac.signal);
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        opts.onStatus?.(true);
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const ev of parser.feed(value)) {
            if (ev.id) after = ev.id;
            if (ev.event === 'cursor') {
              if (ev.id) opts.onStart?.(ev.id, fresh);
              continue;
            }
            if (ev.event !== 'message') continue;
            const e = parseEvent(ev.data);
            if (e) onEvent(e);
          }
        }
      } catch {
        if (ac.signal.aborted) return;
      }
      opts.onStatus?.(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return () => ac.abort();
}

/** A CloudEvent from a message's data, or undefined for anything that is not one. */
function parseEvent(data: string): LiveEvent | undefined {
  try {
    const v: unknown = JSON.parse(data);
    if (typeof v !== 'object' || v === null || typeof (v as { type?: unknown }).type !== 'string') return undefined;
    return v as LiveEvent;
  } catch {
    return undefined;
  }
}
