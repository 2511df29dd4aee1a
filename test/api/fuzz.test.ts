// Bad input, property-based: every route of /openapi.json gets random and mutated requests, with
// the operator's key and with a tenant owner's: random JSON, valid bodies with one field broken
// (wrong type, huge or odd strings, extreme numbers, null, unknown fields, a required field
// missing), malformed JSON, wrong content types, odd path parameters and query strings. Whatever
// arrives, the server answers below 500, every error carries the {"error":{code,message}}
// envelope, and a refused request (4xx) writes nothing. Valid requests may succeed.
//
// Reproduce a run with FABRIK_FUZZ_SEED=<seed printed at the start>; FABRIK_FUZZ_RUNS sets the
// number of requests per route and key (default 25).
//
// The app serves the verifiable audit log too, with one witness key configured: its public routes
// (checkpoint, key, hash tiles, consistency proofs, cosignatures) get garbage tile paths, proof
// ranges and cosignature bodies of their own.
import { DEFAULT_POLICIES } from '../../src/policy/default-policies.js';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import fc from 'fast-check';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { cosign, generateWitnessKey } from '../../src/audit/cosignature.js';
import { logKeys } from '../../src/audit/log/keys.js';
import { Sequencer } from '../../src/audit/log/sequencer.js';
import { locateReplicaRuntime } from '../../src/inference/replica-spec.js';
import { keyIdOf, pae } from '../../src/registry/signing.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  SMALL_FLEET,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';
import { type StateSnapshot, snapshotState, stateDiff } from '../helpers/state.js';

const SEED = Number(process.env.FABRIK_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env.FABRIK_FUZZ_RUNS ?? 25);

const job = (name: string) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '1h',
  run: 'python train.py',
});

/** An uploader's key for countersignatures: before() signs the seeded versions with it. */
const UPLOADER = generateKeyPairSync('ed25519');
const UPLOADER_PEM = UPLOADER.publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** A valid body for every route that takes one; the fuzzer breaks them. A new route needs one. */
const VALID_BODIES: Record<string, unknown> = {
  'POST /api/v1/orgs': { name: 'fuzz-org', residency: 'de' },
  'PATCH /api/v1/orgs/{org}': { displayName: 'Fuzzed' },
  'POST /api/v1/orgs/{org}/projects': { name: 'fuzz' },
  'PATCH /api/v1/projects/{project}': { displayName: 'Fuzzed' },
  'POST /api/v1/users': { name: 'fuzz-user' },
  'POST /api/v1/orgs/{org}/serviceaccounts': { name: 'fuzz-sa', role: 'viewer' },
  'POST /api/v1/orgs/{org}/members': { user: 'fuzz-member', role: 'viewer' },
  'POST /api/v1/orgs/{org}/keys': { name: 'fuzz', ttlDays: 1 },
  'POST /api/v1/keys': { name: 'fuzz', user: 'admin', ttlDays: 1 },
  'PUT /api/v1/projects/{project}/quotas/{pool}': { guaranteed: 1, limit: 2 },
  'POST /api/v1/fleet/apply': { file: SMALL_FLEET, source: 'fuzz.yaml' },
  'PATCH /api/v1/fleet/nodes/{node}': { state: 'cordoned' },
  'POST /api/v1/projects/{project}/workloads': job('fuzz-job'),
  'PUT /api/v1/orgs/{org}/secrets/{name}': { value: 'fuzz-value' },
  'PUT /api/v1/projects/{project}/secrets/{name}': { value: 'fuzz-value' },
  'POST /api/v1/orgs/{org}/webhooks': { url: 'https://hooks.example.com/fabrik', types: ['workload.finished'] },
  'POST /api/v1/orgs/{org}/break-glass': { reason: 'fuzzing the break-glass route', expiresIn: '1h' },
  // A dry run of the policies in force: valid, and nothing changes unless a mutation drops dryRun.
  'POST /api/v1/policies': { policies: DEFAULT_POLICIES, dryRun: true },
  'PUT /api/v1/projects/{project}/storage-quota': { limitBytes: 1 << 30 },
  // A GGUF on the server's machine, every field set: before() writes the file and fills in its path.
  'POST /api/v1/projects/{project}/deployments': {
    name: 'fuzz-new',
    modelPath: '',
    gpu: 'B200:1',
    replicas: '0..2',
    contextSize: 4096,
    threads: 2,
    parallel: 2,
    aliases: ['fuzz-alias'],
    targetInflight: 4,
    idleTimeoutS: 60,
    storePrompts: false,
  },
  'PATCH /api/v1/projects/{project}/deployments/{name}': { replicas: '1..3' },
  'PUT /api/v1/projects/{project}/inference-limits': { rpm: 60, tpm: 100_000, monthlyTokens: 1_000_000 },
  // Billing: a price of a deployment (every selector of its kind), its end, and a budget.
  'POST /api/v1/prices': {
    item: 'tokens-out',
    unitPrice: '0.75',
    validFrom: '2026-06-01T00:00:00Z',
    validTo: null,
    deployment: 'acme.train/fuzz-ext',
    model: '',
    supersede: true,
  },
  'POST /api/v1/prices/{id}/end': { validTo: '2026-09-01T00:00:00Z' },
  'PUT /api/v1/projects/{project}/budget': { unit: 'EUR', amount: 1000, thresholds: [50, 90], action: 'notify' },
  // Console sign-in with acme's owner key: before() fills it in.
  'POST /api/v1/session': { apiKey: '' },
  // A checkpoint of the log and a witness's cosignature of it: before() signs both.
  'POST /audit/cosignatures': { checkpoint: '', cosignature: '' },
  ...Object.fromEntries(
    ['models', 'datasets'].flatMap((kind) => {
      const base = `/api/v1/projects/{project}/${kind}`;
      return [
        [`POST ${base}`, { name: 'fuzz-new' }],
        [`PUT ${base}/{name}/refs/{ref}`, { revision: 'main' }],
        // The signature is over the seeded version's envelope: before() signs it.
        [
          `POST ${base}/{name}/versions/{rev}/signatures`,
          { keyid: keyIdOf(UPLOADER_PEM), sig: '', publicKeyPem: UPLOADER_PEM },
        ],
      ];
    }),
  ),
};

