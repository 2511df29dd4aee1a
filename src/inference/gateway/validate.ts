// Request bodies of the three inference endpoints: the checks OpenAI itself makes (types, required
// fields, no unknown top-level fields), the token estimate the limiter reserves, and the prefix hash
// that prefers a replica whose KV cache already holds the prompt's start.
//
// A hand-written table check rather than compiled ajv: one pass over the body's own keys with a
// type test each, and error messages worded like OpenAI's (`param` names the field). Message
// contents are checked only as far as routing and estimating need; the replica checks the rest.
import { type OpenAIError, invalidRequest } from './errors.js';

export type Endpoint = 'chat.completions' | 'completions' | 'embeddings';

type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'array' | 'object' | 'string|array' | 'any';

/** Optional fields also accept null, as OpenAI's do. */
const COMMON = { model: 'string', user: 'string' } as const;
const SAMPLING = {
  frequency_penalty: 'number',
  presence_penalty: 'number',
  logit_bias: 'object',
  max_tokens: 'integer',
  n: 'integer',
  seed: 'integer',
  stop: 'string|array',
  stream: 'boolean',
  stream_options: 'object',
  temperature: 'number',
  top_p: 'number',
} as const;

const FIELDS: Record<Endpoint, Readonly<Record<string, Kind>>> = {
  'chat.completions': {
    ...COMMON,
    ...SAMPLING,
    messages: 'array',
    audio: 'object',
    function_call: 'any',
    functions: 'array',
    logprobs: 'boolean',
    max_completion_tokens: 'integer',
    metadata: 'object',
    modalities: 'array',
    parallel_tool_calls: 'boolean',
    prediction: 'object',
    prompt_cache_key: 'string',
    reasoning_effort: 'string',
    response_format: 'object',
    safety_identifier: 'string',
    service_tier: 'string',
    store: 'boolean',
    tool_choice: 'any',
    tools: 'array',
    top_logprobs: 'integer',
    verbosity: 'string',
    web_search_options: 'object',
  },
  completions: {
    ...COMMON,
    ...SAMPLING,
    prompt: 'string|array',
    best_of: 'integer',
    echo: 'boolean',
    logprobs: 'integer',
    suffix: 'string',
  },
  embeddings: { ...COMMON, input: 'string|array', dimensions: 'integer', encoding_format: 'string' },
};

const REQUIRED: Record<Endpoint, readonly string[]> = {
  'chat.completions': ['model', 'messages'],
  completions: ['model', 'prompt'],
  embeddings: ['model', 'input'],
};

const KIND_WORDS: Record<Kind, string> = {
  string: 'a string',
  number: 'a decimal',
  integer: 'an integer',
  boolean: 'a boolean',
  array: 'an array',
  object: 'an object',
  'string|array': 'a string or an array',
  any: 'any value',
};

function hasKind(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return Number.isSafeInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'string|array':
      return typeof v === 'string' || Array.isArray(v);
    case 'any':
      return true;
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Parses a body; a malformed one (or anything but a JSON object) is a 400. */
export function parseBody(
  raw: Buffer,
): { readonly body: Record<string, unknown> } | { readonly body?: undefined; readonly error: OpenAIError } {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    const message = 'We could not parse the JSON body of your request. The body must be a JSON object.';
    return { error: invalidRequest(message, null, 'invalid_json') };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { error: invalidRequest('The body of your request must be a JSON object.', null, 'invalid_json') };
  return { body: v as Record<string, unknown> };
}

export function validateBody(endpoint: Endpoint, body: Record<string, unknown>): OpenAIError | undefined {
  const fields = FIELDS[endpoint];
  for (const name in body) {
    const kind = fields[name];
    if (kind === undefined) return invalidRequest(`Unrecognized request argument supplied: ${name}`, name, null);
    const v = body[name];
    if (v === null && name !== 'model' && !REQUIRED[endpoint].includes(name)) continue;
    if (!hasKind(v, kind))
      return invalidRequest(
        `Invalid type for '${name}': expected ${KIND_WORDS[kind]}, but got ${typeName(v)} instead.`,
        name,
        'invalid_type',
      );
  }
  for (const name of REQUIRED[endpoint])
    if (body[name] === undefined) return invalidRequest(`Missing required parameter: '${name}'.`, name, null);
  for (const name of ['max_tokens', 'max_completion_tokens', 'n'] as const) {
    const v = body[name];
    if (typeof v === 'number' && v < 1)
      return invalidRequest(`Invalid '${name}': integer below minimum value 1.`, name, 'integer_below_min_value');
  }
  if (endpoint === 'chat.completions') {
    const messages = body.messages as unknown[];
    if (messages.length === 0) return invalidRequest("Invalid 'messages': empty array.", 'messages', 'empty_array');
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as { role?: unknown; content?: unknown } | null;
      if (typeof m !== 'object' || m === null || typeof m.role !== 'string')
        return invalidRequest(`Invalid 'messages[${i}]': expected an object with a string 'role'.`, `messages[${i}]`);
      if (m.content !== undefined && m.content !== null && typeof m.content !== 'string' && !Array.isArray(m.content))
        return invalidRequest(
          `Invalid type for 'messages[${i}].content': expected a string or an array.`,
          `messages[${i}].content`,
          'invalid_type',
        );
    }
  }
  return undefined;
}

