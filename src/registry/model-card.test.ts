import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_MODEL_CARD_BYTES, normalizeLicense, parseModelCard, readBody } from './model-card.js';

// A fine-tune card as the Trainer's push_to_hub writes it, with an evaluation.
const FINETUNE = `---
license: apache-2.0
base_model: distilbert/distilbert-base-uncased
tags:
- generated_from_trainer
datasets:
- glue
metrics:
- accuracy
model-index:
- name: distilbert-mrpc
  results:
  - task:
      name: Text Classification
      type: text-classification
    dataset:
      name: glue
      type: glue
      config: mrpc
      split: validation
      args: mrpc
    metrics:
    - name: Accuracy
      type: accuracy
      value: 0.8578431372549019
    - name: F1
      type: f1
      value: 0.9003
library_name: transformers
pipeline_tag: text-classification
language:
- en
---

<!-- This model card has been generated automatically according to the information the Trainer had access to. You
should probably proofread and complete it, then remove this comment. -->

# distilbert-mrpc

This model is a fine-tuned version of [distilbert/distilbert-base-uncased](https://huggingface.co/distilbert/distilbert-base-uncased) on the **glue** dataset.
It achieves the following results on the evaluation set:
- Loss: 0.3855
- Accuracy: 0.8578

## Training procedure
`;

// A GGUF quantisation card: custom license, several base models, badges and HTML before the prose.
const GGUF = `---
license: other
license_name: llama3
license_link: LICENSE
base_model:
  - meta-llama/Meta-Llama-3-8B-Instruct
  - acme/llama-3-8b-merge
language: [en, de, fr]
tags: [gguf, llama-3, 2024]
pipeline_tag: text-generation
---
<p align="center"><img src="logo.png" width="200"></p>

[![Discord](https://img.shields.io/badge/discord-join-blue)](https://discord.gg/x) ![stars](https://img.shields.io/x.svg)

Quantised Llama 3
=================

> GGUF quantisations of *Meta-Llama-3-8B-Instruct*, made with \`llama.cpp\` b2700.

\`\`\`bash
# not a heading
llama-cli -m model.Q4_K_M.gguf
\`\`\`
`;

describe('model cards', () => {
  it('reads a Trainer fine-tune card', () => {
    assert.deepEqual(parseModelCard(FINETUNE), {
      license: 'apache-2.0',
      baseModel: ['distilbert/distilbert-base-uncased'],
      datasets: ['glue'],
      pipelineTag: 'text-classification',
      libraryName: 'transformers',
      tags: ['generated_from_trainer'],
      language: ['en'],
      evalResults: [
        {
          task: 'text-classification',
          dataset: 'glue',
          datasetConfig: 'mrpc',
          split: 'validation',
          metric: 'accuracy',
          value: 0.8578431372549019,
        },
        {
          task: 'text-classification',
          dataset: 'glue',
          datasetConfig: 'mrpc',
          split: 'validation',
          metric: 'f1',
          value: 0.9003,
        },
      ],
      title: 'distilbert-mrpc',
      summary:
        'This model is a fine-tuned version of distilbert/distilbert-base-uncased on the glue dataset. It achieves the following results on the evaluation set:',
    });
  });

  it('reads a GGUF card with other license, setext title, badges and a blockquote summary', () => {
    const card = parseModelCard(GGUF);
    assert.equal(card.license, 'other');
    assert.equal(card.licenseName, 'llama3');
    assert.equal(card.licenseLink, 'LICENSE');
    assert.deepEqual(card.baseModel, ['meta-llama/Meta-Llama-3-8B-Instruct', 'acme/llama-3-8b-merge']);
    assert.deepEqual(card.language, ['en', 'de', 'fr']);
    assert.deepEqual(card.tags, ['gguf', 'llama-3', '2024']);
    assert.equal(card.title, 'Quantised Llama 3');
    assert.equal(card.summary, 'GGUF quantisations of Meta-Llama-3-8B-Instruct, made with llama.cpp b2700.');
    assert.equal(card.evalResults, undefined);
  });

  it('reads a card without front matter, and one with empty front matter, from bytes too', () => {
    assert.deepEqual(parseModelCard('# Hello\n\nA small model.\n'), { title: 'Hello', summary: 'A small model.' });
    assert.deepEqual(parseModelCard(Buffer.from('\uFEFF---\n---\nJust text.')), { summary: 'Just text.' });
    assert.deepEqual(parseModelCard(''), {});
    assert.deepEqual(parseModelCard('---\r\nlicense: MIT\r\n---\r\n# T\r\n'), { license: 'mit', title: 'T' });
  });

  it('takes a single string where the Hub allows a list', () => {
    const card = parseModelCard('---\ndatasets: acme/corpus\nlanguage: fr\nbase_model: acme/base\n---\n');
    assert.deepEqual(card, { datasets: ['acme/corpus'], language: ['fr'], baseModel: ['acme/base'] });
  });

  it('caps the summary on a word boundary', () => {
    const long = `${'word '.repeat(300)}end`;
    const s = parseModelCard(long).summary!;
    assert.ok(s.length <= 501, `${s.length}`);
    assert.ok(s.endsWith('word…'));
  });

  it('refuses a card over 64 KiB with MODEL_CARD_TOO_LARGE', () => {
    assert.throws(() => parseModelCard('x'.repeat(MAX_MODEL_CARD_BYTES + 1)), {
      code: 'MODEL_CARD_TOO_LARGE',
      status: 413,
    });
    // Counted in bytes, not characters.
    assert.throws(() => parseModelCard('é'.repeat(MAX_MODEL_CARD_BYTES / 2 + 1)), { code: 'MODEL_CARD_TOO_LARGE' });
    assert.doesNotThrow(() => parseModelCard('x'.repeat(MAX_MODEL_CARD_BYTES)));
  });

  it('refuses invalid YAML naming the README line and column', () => {
    const text = '---\nlicense: mit\ntags: [a, b\n---\n# x\n';
    assert.throws(
      () => parseModelCard(text),
      (e: any) => {
        assert.equal(e.code, 'MODEL_CARD_INVALID');
        assert.equal(e.status, 422);
        assert.match(e.message, /invalid YAML at line \d+:\d+/);
        assert.ok(e.details.line >= 3, `line ${e.details.line}`);
        return true;
      },
    );
    const bad = '---\nlicense: mit\n  pipeline_tag: x\n   - y\n---\n';
    assert.throws(() => parseModelCard(bad), { code: 'MODEL_CARD_INVALID' });
    assert.throws(() => parseModelCard('---\ntags: [a]\ntags: [b]\n---\n'), {
      code: 'MODEL_CARD_INVALID',
      message: /line 3:1/,
    });
  });

  it('refuses unclosed front matter and front matter that is not a mapping', () => {
    assert.throws(() => parseModelCard('---\nlicense: mit\n# x\n'), {
      code: 'MODEL_CARD_INVALID',
      message: /never closed/,
    });
    assert.throws(() => parseModelCard('---\n- a\n- b\n---\n'), { message: /not a YAML mapping/ });
  });

  it('refuses fields of the wrong type, naming them', () => {
    assert.throws(() => parseModelCard('---\ntags:\n  a: 1\n---\n'), { message: /tags must be a string/ });
    assert.throws(() => parseModelCard('---\ndatasets: [ok, {x: 1}]\n---\n'), { message: /datasets\[1\]/ });
    assert.throws(() => parseModelCard('---\npipeline_tag: [a]\n---\n'), { message: /pipeline_tag/ });
  });

  it('refuses a malformed model-index, naming the place', () => {
    const card = (mi: string) => `---\nmodel-index:\n${mi}\n---\n`;
    assert.throws(() => parseModelCard(card('  name: x')), { message: /model-index must be a list/ });
    assert.throws(
      () =>
        parseModelCard(
          card(
            '- name: x\n  results:\n  - task: {type: t}\n    dataset: {type: d}\n    metrics:\n    - {type: acc, value: [1]}',
          ),
        ),
      { message: /model-index\[0\]\.results\[0\]\.metrics\[0\]\.value must be a number or a string/ },
    );
    assert.throws(() => parseModelCard(card('- name: x\n  results:\n  - dataset: {type: d}\n    metrics: []')), {
      message: /results\[0\]\.task needs a type/,
    });
  });
});

