// The GDPR Art. 30 records of acme (test/compliance/fixture.ts), field by field against the
// records; globex's records hold nothing of acme's; a viewer is refused (403), another org gets
// 404; the document verifies with the platform key, its audit entry names its digest, and it
// renders as Markdown and PDF.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { verifyDocument } from '../../src/compliance/sign.js';
import { chromiumPath, pdfText } from '../../src/metering/pdf.js';
import { DIALECTS, skipReason } from '../helpers/harness.js';
import { DATASET_CARD, type Fixture, SUBPROCESSORS, trainFixture } from './fixture.js';

const noChromium = existsSync(chromiumPath()) ? false : `no Chromium at ${chromiumPath()}`;
if (noChromium && process.env.CI === 'true') throw new Error(`CI must render PDFs: ${noChromium}`);
if (noChromium) console.warn(`\n*** SKIPPING the PDF check: ${noChromium} ***\n`);

for (const dialect of DIALECTS) {
  describe(`compliance gdpr-art30 (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let f: Fixture;
    before(async () => {
      if (skip) return;
      f = await trainFixture(dialect);
      const sa = await f.t.call('POST', '/api/v1/orgs/acme/serviceaccounts', {
        body: { name: 'ci', role: 'member', project: 'train' },
      });
      assert.equal(sa.status, 201, JSON.stringify(sa.body));
      const k = await f.t.call('POST', '/api/v1/orgs/acme/keys', {
        body: { name: 'ci', serviceAccount: 'ci', project: 'train' },
      });
      assert.equal(k.status, 201, JSON.stringify(k.body));
    });
    after(async () => {
      if (!skip) await f.close();
    });

    it("records acme's processing from its rows, field by field", { skip }, async () => {
      const res = await f.call('GET', '/api/v1/orgs/acme/compliance/gdpr-art30');
      assert.equal(res.status, 200, res.text);
      const d = res.body.document;
      const org = (await f.call('GET', '/api/v1/orgs/acme')).body;
      assert.equal(d.schema, 'fabrik.compliance/gdpr-art30/v1');
      assert.deepEqual(d.controller, {
        name: 'acme',
        displayName: org.displayName ?? '',
        residency: 'de',
        createdAt: org.createdAt,
      });
      assert.deepEqual(d.processor.site, { region: 'eu-de-local', country: 'de', inEU: true });
      assert.equal(d.residency.org, 'de');
      assert.match(d.residency.policyHash, /^[0-9a-f]{64}$/);
      const project = (await f.call('GET', '/api/v1/projects/acme.train')).body;
      assert.deepEqual(d.projects, [
        {
          name: 'train',
          displayName: project.displayName ?? '',
          createdAt: project.createdAt,
          workloads: { training: 1 },
          models: 2,
          datasets: 1,
          deployments: [],
        },
      ]);
      const ds = (await f.call('GET', `/api/v1/projects/acme.train/datasets/corpus/versions/${f.datasetCommit}`)).body;
      assert.deepEqual(d.personalData, {
        rule: 'a dataset version whose README.md card tags include "personal-data"',
        datasets: [
          {
            repo: 'acme.train/corpus',
            license: 'cc-by-4.0',
            tags: ['personal-data', 'support-tickets'],
            versions: [
              {
                commit: f.datasetCommit,
                createdAt: ds.version.createdAt,
                bytes: Buffer.byteLength(DATASET_CARD) + Buffer.byteLength('Ticket 1: …\n'),
              },
            ],
            stores: [{ store: 'default', region: 'eu-de-local' }],
          },
        ],
      });
      const blobs = await f.t.store.db.selectFrom('blobs').select(['size']).where('org_id', '=', org.id).execute();
      assert.ok(blobs.length >= 4, 'dataset, hand-made model and published model files');
      assert.deepEqual(d.storageLocations, [
        {
          store: 'default',
          kind: 'fs',
          region: 'eu-de-local',
          country: 'de',
          inEU: true,
          objects: blobs.length,
          bytes: blobs.reduce((n, b) => n + Number(b.size), 0),
        },
      ]);
      assert.deepEqual(d.processingLocations, [{ pool: 'b200', regions: ['eu-de-muc1'] }]);
      assert.deepEqual(d.subprocessors, SUBPROCESSORS);
      assert.deepEqual(d.retention, [
        { what: "a deleted project's files (workload directories, logs, outputs)", period: '7 days' },
        { what: "a deleted model or dataset repo's versions", period: '7 days' },
        { what: 'unfinished uploads', period: '1 day' },
        { what: 'the audit log (append-only, verifiable)', period: 'kept for the life of the site' },
      ]);
      assert.deepEqual(d.access.members, [
        { principal: 'acme-owner', kind: 'user', role: 'owner', scope: 'org acme' },
        { principal: 'acme-viewer', kind: 'user', role: 'viewer', scope: 'org acme' },
        { principal: 'ci', kind: 'service_account', role: 'member', scope: 'project acme.train' },
      ]);
      assert.deepEqual(
        d.access.serviceAccounts.map((s: any) => [s.name, s.activeKeys]),
        [['ci', 1]],
      );
      assert.deepEqual(d.access.breakGlass, { grants: 0, active: 0 });
      assert.deepEqual(d.notes, []);

      const key = (await f.call('GET', '/api/v1/registry/signing-key')).body;
      assert.equal(verifyDocument(res.body, key.publicKeyPem).ok, true);
      const entry = await f.t.store.db
        .selectFrom('audit_entries')
        .selectAll()
        .where('action', '=', 'compliance.gdpr-art30.generate')
        .orderBy('seq', 'desc')
        .executeTakeFirstOrThrow();
      assert.equal(entry.after_digest, res.body.signature.digest);
      assert.equal(entry.resource, 'orgs/acme/compliance/gdpr-art30');
    });

    it("keeps tenants apart: globex's records hold nothing of acme's; viewers 403, others 404", { skip }, async () => {
      const g = await f.call('GET', '/api/v1/orgs/globex/compliance/gdpr-art30', f.globex.ownerToken);
      assert.equal(g.status, 200, g.text);
      assert.doesNotMatch(JSON.stringify(g.body.document), /acme/);
      assert.deepEqual(g.body.document.personalData.datasets, []);
      assert.deepEqual(g.body.document.storageLocations, []);
      assert.ok(
        g.body.document.notes.some((n: string) => /no dataset version of this org is tagged personal-data/.test(n)),
      );
      const cross = await f.call('GET', '/api/v1/orgs/acme/compliance/gdpr-art30', f.globex.ownerToken);
      assert.equal(cross.status, 404);
      const viewer = await f.call('GET', '/api/v1/orgs/acme/compliance/gdpr-art30', f.acme.viewerToken);
      assert.equal(viewer.status, 403);
      assert.equal(viewer.body.error.code, 'FORBIDDEN');
      const denied = await f.t.store.db
        .selectFrom('audit_entries')
        .select(['outcome', 'actor_principal'])
        .where('action', '=', 'compliance.gdpr-art30.generate')
        .where('outcome', '=', 'denied')
        .execute();
      assert.deepEqual(
        denied.map((e) => e.actor_principal),
        ['user:acme-viewer'],
      );
    });

    it('renders as Markdown and PDF with the signature', { skip }, async () => {
      const md = await f.call('GET', '/api/v1/orgs/acme/compliance/gdpr-art30?format=md');
      assert.equal(md.status, 200);
      assert.match(md.text, /^# GDPR Art\. 30 records of processing: /m);
      assert.match(md.text, /^## Personal data$/m);
      assert.match(md.text, /\| acme\.train\/corpus \| cc-by-4\.0 \| [0-9a-f]{12} \| default \(eu-de-local\) \|/);
      assert.match(md.text, /\| Backup AG \| encrypted off-site backups \| at \| dpo@backup\.example \| — \|/);
      assert.match(md.text, /^- \*\*Digest:\*\* sha256:[0-9a-f]{64}$/m);
      if (noChromium) return;
      const pdf = await f.call('GET', '/api/v1/orgs/acme/compliance/gdpr-art30?format=pdf');
      assert.equal(pdf.status, 200);
      assert.equal(pdf.type, 'application/pdf');
      const text = pdfText(pdf.body as Buffer);
      assert.match(text, /GDPR Art\. 30 records of processing/);
      assert.match(text, /acme\.train\/corpus/);
    });
  });
}
