// C2SP tlog-tiles paths (the spec's own examples), strict parsing, tile contents and the entry
// bundle encoding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeEntryBundle,
  decodeTile,
  encodeEntryBundle,
  encodeTile,
  entriesPath,
  parseTilePath,
  tileNodeIds,
  tilePath,
} from './tiles.js';

describe('tile paths', () => {
  it('writes N in groups of three digits, all but the last prefixed with x', () => {
    assert.equal(tilePath(1, 1234067, 8), 'tile/1/x001/x234/067.p/8'); // the C2SP example
    assert.equal(tilePath(0, 0), 'tile/0/000');
    assert.equal(tilePath(0, 7), 'tile/0/007');
    assert.equal(tilePath(2, 999), 'tile/2/999');
    assert.equal(tilePath(2, 1000), 'tile/2/x001/000');
    assert.equal(tilePath(3, 1234067), 'tile/3/x001/x234/067');
    assert.equal(tilePath(0, 5, 256), 'tile/0/005', 'a full tile has no .p suffix');
    assert.equal(tilePath(0, 5, 255), 'tile/0/005.p/255');
    assert.equal(entriesPath(1234067), 'tile/entries/x001/x234/067');
    assert.equal(entriesPath(0, 1), 'tile/entries/000.p/1');
    assert.equal(entriesPath(Number.MAX_SAFE_INTEGER), 'tile/entries/x009/x007/x199/x254/x740/991');
  });

  it('refuses indexes, levels and widths that have no path', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => tilePath(0, bad), RangeError);
    for (const bad of [-1, 64, 0.5]) assert.throws(() => tilePath(bad, 0), RangeError);
    for (const bad of [0, 257, 3.5]) assert.throws(() => entriesPath(0, bad), RangeError);
  });

  it('parses exactly the paths it writes', () => {
    assert.deepEqual(parseTilePath('tile/1/x001/x234/067.p/8'), { kind: 'tile', level: 1, index: 1234067, width: 8 });
    assert.deepEqual(parseTilePath('tile/0/000'), { kind: 'tile', level: 0, index: 0, width: 256 });
    assert.deepEqual(parseTilePath('tile/63/999'), { kind: 'tile', level: 63, index: 999, width: 256 });
    assert.deepEqual(parseTilePath('tile/entries/x001/000.p/255'), {
      kind: 'entries',
      index: 1000,
      width: 255,
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.maxSafeNat(),
        fc.integer({ min: 1, max: 256 }),
        (level, index, width) => {
          assert.deepEqual(parseTilePath(tilePath(level, index, width)), { kind: 'tile', level, index, width });
          assert.deepEqual(parseTilePath(entriesPath(index, width)), { kind: 'entries', index, width });
        },
      ),
    );
  });

  it('rejects garbage and non-canonical spellings', () => {
    const bad = [
      '',
      'tile',
      'tile/0',
      'tile/0/',
      'tile/0/00',
      'tile/0/0000',
      'tile/0/1',
      'tile/00/000',
      'tile/01/000',
      'tile/64/000',
      'tile/-1/000',
      'tile/0/x000/001', // 1 is written 001
      'tile/0/x001',
      'tile/0/001/002',
      'tile/0/x001/x002',
      'tile/0/X001/002',
      'tile/0/000.p/0',
      'tile/0/000.p/256',
      'tile/0/000.p/08',
      'tile/0/000.p/',
      'tile/0/000.p',
      'tile/0/000/',
      '/tile/0/000',
      'tile/0/000 ',
      'tile/entries/',
      'tile/entry/000',
      'tile/0/x009/x007/x199/x254/x740/992', // 2^53: not a safe integer
      'tile/0/000\n',
    ];
    for (const p of bad) assert.equal(parseTilePath(p), undefined, JSON.stringify(p));
    assert.equal(parseTilePath(42 as any), undefined);
  });
});

describe('tile contents', () => {
  it('names the nodes of tree level 8·L a tile holds', () => {
    assert.deepEqual(tileNodeIds(0, 0, 2), [
      { level: 0, index: 0 },
      { level: 0, index: 1 },
    ]);
    const ids = tileNodeIds(2, 3);
    assert.equal(ids.length, 256);
    assert.deepEqual(ids[0], { level: 16, index: 768 });
    assert.deepEqual(ids[255], { level: 16, index: 1023 });
    assert.throws(() => tileNodeIds(0, 0, 0), RangeError);
  });

  it('concatenates 32-byte hashes and splits them back', () => {
    const hashes = Array.from({ length: 5 }, (_, i) => Buffer.alloc(32, i));
    const tile = encodeTile(hashes);
    assert.equal(tile.length, 160);
    assert.deepEqual(decodeTile(tile), hashes);
    assert.throws(() => decodeTile(tile.subarray(1)), RangeError);
    assert.throws(() => decodeTile(Buffer.alloc(0)), RangeError);
    assert.throws(() => decodeTile(Buffer.alloc(257 * 32)), RangeError);
    assert.throws(() => encodeTile([Buffer.alloc(31)]), RangeError);
  });
});

describe('entry bundles', () => {
  it('writes each entry as a big-endian uint16 length, then the bytes', () => {
    const bundle = encodeEntryBundle([Buffer.from('ab'), Buffer.alloc(0), Buffer.alloc(300, 7)]);
    assert.deepEqual(bundle.subarray(0, 6), Buffer.from([0, 2, 0x61, 0x62, 0, 0]));
    assert.deepEqual(bundle.subarray(6, 8), Buffer.from([0x01, 0x2c]));
    assert.equal(bundle.length, 2 + 2 + 2 + 2 + 300);
  });

  it('round-trips any bundle of up to 256 entries', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 256 }), (entries) => {
        const back = decodeEntryBundle(encodeEntryBundle(entries));
        assert.deepEqual(
          back.map((b) => Buffer.from(b)),
          entries.map((e) => Buffer.from(e)),
        );
      }),
      { numRuns: 50 },
    );
    const max = Buffer.alloc(0xffff, 1);
    assert.deepEqual(decodeEntryBundle(encodeEntryBundle([max])), [max]);
  });

  it('refuses what cannot be a bundle', () => {
    assert.throws(() => encodeEntryBundle([Buffer.alloc(0x10000)]), RangeError);
    assert.throws(() => encodeEntryBundle(Array.from({ length: 257 }, () => Buffer.alloc(0))), RangeError);
    const bundle = encodeEntryBundle([Buffer.from('hello'), Buffer.from('world')]);
    for (let cut = 1; cut < bundle.length; cut++) {
      if (cut === 7) continue; // a whole first entry: a valid bundle of one
      assert.throws(() => decodeEntryBundle(bundle.subarray(0, cut)), RangeError, `cut at ${cut}`);
    }
    assert.throws(() => decodeEntryBundle(Buffer.alloc(257 * 2)), RangeError, '257 empty entries');
  });
});