describe('licenses', () => {
  it('accepts known ids in any case, returning the Hub form', () => {
    assert.equal(normalizeLicense('Apache-2.0'), 'apache-2.0');
    assert.equal(normalizeLicense('CC-BY-NC-4.0'), 'cc-by-nc-4.0');
    assert.equal(normalizeLicense('llama3.1'), 'llama3.1');
  });

  it('accepts SPDX expressions with AND, OR and parentheses', () => {
    assert.equal(normalizeLicense('MIT OR Apache-2.0'), 'mit OR apache-2.0');
    assert.equal(normalizeLicense('(MIT AND BSD-3-Clause) or cc-by-4.0'), '(mit AND bsd-3-clause) OR cc-by-4.0');
  });

  it('refuses unknown ids naming them, and broken expressions', () => {
    assert.throws(
      () => parseModelCard('---\nlicense: my-own-license\n---\n'),
      (e: any) => {
        assert.equal(e.code, 'MODEL_CARD_INVALID');
        assert.match(e.message, /unknown license "my-own-license"/);
        assert.equal(e.details.license, 'my-own-license');
        return true;
      },
    );
    assert.throws(() => normalizeLicense('MIT AND WTF-1.0'), /unknown license "WTF-1.0"/);
    assert.throws(() => normalizeLicense('MIT OR'), /not a valid SPDX expression/);
    assert.throws(() => normalizeLicense('(MIT'), /unbalanced/);
    assert.throws(() => normalizeLicense('MIT apache-2.0'), /not a valid SPDX expression/);
    assert.throws(() => normalizeLicense('   '), /empty/);
  });
});

describe('body', () => {
  it('skips code fences, lists, tables and HTML when looking for prose', () => {
    const body = [
      '```',
      '# not a title',
      'not a summary',
      '```',
      '| a | b |',
      '|---|---|',
      '- item',
      '1. step',
      '## Usage',
      '',
      'Run it **fast**.',
    ].join('\n');
    assert.deepEqual(readBody(body), { title: 'Usage', summary: 'Run it fast.' });
  });

  it("reads the Hub's default template without taking placeholders for prose", () => {
    const body =
      '# Model Card for Model ID\n\n<!-- Provide a quick summary of what the model is/does. -->\n\n\n\n## Model Details\n\n' +
      '### Model Description\n\n<!-- Provide a longer summary. -->\n\n- **Developed by:** [More Information Needed]\n';
    assert.deepEqual(readBody(body), { title: 'Model Card for Model ID' });
  });
});
