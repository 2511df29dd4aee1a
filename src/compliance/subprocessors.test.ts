import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SubprocessorsError, loadSubprocessors, parseSubprocessors } from './subprocessors.js';

describe('sub-processors file', () => {
  it('reads a list or {subprocessors: [...]}, YAML or JSON', () => {
    const yaml = `- { name: Colo GmbH, purpose: power and cooling, country: DE }
- name: Backup AG
  purpose: backups
  country: at
  contact: dpo@backup.example
  dataCategories: [all stored artifacts]
  safeguards: encrypted before it leaves the site
`;
    assert.deepEqual(parseSubprocessors(yaml), [
      { name: 'Colo GmbH', purpose: 'power and cooling', country: 'de' },
      {
        name: 'Backup AG',
        purpose: 'backups',
        country: 'at',
        contact: 'dpo@backup.example',
        dataCategories: ['all stored artifacts'],
        safeguards: 'encrypted before it leaves the site',
      },
    ]);
    assert.deepEqual(parseSubprocessors('{"subprocessors": [{"name": "A", "purpose": "b", "country": "fr"}]}'), [
      { name: 'A', purpose: 'b', country: 'fr' },
    ]);
    assert.deepEqual(parseSubprocessors(''), []);
  });

  it('names the file, line and column of a problem', () => {
    const bad = '- name: A\n  purpose: b\n  country: germany\n';
    assert.throws(
      () => parseSubprocessors(bad, 'sp.yaml'),
      (e: Error) => {
        assert.ok(e instanceof SubprocessorsError);
        assert.match(e.message, /^sp\.yaml:3:12: \[0\]\.country: must be at most 2 characters/);
        return true;
      },
    );
    assert.throws(
      () => parseSubprocessors('- name: A\n  purpose: b\n  country: de\n  fax: 1\n', 'sp.yaml'),
      /sp\.yaml:4:3: \[0\]\.fax: unknown field/,
    );
    assert.throws(() => parseSubprocessors('- name: A\n', 'sp.yaml'), /missing required field "purpose"/);
    assert.throws(() => parseSubprocessors('[', 'sp.yaml'), /sp\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('loads nothing when unset and refuses an unreadable file', () => {
    assert.deepEqual(loadSubprocessors(''), []);
    assert.throws(() => loadSubprocessors('/nonexistent/sp.yaml'), /FABRIK_SUBPROCESSORS: cannot read/);
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-sp-'));
    writeFileSync(join(dir, 'sp.json'), '[{"name":"A","purpose":"b","country":"nl"}]');
    assert.deepEqual(loadSubprocessors(join(dir, 'sp.json')), [{ name: 'A', purpose: 'b', country: 'nl' }]);
  });
});
