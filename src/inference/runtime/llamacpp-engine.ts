// The llamacpp runtime's engine: one GGUF model in node-llama-cpp, one context with `parallel`
// sequences (slots) so that concurrent requests are evaluated in the same batches, and a bounded
// queue in front of the slots. The HTTP layer (./replica-server.ts) only parses and formats;
// everything about tokens (counting, bounds, stop conditions, streaming text) is decided here,
// from the engine's own tokenizer, so usage numbers are the ones the model actually saw.
import { existsSync } from 'node:fs';
import {
  type ChatHistoryItem,
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
  type Token,
} from 'node-llama-cpp';

export interface EngineOptions {
  modelPath: string;
  /** CPU threads for evaluation; always explicit (node-llama-cpp's default is slow on small machines). */
  threads: number;
  /** Tokens per slot; default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Slots evaluated concurrently (default 2). */
  parallel?: number;
  /** Requests that may wait for a slot (default 8 per slot); beyond it, 503. */
  maxQueue?: number;
  /** Default: see detectGpu(). */
  gpu?: 'auto' | false;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type Prompt = { messages: readonly ChatMessage[] } | { text: string };

export interface Sampling {
  /** Undefined: min(256, what is left of the context). */
  maxTokens?: number;
  /** OpenAI's default is 1; 0 is greedy. */
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: readonly string[];
}

/** A request checked against the context and ready to run: the prompt is tokenized once, here. */
export interface Prepared {
  readonly tokens: readonly Token[];
  readonly maxTokens: number;
  readonly sampling: Sampling;
  readonly stopStrings: readonly string[];
  readonly stopTokens: ReadonlySet<Token>;
}

export interface Completion {
  text: string;
  finishReason: 'stop' | 'length';
  /** The signal fired: the text is partial and nobody is waiting for it. */
  aborted: boolean;
  promptTokens: number;
  /** Every token sampled, the end-of-generation token included (as llama.cpp's server counts). */
  completionTokens: number;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  onStart?: () => void;
  onText?: (text: string) => void;
}

/** Failures meant for the client, in OpenAI's terms; the server turns them into the error body. */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/**
 * CUDA only where a GPU is really given to this process: the scheduler sets CUDA_VISIBLE_DEVICES
 * for GPU workloads, and without a device node 'auto' would only waste start-up time probing.
 */
export function detectGpu(env: NodeJS.ProcessEnv = process.env): 'auto' | false {
  const visible = (env.CUDA_VISIBLE_DEVICES ?? '').trim();
  return visible !== '' && visible !== '-1' && existsSync('/dev/nvidia0') ? 'auto' : false;
}

const DEFAULT_MAX_TOKENS = 256;

const shuttingDown = () =>
  new EngineError(503, 'the replica is shutting down', 'shutting_down', null, 'server_error', 1);
const tooLong = (message: string, param: string) =>
  new EngineError(400, `This model's maximum context length is ${message}`, 'context_length_exceeded', param);

export class LlamaEngine {
  private readonly free: LlamaContextSequence[];
  private readonly waiting: { resolve: (s: LlamaContextSequence) => void; reject: (e: unknown) => void }[] = [];
  private readonly chatWrapper: ChatWrapper;
  private embedding?: Promise<LlamaEmbeddingContext>;
  private embedLock: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Tokens per slot: prompt plus completion must fit in it. */
  readonly contextSize: number;
  readonly slots: number;
  /** 'cuda', 'vulkan', 'metal' or false (CPU). */
  readonly gpu: string | false;

  private constructor(
    private readonly llama: Llama,
    readonly model: LlamaModel,
    context: LlamaContext,
    private readonly opts: EngineOptions & { maxQueue: number },
    /** Milliseconds from start to a usable context. */
    readonly loadMs: number,
  ) {
    this.contextSize = context.contextSize;
    this.slots = context.totalSequences;
    this.gpu = llama.gpu;
    this.free = Array.from({ length: this.slots }, () => context.getSequence());
    // The model's own chat template (node-llama-cpp may map it to an equivalent built-in wrapper);
    // without one, node-llama-cpp guesses from the architecture and name, else its general format.
    this.chatWrapper = resolveChatWrapper(model);
  }

  get chatFormat(): string {
    return this.chatWrapper.wrapperName;
  }