/**
 * Routes that stream until the client leaves (inject never does): each request carries this
 * bound, and they get fewer runs (a valid one lasts that long).
 */
const STREAMING: Record<string, string> = { 'GET /api/v1/events/stream': 'timeout=1' };

/**
 * Known bugs, found by this fuzzer and not fixed yet: each is a `todo` test below (it runs, and
 * reports its failure without failing the suite), and the random properties step around it so
 * that they do not fail by chance. When a route is fixed, drop its entry here and the todo.
 *
 * - POST /audit/cosignatures is registered outside /api/v1, so the body check that refuses a NUL
 *   (the JSON escape \u0000) or a lone surrogate in a string with INVALID_ENCODING does not run
 *   there: it answers 400 INVALID_ARGUMENT (nothing is stored).
 * - GET /api/v1/audit/entries/{seq}/receipt on PostgreSQL: a seq or ?size= that the schema takes
 *   as an integer but that is no bigint (1e21, 2^63, 1e308, 1e400, Infinity) reaches the query
 *   and fails there: 500 (22P02 invalid input syntax / 22003 out of range for type bigint).
 *   Any key triggers it with the seq (the lookup comes before the visibility check).
 */
/** Numbers that fit no bigint (or no number): a receipt of them is refused, never a server error. */
const HUGE_NUMBERS = ['1e21', '9223372036854775807', '9223372036854775808', '1e308', '1e400', 'Infinity'];

interface Fixture {
  readonly acme: Tenant;
  /** Real values for each path parameter, so that mutations reach the handlers. */
  readonly params: Record<string, string[]>;
  /** VALID_BODIES, with what only the seeded data makes valid (countersignatures, the model file). */
  readonly bodies: Record<string, unknown>;
  /** The audit log after the seeding: two checkpoints (an older and the newest), cosigned by the witness. */
  readonly audit: {
    readonly sizes: readonly [number, number];
    readonly checkpoints: readonly [string, string];
    readonly cosignatures: readonly [string, string];
  };
}

/** The log's keys, and the one witness it accepts cosignatures from. */
const LOG_KEYS = logKeys(randomBytes(32), 'test/audit');
const WITNESS = generateWitnessKey('witness.test/w1');
/** A stranger to this log: another log's key, and a witness the log does not know. */
const OTHER_LOG = logKeys(randomBytes(32), 'test/audit');
const STRANGER = generateWitnessKey('witness.test/w1');
/** A checkpoint note's body: the text before the blank line that starts its signatures. */
const noteBody = (note: string) => note.slice(0, note.indexOf('\n\n') + 1);

interface Route {
  readonly key: string;
  readonly method: string;
  readonly path: string;
  readonly query: string[];
  readonly bodyProps: string[];
  readonly hasBody: boolean;
}

interface FuzzRequest {
  readonly token: string;
  readonly url: string;
  readonly payload?: string;
  readonly headers: Record<string, string>;
}

// Values that break a field: wrong types, extreme numbers, odd and huge strings.
const oddString = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'a\udfffb',
  '🧪',
  'İß',
  '\u202egnp.exe',
  '../../etc/passwd',
  "'; drop table orgs; --",
  '%00',
  '%',
  '\\',
  'a\\',
  'x'.repeat(64),
  'x'.repeat(5000),
  '2026-02-30T25:61:00Z',
  '9999-12-31T23:59:59Z',
  // YAML for the fleet file: an alias bomb, a tag, a merge of nothing.
  'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
  '!!binary x',
  '<<: *x',
);
const hugeString = fc.constantFrom('y'.repeat(200_000), 'z'.repeat(1_100_000));
const extremeNumber = fc.constantFrom(
  -1,
  -0,
  0.5,
  -1e308,
  1e308,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  Number.MIN_VALUE,
);
const breaking = fc.oneof(
  { weight: 3, arbitrary: oddString },
  { weight: 3, arbitrary: extremeNumber },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: fc.constantFrom(null, true, false, [], {}) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const malformedJson = fc.oneof(
  fc.constantFrom(
    '{',
    '[',
    '{"a":',
    '{"a":1}}',
    "{'a':1}",
    'nul',
    'undefined',
    '\uFEFF{}',
    '{"a":1,}',
    '01',
    'NaN',
    '"\\x"',
    '{"__proto__":{"x":1}}',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }),
);
const wrongContentType = fc.constantFrom(
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/jsonp',
  'APPLICATION/JSON',
  'application/xml',
  '*/*',
  'application/json, text/plain',
);
const oddPathSegment = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
  fc.constantFrom(
    '%00',
    '..',
    '%2e%2e',
    '%2F',
    'a%2Fb',
    '%25',
    '%',
    '%zz',
    '%ff',
    '%c0%ae',
    'a%20b',
    '%E2%80%AE',
    'x'.repeat(300),
    '~',
    '.',
    'prj_',
    'user:',
    'user:%00',
  ),
);
const oddQueryValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }).map(encodeURIComponent),
  fc.constantFrom('', '-1', '0', '1001', '1e3', '1.5', 'true', '%', '%zz', '%00', 'x'.repeat(600)),
  // Cursors that decode, but to values of the wrong type or range for the column.
  fc
    .constantFrom<unknown>('zzz', 1.5, -1, 1e300, 2 ** 63, '', '\u0000', true, null)
    .map((v) => Buffer.from(JSON.stringify([v])).toString('base64url')),
);

/** NUL, and byte sequences that are not UTF-8: stray continuation, truncated, overlong, surrogate, too high. */
const badBytes = fc
  .constantFrom(
    [0x00],
    [0xff],
    [0x80],
    [0xc3],
    [0xe2, 0x82],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
  )
  .map((b) => Buffer.from(b));

