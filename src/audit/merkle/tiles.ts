// The C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles): how the log's hashes and entries are
// served as static, immutable files. Tiles have height 8, so a full tile holds 256 hashes, and a
// tile at tile level L holds consecutive complete nodes of tree level 8·L. The last tile of a level
// may be partial (`.p/<W>`, 1 ≤ W < 256 hashes); partial tiles are replaced by fuller ones as the
// tree grows, while full tiles never change.
//
// Paths are relative to the log's prefix: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`.
import { HASH_SIZE } from './hash.js';
import type { NodeId } from './tree.js';

/** Tree levels per tile level. */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile, and entries in a full entry bundle. */
export const TILE_WIDTH = 256;
/** Tile levels are 0..63 (C2SP). */
const MAX_TILE_LEVEL = 63;

/** A path parsed by parseTilePath; `width` is TILE_WIDTH for a full tile. */
export type TileRef =
  | { kind: 'tile'; level: number; index: number; width: number }
  | { kind: 'entries'; index: number; width: number };

/** `tile/<L>/<N>[.p/<W>]`: the tile of tree level 8·L holding nodes index·256 … +width−1. */
export function tilePath(level: number, index: number, width: number = TILE_WIDTH): string {
  if (!Number.isInteger(level) || level < 0 || level > MAX_TILE_LEVEL)
    throw new RangeError(`tile level must be an integer in 0..${MAX_TILE_LEVEL}, not ${level}`);
  return `tile/${level}/${encodeIndex(index)}${widthSuffix(width)}`;
}

/** `tile/entries/<N>[.p/<W>]`: the bundle of entries index·256 … +width−1. */
export function entriesPath(index: number, width: number = TILE_WIDTH): string {
  return `tile/entries/${encodeIndex(index)}${widthSuffix(width)}`;
}

/**
 * The inverse of tilePath/entriesPath. Strict: only the canonical spelling of a path is accepted
 * (no leading zeros in L or W, no needless `x000/` groups), anything else gives undefined, so that
 * one tile is never served under two names.
 */
export function parseTilePath(path: string): TileRef | undefined {
  if (typeof path !== 'string') return undefined;
  const m = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(path);
  if (!m) return undefined;
  const [, levelText, indexText, widthText] = m;
  const groups = indexText.split('/');
  if (groups.length > 1 && groups[0] === 'x000') return undefined;
  const index = Number(groups.map((g) => g.replace('x', '')).join(''));
  if (!Number.isSafeInteger(index)) return undefined;
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  if (widthText !== undefined && width >= TILE_WIDTH) return undefined; // a full tile has no .p/
  if (levelText === 'entries') return { kind: 'entries', index, width };
  const level = Number(levelText);
  if (level > MAX_TILE_LEVEL) return undefined;
  return { kind: 'tile', level, index, width };
}

/** The complete nodes whose hashes tile (level, index) of `width` hashes concatenates, in order. */
export function tileNodeIds(level: number, index: number, width: number = TILE_WIDTH): NodeId[] {
  tilePath(level, index, width); // validates the arguments
  return Array.from({ length: width }, (_, i) => ({ level: level * TILE_HEIGHT, index: index * TILE_WIDTH + i }));
}

/** A tile's bytes: its hashes, concatenated. */
export function encodeTile(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length < 1 || hashes.length > TILE_WIDTH)
    throw new RangeError(`a tile holds 1..${TILE_WIDTH} hashes, not ${hashes.length}`);
  if (hashes.some((h) => h.length !== HASH_SIZE)) throw new RangeError(`tile hashes must be ${HASH_SIZE} bytes`);
  return Buffer.concat(hashes);
}

/** The hashes of a tile's bytes; throws RangeError if it is not a whole number of 1..256 hashes. */
export function decodeTile(data: Uint8Array): Buffer[] {
  if (data.length === 0 || data.length % HASH_SIZE !== 0 || data.length > TILE_WIDTH * HASH_SIZE)
    throw new RangeError(`a tile of ${data.length} bytes is not 1..${TILE_WIDTH} hashes of ${HASH_SIZE} bytes`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  return Array.from({ length: data.length / HASH_SIZE }, (_, i) => buf.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
}

/** An entry bundle: each entry as a big-endian uint16 length, then its bytes (C2SP). */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Buffer {
  if (entries.length > TILE_WIDTH) throw new RangeError(`an entry bundle holds at most ${TILE_WIDTH} entries`);
  const parts: Uint8Array[] = [];
  for (const [i, e] of entries.entries()) {
    if (e.length > 0xffff) throw new RangeError(`entry #${i} is ${e.length} bytes; a bundle entry is at most 65535`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(e.length);
    parts.push(len, e);
  }
  return Buffer.concat(parts);
}

/** The entries of a bundle; throws RangeError on a truncated bundle or one of over 256 entries. */
export function decodeEntryBundle(data: Uint8Array): Buffer[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const entries: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 2 > buf.length) throw new RangeError(`entry bundle truncated in the length of entry #${entries.length}`);
    const len = buf.readUInt16BE(at);
    if (at + 2 + len > buf.length) throw new RangeError(`entry bundle truncated in entry #${entries.length}`);
    entries.push(buf.subarray(at + 2, at + 2 + len));
    at += 2 + len;
    if (entries.length > TILE_WIDTH) throw new RangeError(`an entry bundle holds at most ${TILE_WIDTH} entries`);
  }
  return entries;
}

/** N the C2SP way: groups of three digits, all but the last prefixed with x (1234067 → x001/x234/067). */
function encodeIndex(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0)
    throw new RangeError(`tile index must be a non-negative safe integer, not ${index}`);
  let digits = String(index);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups = digits.match(/.{3}/g)!;
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

function widthSuffix(width: number): string {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH)
    throw new RangeError(`tile width must be an integer in 1..${TILE_WIDTH}, not ${width}`);
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}
