import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DatasetVersionFacts, type GdprFacts, buildGdprArt30, tagsPersonalData } from './gdpr-art30.js';

const v = (
  name: string,
  commit: string,
  tags: string[],
  createdAt: string,
  region = 'eu-de-muc1',
): DatasetVersionFacts => ({
  project: 'acme.train',
  name,
  commit,
  createdAt,
  tags,
  license: commit === 'c2' ? 'cc-by-4.0' : null,
  bytes: 5,
  stores: [{ store: 'default', region }],
});
const facts = (over: Partial<GdprFacts> = {}): GdprFacts => ({
  generatedAt: '2026-12-01T12:00:00.000Z',
  generatedBy: 'user:alice',
  org: { name: 'acme', displayName: 'ACME', residency: 'de', createdAt: '2026-01-01T00:00:00.000Z' },
  site: { region: 'eu-de-muc1', country: 'de', inEU: true },
  policy: { hash: 'h' },
  projects: [{ name: 'train', displayName: '', createdAt: '', workloads: {}, models: 0, datasets: 2, deployments: [] }],
  datasetVersions: [
    v('tickets', 'c2', ['PII', 'Personal-Data'], '2026-02-01T00:00:00.000Z', 'eu-fr-par1'),
    v('tickets', 'c1', ['personal-data'], '2026-01-01T00:00:00.000Z'),
    v('weather', 'c3', ['public'], '2026-01-01T00:00:00.000Z'),
  ],
  storage: [],
  compute: [],
  subprocessors: [{ name: 'Colo', purpose: 'power', country: 'de' }],
  retention: [],
  members: [],
  serviceAccounts: [],
  breakGlass: { grants: 0, active: 0 },
  ...over,
});

describe('GDPR Art. 30 document', () => {
  it('marks personal data by the tag alone, case-insensitively', () => {
    assert.equal(tagsPersonalData(['Personal-Data ']), true);
    assert.equal(tagsPersonalData(['personal', 'data']), false);
    assert.equal(tagsPersonalData(undefined), false);
  });

  it('lists each tagged dataset once, its versions in time order and every store they are in', () => {
    const d = buildGdprArt30(facts());
    assert.deepEqual(d.personalData.datasets, [
      {
        repo: 'acme.train/tickets',
        license: 'cc-by-4.0',
        tags: ['PII', 'Personal-Data'],
        versions: [
          { commit: 'c1', createdAt: '2026-01-01T00:00:00.000Z', bytes: 5 },
          { commit: 'c2', createdAt: '2026-02-01T00:00:00.000Z', bytes: 5 },
        ],
        stores: [
          { store: 'default', region: 'eu-de-muc1' },
          { store: 'default', region: 'eu-fr-par1' },
        ],
      },
    ]);
    assert.deepEqual(d.notes, []);
  });

  it('says what the records leave open', () => {
    const d = buildGdprArt30(
      facts({
        subprocessors: [],
        datasetVersions: [],
        policy: null,
        projects: [
          {
            name: 'p',
            displayName: '',
            createdAt: '',
            workloads: {},
            models: 0,
            datasets: 0,
            deployments: [{ name: 'chat', storesPrompts: true }],
          },
        ],
      }),
    );
    assert.equal(d.notes.length, 4);
    assert.match(d.notes.join('\n'), /no sub-processors.*\n.*personal-data\n.*p\/chat\n.*no sovereignty policy/);
  });
});