function requestFor(route: Route, f: Fixture, ownerToken: string): fc.Arbitrary<FuzzRequest> {
  const sample = f.bodies[route.key];
  const fields = [...new Set([...route.bodyProps, ...Object.keys((sample as object) ?? {})])];
  const paramNames = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const paramArbs = paramNames.map((name) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...f.params[name]!.map(encodeURIComponent)) },
      { weight: 1, arbitrary: oddPathSegment },
    ),
  );
  const queryArb = fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...route.query, 'limit', 'cursor'), fc.string({ maxLength: 8 })),
        oddQueryValue,
      ),
      { maxLength: 3 },
    )
    .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&')}` : ''));

  // The body as a JSON value (undefined: none), then how it is put on the wire.
  const obj = (sample ?? {}) as Record<string, unknown>;
  const bodyValue: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 2, arbitrary: fc.constant(sample) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    {
      weight: 5,
      arbitrary: fc.tuple(fc.constantFrom(...fields, 'unknownField'), breaking).map(([k, v]) => ({ ...obj, [k]: v })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(...fields, 'none')
        .map((k) => Object.fromEntries(Object.entries(obj).filter(([key]) => key !== k))),
    },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), breaking).map(([k, v]) => ({ ...obj, [k]: v })) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  const wire = fc.oneof(
    {
      weight: 6,
      arbitrary: bodyValue.map((v) => ({
        payload: v === undefined ? undefined : JSON.stringify(v),
        type: 'application/json',
      })),
    },
    { weight: 2, arbitrary: malformedJson.map((payload) => ({ payload, type: 'application/json' })) },
    {
      weight: 1,
      arbitrary: fc.constant({ payload: JSON.stringify(sample ?? {}).slice(0, -1), type: 'application/json' }),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(bodyValue, wrongContentType).map(([v, type]) => ({ payload: JSON.stringify(v ?? {}), type })),
    },
    { weight: 1, arbitrary: fc.constant({ payload: JSON.stringify(sample ?? {}), type: '' }) },
  );
  const idempotencyKey = fc.option(fc.string({ unit: 'grapheme-ascii', maxLength: 300 }), { freq: 4 });

  return fc
    .record({
      token: fc.constantFrom(OPERATOR_TOKEN, ownerToken),
      params: fc.tuple(...paramArbs),
      query: queryArb,
      wire,
      idempotencyKey,
    })
    .map(({ token, params, query, wire: w, idempotencyKey: idem }) => {
      let i = 0;
      const bound = STREAMING[route.key];
      const url =
        route.path.replace(/\{[^}]+\}/g, () => params[i++]!) + query + (bound ? `${query ? '&' : '?'}${bound}` : '');
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (w.payload !== undefined && w.type) headers['content-type'] = w.type;
      if (idem !== null) headers['idempotency-key'] = idem;
      return { token, url, payload: w.payload, headers };
    });
}

