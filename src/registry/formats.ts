// What a version's weight files hold, read from their headers only (never the whole file).
//
// safetensors: 8 bytes little-endian header length N, then N bytes of JSON
//   {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}, then the data.
// GGUF: read with @huggingface/gguf, which fetches only the ranges it needs.
//
// Decision: a file with a known extension whose header is malformed fails the commit with
// FORMAT_INVALID (422, naming the path). A file named *.safetensors that no loader can open is
// bad input, and saying so at commit time beats a failure at the first training job. Files of
// other extensions are never opened.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { GGMLFileQuantizationType, gguf } from '@huggingface/gguf';
import { AppError } from '../domain/errors.js';

/** The most header JSON a safetensors file may carry: the Rust reference refuses more. */
export const MAX_SAFETENSORS_HEADER = 100_000_000;
const SAMPLE_TENSORS = 20;

/** Bytes per element; dtypes absent here (sub-byte F4/F6, future ones) skip the size check. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

export interface TensorSample {
  name: string;
  dtype: string;
  shape: number[];
}

export interface SafetensorsInfo {
  format: 'safetensors';
  tensors: number;
  parameters: number;
  /** Parameters per dtype, e.g. {BF16: 7241732096} (what the Hub shows as safetensors.parameters). */
  dtypes: Record<string, number>;
  /** The `__metadata__` map ({} without one). */
  metadata: Record<string, string>;
  /** The first tensors in header order. */
  tensorsSample: TensorSample[];
}

export interface GgufInfo {
  format: 'gguf';
  architecture?: string;
  /** general.name */
  name?: string;
  parameters?: number;
  contextLength?: number;
  /** general.file_type by name, e.g. 'Q4_K_M' (or the number when unknown). */
  quantization?: string;
  tensors: number;
}

export type FormatInfo = SafetensorsInfo | GgufInfo;

function invalid(what: string, name: string, reason: string): AppError {
  return new AppError('FORMAT_INVALID', `${name} is not a valid ${what} file: ${reason}`, { path: name, reason });
}

/**
 * Reads a safetensors header from `buf`, which holds the file's first 8 + N bytes (or more).
 * `fileSize` (the whole file's size; default buf.length) bounds the tensors' data offsets.
 */
export function parseSafetensorsHeader(buf: Uint8Array, fileSize = buf.length, name = 'file'): SafetensorsInfo {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8) throw invalid('safetensors', name, 'shorter than the 8-byte header length');
  const n = headerLength(b, fileSize, name);
  if (b.length < 8 + n) throw invalid('safetensors', name, `header truncated (${b.length - 8} of ${n} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  } catch (err) {
    throw invalid('safetensors', name, `header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw invalid('safetensors', name, 'header is not a JSON object');
  }
  return describeTensors(header as Record<string, unknown>, fileSize - 8 - n, name);
}

function headerLength(b: Buffer, fileSize: number, name: string): number {
  const big = b.readBigUInt64LE(0);
  if (big > BigInt(MAX_SAFETENSORS_HEADER)) {
    throw invalid('safetensors', name, `header length ${big} exceeds ${MAX_SAFETENSORS_HEADER} bytes`);
  }
  const n = Number(big);
  if (8 + n > fileSize) throw invalid('safetensors', name, `header length ${n} runs past the end of the file`);
  return n;
}

function describeTensors(header: Record<string, unknown>, dataSize: number, name: string): SafetensorsInfo {
  const metadata = readMetadata(header.__metadata__, name);
  const dtypes: Record<string, number> = {};
  const sample: TensorSample[] = [];
  const ranges: { tensor: string; begin: number; end: number }[] = [];
  let parameters = 0;
  for (const [tensor, raw] of Object.entries(header)) {
    if (tensor === '__metadata__') continue;
    const t = checkTensor(tensor, raw, dataSize, name);
    const count = t.shape.reduce((a, d) => a * d, 1);
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + count;
    parameters += count;
    ranges.push({ tensor, begin: t.begin, end: t.end });
    if (sample.length < SAMPLE_TENSORS) sample.push({ name: tensor, dtype: t.dtype, shape: t.shape });
  }
  // Holes between tensors are tolerated; overlaps mean two tensors share bytes, which no writer does.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    if (cur.begin < prev.end) throw invalid('safetensors', name, `tensors ${prev.tensor} and ${cur.tensor} overlap`);
  }
  return { format: 'safetensors', tensors: ranges.length, parameters, dtypes, metadata, tensorsSample: sample };
}

