// A tiny llama-architecture GGUF with seeded random weights: a real model as far as llama.cpp is
// concerned (it loads, tokenizes, formats chats and runs forward passes), about 0.5 MB, written in
// milliseconds. Tests and dev setups use it where a downloaded model would be too big or offline.
// Its text is noise, but it is deterministic per seed and exercises the whole serving path.
//
// GGUF v3 layout: magic "GGUF", version, tensor count, KV count, the KVs (typed metadata), the
// tensor infos (name, dims with the fastest-varying first, type, offset into the data), then the
// tensor data, each tensor aligned to `general.alignment` bytes.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { seededRandom } from '../../domain/random.js';

export interface TinyModelOptions {
  /** Weights are drawn from this seed (default 1): the same seed writes the same bytes. */
  seed?: number;
  /** `llama.context_length` (default 2048). */
  contextLength?: number;
  /** `general.name` (default "fabrik-tiny"). */
  name?: string;
}

export interface TinyModelInfo {
  path: string;
  bytes: number;
  sha256: string;
  tensors: number;
  parameters: number;
  vocabSize: number;
  contextLength: number;
}

// Small enough to be instant on two CPU cores, big enough to have grouped-query attention,
// several heads and more than one block, so the shapes llama.cpp checks are all exercised.
const EMBD = 64;
const HEADS = 4;
const HEADS_KV = 2;
const HEAD_DIM = EMBD / HEADS;
const BLOCKS = 2;
const FFN = 128;
const ALIGN = 32;

export const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// llama.cpp token types.
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

interface Vocab {
  tokens: string[];
  scores: number[];
  types: number[];
}

/**
 * SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens (byte fallback makes any
 * text tokenizable), printable ASCII, "▁"-prefixed letters and a few merges, then the ChatML
 * control tokens. Scores fall with the id, as in real SPM vocabularies (higher merges first).
 */
function vocabulary(): Vocab {
  const v: Vocab = { tokens: [], scores: [], types: [] };
  const add = (t: string, type: number, score = 0) => {
    v.tokens.push(t);
    v.types.push(type);
    v.scores.push(score);
  };
  add('<unk>', UNKNOWN);
  add('<s>', CONTROL);
  add('</s>', CONTROL);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, BYTE);
  const pieces = ['▁'];
  for (let c = 0x21; c < 0x7f; c++) pieces.push(String.fromCharCode(c));
  for (let c = 0x61; c <= 0x7a; c++) pieces.push(`▁${String.fromCharCode(c)}`);
  pieces.push('th', 'he', 'in', 'er', 'an', 're', 'on', 'll', 'or', 'lo', '▁th', '▁the', '▁he', '▁hel', '▁hell');
  pieces.push('▁hello', '▁wo', '▁wor', '▁worl', '▁world', '▁is', '▁it', '▁to', '▁of', '▁and', '▁in', '▁on');
  for (const [i, p] of pieces.entries()) add(p, NORMAL, -i);
  add('<|im_start|>', CONTROL);
  add('<|im_end|>', CONTROL);
  return v;
}

type Value =
  | { t: 'u32'; v: number }
  | { t: 'i32'; v: number }
  | { t: 'f32'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'str'; v: string }
  | { t: 'arr'; of: 'str'; v: string[] }
  | { t: 'arr'; of: 'f32' | 'i32'; v: number[] };

const TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9 } as const;

/** Appends little-endian GGUF values to a growing list of buffers. */
class Writer {
  readonly parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(t: 'u32' | 'i32' | 'f32' | 'bool' | 'str', v: number | boolean | string): void {
    if (t === 'str') this.str(v as string);
    else if (t === 'bool') this.push(Buffer.from([v ? 1 : 0]));
    else {
      const b = Buffer.alloc(4);
      if (t === 'u32') b.writeUInt32LE(v as number);
      else if (t === 'i32') b.writeInt32LE(v as number);
      else b.writeFloatLE(v as number);
      this.push(b);
    }
  }
  kv(key: string, value: Value): void {
    this.str(key);
    this.u32(TYPE[value.t]);
    if (value.t !== 'arr') {
      this.scalar(value.t, value.v);
      return;
    }
    this.u32(TYPE[value.of]);
    this.u64(value.v.length);
    for (const x of value.v) this.scalar(value.of, x);
  }
}

interface Tensor {
  name: string;
  /** GGUF order: ne[0] (the contiguous one) first. */
  dims: number[];
  /** Uniform in [-scale, scale]; 'ones' for norm weights. */
  init: number | 'ones';
  /** Rows (of ne[0] values) forced to zero. */
  zeroRows?: ReadonlySet<number>;
}

