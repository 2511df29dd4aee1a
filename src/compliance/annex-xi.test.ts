import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AnnexXiFacts, type AttemptFacts, buildAnnexXi, flopsEstimate } from './annex-xi.js';

const version = {
  repo: 'acme.train/llm',
  commit: 'c'.repeat(40),
  parent: null,
  createdAt: '2026-12-01T10:00:00.000Z',
  createdBy: 'workload:wl_1',
  files: 1,
  bytes: 10,
  manifestDigest: 'd'.repeat(64),
  signatures: [{ keyid: 'k', platform: true }],
  verification: { ok: true, signers: ['k'], reason: null },
};
const attempt = (n: number, over: Partial<AttemptFacts> = {}): AttemptFacts => ({
  number: n,
  pool: 'b200',
  gpuModel: 'B200',
  gpus: 8,
  startedAt: `2026-12-01T0${n}:00:00.000Z`,
  endedAt: `2026-12-01T0${n}:30:00.000Z`,
  endReason: n === 2 ? 'succeeded' : 'preempted',
  gpuSeconds: 8 * 1800,
  energyWh: 4000,
  co2g: 1520,
  estimated: true,
  ...over,
});
const facts = (over: Partial<AnnexXiFacts> = {}): AnnexXiFacts => ({
  generatedAt: '2026-12-01T12:00:00.000Z',
  generatedBy: 'user:alice',
  provider: { org: 'acme', displayName: 'ACME', project: 'acme.train' },
  revision: 'main',
  version,
  card: { license: 'mit', title: 'LLM' },
  formats: { parameters: 7e9, formats: ['safetensors'], dtypes: { BF16: 7e9 }, quantization: [] },
  producer: {
    workloadId: 'wl_1',
    attempt: 2,
    workload: { name: 'ft', project: 'acme.train', kind: 'training', trainingTokens: 1e12 },
  },
  datasets: [
    { ...version, repo: 'acme.train/corpus', commit: 'e'.repeat(40), card: { license: 'cc-by-4.0', tags: ['x'] } },
  ],
  inputModels: [],
  attempts: [attempt(1), attempt(2, { estimated: false, energyWh: 3000, co2g: 1140 })],
  energyMethod: { pue: 1.2, gpuUtilisation: 0.7, grid: '380 gCO2/kWh' },
  ...over,
});

describe('Annex XI document', () => {
  it('estimates FLOPs as 6·N·D only when both are known', () => {
    assert.equal(flopsEstimate(7e9, 1e12).estimate, 4.2e22);
    assert.match(flopsEstimate(null, 1e12).unknown!, /parameter count is unknown/);
    assert.match(flopsEstimate(7e9, null).unknown!, /TRAINING_TOKENS/);
    assert.equal(flopsEstimate(null, null).estimate, null);
  });

  it('sums compute over every attempt up to the producing one, by GPU model, and labels mixed energy', () => {
    const d = buildAnnexXi(facts());
    assert.deepEqual(d.missing, []);
    assert.equal(d.compute!.gpuHours, 8);
    assert.deepEqual(d.compute!.gpuHoursByModel, { B200: 8 });
    assert.equal(d.compute!.trainingTimeSeconds, 3600);
    assert.equal(d.compute!.firstStart, '2026-12-01T01:00:00.000Z');
    assert.equal(d.compute!.lastEnd, '2026-12-01T02:30:00.000Z');
    assert.equal(d.compute!.flops.estimate, 4.2e22);
    assert.equal(d.energy!.energyKWh, 7);
    assert.equal(d.energy!.co2Kg, 2.66);
    assert.equal(d.energy!.basis, 'partly-estimated');
    assert.equal(d.trainingData!.datasets[0]!.license, 'cc-by-4.0');
  });

  it('names what is missing and invents nothing', () => {
    const hand = buildAnnexXi(facts({ producer: null, card: null, datasets: [], attempts: [] }));
    assert.deepEqual(
      hand.missing.map((m) => m.section),
      ['general', 'trainingData', 'compute', 'energy'],
    );
    assert.equal(hand.general, null);
    assert.equal(hand.compute, null);
    assert.equal(hand.energy, null);
    const noData = buildAnnexXi(facts({ datasets: [] }));
    assert.deepEqual(noData.missing, [
      { section: 'trainingData', reason: 'the producing workload wl_1 read no dataset versions' },
    ]);
    const gone = buildAnnexXi(facts({ producer: { workloadId: 'wl_1', attempt: 2 }, attempts: [] }));
    assert.deepEqual(
      gone.missing.map((m) => [m.section, m.reason]),
      [
        ['compute', 'the producing workload wl_1 is no longer on record'],
        ['energy', 'the producing workload wl_1 is no longer on record'],
      ],
    );
    const noWeights = buildAnnexXi(facts({ formats: { parameters: 0, formats: [], dtypes: {}, quantization: [] } }));
    assert.equal(noWeights.general!.parameters, null);
    assert.equal(noWeights.compute!.flops.estimate, null);
  });
});
