// A model trained in the suite, for the compliance documents: acme pushes a dataset (card tagged
// personal-data, licence cc-by-4.0) and a hand-made model (no lineage); a training workload reads
// the dataset and publishes acme.train/llm. Everything but the task's process is real: submit, the
// scheduler, the reconciler, staging of the input, publishing (a signed version whose producer is
// the attempt, lineage dataset → attempt → model). The engine is a test double (named as such)
// that "runs" the task by writing its outputs into the work directory, as the trainer would.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import type { Subprocessor } from '../../src/compliance/subprocessors.js';
import type { ExecHandle, Executor, LaunchRequest, Observation } from '../../src/exec/types.js';
import { workloadPaths } from '../../src/exec/workspace.js';
import { type EnergySite, defaultEnergySite } from '../../src/metering/energy.js';
import { writeSafetensors } from '../../src/registry/formats.js';
import { WorkloadArtifacts } from '../../src/workload/artifacts/index.js';
import { Reconciler } from '../../src/workload/reconciler.js';
import { SchedulerLoop } from '../../src/workload/scheduler-loop.js';
import { type DialectName, type TestApp, type Tenant, seedTenant, startTestApp } from '../helpers/harness.js';

export const DATASET_CARD = `---
license: cc-by-4.0
tags: [personal-data, support-tickets]
---
# Support tickets 2026

Customer support tickets with names and e-mail addresses, for fine-tuning the support assistant.
`;

export const MODEL_CARD = `---
license: apache-2.0
base_model: acme.train/base
pipeline_tag: text-generation
library_name: transformers
language: [de, en]
tags: [assistant]
model-index:
  - name: llm
    results:
      - task: { type: text-generation }
        dataset: { type: acme.train/corpus, name: corpus }
        metrics: [{ type: accuracy, value: 0.91 }]
---
# Support assistant

A small assistant fine-tuned on acme's support tickets.
`;

/** Parameters of the published weights: 64×32 + 32. */
export const PARAMETERS = 64 * 32 + 32;
export const TRAINING_TOKENS = 2_000_000;
export const SUBPROCESSORS: Subprocessor[] = [
  { name: 'Rechenzentrum München GmbH', purpose: 'colocation, power and cooling', country: 'de' },
  { name: 'Backup AG', purpose: 'encrypted off-site backups', country: 'at', contact: 'dpo@backup.example' },
];

/** Test double for an engine: launch writes the trainer's outputs; the attempt runs `runMs`, then succeeds. */
class TrainerDouble implements Executor {
  readonly name = 'local' as const;
  readonly launchedAt = new Map<string, number>();
  constructor(
    private readonly workloadsDir: string,
    private readonly runMs: number,
  ) {}
  async launch(req: LaunchRequest): Promise<ExecHandle> {
    const out = join(workloadPaths(this.workloadsDir, req.projectId, req.workloadId, req.attempt).work, 'out');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'README.md'), MODEL_CARD);
    await writeSafetensors(join(out, 'model.safetensors'), [
      { name: 'w', dtype: 'F32', shape: [64, 32] },
      { name: 'b', dtype: 'F32', shape: [32] },
    ]);
    const job = `${req.workloadId}.${req.attempt}`;
    this.launchedAt.set(job, Date.now());
    return { job };
  }
  async adopt(): Promise<ExecHandle | undefined> {
    return undefined;
  }
  async signal(): Promise<void> {}
  async observe(handles: ReadonlyMap<string, ExecHandle>): Promise<Map<string, Observation>> {
    const out = new Map<string, Observation>();
    for (const [id, h] of handles) {
      const at = this.launchedAt.get(String((h as { job: string }).job)) ?? 0;
      out.set(
        id,
        Date.now() - at >= this.runMs
          ? { state: 'succeeded', exitCode: 0, message: 'task 0 exited with 0' }
          : { state: 'running', message: 'running' },
      );
    }
    return out;
  }
  logPath(): string | undefined {
    return undefined;
  }
}

export interface Fixture {
  readonly t: TestApp;
  /** The app with the compliance options below (the harness's own has none). */
  readonly app: FastifyInstance;
  readonly site: EnergySite;
  readonly acme: Tenant;
  readonly globex: Tenant;
  readonly datasetCommit: string;
  readonly handmadeCommit: string;
  readonly modelCommit: string;
  readonly workloadId: string;
  call(method: string, url: string, token?: string): Promise<{ status: number; body: any; text: string; type: string }>;
  close(): Promise<void>;
}

