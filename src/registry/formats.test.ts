import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  describeFile,
  MAX_SAFETENSORS_HEADER,
  parseSafetensorsHeader,
  readGguf,
  readSafetensors,
  writeSafetensors,
} from './formats.js';

const dir = mkdtempSync(join(tmpdir(), 'fabrik-formats-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file from a header object and a data size (zeros). */
function rawSafetensors(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataBytes)]);
}

/** A minimal GGUF v3 file: string and u32 metadata, F32 tensors. */
function rawGguf(kv: Record<string, string | number>, tensors: { name: string; shape: number[] }[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    parts.push(b);
  };
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    parts.push(b);
  };
  const str = (s: string) => {
    const b = Buffer.from(s);
    u64(b.length);
    parts.push(b);
  };
  parts.push(Buffer.from('GGUF'));
  u32(3);
  u64(tensors.length);
  u64(Object.keys(kv).length);
  for (const [k, v] of Object.entries(kv)) {
    str(k);
    if (typeof v === 'string') {
      u32(8);
      str(v);
    } else {
      u32(4);
      u32(v);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    str(t.name);
    u32(t.shape.length);
    for (const d of t.shape) u64(d);
    u32(0); // GGML_TYPE_F32
    u64(offset);
    offset += t.shape.reduce((a, d) => a * d, 1) * 4;
    offset = Math.ceil(offset / 32) * 32;
  }
  const head = Buffer.concat(parts);
  const padded = Math.ceil(head.length / 32) * 32;
  return Buffer.concat([head, Buffer.alloc(padded - head.length), Buffer.alloc(offset)]);
}

