import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { getLlama, LlamaLogLevel, resolveChatWrapper, type Token } from 'node-llama-cpp';
import { readGguf } from '../../registry/formats.js';
import { TINY_CHAT_TEMPLATE, writeTinyModel } from './tiny-model.js';

const dir = mkdtempSync(join(tmpdir(), 'fabrik-tiny-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('writeTinyModel', () => {
  it('writes about half a megabyte in well under a second', async () => {
    const started = performance.now();
    const info = await writeTinyModel(join(dir, 'fast.gguf'));
    const ms = performance.now() - started;
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.ok(info.bytes > 300_000 && info.bytes < 1_000_000, `${info.bytes} bytes`);
    assert.equal(readFileSync(info.path).length, info.bytes);
  });

  it('is the same file for the same seed and another for another seed', async () => {
    const a = await writeTinyModel(join(dir, 'a.gguf'), { seed: 7 });
    const b = await writeTinyModel(join(dir, 'b.gguf'), { seed: 7 });
    const c = await writeTinyModel(join(dir, 'c.gguf'), { seed: 8 });
    assert.equal(a.sha256, b.sha256);
    assert.deepEqual(readFileSync(a.path), readFileSync(b.path));
    assert.notEqual(a.sha256, c.sha256);
    assert.equal(a.bytes, c.bytes);
  });

  it('is read by @huggingface/gguf with the llama metadata and tensor shapes', async () => {
    const info = await writeTinyModel(join(dir, 'hf.gguf'), { contextLength: 1024 });
    const { metadata, tensorInfos } = await gguf(info.path, { allowLocalFile: true });
    const md = metadata as Record<string, any>;
    assert.equal(md.version, 3);
    assert.equal(md['general.architecture'], 'llama');
    assert.equal(md['llama.context_length'], 1024);
    assert.equal(md['tokenizer.ggml.model'], 'llama');
    assert.equal(md['tokenizer.chat_template'], TINY_CHAT_TEMPLATE);
    const tokens = md['tokenizer.ggml.tokens'] as string[];
    assert.equal(tokens.length, info.vocabSize);
    assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
    assert.ok(tokens.includes('<0xFF>') && tokens.includes('<|im_end|>'));
    assert.equal(md['tokenizer.ggml.scores'].length, info.vocabSize);
    assert.equal(md['tokenizer.ggml.token_type'].length, info.vocabSize);
    assert.equal(tensorInfos.length, info.tensors);
    const embd = tensorInfos.find((t) => t.name === 'token_embd.weight')!;
    assert.deepEqual(embd.shape.map(Number), [md['llama.embedding_length'], info.vocabSize]);
    const down = tensorInfos.find((t) => t.name === 'blk.1.ffn_down.weight')!;
    assert.deepEqual(down.shape.map(Number), [md['llama.feed_forward_length'], md['llama.embedding_length']]);
  });

  it("passes the registry's GGUF reader", async () => {
    const info = await writeTinyModel(join(dir, 'registry.gguf'));
    const read = await readGguf(info.path, 'models/tiny.gguf');
    assert.equal(read.format, 'gguf');
    assert.equal(read.architecture, 'llama');
    assert.equal(read.name, 'fabrik-tiny');
    assert.equal(read.tensors, info.tensors);
    assert.equal(read.contextLength, 2048);
    assert.equal(read.parameters, info.parameters);
    assert.equal(read.quantization, 'F32');
  });

  it('loads in node-llama-cpp, formats a chat and generates tokens', async () => {
    const info = await writeTinyModel(join(dir, 'run.gguf'));
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn, maxThreads: 2 });
    try {
      const model = await llama.loadModel({ modelPath: info.path });
      assert.equal(model.trainContextSize, 2048);
      assert.equal(model.tokens.bos, 1);
      assert.equal(model.tokens.eos, 2);
      // Byte fallback: any text tokenizes and comes back unchanged.
      const text = 'hello world, çà ✓';
      assert.equal(model.detokenize(model.tokenize(text)), text);
      const im = model.tokenize('<|im_start|>', true);
      assert.equal(im.length, 1);
      assert.ok(model.isSpecialToken(im[0]));
      // The chat template is recognised (node-llama-cpp maps it to its ChatML wrapper).
      assert.equal(resolveChatWrapper(model).wrapperName, 'ChatML');

      const context = await model.createContext({ contextSize: 256, threads: 2 });
      const sequence = context.getSequence();
      const out: Token[] = [];
      for await (const token of sequence.evaluate([model.tokens.bos!, ...model.tokenize('hello')], {
        temperature: 0,
      })) {
        out.push(token);
        if (out.length === 12) break;
      }
      assert.equal(out.length, 12);
      // Control tokens and non-ASCII bytes are muted in the output layer: plain printable text.
      assert.match(model.detokenize(out), /^[\x20-\x7e\n]+$/);
    } finally {
      await llama.dispose();
    }
  });
});