export async function trainFixture(dialect: DialectName): Promise<Fixture> {
  const t = await startTestApp(dialect, { registry: {} });
  const workloadsDir = mkdtempSync(join(tmpdir(), 'fabrik-compliance-'));
  const site = defaultEnergySite();
  const app = await buildApp({
    store: t.store,
    registry: t.registry,
    compliance: { site, subprocessors: SUBPROCESSORS },
  });
  await app.ready();
  const acme = await seedTenant(t, 'acme');
  const globex = await seedTenant(t, 'globex');
  const inject = (method: string, url: string, token: string, payload?: string, type = 'application/json') =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { 'content-type': type }) },
      ...(payload === undefined ? {} : { payload }),
    });
  const call: Fixture['call'] = async (method, url, token = acme.ownerToken) => {
    const res = await inject(method, url, token);
    const type = String(res.headers['content-type'] ?? '');
    return {
      status: res.statusCode,
      body: type.startsWith('application/json') ? JSON.parse(res.body) : res.rawPayload,
      text: res.body,
      type,
    };
  };
  const push = async (type: 'model' | 'dataset', name: string, files: Record<string, string | Buffer>) => {
    const created = await inject(
      'POST',
      '/hub/api/repos/create',
      acme.ownerToken,
      JSON.stringify({ name, organization: 'acme.train', type }),
    );
    assert.equal(created.statusCode, 200, created.body);
    const lines = [
      { key: 'header', value: { summary: `push ${name}` } },
      ...Object.entries(files).map(([path, content]) => ({
        key: 'file',
        value: { path, content: Buffer.from(content).toString('base64'), encoding: 'base64' },
      })),
    ];
    const c = await inject(
      'POST',
      `/hub/api/${type}s/acme.train/${name}/commit/main`,
      acme.ownerToken,
      lines.map((l) => JSON.stringify(l)).join('\n'),
      'application/x-ndjson',
    );
    assert.equal(c.statusCode, 200, c.body);
    return JSON.parse(c.body).commitOid as string;
  };
  const datasetCommit = await push('dataset', 'corpus', { 'README.md': DATASET_CARD, 'train.txt': 'Ticket 1: …\n' });
  const handmadeCommit = await push('model', 'handmade', { 'README.md': '# Hand-made\n\nPushed from a laptop.\n' });

  const submit = await inject(
    'POST',
    `/api/v1/projects/${acme.ref}/workloads`,
    acme.ownerToken,
    JSON.stringify({
      kind: 'training',
      name: 'train-llm',
      resources: { gpu: 'B200:8' },
      max_duration: '1h',
      run: 'python train.py',
      env: { TRAINING_TOKENS: String(TRAINING_TOKENS) },
      inputs: [{ dataset: 'acme.train/corpus', path: '/data/corpus' }],
      outputs: [{ model: 'acme.train/llm', from: 'out' }],
    }),
  );
  assert.equal(submit.statusCode, 201, submit.body);
  const workloadId = JSON.parse(submit.body).id as string;
  await new SchedulerLoop(t.store.db).cycle();
  const reconciler = new Reconciler(t.store.db, new TrainerDouble(workloadsDir, 150), {
    workdirRoot: process.cwd(),
    artifacts: new WorkloadArtifacts({ db: t.store.db, registry: t.registry!, workloadsDir }),
  });
  let status = '';
  for (let i = 0; i < 200 && status !== 'succeeded' && status !== 'failed'; i++) {
    await reconciler.reconcile();
    await new Promise((r) => setTimeout(r, 25));
    const w = await t.store.db
      .selectFrom('workloads')
      .select(['status', 'message'])
      .where('id', '=', workloadId)
      .executeTakeFirstOrThrow();
    status = w.status;
    assert.notEqual(status, 'failed', w.message);
  }
  assert.equal(status, 'succeeded');
  const llm = await call('GET', `/api/v1/projects/${acme.ref}/models/llm`);
  assert.equal(llm.status, 200, llm.text);
  return {
    t,
    app,
    site,
    acme,
    globex,
    datasetCommit,
    handmadeCommit,
    modelCommit: llm.body.latest.id,
    workloadId,
    call,
    async close() {
      await app.close();
      await t.close();
      rmSync(workloadsDir, { recursive: true, force: true });
    },
  };
}