function readMetadata(raw: unknown, name: string): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid('safetensors', name, '__metadata__ is not an object');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw invalid('safetensors', name, `__metadata__.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

function checkTensor(tensor: string, raw: unknown, dataSize: number, name: string) {
  const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const bad = (why: string) => invalid('safetensors', name, `tensor ${tensor}: ${why}`);
  if (typeof t !== 'object' || t === null) throw bad('not an object');
  if (typeof t.dtype !== 'string' || t.dtype === '') throw bad('dtype is not a string');
  if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw bad('shape is not a list of non-negative integers');
  const off = t.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount)) throw bad('data_offsets is not [begin, end]');
  const [begin, end] = off as number[];
  if (begin > end || end > dataSize) throw bad(`data_offsets [${begin}, ${end}] outside the data (${dataSize} bytes)`);
  const shape = t.shape as number[];
  const width = DTYPE_BYTES[t.dtype];
  const elements = shape.reduce((a, d) => a * d, 1);
  if (!Number.isSafeInteger(elements)) throw bad('shape too large');
  if (width !== undefined && elements * width !== end - begin) {
    throw bad(`${elements} ${t.dtype} elements need ${elements * width} bytes, data_offsets span ${end - begin}`);
  }
  return { dtype: t.dtype, shape, begin, end };
}

/** Reads a safetensors file's header: 8 + N bytes, whatever the file's size. */
export async function readSafetensors(path: string, name = path): Promise<SafetensorsInfo> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    if (bytesRead < 8) throw invalid('safetensors', name, 'shorter than the 8-byte header length');
    const n = headerLength(head, size, name);
    const buf = Buffer.alloc(8 + n);
    head.copy(buf);
    const got = n === 0 ? 0 : (await fh.read(buf, 8, n, 8)).bytesRead;
    if (got < n) throw invalid('safetensors', name, 'header truncated');
    return parseSafetensorsHeader(buf, size, name);
  } finally {
    await fh.close();
  }
}

/**
 * Reads a GGUF file's metadata and tensor infos (the library reads only the ranges it needs): a
 * local file, or, with `rangedFetch`, a source whose byte ranges that function serves (a blob).
 */
export async function readGguf(path: string, name = path, rangedFetch?: typeof fetch): Promise<GgufInfo> {
  let parsed: Awaited<ReturnType<typeof ggufWithCount>>;
  try {
    parsed = await ggufWithCount(path, rangedFetch);
  } catch (err) {
    throw invalid('GGUF', name, (err as Error).message);
  }
  const md = parsed.metadata as Record<string, unknown>;
  const arch = typeof md['general.architecture'] === 'string' ? (md['general.architecture'] as string) : undefined;
  const fileType = md['general.file_type'];
  const info: GgufInfo = { format: 'gguf', tensors: parsed.tensorInfos.length };
  if (arch) info.architecture = arch;
  if (typeof md['general.name'] === 'string') info.name = md['general.name'];
  if (Number.isFinite(parsed.parameterCount)) info.parameters = parsed.parameterCount;
  const ctx = arch ? asNumber(md[`${arch}.context_length`]) : undefined;
  if (ctx !== undefined) info.contextLength = ctx;
  const ft = asNumber(fileType);
  if (ft !== undefined) info.quantization = (GGMLFileQuantizationType as Record<number, string>)[ft] ?? String(ft);
  return info;
}

function ggufWithCount(path: string, rangedFetch?: typeof fetch) {
  return rangedFetch
    ? gguf(path, { fetch: rangedFetch, computeParametersCount: true })
    : gguf(path, { allowLocalFile: true, computeParametersCount: true });
}

function asNumber(x: unknown): number | undefined {
  if (typeof x === 'number' && Number.isFinite(x)) return x;
  if (typeof x === 'bigint') return Number(x);
  return undefined;
}

/**
 * What a file's header says, chosen by the extension of `name` (its path in the repo); undefined
 * for other files, which are not opened. A malformed header of a known format throws
 * FORMAT_INVALID (see the decision at the top); I/O errors propagate as they are.
 */
export async function describeFile(path: string, name: string): Promise<FormatInfo | undefined> {
  switch (extname(name).toLowerCase()) {
    case '.safetensors':
      return readSafetensors(path, name);
    case '.gguf':
      return readGguf(path, name);
    default:
      return undefined;
  }
}

export interface TensorSpec {
  name: string;
  dtype: 'F32' | 'F16';
  shape: number[];
}

const CHUNK = 1 << 20;

/**
 * Writes a valid safetensors file, streaming the data in 1 MiB chunks (a 2 GiB file needs 1 MiB
 * of memory). `fill` 'zero' writes zeros; 'pattern' (default) writes deterministic non-repeating
 * bytes (values are arbitrary floats, NaNs included: fine for tests of transfer and headers).
 * Returns the size and SHA-256 of what was written.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorSpec[],
  opts: { fill?: 'zero' | 'pattern'; metadata?: Record<string, string> } = {},
): Promise<{ size: number; sha256: string }> {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // Pad the JSON with spaces so the data starts 8-byte aligned, as the reference writer does.
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    const write = async (b: Buffer) => {
      hash.update(b);
      await fh.write(b);
    };
    await write(prefix);
    await write(json);
    const chunk = Buffer.alloc(CHUNK);
    for (let done = 0, i = 0; done < offset; i++) {
      const len = Math.min(CHUNK, offset - done);
      if (opts.fill !== 'zero') patternChunk(chunk, i);
      await write(chunk.subarray(0, len));
      done += len;
    }
  } finally {
    await fh.close();
  }
  return { size: 8 + json.length + offset, sha256: hash.digest('hex') };
}

/** Fills `chunk` with bytes that differ per chunk index: xorshift32, about 1 ms per MiB. */
function patternChunk(chunk: Buffer, index: number): void {
  const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length >>> 2);
  let x = (index * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
}