function tensorsFor(vocab: Vocab): Tensor[] {
  const n = vocab.tokens.length;
  // Rows of output.weight that are zero give logit 0, which loses against the spread of the others
  // (about ±3): the model then practically never emits control tokens (so it runs to max_tokens,
  // which tests want) nor bytes that are not printable ASCII (so its text is valid UTF-8).
  const quiet = new Set<number>();
  vocab.types.forEach((type, id) => {
    if (type === CONTROL || type === UNKNOWN) quiet.add(id);
    const byte = type === BYTE ? Number.parseInt(vocab.tokens[id].slice(3, 5), 16) : -1;
    if (type === BYTE && (byte >= 0x7f || (byte < 0x20 && byte !== 0x0a))) quiet.add(id);
  });
  const proj = 1 / Math.sqrt(EMBD);
  const list: Tensor[] = [
    { name: 'token_embd.weight', dims: [EMBD, n], init: 1 },
    { name: 'output_norm.weight', dims: [EMBD], init: 'ones' },
    { name: 'output.weight', dims: [EMBD, n], init: 0.7, zeroRows: quiet },
  ];
  for (let i = 0; i < BLOCKS; i++) {
    const b = `blk.${i}`;
    list.push(
      { name: `${b}.attn_norm.weight`, dims: [EMBD], init: 'ones' },
      { name: `${b}.attn_q.weight`, dims: [EMBD, HEADS * HEAD_DIM], init: proj },
      { name: `${b}.attn_k.weight`, dims: [EMBD, HEADS_KV * HEAD_DIM], init: proj },
      { name: `${b}.attn_v.weight`, dims: [EMBD, HEADS_KV * HEAD_DIM], init: proj },
      { name: `${b}.attn_output.weight`, dims: [HEADS * HEAD_DIM, EMBD], init: proj },
      { name: `${b}.ffn_norm.weight`, dims: [EMBD], init: 'ones' },
      { name: `${b}.ffn_gate.weight`, dims: [EMBD, FFN], init: proj },
      { name: `${b}.ffn_up.weight`, dims: [EMBD, FFN], init: proj },
      { name: `${b}.ffn_down.weight`, dims: [FFN, EMBD], init: 1 / Math.sqrt(FFN) },
    );
  }
  return list;
}

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Writes the model to `path` (f32 tensors, GGUF v3). Deterministic: same options, same bytes. */
export async function writeTinyModel(path: string, opts: TinyModelOptions = {}): Promise<TinyModelInfo> {
  const vocab = vocabulary();
  const contextLength = opts.contextLength ?? 2048;
  const tensors = tensorsFor(vocab);
  const { tokens } = vocab;
  const id = (t: string) => tokens.indexOf(t);

  const meta: [string, Value][] = [
    ['general.architecture', { t: 'str', v: 'llama' }],
    ['general.name', { t: 'str', v: opts.name ?? 'fabrik-tiny' }],
    ['general.file_type', { t: 'u32', v: 0 }], // ALL_F32
    ['general.alignment', { t: 'u32', v: ALIGN }],
    ['llama.context_length', { t: 'u32', v: contextLength }],
    ['llama.embedding_length', { t: 'u32', v: EMBD }],
    ['llama.block_count', { t: 'u32', v: BLOCKS }],
    ['llama.feed_forward_length', { t: 'u32', v: FFN }],
    ['llama.attention.head_count', { t: 'u32', v: HEADS }],
    ['llama.attention.head_count_kv', { t: 'u32', v: HEADS_KV }],
    ['llama.rope.dimension_count', { t: 'u32', v: HEAD_DIM }],
    ['llama.rope.freq_base', { t: 'f32', v: 10000 }],
    ['llama.attention.layer_norm_rms_epsilon', { t: 'f32', v: 1e-5 }],
    ['llama.vocab_size', { t: 'u32', v: tokens.length }],
    ['tokenizer.ggml.model', { t: 'str', v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: 'arr', of: 'str', v: tokens }],
    ['tokenizer.ggml.scores', { t: 'arr', of: 'f32', v: vocab.scores }],
    ['tokenizer.ggml.token_type', { t: 'arr', of: 'i32', v: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', { t: 'u32', v: id('<unk>') }],
    ['tokenizer.ggml.bos_token_id', { t: 'u32', v: id('<s>') }],
    ['tokenizer.ggml.eos_token_id', { t: 'u32', v: id('</s>') }],
    // The end of a ChatML turn ends generation too (llama.cpp treats EOT as end-of-generation).
    ['tokenizer.ggml.eot_token_id', { t: 'u32', v: id('<|im_end|>') }],
    ['tokenizer.ggml.add_bos_token', { t: 'bool', v: true }],
    ['tokenizer.ggml.add_eos_token', { t: 'bool', v: false }],
    // No implicit leading space: ChatML turns then tokenize exactly as the template writes them.
    ['tokenizer.ggml.add_space_prefix', { t: 'bool', v: false }],
    ['tokenizer.chat_template', { t: 'str', v: TINY_CHAT_TEMPLATE }],
  ];

  const w = new Writer();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) w.kv(k, v);

  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(0); // GGML_TYPE_F32
    w.u64(offset);
    offsets.push(offset);
    offset = align(offset + count(t) * 4);
  }
  const dataStart = align(w.length);
  w.push(Buffer.alloc(dataStart - w.length));

  const data = Buffer.alloc(offset);
  const floats = new Float32Array(data.buffer, data.byteOffset, offset / 4);
  const rand = seededRandom(opts.seed ?? 1);
  let parameters = 0;
  tensors.forEach((t, i) => {
    const start = offsets[i] / 4;
    const n = count(t);
    parameters += n;
    for (let j = 0; j < n; j++) {
      const row = Math.floor(j / t.dims[0]);
      // Drawn even for zeroed rows, so the other values do not shift when the vocabulary grows.
      const r = rand();
      floats[start + j] = t.init === 'ones' ? 1 : t.zeroRows?.has(row) ? 0 : (r * 2 - 1) * t.init;
    }
  });
  w.push(data);

  const file = Buffer.concat(w.parts, w.length);
  await writeFile(path, file);
  return {
    path,
    bytes: file.length,
    sha256: createHash('sha256').update(file).digest('hex'),
    tensors: tensors.length,
    parameters,
    vocabSize: tokens.length,
    contextLength,
  };
}

function count(t: Tensor): number {
  return t.dims.reduce((a, d) => a * d, 1);
}