/** The completion length asked for (max_completion_tokens wins, as at OpenAI), or undefined. */
export function requestedMaxTokens(body: Record<string, unknown>): number | undefined {
  const v = body.max_completion_tokens ?? body.max_tokens;
  return typeof v === 'number' ? v : undefined;
}

/** Characters of text in a chat message's content (strings and text parts; other parts count nothing). */
function contentChars(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content) if (typeof part?.text === 'string') n += part.text.length;
  return n;
}

/** A prompt or embeddings input: text counts 4 characters a token, token arrays count as they are. */
function inputTokens(input: unknown): number {
  if (typeof input === 'string') return Math.ceil(input.length / 4);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const x of input) n += typeof x === 'number' ? 1 : inputTokens(x);
  return n;
}

/** Tokens a chat message costs beyond its text (role and separators), as in OpenAI's own counting. */
const PER_MESSAGE_TOKENS = 4;

/**
 * The tokens to reserve before the call: the prompt estimated at 4 characters a token plus
 * PER_MESSAGE_TOKENS per message, and the completion at its requested maximum (× n), or
 * `defaultMaxTokens` when none is asked for, never beyond the context. Reconciled with the real
 * usage once the call ends.
 */
export function estimateTokens(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  contextSize: number,
  defaultMaxTokens: number,
): { prompt: number; completion: number } {
  let prompt: number;
  if (endpoint === 'chat.completions') {
    const messages = body.messages as { content?: unknown }[];
    let chars = 0;
    for (const m of messages) chars += contentChars(m.content);
    prompt = Math.ceil(chars / 4) + PER_MESSAGE_TOKENS * messages.length;
  } else prompt = Math.max(1, inputTokens(endpoint === 'completions' ? body.prompt : body.input));
  if (endpoint === 'embeddings') return { prompt, completion: 0 };
  const n = typeof body.n === 'number' ? body.n : 1;
  const max = requestedMaxTokens(body) ?? Math.max(1, Math.min(defaultMaxTokens, contextSize - prompt));
  return { prompt, completion: max * n };
}

/** How much of the prompt's start the affinity hash reads: enough to tell system prompts apart. */
export const AFFINITY_PREFIX_CHARS = 512;

/** FNV-1a over a string's UTF-16 units, from `h`, at most `limit` units; no allocation. */
function fnv1a(s: string, h: number, limit: number): number {
  const end = Math.min(s.length, limit);
  for (let i = 0; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const FNV_OFFSET = 0x811c9dc5;

const LEADING_ROLES = new Set(['system', 'developer']);

function messageText(c: unknown): string {
  if (typeof c === 'string') return c;
  return Array.isArray(c) && typeof c[0]?.text === 'string' ? c[0].text : '';
}

/**
 * The affinity key of a call: a session header when the client sends one, else a hash of the
 * prompt's first AFFINITY_PREFIX_CHARS characters — for chat, of its leading system (or developer)
 * messages, or of its first message when there is none. So calls that share a system prompt, and
 * the turns of one conversation, share a key; what follows the prefix does not move them. 0 means
 * none (embeddings: no KV cache to reuse).
 */
export function affinityKey(endpoint: Endpoint, body: Record<string, unknown>, session: string | undefined): number {
  let h: number;
  if (session) h = fnv1a(session, FNV_OFFSET, 256);
  else if (endpoint === 'chat.completions') {
    const messages = body.messages as { role: string; content?: unknown }[];
    h = FNV_OFFSET;
    let left = AFFINITY_PREFIX_CHARS;
    for (let i = 0; i < messages.length && left > 0; i++) {
      const m = messages[i];
      if (i > 0 && !LEADING_ROLES.has(m.role)) break;
      const text = messageText(m.content);
      h = fnv1a(text, h, left);
      left -= text.length;
      if (!LEADING_ROLES.has(m.role)) break; // no system prompt: the first message alone
      h = Math.imul(h ^ 0x1e, 0x01000193) >>> 0; // a separator, so ["ab","c"] and ["a","bc"] differ
    }
  } else if (endpoint === 'completions') {
    const p = body.prompt;
    const text = typeof p === 'string' ? p : Array.isArray(p) && typeof p[0] === 'string' ? p[0] : '';
    if (text === '') return 0;
    h = fnv1a(text, FNV_OFFSET, AFFINITY_PREFIX_CHARS);
  } else return 0;
  return h === 0 ? 1 : h;
}
