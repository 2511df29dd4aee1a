// Where project identities become accounts. Slurm resolves `sbatch --uid/--gid` in the passwd and
// group databases (on the submit host, the controller and every node), so each project's uid needs
// a user and a group entry before its first job. Two adapters:
//   LocalAccounts   creates them with groupadd/useradd on this host: for a single-host cluster (the
//                   dev cluster) or where configuration management copies /etc/passwd to the nodes
//   SiteDirectory   a site with LDAP/SSSD creates the accounts itself; fabrik only checks that the
//                   uid resolves and refuses the launch (naming the uid) when it does not
// Both cache what they have seen, so a launch costs a lookup only for a project's first job.
import { type CommandRunner, execFileRunner } from './slurm-cmd.js';
import { ExecError } from './types.js';
import type { ProjectIdentity } from '../domain/identity.js';

export interface IdentityDirectory {
  readonly kind: 'local' | 'site';
  /** Makes sure the identity resolves (passwd and group); throws ExecError when it cannot. */
  ensure(identity: ProjectIdentity): Promise<void>;
  /** Removes what `ensure` created (a deleted project's identity, once purged); absent is fine. */
  remove(identity: ProjectIdentity): Promise<void>;
}

export type IdentityKind = IdentityDirectory['kind'];

export function identityDirectory(kind: IdentityKind, run?: CommandRunner): IdentityDirectory {
  return kind === 'site' ? new SiteDirectory(run) : new LocalAccounts(run);
}

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
const TIMEOUT_MS = 30_000;
// shadow-utils' exit codes: 10 = could not lock /etc/passwd or /etc/group (another process edits
// them: retried); 6 = the user or group does not exist (userdel/groupdel: already gone).
const LOCKED = 10;
const ABSENT = 6;
const LOCK_RETRIES = 20;

interface Entry {
  readonly name: string;
  readonly id: number;
}

abstract class Lookups {
  protected readonly ensured = new Set<number>();
  constructor(protected readonly run: CommandRunner = execFileRunner) {}

  /** The passwd or group entry of a numeric id, or undefined when none resolves. */
  protected async lookup(db: 'passwd' | 'group', id: number): Promise<Entry | undefined> {
    const r = await this.run('getent', [db, String(id)], { env: ENV, timeoutMs: TIMEOUT_MS });
    if (r.spawnError) throw new ExecError(`getent ${db} ${id}: ${r.spawnError}`, true);
    if (r.code === 2) return undefined; // "key not found"
    if (r.code !== 0) throw new ExecError(`getent ${db} ${id} exited with ${r.code}: ${r.stderr.trim()}`, true);
    const [name, , idText] = r.stdout.trim().split('\n')[0]!.split(':');
    return { name: name!, id: Number(idText) };
  }
}

/** Accounts in this host's /etc/passwd and /etc/group (needs root). */
export class LocalAccounts extends Lookups implements IdentityDirectory {
  readonly kind = 'local' as const;
  // One change at a time from this process; other processes are kept out by shadow-utils' lock.
  private queue: Promise<unknown> = Promise.resolve();

  ensure(identity: ProjectIdentity): Promise<void> {
    if (this.ensured.has(identity.uid)) return Promise.resolve();
    return this.serial(async () => {
      await this.ensureGroup(identity);
      await this.ensureUser(identity);
      this.ensured.add(identity.uid);
    });
  }

  remove(identity: ProjectIdentity): Promise<void> {
    return this.serial(async () => {
      this.ensured.delete(identity.uid);
      // Only what is ours: the entry of this uid under this name (never a site's account).
      const user = await this.lookup('passwd', identity.uid);
      if (user?.name === identity.user) await this.shadow('userdel', [identity.user], true);
      const group = await this.lookup('group', identity.gid);
      if (group?.name === identity.user) await this.shadow('groupdel', [identity.user], true);
    });
  }

  private async ensureGroup(identity: ProjectIdentity): Promise<void> {
    const found = await this.lookup('group', identity.gid);
    if (found) return this.mustBe(found, identity, 'group', identity.gid);
    await this.create('groupadd', ['-g', String(identity.gid), identity.user], () =>
      this.lookup('group', identity.gid),
    );
  }

  private async ensureUser(identity: ProjectIdentity): Promise<void> {
    const found = await this.lookup('passwd', identity.uid);
    if (found) return this.mustBe(found, identity, 'user', identity.uid);
    const args = [
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      // No lastlog/faillog records (sparse files sized by the uid) and no subordinate id ranges.
      '--no-log-init',
      '-K',
      'SUB_UID_COUNT=0',
      '-K',
      'SUB_GID_COUNT=0',
      '-u',
      String(identity.uid),
      '-g',
      String(identity.gid),
      identity.user,
    ];
    await this.create('useradd', args, () => this.lookup('passwd', identity.uid));
  }

  /** Runs groupadd/useradd; when it fails, another process may have created the same entry meanwhile. */
  private async create(cmd: string, args: string[], recheck: () => Promise<Entry | undefined>): Promise<void> {
    try {
      await this.shadow(cmd, args);
    } catch (err) {
      if ((await recheck())?.name !== args.at(-1)) throw err;
    }
  }

  /** An id held under another name is not fabrik's to take over. */
  private mustBe(found: Entry, identity: ProjectIdentity, what: string, id: number): void {
    if (found.name !== identity.user) {
      throw new ExecError(
        `${what} id ${id} already belongs to "${found.name}", not to ${identity.user}: choose another FABRIK_UID_BASE`,
        false,
      );
    }
  }

  /** groupadd/useradd/userdel/groupdel, retried while another process holds the lock. */
  private async shadow(cmd: string, args: string[], absentIsFine = false): Promise<void> {
    for (let i = 0; ; i++) {
      const r = await this.run(cmd, args, { env: ENV, timeoutMs: TIMEOUT_MS });
      if (r.spawnError) throw new ExecError(`${cmd}: ${r.spawnError}`, true);
      if (r.code === 0 || (absentIsFine && r.code === ABSENT)) return;
      if (r.code === LOCKED && i < LOCK_RETRIES) {
        await new Promise((res) => setTimeout(res, 100 + Math.random() * 200));
        continue;
      }
      // Still locked, or userdel of an account with processes left (8): worth trying again later.
      const msg = `${cmd} ${args.at(-1)} exited with ${r.code}: ${r.stderr.trim()}`;
      throw new ExecError(msg, r.code === LOCKED || cmd === 'userdel');
    }
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** A site's directory service (LDAP, SSSD): fabrik creates nothing and checks that the ids resolve. */
export class SiteDirectory extends Lookups implements IdentityDirectory {
  readonly kind = 'site' as const;

  async ensure(identity: ProjectIdentity): Promise<void> {
    if (this.ensured.has(identity.uid)) return;
    const user = await this.lookup('passwd', identity.uid);
    const group = await this.lookup('group', identity.gid);
    const missing = [!user && `uid ${identity.uid}`, !group && `gid ${identity.gid}`].filter(Boolean);
    if (missing.length) {
      throw new ExecError(
        `project identity ${identity.user}: ${missing.join(' and ')} not found in the site's directory ` +
          `(getent ${!user ? 'passwd' : 'group'} found nothing); create it (LDAP/SSSD) for the Slurm controller ` +
          `and every node, or run the server with --identities local`,
        false,
      );
    }
    this.ensured.add(identity.uid);
  }

  async remove(identity: ProjectIdentity): Promise<void> {
    // The site owns its accounts; forgetting is all there is to do here.
    this.ensured.delete(identity.uid);
  }
}
