// Project identities as accounts: LocalAccounts against this host's real passwd and group files
// (create, idempotent, concurrent, remove, never someone else's), SiteDirectory's refusal of a uid
// the directory does not know. Test uids from 263000, apart from the other suites'.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { LocalAccounts, SiteDirectory } from '../../src/exec/identities.js';
import { ExecError } from '../../src/exec/types.js';
import { identityOf } from '../../src/tenancy/identity.js';

const root = process.getuid?.() === 0;
if (!root && process.env.CI !== 'true') {
  console.warn('\n*** SKIPPING LocalAccounts tests: they need root (useradd/groupadd) ***\n');
}

const getent = (db: string, key: number | string): string | undefined => {
  try {
    return execFileSync('getent', [db, String(key)], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
};

describe('LocalAccounts (this host, real passwd)', { skip: !root && process.env.CI !== 'true' && 'needs root' }, () => {
  const id = identityOf(263_001);
  const foreign = { uid: 263_002, name: 'fabriktest-other' };
  after(async () => {
    await new LocalAccounts().remove(id);
    if (getent('passwd', foreign.name)) execFileSync('userdel', [foreign.name]);
    if (getent('group', foreign.name)) execFileSync('groupdel', [foreign.name]);
  });

  it('creates the group and a login-less user without a home, once, even when asked concurrently', async () => {
    const a = new LocalAccounts();
    const b = new LocalAccounts();
    await Promise.all([a.ensure(id), a.ensure(id), b.ensure(id)]);
    const [name, , uid, gid, , home, shell] = getent('passwd', id.uid)!.split(':');
    assert.deepEqual([name, uid, gid, shell], ['fabrik-263001', '263001', '263001', '/usr/sbin/nologin']);
    assert.equal(existsSync(home!), false, 'no home directory');
    assert.equal(getent('group', id.gid)!.split(':')[0], 'fabrik-263001');
    await new LocalAccounts().ensure(id); // a fresh process finds it with getent
  });

  it('removes it, and removing again is fine', async () => {
    await new LocalAccounts().ensure(id);
    const a = new LocalAccounts();
    await a.remove(id);
    assert.equal(getent('passwd', id.uid), undefined);
    assert.equal(getent('group', id.gid), undefined);
    await a.remove(id);
    await a.ensure(id); // the cache forgot it: created again
    assert.ok(getent('passwd', id.uid));
  });

  it('never takes over or removes an id that belongs to another account', async () => {
    execFileSync('useradd', ['--no-create-home', '--no-log-init', '-u', String(foreign.uid), '-U', foreign.name]);
    const other = identityOf(foreign.uid);
    await assert.rejects(
      new LocalAccounts().ensure(other),
      (e: unknown) => e instanceof ExecError && !e.retryable && /already belongs to "fabriktest-other"/.test(e.message),
    );
    await new LocalAccounts().remove(other);
    assert.equal(getent('passwd', foreign.uid)!.split(':')[0], foreign.name, 'still there');
  });
});

describe('SiteDirectory (LDAP/SSSD: checks, creates nothing)', () => {
  it('refuses a uid the directory does not resolve, naming it; passes one it does', async () => {
    const site = new SiteDirectory();
    await assert.rejects(site.ensure(identityOf(263_009)), (e: unknown) => {
      assert.ok(e instanceof ExecError);
      assert.equal(e.retryable, false);
      assert.match(e.message, /uid 263009/);
      return true;
    });
    assert.equal(getent('passwd', 263_009), undefined, 'nothing was created');
    await site.ensure({ uid: 0, gid: 0, user: 'root' });
    await site.remove({ uid: 0, gid: 0, user: 'root' });
    assert.ok(getent('passwd', 0), 'remove leaves the site alone');
  });
});