  static async load(opts: EngineOptions): Promise<LlamaEngine> {
    const started = performance.now();
    const llama = await getLlama({
      gpu: opts.gpu ?? detectGpu(),
      // Never download or compile: replicas run with a read-only node_modules and no network.
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      maxThreads: opts.threads,
    });
    try {
      const model = await llama.loadModel({ modelPath: opts.modelPath });
      const context = await model.createContext({
        contextSize: opts.contextSize ?? Math.min(model.trainContextSize, 4096),
        sequences: opts.parallel ?? 2,
        threads: opts.threads,
      });
      const maxQueue = opts.maxQueue ?? 8 * context.totalSequences;
      return new LlamaEngine(llama, model, context, { ...opts, maxQueue }, Math.round(performance.now() - started));
    } catch (err) {
      await llama.dispose();
      throw err;
    }
  }

  load(): { inflight: number; queued: number; slots: number } {
    return { inflight: this.slots - this.free.length, queued: this.waiting.length, slots: this.slots };
  }

  /** Tokenizes and checks the bounds; throws EngineError(400) for what cannot fit. */
  prepare(prompt: Prompt, sampling: Sampling): Prepared {
    const { tokens, stopStrings, stopTokens } =
      'messages' in prompt ? this.chatTokens(prompt.messages) : this.textTokens(prompt.text);
    const ctx = this.contextSize;
    const param = 'messages' in prompt ? 'messages' : 'prompt';
    const n = tokens.length;
    if (n >= ctx)
      throw tooLong(
        `${ctx} tokens. However, your ${param} resulted in ${n} tokens. Please reduce the length of the ${param}.`,
        param,
      );
    const left = ctx - n;
    const asked = sampling.maxTokens;
    if (asked !== undefined && asked > left)
      throw tooLong(
        `${ctx} tokens. However, you requested ${n + asked} tokens (${n} in the ${param}, ${asked} in the completion). Please reduce the length of the ${param} or completion.`,
        'max_tokens',
      );
    const maxTokens = sampling.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, left);
    return { tokens, maxTokens, sampling, stopStrings: [...stopStrings, ...(sampling.stop ?? [])], stopTokens };
  }

  private textTokens(text: string) {
    const t = this.model.tokens;
    const bos = t.shouldPrependBosToken && t.bos !== null ? [t.bos] : [];
    return { tokens: [...bos, ...this.model.tokenize(text, false)], stopStrings: [], stopTokens: new Set<Token>() };
  }

  private chatTokens(messages: readonly ChatMessage[]) {
    const history: ChatHistoryItem[] = messages.map((m) =>
      m.role === 'assistant' ? { type: 'model', response: [m.content] } : { type: m.role, text: m.content },
    );
    // An empty model turn at the end makes the template add the generation prompt.
    history.push({ type: 'model', response: [] });
    const state = this.chatWrapper.generateContextState({ chatHistory: history });
    // Message text is plain text (special-token text in it stays text); only the template's own
    // markup becomes control tokens.
    const tokens = state.contextText.tokenize(this.model.tokenizer);
    // The template's end-of-turn markers: plain text ones are matched in the output text, a single
    // special token by id (end-of-generation tokens stop anyway).
    const stopStrings: string[] = [];
    const stopTokens = new Set<Token>();
    for (const trigger of state.stopGenerationTriggers) {
      if (trigger.values.every((v) => typeof v === 'string')) stopStrings.push(trigger.values.join(''));
      else {
        const ids = trigger.tokenize(this.model.tokenizer, 'trimLeadingSpace');
        if (ids.length === 1) stopTokens.add(ids[0]);
      }
    }
    return { tokens, stopStrings, stopTokens };
  }

  /**
   * Runs a prepared request on a slot (waiting for one if all are busy). `onText` gets the text as
   * it is generated, never split inside a UTF-8 character nor inside a stop string; `onStart` once
   * a slot is taken (a full queue rejects before it). When `signal` fires, generation stops at the
   * next token and the slot is freed.
   */
  async generate(p: Prepared, opts: GenerateOptions = {}): Promise<Completion> {
    const sequence = await this.acquire(opts.signal);
    try {
      opts.onStart?.();
      return await this.run(sequence, p, opts);
    } finally {
      this.release(sequence);
    }
  }

