import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveWorkdir } from './workdir.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'fabrik-wd-')));
mkdirSync(join(root, 'code', 'train'), { recursive: true });
symlinkSync('/etc', join(root, 'out'));
symlinkSync('code/train', join(root, 'inside'));

describe('resolveWorkdir', () => {
  it('resolves inside the root, through links that stay inside', () => {
    assert.equal(resolveWorkdir(root, 'code/train'), join(root, 'code', 'train'));
    assert.equal(resolveWorkdir(root, 'inside'), join(root, 'code', 'train'));
  });
  it('refuses lexical escapes, symbolic links out of the root, and missing directories', () => {
    assert.throws(() => resolveWorkdir(root, '../..'), /outside the allowed root/);
    assert.throws(() => resolveWorkdir(root, '/etc'), /outside the allowed root/);
    assert.throws(() => resolveWorkdir(root, 'out'), /through a symbolic link/);
    assert.throws(() => resolveWorkdir(root, 'nope'), /does not exist/);
  });
});
