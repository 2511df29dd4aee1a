import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { identityOf } from '../domain/identity.js';
import { isolationArgv } from './sandbox.js';

const devRoot = mkdtempSync(join(tmpdir(), 'fabrik-dev-'));
for (const n of ['nvidia0', 'nvidia1', 'nvidia2', 'nvidia3', 'nvidiactl', 'nvidia-uvm'])
  writeFileSync(join(devRoot, n), '');
const plan = {
  identity: identityOf(200_007),
  workDir: '/srv/fabrik/workloads/prj_a/wl_a/work',
  workdir: '/srv/code/train',
  gpuIndexes: [1, 3],
  devRoot,
};

describe('isolationArgv', () => {
  it('passes in only the placed GPUs (and the shared control devices)', () => {
    const argv = isolationArgv('sandbox', plan);
    const devs = argv.flatMap((a, i) => (a === '--dev-bind' ? [argv[i + 2]] : []));
    assert.deepEqual(devs, ['/dev/nvidia1', '/dev/nvidia3', '/dev/nvidiactl', '/dev/nvidia-uvm']);
    const none = isolationArgv('sandbox', { ...plan, gpuIndexes: [] });
    assert.ok(!none.includes('--dev-bind'));
  });

  it('binds the workdir read-only and the workload directory read-write, nothing else of the host', () => {
    const argv = isolationArgv('sandbox', plan);
    const binds = argv.flatMap((a, i) => (a === '--bind' || a === '--ro-bind' ? [`${a} ${argv[i + 1]}`] : []));
    assert.ok(binds.includes('--ro-bind /srv/code/train'));
    assert.ok(binds.includes('--bind /srv/fabrik/workloads/prj_a/wl_a/work'));
    for (const b of binds)
      assert.match(
        b,
        /^--ro-bind \/(usr|etc|opt|bin|sbin|lib\w*)$|\/srv\/code\/train$|^--bind \/srv\/fabrik\/workloads\/prj_a\/wl_a\/work$/,
      );
    assert.ok(argv.includes('--unshare-pid') && argv.includes('--die-with-parent'));
    assert.equal(argv[argv.indexOf('--chdir') + 1], '/srv/code/train');
    // A private /tmp the task (not root) can write, sticky as on any host.
    const tmp = argv.indexOf('/tmp');
    assert.deepEqual(argv.slice(tmp - 3, tmp + 1), ['--perms', '1777', '--tmpfs', '/tmp']);
  });

  it('drops to the project identity with no groups and no capabilities', () => {
    for (const level of ['sandbox', 'uid'] as const) {
      const argv = isolationArgv(level, plan);
      const i = argv.indexOf('setpriv');
      assert.deepEqual(argv.slice(i, i + 4), ['setpriv', '--reuid=200007', '--regid=200007', '--clear-groups']);
      assert.ok(argv.includes('--no-new-privs') && argv.includes('--bounding-set=-all'));
      assert.equal(argv.at(-1), '--');
    }
    assert.deepEqual(isolationArgv('none', plan), []);
  });
});