  private async run(seq: LlamaContextSequence, p: Prepared, { signal, onText }: GenerateOptions): Promise<Completion> {
    const model = this.model;
    const result: Completion = {
      text: '',
      finishReason: 'length',
      aborted: false,
      promptTokens: p.tokens.length,
      completionTokens: 0,
    };
    const emit = (text: string) => {
      if (text === '') return;
      result.text += text;
      onText?.(text);
    };
    // Keep what the slot already holds of this prompt (a chat's earlier turns): only the rest is
    // evaluated. At least one token must be evaluated to sample the next one.
    const input = [...p.tokens];
    await seq.adaptStateToTokens(input.slice(0, -1), false);
    input.splice(0, Math.min(seq.nextTokenIndex, input.length - 1));

    const stops = new StopScanner(p.stopStrings);
    const emitted: Token[] = [];
    let pending: Token[] = [];
    let hit = false;
    const decode = () => model.detokenize(pending, false, emitted.slice(-16));
    // Passes decoded text through the stop scanner; true when a stop string was found.
    const take = (piece: string) => {
      emitted.push(...pending);
      pending = [];
      const r = stops.push(piece);
      emit(r.text);
      hit = r.hit;
      return hit;
    };
    const s = p.sampling;
    const iterator = seq.evaluate(input, {
      temperature: s.temperature ?? 1,
      topP: s.topP ?? 1,
      topK: 0,
      seed: s.seed,
      yieldEogToken: true,
    });
    for await (const token of iterator) {
      if (signal?.aborted) {
        result.aborted = true;
        break;
      }
      result.completionTokens++;
      if (model.isEogToken(token) || p.stopTokens.has(token)) {
        result.finishReason = 'stop';
        break;
      }
      pending.push(token);
      const piece = decode();
      // A character split over byte tokens decodes to U+FFFD until its last byte arrives.
      if (piece.endsWith('\uFFFD') && pending.length < 4 && result.completionTokens < p.maxTokens) continue;
      if (take(piece)) {
        result.finishReason = 'stop';
        break;
      }
      if (result.completionTokens >= p.maxTokens) break;
    }
    if (!result.aborted && !hit) {
      if (pending.length > 0) take(decode());
      emit(stops.flush());
    }
    return result;
  }

  private acquire(signal?: AbortSignal): Promise<LlamaContextSequence> {
    if (this.closed) return Promise.reject(shuttingDown());
    const seq = this.free.pop();
    if (seq) return Promise.resolve(seq);
    if (this.waiting.length >= this.opts.maxQueue) {
      const message = `all ${this.slots} slots are busy and the queue is full`;
      return Promise.reject(new EngineError(503, message, 'overloaded', null, 'server_error', 1));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (s: LlamaContextSequence) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private release(seq: LlamaContextSequence): void {
    const next = this.waiting.shift();
    if (next) next.resolve(seq);
    else this.free.push(seq);
  }

  /**
   * One vector per input, from a separate embedding context created on first use (most replicas
   * never embed, and it costs a second KV cache). One input at a time.
   */
  async embed(inputs: readonly string[]): Promise<{ vectors: number[][]; promptTokens: number }> {
    this.embedding ??= this.model.createEmbeddingContext({ contextSize: this.contextSize, threads: this.opts.threads });
    const ctx = await this.embedding.catch((err) => {
      const message = `this model does not support embeddings: ${(err as Error).message}`;
      throw new EngineError(400, message, 'model_not_supported', 'model');
    });
    const run = async () => {
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const [i, text] of inputs.entries()) {
        const t = this.model.tokens;
        const tokens = this.model.tokenize(text, false);
        // The same BOS/EOS the embedding context adds, so that the count is what it evaluates.
        if (t.shouldPrependBosToken && t.bos !== null) tokens.unshift(t.bos);
        if (t.shouldAppendEosToken && t.eos !== null) tokens.push(t.eos);
        if (tokens.length >= this.contextSize)
          throw tooLong(
            `${this.contextSize} tokens. However, input[${i}] resulted in ${tokens.length} tokens.`,
            'input',
          );
        promptTokens += tokens.length;
        vectors.push([...(await ctx.getEmbeddingFor(tokens)).vector]);
      }
      return { vectors, promptTokens };
    };
    const done = this.embedLock.then(run, run);
    this.embedLock = done.catch(() => undefined);
    return done;
  }

  /** Refuses new requests; waiting ones fail with 503, running ones are left to finish. */
  stopAccepting(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(shuttingDown());
  }

  async close(): Promise<void> {
    this.stopAccepting();
    await this.llama.dispose();
  }
}

/**
 * Finds stop strings in streamed text. Text that could be the start of a stop string is held back
 * until the next piece shows whether it is one, so a stop string never reaches the client.
 */
export class StopScanner {
  private held = '';
  constructor(private readonly stops: readonly string[]) {}

  push(piece: string): { text: string; hit: boolean } {
    const buf = this.held + piece;
    let at = -1;
    for (const s of this.stops) {
      const i = s === '' ? -1 : buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.held = '';
      return { text: buf.slice(0, at), hit: true };
    }
    let keep = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, buf.length); n > keep; n--)
        if (buf.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), hit: false };
  }

  /** What is still held back, once generation ended without a stop string. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }
}