describe('safetensors headers', () => {
  const header = {
    __metadata__: { format: 'pt' },
    'model.embed.weight': { dtype: 'BF16', shape: [8, 4], data_offsets: [0, 64] },
    'model.norm.weight': { dtype: 'F32', shape: [4], data_offsets: [64, 80] },
    'lm_head.weight': { dtype: 'BF16', shape: [8, 4], data_offsets: [80, 144] },
  };

  it('counts tensors and parameters per dtype', () => {
    const info = parseSafetensorsHeader(rawSafetensors(header, 144));
    assert.deepEqual(info, {
      format: 'safetensors',
      tensors: 3,
      parameters: 68,
      dtypes: { BF16: 64, F32: 4 },
      metadata: { format: 'pt' },
      tensorsSample: [
        { name: 'model.embed.weight', dtype: 'BF16', shape: [8, 4] },
        { name: 'model.norm.weight', dtype: 'F32', shape: [4] },
        { name: 'lm_head.weight', dtype: 'BF16', shape: [8, 4] },
      ],
    });
  });

  it('samples at most 20 tensors, and takes scalars and empty tensors', () => {
    const many: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) many[`t${i}`] = { dtype: 'F32', shape: [], data_offsets: [i * 4, i * 4 + 4] };
    many.empty = { dtype: 'F16', shape: [0, 3], data_offsets: [120, 120] };
    const info = parseSafetensorsHeader(rawSafetensors(many, 120));
    assert.equal(info.tensors, 31);
    assert.equal(info.parameters, 30);
    assert.equal(info.tensorsSample.length, 20);
    assert.deepEqual(info.metadata, {});
  });

  const refusals: [string, Buffer, RegExp][] = [
    ['too short', Buffer.alloc(4), /shorter than the 8-byte/],
    ['header beyond the file', rawSafetensors({}, 0).subarray(0, 9), /runs past the end/],
    ['malformed JSON', rawSafetensors('{"a": ', 0), /not JSON/],
    ['a JSON array', rawSafetensors([], 0), /not a JSON object/],
    [
      'offsets beyond the data',
      rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8),
      /outside/,
    ],
    ['reversed offsets', rawSafetensors({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, 8), /outside/],
    ['size mismatch', rawSafetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16), /need 12 bytes/],
    [
      'overlapping tensors',
      rawSafetensors(
        {
          a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
          b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
        },
        24,
      ),
      /tensors a and b overlap/,
    ],
    ['a bad shape', rawSafetensors({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0), /shape/],
    ['a missing dtype', rawSafetensors({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /dtype/],
    ['non-string metadata', rawSafetensors({ __metadata__: { n: 1 } }, 0), /__metadata__\.n/],
  ];
  for (const [what, buf, message] of refusals) {
    it(`refuses ${what} with FORMAT_INVALID`, () => {
      assert.throws(
        () => parseSafetensorsHeader(buf, buf.length, 'w.safetensors'),
        (e: any) => {
          assert.equal(e.code, 'FORMAT_INVALID');
          assert.equal(e.status, 422);
          assert.equal(e.details.path, 'w.safetensors');
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }

  it('refuses a header length over 100 MB before reading it', async () => {
    const f = join(dir, 'huge-header.safetensors');
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(BigInt(MAX_SAFETENSORS_HEADER + 1));
    writeFileSync(f, b);
    await assert.rejects(readSafetensors(f), { code: 'FORMAT_INVALID', message: /exceeds 100000000/ });
  });
});

describe('writeSafetensors and readSafetensors', () => {
  it('writes a file that reads back, aligned, with the digest of its bytes', async () => {
    const f = join(dir, 'tiny.safetensors');
    const tensors = [
      { name: 'w', dtype: 'F32' as const, shape: [3, 5] },
      { name: 'b', dtype: 'F16' as const, shape: [5] },
    ];
    const out = await writeSafetensors(f, tensors, { metadata: { format: 'pt' } });
    const bytes = readFileSync(f);
    assert.equal(out.size, bytes.length);
    assert.equal(out.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0);
    const info = await readSafetensors(f);
    assert.equal(info.parameters, 20);
    assert.deepEqual(info.dtypes, { F32: 15, F16: 5 });
    assert.deepEqual(info.metadata, { format: 'pt' });
  });

  it('streams a larger file and reads only its header', async () => {
    const f = join(dir, 'big.safetensors');
    const out = await writeSafetensors(f, [
      { name: 'a', dtype: 'F32', shape: [1024, 1024] },
      { name: 'b', dtype: 'F16', shape: [1000, 777] },
    ]);
    assert.equal(statSync(f).size, out.size);
    // Not all zero, and chunks differ: the pattern is not one repeated block.
    const bytes = readFileSync(f);
    const n = Number(bytes.readBigUInt64LE(0));
    const data = bytes.subarray(8 + n);
    assert.notEqual(data.subarray(0, 64).toString('hex'), Buffer.alloc(64).toString('hex'));
    assert.notEqual(data.subarray(0, 64).toString('hex'), data.subarray(1 << 20, (1 << 20) + 64).toString('hex'));
    const info = await readSafetensors(f);
    assert.equal(info.parameters, 1024 * 1024 + 777_000);
  });

  it('writes zeros when asked', async () => {
    const f = join(dir, 'zero.safetensors');
    await writeSafetensors(f, [{ name: 'z', dtype: 'F32', shape: [16] }], { fill: 'zero' });
    assert.ok(
      readFileSync(f)
        .subarray(-64)
        .every((x) => x === 0),
    );
  });
});

describe('GGUF', () => {
  it('reads architecture, context length, quantization and parameters', async () => {
    const f = join(dir, 'tiny.gguf');
    const kv = {
      'general.architecture': 'llama',
      'general.name': 'Tiny Llama',
      'general.file_type': 15,
      'llama.context_length': 4096,
    };
    writeFileSync(
      f,
      rawGguf(kv, [
        { name: 'token_embd.weight', shape: [4, 8] },
        { name: 'output_norm.weight', shape: [4] },
      ]),
    );
    assert.deepEqual(await readGguf(f), {
      format: 'gguf',
      architecture: 'llama',
      name: 'Tiny Llama',
      parameters: 36,
      contextLength: 4096,
      quantization: 'Q4_K_M',
      tensors: 2,
    });
  });

  it('refuses a file that is not GGUF', async () => {
    const f = join(dir, 'fake.gguf');
    writeFileSync(f, 'not gguf at all, just text');
    await assert.rejects(describeFile(f, 'models/fake.gguf'), (e: any) => {
      assert.equal(e.code, 'FORMAT_INVALID');
      assert.equal(e.details.path, 'models/fake.gguf');
      return true;
    });
  });
});

describe('describeFile', () => {
  it('picks the reader by the extension of the repo path', async () => {
    const f = join(dir, 'blob-1');
    await writeSafetensors(f, [{ name: 'x', dtype: 'F32', shape: [2] }]);
    assert.equal((await describeFile(f, 'Model.SafeTensors'))?.format, 'safetensors');
  });

  it('never opens other files', async () => {
    assert.equal(await describeFile(join(dir, 'does-not-exist'), 'config.json'), undefined);
    assert.equal(await describeFile(join(dir, 'does-not-exist'), 'safetensors'), undefined);
  });

  it('fails the file with FORMAT_INVALID for a malformed known format', async () => {
    const f = join(dir, 'bad.safetensors');
    writeFileSync(f, rawSafetensors('{oops', 0));
    await assert.rejects(describeFile(f, 'bad.safetensors'), { code: 'FORMAT_INVALID' });
  });
});