for (const dialect of DIALECTS) {
  describe(`fuzzing every route on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let f: Fixture;
    let routes: Route[];
    let modelDir: string;

    before(async () => {
      if (skip) return;
      console.log(`# fuzz seed ${SEED} (replay: FABRIK_FUZZ_SEED=${SEED}), ${RUNS} requests per route and key`);
      // As a server with an executor, whose log files are not there yet, with a registry, and
      // serving deployments (no controller runs: replicas never appear).
      t = await startTestApp(dialect, {
        logs: () => undefined,
        registry: {},
        deployments: { runtime: locateReplicaRuntime(), allowModelPaths: true },
        auditLog: { verifierKey: LOG_KEYS.verifierKey, witnessKeys: [WITNESS.verifierKey], flush: () => seq.flush() },
      });
      // As the server's loops would, on demand only: POST /api/v1/audit/checkpoint flushes it.
      const seq = new Sequencer(t.store.db, { keys: LOG_KEYS, dialect });
      const acme = await seedTenant(t, 'acme');
      await seedTenant(t, 'globex');
      const must = async (method: string, url: string, body?: unknown) => {
        const r = await t.call(method, url, { body });
        if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      };
      const train = await must('GET', '/api/v1/projects/acme.train');
      await must('POST', '/api/v1/orgs/acme/serviceaccounts', { name: 'fuzz-sa', role: 'viewer' });
      const key = await must('POST', '/api/v1/orgs/acme/keys', { name: 'disposable', serviceAccount: 'fuzz-sa' });
      const wl = await must('POST', '/api/v1/projects/acme.train/workloads', job('fuzz-job'));
      const hook = await must('POST', '/api/v1/orgs/acme/webhooks', { url: 'https://hooks.example.com/fuzz' });
      const grant = await must('POST', '/api/v1/orgs/acme/break-glass', {
        reason: 'seeding the fuzzer',
        expiresIn: '2h',
      });
      // The registry: a model and a dataset `fuzzed` in acme.train, a version of each pushed with
      // the Hub client, tagged v1; each countersignature body signs its kind's version.
      const hubUrl = `${await t.app.listen({ host: '127.0.0.1', port: 0 })}/hub`;
      const commits: string[] = [];
      const bodies: Record<string, unknown> = { ...VALID_BODIES };
      for (const [path, type] of [
        ['models', 'model'],
        ['datasets', 'dataset'],
      ] as const) {
        await must('POST', `/api/v1/projects/acme.train/${path}`, { name: 'fuzzed' });
        const pushed = await hub.uploadFiles({
          repo: { type, name: 'acme.train/fuzzed' },
          accessToken: `hf_${acme.ownerToken}`,
          hubUrl,
          files: [
            { path: 'README.md', content: new Blob(['---\nlicense: mit\n---\n# Fuzzed\n']) },
            { path: 'data.txt', content: new Blob(['fuzz me']) },
          ],
        });
        const commit = pushed!.commit.oid;
        commits.push(commit);
        await must('PUT', `/api/v1/projects/acme.train/${path}/fuzzed/refs/v1`, { revision: commit });
        const { envelope } = await must('GET', `/api/v1/projects/acme.train/${path}/fuzzed/versions/${commit}`);
        const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
        const signatures = `POST /api/v1/projects/{project}/${path}/{name}/versions/{rev}/signatures`;
        bodies[signatures] = {
          ...(VALID_BODIES[signatures] as object),
          sig: sign(null, message, UPLOADER.privateKey).toString('base64'),
        };
      }
      // Inference: a GGUF (its magic is all a deployment checks) deployed as `fuzzed`, an external
      // upstream as `fuzz-ext`, limits on the project and on the disposable key, and token usage
      // of both, so that every grouping has names to resolve.
      modelDir = mkdtempSync(join(tmpdir(), 'fabrik-fuzz-'));
      const gguf = join(modelDir, 'fuzz.gguf');
      writeFileSync(gguf, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(60)]));
      chmodSync(gguf, 0o644);
      const deploy = 'POST /api/v1/projects/{project}/deployments';
      bodies[deploy] = { ...(VALID_BODIES[deploy] as object), modelPath: gguf };
      bodies['POST /api/v1/session'] = { apiKey: acme.ownerToken };
      const local = await must('POST', '/api/v1/projects/acme.train/deployments', {
        name: 'fuzzed',
        modelPath: gguf,
        gpu: 'B200',
        replicas: '0..2',
      });
      const upstream = await must('POST', '/api/v1/projects/acme.train/deployments', {
        name: 'fuzz-ext',
        runtime: 'external',
        upstreamUrl: 'http://127.0.0.1:9/v1',
      });
      await must('PUT', '/api/v1/projects/acme.train/inference-limits', { rpm: 600, monthlyTokens: 1_000_000 });
      await must('PUT', '/api/v1/projects/acme.train/inference-limits', { tpm: 6000, key: key.prefix });
      // Billing: a platform-wide price and a budget, so that ending a price and reading a budget find one.
      const price = await must('POST', '/api/v1/prices', {
        item: 'gpu-hour',
        unitPrice: '2.10',
        validFrom: '2026-01-01T00:00:00Z',
      });
      await must('PUT', '/api/v1/projects/acme.train/budget', { unit: 'gpu-hours', amount: 100 });
      const org = await must('GET', '/api/v1/orgs/acme');
      const minute = Math.floor(Date.now() / 60_000) * 60_000;
      await t.store.db
        .insertInto('token_usage')
        .values(
          (
            [
              [local.id, key.id, 'rep_fuzz0', 0],
              [local.id, '', '', 1],
              [upstream.id, key.id, '', 90],
            ] as const
          ).map(([deployment, keyId, replica, minutesAgo]) => ({
            minute: new Date(minute - minutesAgo * 60_000).toISOString(),
            org_id: org.id,
            project_id: train.id,
            key_id: keyId,
            deployment_id: deployment,
            replica_id: replica,
            requests: 2,
            errors: 1,
            tokens_in: 30,
            tokens_out: 70,
            ttft_ms_sum: 40,
            duration_ms_sum: 900,
          })),
        )
        .execute();
      // The audit log: a checkpoint of the seeding, then 300 entries more (B renamed again and
      // again), so that a tile is full, and the newest checkpoint. Each is cosigned by the
      // witness, and the newest cosignature is the valid body.
      const old = await seq.flush();
      for (let i = 0; i < 300; i++) await must('PATCH', '/api/v1/orgs/globex', { displayName: `Globex ${i}` });
      const latest = await seq.flush();
      assert.ok(latest.size >= old.size + 300 && latest.size > 256, `${old.size} → ${latest.size}`);
      const cosignatures = [old, latest].map((cp) =>
        cosign(noteBody(cp.note), WITNESS.signerKey, Math.floor(Date.now() / 1000)),
      ) as [string, string];
      for (const [i, cp] of [old, latest].entries()) {
        await must('POST', '/audit/cosignatures', { checkpoint: cp.note, cosignature: cosignatures[i] });
      }
      bodies['POST /audit/cosignatures'] = { checkpoint: latest.note, cosignature: cosignatures[1] };
      f = {
        acme,
        audit: { sizes: [old.size, latest.size], checkpoints: [old.note, latest.note], cosignatures },
        params: {
          org: ['acme', 'globex'],
          project: ['acme.train', train.id, 'globex.train'],
          pool: ['b200', 'rtxpro6000'],
          node: ['b200-01', 'rtx-02'],
          member: ['user:acme-viewer', 'serviceaccount:fuzz-sa'],
          key: [key.prefix, key.id],
          workload: ['fuzz-job', wl.id],
          // Secrets' names, the registry's repo (a model and a dataset), and the deployments.
          name: ['wandb', 'hf-token', 'fuzzed', 'fuzz-ext'],
          webhook: [hook.id],
          // Break-glass grants (one of acme's, one that does not exist) and prices (the seeded one).
          id: [grant.id, 'bg_nonexistent', price.id, 'price_nonexistent'],
          // Statements: this month, an earlier one, one in the future, one that is no month.
          month: [new Date().toISOString().slice(0, 7), '2026-01', '2999-12', '2026-13'],
          rev: ['main', 'v1', ...commits],
          ref: ['v1', 'v2'],
          // Audit entries: the first, one in the older checkpoint, the newest signed one, one not yet.
          seq: ['1', String(old.size), String(latest.size), String(latest.size + 1)],
          // Policy versions: the one in force, the first, one that does not exist.
          version: ['latest', '1', '99999'],
        },
        bodies,
      };
      routes = await openApiRoutes(t);
    });
    after(async () => {
      if (skip) return;
      await t.close();
      rmSync(modelDir, { recursive: true, force: true });
    });

    it('has a valid body for every route that takes one, and values for every path parameter', { skip }, () => {
      assert.deepEqual(
        routes.filter((r) => r.hasBody && !(r.key in VALID_BODIES)).map((r) => r.key),
        [],
        'add a valid body to VALID_BODIES',
      );
      const params = routes.flatMap((r) => [...r.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!));
      assert.deepEqual(
        [...new Set(params.filter((p) => !f.params[p]?.length))],
        [],
        'add values for these path parameters',
      );
    });

    it('routes the longest valid names: a project ref of 63 + 1 + 63 characters', { skip }, async () => {
      const org = `o${'x'.repeat(62)}`;
      const project = `p${'y'.repeat(62)}`;
      assert.equal((await t.call('POST', '/api/v1/orgs', { body: { name: org, residency: 'eu' } })).status, 201);
      assert.equal((await t.call('POST', `/api/v1/orgs/${org}/projects`, { body: { name: project } })).status, 201);
      const r = await t.call('GET', `/api/v1/projects/${org}.${project}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.ref.length, 127);
      const tooLong = await t.call('GET', `/api/v1/projects/${'z'.repeat(300)}`);
      assert.equal(tooLong.status, 400);
      assert.equal(tooLong.body.error.code, 'INVALID_ARGUMENT');
    });

    it('answers every route below 500, with the error envelope, and writes nothing when it refuses', {
      skip,
    }, async (ctx) => {
      // Destructive routes last, so that deletions leave the other routes something to work on,
      // and the deletions of whole orgs and projects after those of what they hold (deployments,
      // limits, secrets, repos), which would otherwise only ever meet a project that is gone.
      const rank = (r: Route) =>
        r.method !== 'DELETE' ? 0 : /^\/api\/v1\/(orgs|projects)\/\{[^}]+\}$/.test(r.path) ? 2 : 1;
      const order = [...routes].sort((a, b) => rank(a) - rank(b));
      let state = await snapshotState(t);
      for (const [i, route] of order.entries()) {
        await ctx.test(route.key, async () => {
          await fc.assert(
            fc.asyncProperty(requestFor(route, f, f.acme.ownerToken), async (req) => {
              const res = await t.app.inject({
                method: route.method as 'GET',
                url: req.url,
                headers: req.headers,
                payload: req.payload,
              });
              const what = `${route.method} ${req.url} ${req.headers['content-type'] ?? ''} ${req.payload?.slice(0, 200) ?? ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;
              const now: StateSnapshot = await snapshotState(t);
              const before = state;
              state = now;
              assert.ok(res.statusCode < 500, `server error: ${what}`);
              if (res.statusCode >= 400) {
                let body: { error?: { code?: unknown; message?: unknown; details?: unknown } };
                try {
                  body = JSON.parse(res.body);
                } catch {
                  assert.fail(`error body is not JSON: ${what}`);
                }
                assert.equal(typeof body.error?.code, 'string', `no error code: ${what}`);
                assert.equal(typeof body.error?.message, 'string', `no error message: ${what}`);
                assert.deepEqual(
                  now,
                  before,
                  `a refused request changed state: ${what}\n${JSON.stringify(stateDiff(before, now)).slice(0, 2000)}`,
                );
              }
            }),
            { numRuns: STREAMING[route.key] ? 10 : RUNS * 2, seed: SEED + i, endOnFailure: true },
          );
        });
      }
    });

    it('refuses NUL and invalid UTF-8 in any path, query or body with INVALID_ENCODING, writing nothing', {
      skip,
    }, async () => {
      const before = await snapshotState(t);
      const where = fc.constantFrom('path', 'query', 'body');
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), where, badBytes, async (route, at, bytes) => {
          const names = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
          const spot = at === 'path' && names.length === 0 ? 'query' : at === 'body' && !route.hasBody ? 'query' : at;
          const escaped = [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
          let i = 0;
          const path = route.path.replace(/\{[^}]+\}/g, () => {
            const v = encodeURIComponent(f.params[names[i++]!]?.[0] ?? 'x');
            return spot === 'path' && i === 1 ? `${v}${escaped}` : v;
          });
          const url = spot === 'query' ? `${path}?limit=1${escaped}` : path;
          // The body: a valid one whose first string gets the bytes (NUL as the JSON escape \u0000).
          const body = JSON.stringify(f.bodies[route.key] ?? { x: '' });
          const inString = body.indexOf('":"') + 3;
          const nul = bytes.length === 1 && bytes[0] === 0;
          const inner = nul ? Buffer.from('\\u0000') : bytes;
          const payload =
            spot === 'body'
              ? Buffer.concat([Buffer.from(body.slice(0, inString)), inner, Buffer.from(body.slice(inString))])
              : undefined;
          // The operator's key: no role check refuses the request before its text is read.
          const res = await t.app.inject({
            method: route.method as 'GET',
            url,
            headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
            payload,
          });
          const what = `${route.method} ${url} ${payload?.toString('hex').slice(0, 80) ?? ''} → ${res.statusCode} ${res.body.slice(0, 200)}`;
          assert.equal(res.statusCode, 400, what);
          assert.equal(JSON.parse(res.body).error.code, 'INVALID_ENCODING', what);
        }),
        { numRuns: RUNS * 8, seed: SEED },
      );
      assert.deepEqual(await snapshotState(t), before);
    });

    it('POST /audit/cosignatures holds its body to the /api/v1 text rules: NUL, lone surrogates', {
      skip,
    }, async () => {
      for (const [bad, code] of [
        ['a\u0000b', 'INVALID_ENCODING'],
        ['\ud800', 'INVALID_JSON'],
      ] as const) {
        const body = { ...(f.bodies['POST /audit/cosignatures'] as object), checkpoint: bad };
        const res = await t.call('POST', '/audit/cosignatures', { body, token: null });
        assert.equal(res.status, 400, `${JSON.stringify(bad)}: ${res.status} ${JSON.stringify(res.body)}`);
        assert.equal(res.body?.error?.code, code, `${JSON.stringify(bad)}: ${JSON.stringify(res.body)}`);
      }
    });

    it('a receipt of a seq or size beyond bigint is refused, not a server error', {
      skip,
    }, async () => {
      const failed: string[] = [];
      for (const v of HUGE_NUMBERS) {
        for (const url of [`/api/v1/audit/entries/${v}/receipt`, `/api/v1/audit/entries/1/receipt?size=${v}`]) {
          for (const token of [OPERATOR_TOKEN, f.acme.ownerToken]) {
            const res = await t.call('GET', url, { token });
            if (res.status >= 500) failed.push(`${url} → ${res.status}`);
          }
        }
      }
      assert.deepEqual(failed, []);
    });

    it('answers the public audit log below 500 whatever the tile path, proof range or cosignature', {
      skip,
    }, async (ctx) => {
      const [size1, size2] = f.audit.sizes;
      const [note1, note2] = f.audit.checkpoints;
      const sizes = [0, 1, 2, 255, 256, 257, size1 - 1, size1, size1 + 1, size2 - 1, size2, size2 + 1];
      const number = fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...sizes).map(String) },
        { weight: 2, arbitrary: fc.integer({ min: -3, max: size2 + 3 }).map(String) },
        {
          weight: 2,
          arbitrary: fc.constantFrom(
            '-0',
            '01',
            '1e3',
            '1e21',
            '1e400',
            '2e0',
            '0x10',
            '1.5',
            '9007199254740991',
            '9007199254740993',
            '9223372036854775808',
            'NaN',
            'Infinity',
            'true',
            '',
            '+1',
            '%201',
            '1%20',
          ),
        },
        { weight: 1, arbitrary: oddQueryValue },
      );
      // Tile paths: the C2SP layout with every part at or past its edges, and plain garbage.
      const level = fc.constantFrom(
        '0',
        '1',
        '2',
        '9',
        '10',
        '63',
        '64',
        '99',
        '100',
        '00',
        '01',
        '-1',
        'entries',
        'x',
      );
      const group = fc.constantFrom(
        '000',
        '001',
        '009',
        '255',
        '256',
        '999',
        'x000',
        'x001',
        'x999',
        '00',
        '0000',
        'x',
      );
      const width = fc.constantFrom('1', '9', '10', '99', '255', '256', '999', '0', '01', '-1', '', 'x', '1.5');
      const tilePath = fc.oneof(
        {
          weight: 6,
          arbitrary: fc
            .tuple(
              level,
              fc.array(group, { minLength: 1, maxLength: 4 }),
              fc.option(width, { freq: 2 }),
              fc.constantFrom('tile/', 'tile/', 'tiles/', ''),
            )
            .map(([l, g, w, pre]) => `${pre}${l}/${g.join('/')}${w === null ? '' : `.p/${w}`}`),
        },
        {
          weight: 2,
          arbitrary: fc.constantFrom(
            `tile/0/000.p/${size2 % 256}`,
            'tile/0/000',
            'tile/0/001',
            'tile/1/000.p/1',
            `tile/entries/000.p/${size2 % 256}`,
            `tile/0/${'x999/'.repeat(8)}999`,
            `tile/63/${'x999/'.repeat(40)}999.p/255`,
            'tile/0/000.p/1/extra',
            'tile/0/000/',
            'tile//000',
            'tile/0/000.p/',
            'tile/0/000.P/1',
            '..%2F..%2Fetc%2Fpasswd',
            '',
            '%2e%2e/%2e%2e',
          ),
        },
        { weight: 2, arbitrary: fc.array(oddPathSegment, { minLength: 1, maxLength: 5 }).map((x) => x.join('/')) },
      );
      const consistencyQuery = fc.oneof(
        { weight: 6, arbitrary: fc.tuple(number, number).map(([a, b]) => `?from=${a}&to=${b}`) },
        {
          weight: 2,
          arbitrary: fc
            .array(fc.tuple(fc.constantFrom('from', 'to', 'size', 'x', ''), number), { maxLength: 4 })
            .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom('', '?', '?from', '?from=&to=', '?from[]=1&to=2', '?from=1&from=2&to=3'),
        },
      );
      // A checkpoint: the log's own (newest or older), or one changed, unsigned, another log's, or none.
      const flip = (text: string, at: number) =>
        text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
      const checkpoint = fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(note2, note1) },
        { weight: 2, arbitrary: fc.nat({ max: note2.length - 1 }).map((at) => flip(note2, at)) },
        {
          weight: 2,
          arbitrary: fc.constantFrom(
            noteBody(note2),
            `${note2}${f.audit.cosignatures[1]}\n`,
            note2.replace(`\n${size2}\n`, `\n${size2 + 1}\n`),
            note2.replace(/\n$/, ''),
            `${note2}\n`,
            note2.replaceAll('\n', '\r\n'),
            signCheckpoint({ origin: 'test/audit', size: size2, rootHash: Buffer.alloc(32, 1) }, OTHER_LOG.signerKey),
            signCheckpoint({ origin: 'test/audit', size: 2 ** 53 - 1, rootHash: Buffer.alloc(32) }, LOG_KEYS.signerKey),
            signCheckpoint({ origin: 'test/audit', size: 0, rootHash: Buffer.alloc(32) }, LOG_KEYS.signerKey),
            signCheckpoint({ origin: 'test/audit', size: size2, rootHash: Buffer.alloc(32, 2) }, LOG_KEYS.signerKey),
            signCheckpoint(
              { origin: 'test/audit', size: size1, rootHash: Buffer.alloc(32, 3), extensions: ['ext'] },
              LOG_KEYS.signerKey,
            ),
          ),
        },
        { weight: 1, arbitrary: oddString },
      );
      // A cosignature: the witness's (of this checkpoint or the other), changed, a stranger's, or garbage.
      const line = f.audit.cosignatures[1];
      const cosignature = fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...f.audit.cosignatures) },
        { weight: 2, arbitrary: fc.nat({ max: line.length - 1 }).map((at) => flip(line, at)) },
        {
          weight: 2,
          arbitrary: fc.constantFrom(
            cosign(noteBody(note2), STRANGER.signerKey, 1),
            cosign(noteBody(note2), WITNESS.signerKey, 0),
            cosign(noteBody(note2), WITNESS.signerKey, Number.MAX_SAFE_INTEGER),
            `${line}\n`,
            `  ${line}  `,
            `${line}\n${line}`,
            line.replace('— ', '- '),
            line.slice(0, -4),
            `${line}AAAA`,
            `— witness.test/w1 ${Buffer.alloc(76).toString('base64')}`,
            `— witness.test/w1 ${Buffer.concat([Buffer.alloc(4), Buffer.alloc(8, 0xff), Buffer.alloc(64)]).toString('base64')}`,
            `— witness.test/w1 ${Buffer.alloc(12).toString('base64')}`,
            '— ',
            '—',
            `— ${'n'.repeat(1000)} AAAA`,
          ),
        },
        { weight: 1, arbitrary: oddString },
      );
      const cosignatureWire = fc.oneof(
        {
          weight: 6,
          arbitrary: fc
            .record({ checkpoint, cosignature })
            .map((b) => ({ payload: JSON.stringify(b), type: 'application/json' })),
        },
        {
          weight: 2,
          arbitrary: fc.tuple(fc.constantFrom('checkpoint', 'cosignature', 'extra'), breaking).map(([k, v]) => ({
            payload: JSON.stringify({ ...(f.bodies['POST /audit/cosignatures'] as object), [k]: v }),
            type: 'application/json',
          })),
        },
        { weight: 1, arbitrary: malformedJson.map((payload) => ({ payload, type: 'application/json' })) },
        {
          weight: 1,
          arbitrary: wrongContentType.map((type) => ({
            payload: JSON.stringify(f.bodies['POST /audit/cosignatures']),
            type,
          })),
        },
      );
      const get = (url: fc.Arbitrary<string>) =>
        url.map((u) => ({
          method: 'GET',
          url: u,
          payload: undefined as string | undefined,
          type: undefined as string | undefined,
        }));
      const cases: [string, fc.Arbitrary<{ method: string; url: string; payload?: string; type?: string }>][] = [
        ['GET /audit/tile/*', get(tilePath.map((x) => `/audit/tile/${x.replace(/^tile\//, '')}`))],
        ['GET /audit/proof/consistency', get(consistencyQuery.map((q) => `/audit/proof/consistency${q}`))],
        [
          'POST /audit/cosignatures',
          cosignatureWire.map((w) => ({ method: 'POST', url: '/audit/cosignatures', ...w })),
        ],
        [
          'GET /audit/checkpoint, /audit/key',
          get(
            fc
              .tuple(
                fc.constantFrom('/audit/checkpoint', '/audit/key', '/.well-known/fabrik/audit-log-key'),
                fc.option(oddQueryValue),
              )
              .map(([u, q]) => (q === null ? u : `${u}?x=${q}`)),
          ),
        ],
      ];
      let served = 0;
      for (const [i, [name, arb]] of cases.entries()) {
        await ctx.test(name, async () => {
          await fc.assert(
            fc.asyncProperty(arb, fc.constantFrom(OPERATOR_TOKEN, f.acme.ownerToken, ''), async (req, token) => {
              const before = await snapshotState(t);
              const res = await t.app.inject({
                method: req.method as 'GET',
                url: req.url,
                payload: req.payload,
                headers: {
                  ...(token ? { authorization: `Bearer ${token}` } : {}),
                  ...(req.type ? { 'content-type': req.type } : {}),
                },
              });
              const what = `${req.method} ${req.url} ${req.type ?? ''} ${req.payload?.slice(0, 300) ?? ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;
              assert.ok(res.statusCode < 500, `server error: ${what}`);
              if (res.statusCode < 400) {
                served++;
                return;
              }
              let body: { error?: { code?: unknown; message?: unknown } };
              try {
                body = JSON.parse(res.body);
              } catch {
                assert.fail(`error body is not JSON: ${what}`);
              }
              assert.equal(typeof body.error?.code, 'string', `no error code: ${what}`);
              assert.equal(typeof body.error?.message, 'string', `no error message: ${what}`);
              const now = await snapshotState(t);
              assert.deepEqual(
                now,
                before,
                `a refused request changed state: ${what}\n${JSON.stringify(stateDiff(before, now)).slice(0, 2000)}`,
              );
            }),
            { numRuns: RUNS * 8, seed: SEED + 2000 + i, endOnFailure: true },
          );
        });
      }
      assert.ok(served > 0, 'some of the requests were valid and served');
    });
  });
}

async function openApiRoutes(t: TestApp): Promise<Route[]> {
  const doc = (await t.call('GET', '/openapi.json', { token: null })).body as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: { in: string; name: string }[];
          requestBody?: { content: Record<string, { schema?: { properties?: object } }> };
        }
      >
    >;
  };
  const methods = new Set(['get', 'post', 'put', 'patch', 'delete']);
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([m]) => methods.has(m))
      .map(([m, op]) => ({
        key: `${m.toUpperCase()} ${path}`,
        method: m.toUpperCase(),
        path,
        query: (op.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name),
        bodyProps: Object.keys(op.requestBody?.content['application/json']?.schema?.properties ?? {}),
        hasBody: op.requestBody !== undefined,
      })),
  );
}

/** Hub protocol routes (hidden from /openapi.json): method, path with `{x}` slots, and a valid body. */
const HUB_FUZZ: readonly { method: string; path: string; type?: string; body?: () => string }[] = [
  { method: 'GET', path: '/hub/api/{type}/{ns}/{name}' },
  { method: 'GET', path: '/hub/api/{type}/{ns}/{name}/revision/{rev}' },
  { method: 'GET', path: '/hub/api/{type}/{ns}/{name}/tree/{rev}/{path}' },
  {
    method: 'POST',
    path: '/hub/api/{type}/{ns}/{name}/paths-info/{rev}',
    type: 'application/json',
    body: () => JSON.stringify({ paths: ['a.txt', 'd'], expand: true }),
  },
  { method: 'GET', path: '/hub/{ns}/{name}/resolve/{rev}/{path}' },
  { method: 'HEAD', path: '/hub/{ns}/{name}/resolve/{rev}/{path}' },
  {
    method: 'POST',
    path: '/hub/api/repos/create',
    type: 'application/json',
    body: () => JSON.stringify({ name: 'fuzzed', organization: 'acme.train' }),
  },
  {
    method: 'DELETE',
    path: '/hub/api/repos/delete',
    type: 'application/json',
    body: () => JSON.stringify({ name: 'gone', organization: 'acme.train' }),
  },
  {
    method: 'POST',
    path: '/hub/api/{type}/{ns}/{name}/preupload/{rev}',
    type: 'application/json',
    body: () => JSON.stringify({ files: [{ path: 'x.bin', size: 10, sample: 'AAAA' }] }),
  },
  {
    method: 'POST',
    path: '/hub/{ns}/{name}.git/info/lfs/objects/batch',
    type: 'application/vnd.git-lfs+json',
    body: () =>
      JSON.stringify({
        operation: 'upload',
        transfers: ['basic', 'multipart'],
        objects: [{ oid: 'ab'.repeat(32), size: 3 }],
      }),
  },
  {
    method: 'POST',
    path: '/hub/api/{type}/{ns}/{name}/commit/{rev}',
    type: 'application/x-ndjson',
    body: () =>
      [
        { key: 'header', value: { summary: 'fuzz' } },
        { key: 'file', value: { path: 'f.txt', content: 'ZnV6eg==', encoding: 'base64' } },
        { key: 'lfsFile', value: { path: 'l.bin', algo: 'sha256', oid: 'ab'.repeat(32), size: 3 } },
        { key: 'deletedFile', value: { path: 'a.txt' } },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
  },
  { method: 'GET', path: '/hub/lfs/uploads/{upload}' },
  { method: 'POST', path: '/hub/lfs/uploads/{upload}', type: 'application/json', body: () => '{"parts":[]}' },
  { method: 'PUT', path: '/hub/lfs/uploads/{upload}/parts/{n}', type: 'application/octet-stream', body: () => 'abc' },
];

/** A valid line of a commit, or a JSON document, with one thing broken. */
const brokenNdjsonLine = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  fc
    .tuple(
      fc.constantFrom('header', 'file', 'lfsFile', 'deletedFile', 'deletedFolder', 'nope'),
      fc.dictionary(
        fc.constantFrom('path', 'content', 'oid', 'size', 'summary', 'parentCommit', 'encoding', 'algo', 'description'),
        breaking,
      ),
    )
    .map(([key, value]) => JSON.stringify({ key, value })),
  malformedJson,
);
const oddRange = fc.oneof(
  fc.constantFrom(
    'bytes=0-0',
    'bytes=-1',
    'bytes=0-',
    'bytes=5-1',
    'bytes=-0',
    'bytes=99999999999999999999-',
    'bytes=0-1,2-3',
    'bytes=',
    'items=0-1',
    'bytes=1e3-2',
    'bytes= 1-2',
    '',
  ),
  fc.tuple(fc.nat(), fc.nat()).map(([x, y]) => `bytes=${x}-${y}`),
);

for (const dialect of DIALECTS) {
  describe(`fuzzing the Hub protocol on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let upload: { id: string; token: string };

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect, { registry: { limits: { chunkBytes: 1 << 20, basicMaxBytes: 1 << 20 } } });
      acme = await seedTenant(t, 'acme');
      await seedTenant(t, 'globex');
      const hub = (url: string, payload: string, type: string) =>
        t.app.inject({
          method: 'POST',
          url,
          payload,
          headers: { authorization: `Bearer hf_${acme.ownerToken}`, 'content-type': type },
        });
      await hub(
        '/hub/api/repos/create',
        JSON.stringify({ name: 'fuzzed', organization: 'acme.train' }),
        'application/json',
      );
      const c = await hub(
        '/hub/api/models/acme.train/fuzzed/commit/main',
        HUB_FUZZ.find((r) => r.path.endsWith('/commit/{rev}'))!.body!().split('\n').slice(0, 2).join('\n'),
        'application/x-ndjson',
      );
      assert.equal(c.statusCode, 200, c.body);
      const b = await hub(
        '/hub/acme.train/fuzzed.git/info/lfs/objects/batch',
        JSON.stringify({
          operation: 'upload',
          objects: [{ oid: 'cd'.repeat(32), size: 3 << 20 }],
          transfers: ['multipart'],
        }),
        'application/vnd.git-lfs+json',
      );
      const href = new URL(JSON.parse(b.body).objects[0].actions.upload.href);
      upload = { id: href.pathname.split('/').at(-1)!, token: href.searchParams.get('token')! };
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('answers every Hub route below 500 with a coded error, whatever the path, body, range or token', {
      skip,
    }, async (ctx) => {
      const values: Record<string, string[]> = {
        type: ['models', 'datasets', 'spaces'],
        ns: ['acme.train', 'globex.train', 'acme'],
        name: ['fuzzed', 'missing'],
        rev: ['main', 'HEAD', '0'.repeat(40)],
        path: ['f.txt', 'a.txt', 'd/e'],
        upload: [upload.id, 'upl_none'],
        n: ['1', '2', '3', '4', '0'],
      };
      for (const [i, route] of HUB_FUZZ.entries()) {
        await ctx.test(`${route.method} ${route.path}`, async () => {
          const slots = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
          const arb = fc.record({
            params: fc.tuple(
              ...slots.map((s) =>
                fc.oneof(
                  { weight: 4, arbitrary: fc.constantFrom(...values[s]!) },
                  { weight: 1, arbitrary: oddPathSegment },
                ),
              ),
            ),
            body: fc.oneof(
              { weight: 2, arbitrary: fc.constant(route.body?.()) },
              {
                weight: 3,
                arbitrary: fc.array(brokenNdjsonLine, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('\n')),
              },
              { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
              { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
            ),
            type: fc.oneof(
              { weight: 4, arbitrary: fc.constant(route.type) },
              { weight: 1, arbitrary: wrongContentType },
            ),
            range: fc.option(oddRange, { freq: 2 }),
            token: fc.constantFrom(`hf_${acme.ownerToken}`, acme.ownerToken, 'hf_nope', upload.token),
            query: fc.constantFrom(
              '',
              `?token=${encodeURIComponent(upload.token)}`,
              '?token=x',
              '?recursive=true&cursor=%%',
              '?cursor=LTE',
            ),
          });
          await fc.assert(
            fc.asyncProperty(arb, async (req) => {
              let k = 0;
              const url = route.path.replace(/\{[^}]+\}/g, () => req.params[k++]!) + req.query;
              const before = await snapshotState(t);
              const res = await t.app.inject({
                method: route.method as 'GET',
                url,
                payload: route.body ? req.body : undefined,
                headers: {
                  authorization: `Bearer ${req.token}`,
                  ...(route.body && req.type ? { 'content-type': req.type } : {}),
                  ...(req.range !== null ? { range: req.range } : {}),
                },
              });
              const what = `${route.method} ${url} ${req.type ?? ''} ${String(req.body).slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
              assert.ok(res.statusCode < 500, `server error: ${what}`);
              if (res.statusCode >= 400 && route.method !== 'HEAD' && res.statusCode !== 416) {
                let body: { code?: unknown; error?: unknown };
                try {
                  body = JSON.parse(res.body);
                } catch {
                  assert.fail(`error body is not JSON: ${what}`);
                }
                // The Hub's shape {error: message, code}; checks of the URL made for every route
                // before the Hub's handlers answer in fabrik's envelope {error: {code, message}}.
                const e =
                  typeof body.error === 'object' && body.error !== null ? (body.error as typeof body) : undefined;
                assert.equal(typeof (e ? e.code : body.code), 'string', `no error code: ${what}`);
                assert.equal(
                  typeof (e ? (e as { message?: unknown }).message : body.error),
                  'string',
                  `no error message: ${what}`,
                );
                const now = await snapshotState(t);
                assert.deepEqual(
                  now,
                  before,
                  `a refused request changed state: ${what}\n${JSON.stringify(stateDiff(before, now)).slice(0, 2000)}`,
                );
              }
            }),
            { numRuns: RUNS * 2, seed: SEED + 1000 + i, endOnFailure: true },
          );
        });
      }
    });
  });
}
