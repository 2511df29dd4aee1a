// The Annex XI document of a model trained in the suite (test/compliance/fixture.ts), checked field
// by field against the records; a hand-pushed model lists its missing sections; the signature
// verifies with the platform key and the audit entry names the document's digest; another org
// gets 404.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifyDocument } from '../../src/compliance/sign.js';
import { rootDigest } from '../../src/registry/signing.js';
import { DIALECTS, skipReason } from '../helpers/harness.js';
import { DATASET_CARD, type Fixture, PARAMETERS, TRAINING_TOKENS, trainFixture } from './fixture.js';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= Math.max(1e-9, Math.abs(b) * 1e-6), `${what}: ${a} ≠ ${b}`);

for (const dialect of DIALECTS) {
  describe(`compliance annex-xi (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let f: Fixture;
    let key: { keyid: string; publicKeyPem: string };
    before(async () => {
      if (skip) return;
      f = await trainFixture(dialect);
      key = (await f.call('GET', '/api/v1/registry/signing-key')).body;
    });
    after(async () => {
      if (!skip) await f.close();
    });

    it('documents the trained model from its records, field by field', { skip }, async () => {
      const res = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/llm');
      assert.equal(res.status, 200, res.text);
      const d = res.body.document;
      assert.equal(d.schema, 'fabrik.compliance/annex-xi/v1');
      assert.deepEqual(d.model, { repo: 'acme.train/llm', revision: 'main', commit: f.modelCommit });
      const org = (await f.call('GET', '/api/v1/orgs/acme')).body;
      assert.deepEqual(d.provider, { org: 'acme', displayName: org.displayName ?? '', project: 'acme.train' });
      assert.equal(d.generatedBy, 'user:acme-owner');
      assert.deepEqual(d.missing, []);

      // 1.1: the card's fields and what the weights hold.
      assert.deepEqual(d.general.card, {
        license: 'apache-2.0',
        baseModel: ['acme.train/base'],
        pipelineTag: 'text-generation',
        libraryName: 'transformers',
        tags: ['assistant'],
        language: ['de', 'en'],
        evalResults: [{ task: 'text-generation', dataset: 'acme.train/corpus', metric: 'accuracy', value: 0.91 }],
        title: 'Support assistant',
        summary: "A small assistant fine-tuned on acme's support tickets.",
      });
      assert.equal(d.general.parameters, PARAMETERS);
      assert.deepEqual(d.general.formats, ['safetensors']);
      assert.deepEqual(d.general.dtypes, { F32: PARAMETERS });

      // 1.2 training data: the dataset version the attempt read, with its card and licence.
      const ds = (await f.call('GET', `/api/v1/projects/acme.train/datasets/corpus/versions/${f.datasetCommit}`)).body;
      assert.deepEqual(d.trainingData.datasets, [
        {
          repo: 'acme.train/corpus',
          commit: f.datasetCommit,
          license: 'cc-by-4.0',
          title: 'Support tickets 2026',
          summary: 'Customer support tickets with names and e-mail addresses, for fine-tuning the support assistant.',
          tags: ['personal-data', 'support-tickets'],
          files: 2,
          bytes: Buffer.byteLength(DATASET_CARD) + Buffer.byteLength('Ticket 1: …\n'),
        },
      ]);
      assert.equal(ds.version.bytes, d.trainingData.datasets[0].bytes);
      assert.deepEqual(d.trainingData.inputModels, []);

      // 1.2 compute: the attempts on record, GPU-hours by model, training time, 6·N·D.
      const attempts = await f.t.store.db
        .selectFrom('workload_attempts')
        .selectAll()
        .where('workload_id', '=', f.workloadId)
        .execute();
      assert.equal(attempts.length, 1);
      const a = attempts[0]!;
      const secs = (Date.parse(a.ended_at) - Date.parse(a.started_at)) / 1000;
      assert.ok(secs > 0);
      const c = d.compute;
      assert.deepEqual(c.workload, { id: f.workloadId, name: 'train-llm', project: 'acme.train', kind: 'training' });
      assert.equal(c.producingAttempt, 1);
      assert.deepEqual(
        c.attempts.map((x: any) => [x.number, x.pool, x.gpuModel, x.gpus, x.startedAt, x.endedAt, x.endReason]),
        [[1, 'b200', 'B200', 8, a.started_at, a.ended_at, a.end_reason]],
      );
      close(c.attempts[0].gpuSeconds, 8 * secs, 'gpuSeconds');
      close(c.gpuHours, (8 * secs) / 3600, 'gpuHours');
      assert.deepEqual(Object.keys(c.gpuHoursByModel), ['B200']);
      close(c.gpuHoursByModel.B200, (8 * secs) / 3600, 'gpuHours B200');
      close(c.trainingTimeSeconds, secs, 'training time');
      assert.equal(c.firstStart, a.started_at);
      assert.equal(c.lastEnd, a.ended_at);
      assert.deepEqual(c.flops, {
        method: '6·N·D',
        parameters: PARAMETERS,
        trainingTokens: TRAINING_TOKENS,
        estimate: 6 * PARAMETERS * TRAINING_TOKENS,
      });

      // 1.2 energy: no power samples, so estimated from TDP: (8 × 1000 W × 0.7 + 2000 W node) × PUE 1.2.
      const wh = ((8 * 1000 * 0.7 + 2000) * 1.2 * secs) / 3600;
      assert.equal(d.energy.basis, 'estimated');
      close(d.energy.energyKWh, wh / 1000, 'kWh');
      close(d.energy.co2Kg, (wh / 1000) * 0.38, 'kg CO2');
      assert.deepEqual(
        d.energy.perAttempt.map((x: any) => [x.number, x.estimated]),
        [[1, true]],
      );
      assert.match(d.energy.method, /TDP × 0\.7 utilisation.*PUE 1\.2.*380 gCO2\/kWh/);

      // Versions and signatures: the commit's manifest digest and platform signature.
      const v = (await f.call('GET', `/api/v1/projects/acme.train/models/llm/versions/${f.modelCommit}`)).body;
      assert.deepEqual(d.versions.model, {
        repo: 'acme.train/llm',
        commit: f.modelCommit,
        parent: null,
        createdAt: v.version.createdAt,
        createdBy: v.version.createdBy,
        files: 2,
        bytes: v.version.bytes,
        manifestDigest: rootDigest(v.files.map((x: any) => x.sha256)),
        signatures: [{ keyid: key.keyid, platform: true }],
        verification: { ok: true, signers: [key.keyid], reason: null },
      });
      assert.deepEqual(d.versions.datasets, [{ repo: 'acme.train/corpus', commit: f.datasetCommit, verified: true }]);

      // Signed with the platform key; the audit entry's after-digest is the document's digest.
      assert.deepEqual(verifyDocument(res.body, key.publicKeyPem), {
        ok: true,
        keyid: key.keyid,
        digest: res.body.signature.digest,
      });
      const tampered = structuredClone(res.body);
      tampered.document.energy.energyKWh /= 2;
      assert.equal(verifyDocument(tampered, key.publicKeyPem).ok, false);
      const entry = await f.t.store.db
        .selectFrom('audit_entries')
        .selectAll()
        .where('action', '=', 'compliance.annex-xi.generate')
        .orderBy('seq', 'desc')
        .executeTakeFirstOrThrow();
      assert.equal(entry.after_digest, res.body.signature.digest);
      assert.equal(entry.resource, `projects/acme.train/models/llm/versions/${f.modelCommit}`);
      assert.equal(entry.actor_principal, 'user:acme-owner');
    });

    it('says measured when power samples cover the attempt', { skip }, async () => {
      const a = await f.t.store.db
        .selectFrom('workload_attempts')
        .selectAll()
        .where('workload_id', '=', f.workloadId)
        .executeTakeFirstOrThrow();
      await f.t.store.db
        .insertInto('attempt_power_samples')
        .values({ attempt_id: a.id, at: a.started_at, watts: 4000, gpus: 8 })
        .execute();
      const res = await f.call('GET', `/api/v1/compliance/annex-xi/acme.train/llm/${f.modelCommit}`);
      assert.equal(res.status, 200, res.text);
      const secs = (Date.parse(a.ended_at) - Date.parse(a.started_at)) / 1000;
      assert.equal(res.body.document.model.revision, f.modelCommit);
      assert.equal(res.body.document.energy.basis, 'measured');
      close(res.body.document.energy.energyKWh, ((4000 + 2000) * 1.2 * secs) / 3600 / 1000, 'measured kWh');
    });

    it('lists the missing sections of a version without lineage, and renders them under "Missing"', {
      skip,
    }, async () => {
      const res = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/handmade');
      assert.equal(res.status, 200, res.text);
      const d = res.body.document;
      assert.equal(d.model.commit, f.handmadeCommit);
      assert.deepEqual(d.general.card, { title: 'Hand-made', summary: 'Pushed from a laptop.' });
      assert.equal(d.general.parameters, null);
      assert.equal(d.trainingData, null);
      assert.equal(d.compute, null);
      assert.equal(d.energy, null);
      assert.deepEqual(
        d.missing.map((m: any) => m.section),
        ['trainingData', 'compute', 'energy'],
      );
      for (const m of d.missing) assert.match(m.reason, /no lineage/);
      const md = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/handmade?format=md');
      assert.equal(md.status, 200);
      assert.match(md.type, /^text\/markdown/);
      assert.match(md.text, /^## Missing$/m);
      assert.match(md.text, /1\.2 Training data: no lineage/);
      assert.match(md.text, new RegExp(`Key id:\\*\\* ${key.keyid}`));
      const full = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/llm?format=md');
      assert.doesNotMatch(full.text, /^## Missing$/m);
      assert.match(full.text, /\| acme\.train\/corpus \| [0-9a-f]{12} \| cc-by-4\.0 \| Support tickets 2026 \|/);
      assert.match(full.text, /FLOPs \(6·N·D\):\*\* 2\.496e\+10/);
    });

    it('is 404 for another org and readable for a viewer of the project', { skip }, async () => {
      const other = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/llm', f.globex.ownerToken);
      assert.equal(other.status, 404);
      assert.equal(other.body.error.code, 'NOT_FOUND');
      const unknown = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/nope');
      assert.equal(unknown.status, 404);
      const viewer = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/llm', f.acme.viewerToken);
      assert.equal(viewer.status, 200);
      assert.equal(viewer.body.document.generatedBy, 'user:acme-viewer');
      const bad = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/llm?format=docx');
      assert.equal(bad.status, 400);
    });

    it('keeps a dataset deleted after training on record, from its version row, unverified', { skip }, async () => {
      const del = await f.t.call('DELETE', '/api/v1/projects/acme.train/datasets/corpus', { token: f.acme.ownerToken });
      assert.equal(del.status, 204, JSON.stringify(del.body));
      const res = await f.call('GET', '/api/v1/compliance/annex-xi/acme.train/llm');
      assert.equal(res.status, 200, res.text);
      const d = res.body.document;
      assert.deepEqual(d.missing, []);
      assert.deepEqual(
        d.trainingData.datasets.map((x: any) => [x.repo, x.commit, x.license, x.files]),
        [['acme.train/corpus', f.datasetCommit, 'cc-by-4.0', 2]],
      );
      assert.deepEqual(d.versions.datasets, [{ repo: 'acme.train/corpus', commit: f.datasetCommit, verified: false }]);
    });
  });
}
