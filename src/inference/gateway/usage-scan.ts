// Reading token usage out of replica answers without parsing (or re-serialising) them whole.
//
// Non-streamed: the answer's `usage` object is found by its key and only that object is parsed.
// Inside a string value the quotes are escaped (`\"usage\"`), so a `"usage"` that follows `{` or
// `,` is a real key; the last one is taken (answers put usage at the top level, after the choices).
//
// Streamed: `SseRelay` passes server-sent events through as the official clients expect them —
// `data:` lines only (other fields and comments dropped), `data: [DONE]` last — while it reads the
// usage chunk the gateway always asks for (`stream_options.include_usage`). That chunk is
// forwarded only when the client asked for it too.
import { StringDecoder } from 'node:string_decoder';

export interface Usage {
  readonly prompt: number;
  readonly completion: number;
}

function toUsage(u: unknown): Usage | undefined {
  if (typeof u !== 'object' || u === null) return undefined;
  const { prompt_tokens, completion_tokens } = u as { prompt_tokens?: unknown; completion_tokens?: unknown };
  if (typeof prompt_tokens !== 'number') return undefined;
  return { prompt: prompt_tokens, completion: typeof completion_tokens === 'number' ? completion_tokens : 0 };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;

/** Whether the `"usage"` at `at` is a key: after `{` or `,` (and white space), not inside a string. */
function isKey(body: Buffer, at: number): boolean {
  let i = at - 1;
  while (i >= 0 && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i--;
  return i >= 0 && (body[i] === OPEN || body[i] === 0x2c);
}

/** The `usage` of a non-streamed JSON answer, or undefined when it has none. */
export function scanUsage(body: Buffer): Usage | undefined {
  let at = body.lastIndexOf('"usage"');
  while (at > 0 && !isKey(body, at)) at = body.lastIndexOf('"usage"', at - 1);
  if (at <= 0) return undefined;
  let i = at + 7;
  while (i < body.length && body[i] !== OPEN) {
    const c = body[i];
    if (c !== 0x3a && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return undefined; // not `: {`
    i++;
  }
  // Find the matching brace, skipping strings (which may hold braces).
  let depth = 0;
  let inString = false;
  for (let j = i; j < body.length; j++) {
    const c = body[j];
    if (inString) {
      if (c === BACKSLASH) j++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN) depth++;
    else if (c === CLOSE && --depth === 0) {
      try {
        return toUsage(JSON.parse(body.subarray(i, j + 1).toString('utf8')));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** A usage object with a value (not `"usage": null`, which chunks before the last one carry). */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
/** A chunk with generated text in it (the role-only first chunk has `"content":""`). */
const TOKEN = /"(?:content|text|reasoning_content|arguments)"\s*:\s*"(?!")/;

export class SseRelay {
  /** From the usage chunk, when upstream sent one. */
  usage: Usage | undefined;
  /** Whether upstream ended its stream with `data: [DONE]`. */
  done = false;
  /** Data events forwarded (the fallback count of completion tokens when upstream reports no usage). */
  chunks = 0;
  /** Whether a chunk with generated text went by (time to first token is measured to it). */
  sawToken = false;
  readonly #forwardUsage: boolean;
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';

  /** `forwardUsage`: whether the client asked for `include_usage` itself. */
  constructor(forwardUsage: boolean) {
    this.#forwardUsage = forwardUsage;
  }

  /** Takes the next bytes from upstream; returns what to send to the client ('' for nothing yet). */
  push(chunk: Buffer): string {
    let text = this.#pending + this.#decoder.write(chunk);
    if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
    const end = text.lastIndexOf('\n\n');
    if (end < 0) {
      this.#pending = text;
      return '';
    }
    this.#pending = text.slice(end + 2);
    let out = '';
    let from = 0;
    while (from <= end) {
      const stop = text.indexOf('\n\n', from);
      out += this.#event(text.slice(from, stop));
      from = stop + 2;
    }
    return out;
  }

  /** One event (its lines, without the blank line that ended it) → what to forward. */
  #event(block: string): string {
    if (this.done) return '';
    let data: string;
    if (block.startsWith('data:') && !block.includes('\n')) data = block.slice(block[5] === ' ' ? 6 : 5);
    else {
      const lines: string[] = [];
      for (const line of block.split('\n'))
        if (line.startsWith('data:')) lines.push(line.slice(line[5] === ' ' ? 6 : 5));
      if (lines.length === 0) return ''; // comments, event: or id: only
      data = lines.join('\n');
    }
    if (data === '[DONE]') {
      this.done = true;
      return 'data: [DONE]\n\n';
    }
    if (USAGE_OBJECT.test(data)) {
      const forwarded = this.#usageChunk(data);
      if (forwarded === undefined) return '';
      data = forwarded;
    }
    this.chunks++;
    if (!this.sawToken && TOKEN.test(data)) this.sawToken = true;
    return `data: ${data}\n\n`;
  }

  /** A chunk carrying usage: keep the usage; what to forward of it (undefined: nothing). */
  #usageChunk(data: string): string | undefined {
    let chunk: { usage?: unknown; choices?: unknown[] };
    try {
      chunk = JSON.parse(data);
    } catch {
      return data;
    }
    const usage = toUsage(chunk.usage);
    if (usage) this.usage = usage;
    if (this.#forwardUsage) {
      if (!chunk.choices || chunk.choices.length === 0) this.chunks--; // not a content chunk
      return data;
    }
    if (!chunk.choices || chunk.choices.length === 0) return undefined; // the usage-only last chunk
    chunk.usage = null; // usage riding on a content chunk: keep the content, drop what was not asked for
    return JSON.stringify(chunk);
  }
}

/** The event that ends a stream cut after its first byte: an error the official clients raise, then [DONE]. */
export function streamErrorEvents(message: string): string {
  const error = { message, type: 'server_error', param: null, code: 'upstream_error' };
  return `data: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`;
}
