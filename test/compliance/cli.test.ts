// `fabrik compliance …` and `fabrik quota list` as child processes against the fixture's server
// (SQLite): the signed JSON to a file and `verify` on it (a tampered copy exits 9), Markdown on
// stdout with the Missing heading, the PDF to a file, another org's model exit 3, and quota
// listings with USED and BORROWED beside GUARANTEED and LIMIT.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromiumPath } from '../../src/metering/pdf.js';
import { ENTRY, REPO_ROOT, collectRun } from '../helpers/child-server.js';
import { OPERATOR_TOKEN } from '../helpers/harness.js';
import { type Fixture, trainFixture } from './fixture.js';

describe('fabrik compliance (CLI)', () => {
  let f: Fixture;
  let endpoint: string;
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-compliance-cli-'));
  before(async () => {
    f = await trainFixture('sqlite');
    endpoint = await f.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const fabrik = (args: string[], key = f.acme.ownerToken) =>
    collectRun(
      spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, NO_COLOR: '1', FABRIK_ENDPOINT: endpoint, FABRIK_API_KEY: key, HOME: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
      { timeoutMs: 60_000 },
    );

  it('writes the signed JSON, verifies it, and refuses a tampered copy', async () => {
    const file = join(dir, 'annex.json');
    const r = await fabrik(['compliance', 'annex-xi', 'acme.train/llm@main', '-o', 'json', '--out', file]);
    assert.equal(r.code, 0, r.stderr);
    const signed = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(signed.document.model.commit, f.modelCommit);
    assert.equal(signed.document.compute.workload.name, 'train-llm');
    const ok = await fabrik(['compliance', 'verify', file]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^verified: signed by [0-9a-f]{64}, sha256:[0-9a-f]{64}$/m);
    signed.document.compute.gpuHours *= 10;
    writeFileSync(file, JSON.stringify(signed));
    const bad = await fabrik(['compliance', 'verify', file, '-o', 'json']);
    assert.equal(bad.code, 9);
    assert.equal(JSON.parse(bad.stdout).ok, false);
  });

  it('prints Markdown with the missing sections, writes the PDF, and exits 3 for another org', async () => {
    const md = await fabrik(['compliance', 'annex-xi', 'acme.train/handmade']);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /^# EU AI Act Annex XI technical documentation: acme\.train\/handmade@/m);
    assert.match(md.stdout, /^## Missing$/m);
    const other = await fabrik(['compliance', 'annex-xi', 'acme.train/llm'], f.globex.ownerToken);
    assert.equal(other.code, 3, other.stderr);
    assert.match(other.stderr, /NOT_FOUND/);
    const usage = await fabrik(['compliance', 'annex-xi', 'not-a-ref']);
    assert.equal(usage.code, 2);
    if (!existsSync(chromiumPath())) return;
    const pdf = join(dir, 'gdpr.pdf');
    const g = await fabrik(['compliance', 'gdpr-art30', '--org', 'acme', '--pdf', pdf]);
    assert.equal(g.code, 0, g.stderr);
    assert.equal(readFileSync(pdf).subarray(0, 5).toString(), '%PDF-');
  });

  it('lists quotas with current use beside guaranteed and limit', async () => {
    const r = await fabrik(['get', 'quotas'], OPERATOR_TOKEN);
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    assert.deepEqual(header!.split(/\s{2,}/), [
      'PROJECT',
      'POOL',
      'GUARANTEED',
      'LIMIT',
      'USED',
      'BORROWED',
      'UPDATED',
    ]);
    const acme = rows.map((l) => l.split(/\s{2,}/)).find((c) => c[0] === 'acme.train')!;
    // The training attempt ended: nothing is held now.
    assert.deepEqual(acme.slice(0, 6), ['acme.train', 'b200', '8', '16', '0', '0']);
  });
});
