// Tenant isolation on the local executor, tried from the other tenant's side at the process level:
// a real server, two orgs, and org B's job attacking org A's running job, the control plane's files
// and processes, and the machine's limits. Every attempt must fail and A's work finish untouched.
// Needs root, bubblewrap and writable cgroups (the `sandbox` level); in CI (CI=true) it never skips.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { detectIsolation } from '../../src/exec/sandbox.js';
import {
  REPO_ROOT,
  type ServerProcess,
  api,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';

const OPERATOR_TOKEN = `fbk_isoop_${'i'.repeat(43)}`;
const level = (() => {
  try {
    return detectIsolation({ want: 'sandbox' }).level;
  } catch (err) {
    return (err as Error).message;
  }
})();
const skip = level === 'sandbox' ? false : `the sandbox level is not available here: ${level}`;
if (skip && process.env.CI) throw new Error(`CI must run the isolation suite: ${skip}`);
if (skip) console.warn(`SKIPPING tenant isolation suite: ${skip}`);

/** Each line B's job prints: `DENIED <attack>` when refused, `LEAK <attack>: <what it got>` when not. */
const ATTACKS = String.raw`
try() { name=$1; shift; if out=$("$@" 2>/dev/null) && [ -n "$out" ]; then echo "LEAK $name: $(printf %s "$out" | head -c 60 | tr '\n' ' ')"; else echo "DENIED $name"; fi; }
echo "ID $(id -u):$(id -g) groups=$(id -G)"
try read-a-work cat "$A_WORK/secret.txt"
try list-a-workload ls "$A_WORKLOAD"
try read-a-log cat "$A_WORKLOAD/attempt-1/task-0.log"
try read-db head -c 16 "$DATA/fabrik.db"
try read-wal head -c 16 "$DATA/fabrik.db-wal"
try read-server-log head -c 16 "$DATA/logs/fabrik.log"
try read-master-key head -c 16 "$DATA/master.key"
# What the sandbox shows at the data directory's path is only the empty skeleton leading to B's own directory.
try list-data sh -c "ls -A '$DATA' | grep -vx workloads"
try list-projects sh -c "ls -A '$DATA/workloads' | grep -vx '$B_PROJECT'"
try read-server-environ cat "/proc/$SERVER_PID/environ"
# Pid 1 is the sandbox's own init (bubblewrap); anything else not B's would be another's process.
try see-other-processes sh -c "ps -eo pid=,uid= | awk -v me=$(id -u) '\$1 != 1 && \$2 != me'"
try read-shadow head -c 16 /etc/shadow
try read-root ls /root
try write-data sh -c "echo x > '$DATA/pwned' && echo wrote"
try write-source sh -c "echo x > '$SOURCE/pwned' && echo wrote"
for pid in $A_PIDS; do try "kill-a-$pid" sh -c "kill -9 $pid && echo killed"; done
echo "DONE"
# Last: every process this job may signal. In its namespace that is only its own (it ends itself).
kill -9 -1
`;

describe('tenant isolation on the local executor (tenant B attacks tenant A)', { skip }, () => {
  let server: ServerProcess;
  let op: ReturnType<typeof api>;
  let keyA: ReturnType<typeof api>;
  let keyB: ReturnType<typeof api>;
  const dataDir = mkdtempSync(join(tmpdir(), 'fabrik-iso-'));
  const workdirRoot = mkdtempSync(join(tmpdir(), 'fabrik-iso-code-'));
  const projects = new Map<string, { id: string; uid: number }>();

  const submit = (who: ReturnType<typeof api>, project: string, spec: Record<string, unknown>) =>
    who('POST', `/api/v1/projects/${project}/workloads`, {
      kind: 'batch',
      resources: { pool: 'dev', gpu: 1 },
      max_duration: '5m',
      grace_period: '2s',
      ...spec,
    });
  const until = (who: ReturnType<typeof api>, project: string, name: string, done: (w: any) => boolean, ms = 60_000) =>
    eventually(
      async () => {
        const w = (await who('GET', `/api/v1/projects/${project}/workloads/${name}`)).body;
        return done(w) ? w : undefined;
      },
      ms,
      `${name} in ${project}`,
    );
  const dirs = (project: string, id: string) => {
    const workload = join(dataDir, 'workloads', projects.get(project)!.id, id);
    return { workload, work: join(workload, 'work'), log: join(workload, 'attempt-1', 'task-0.log') };
  };

  before(async () => {
    mkdirSync(join(workdirRoot, 'code'));
    symlinkSync('/', join(workdirRoot, 'escape'));
    server = await startServerProcess({
      dataDir,
      database: join(dataDir, 'fabrik.db'),
      bootstrapToken: OPERATOR_TOKEN,
      devGpus: 4,
      env: {
        FABRIK_WORKDIR_ROOT: workdirRoot,
        FABRIK_TASK_PIDS_MAX: '128',
        FABRIK_ISOLATION: 'sandbox',
        // Project uids of this suite's own: "nothing of B's uid is left on the machine" is checked
        // with ps, and suites running beside it (the console's browser tests run workloads) would
        // otherwise get the same uids from the default base.
        FABRIK_UID_BASE: '280000',
      },
    });
    op = api(server.url, OPERATOR_TOKEN);
    for (const org of ['acme', 'globex']) {
      assert.equal((await op('POST', '/api/v1/orgs', { name: org, residency: 'de' })).status, 201);
      const p = await op('POST', `/api/v1/orgs/${org}/projects`, { name: 'train' });
      assert.equal(p.status, 201);
      projects.set(`${org}.train`, { id: p.body.id, uid: p.body.uid });
      assert.equal(
        (await op('PUT', `/api/v1/projects/${org}.train/quotas/dev`, { guaranteed: 2, limit: 2 })).status,
        200,
      );
      await op('POST', `/api/v1/orgs/${org}/members`, { user: `${org}-dev`, role: 'member' });
    }
    const token = async (org: string) =>
      (await op('POST', `/api/v1/orgs/${org}/keys`, { name: 'dev', user: `${org}-dev` })).body.token as string;
    keyA = api(server.url, await token('acme'));
    keyB = api(server.url, await token('globex'));
  });
  after(async () => {
    await killAllServerProcesses();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workdirRoot, { recursive: true, force: true });
  });

  it('says which isolation level is in force: /readyz and the node listing', async () => {
    const ready = await fetch(`${server.url}/readyz`).then((r) => r.json());
    assert.equal(ready.isolation.level, 'sandbox');
    assert.match(ready.isolation.summary, /bubblewrap/);
    const nodes = await op('GET', '/api/v1/fleet/nodes');
    assert.ok(nodes.body.items.length > 0);
    for (const n of nodes.body.items) assert.equal(n.isolation, 'sandbox');
    assert.match(server.stderr(), /task isolation: sandbox/);
  });

  it('gives every project its own uid, and keeps the data files private', () => {
    const a = projects.get('acme.train')!;
    const b = projects.get('globex.train')!;
    assert.ok(a.uid >= 200_000 && b.uid >= 200_000 && a.uid !== b.uid, `${a.uid} ${b.uid}`);
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(dataDir), 0o700);
    for (const f of ['fabrik.db', 'fabrik.db-wal', 'logs/fabrik.log']) assert.equal(mode(join(dataDir, f)), 0o600, f);
  });

  it("refuses B's attacks on A's running job, the control plane and the machine; A finishes untouched", async () => {
    // A: writes a secret into its own directory, logs, and runs for a while.
    const a = await submit(keyA, 'acme.train', {
      name: 'victim',
      env: { STEPS: '40' },
      run: 'echo "a-secret-$FABRIK_WORKLOAD_ID" > "$FABRIK_WORKLOAD_DIR/secret.txt"; i=0; while [ $i -lt $STEPS ]; do echo "a-step $i"; i=$((i+1)); sleep 0.25; done; echo a-done > "$FABRIK_WORKLOAD_DIR/out.txt"',
    });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    const aDirs = dirs('acme.train', a.body.id);
    await eventually(async () => (readIfExists(aDirs.log).includes('a-step 2') ? true : undefined), 30_000, 'A to log');
    const aUid = projects.get('acme.train')!.uid;
    const aPids = execFileSync('ps', ['-o', 'pid=', '-u', String(aUid)], { encoding: 'utf8' })
      .trim()
      .split(/\s+/);
    assert.ok(aPids.length > 0, "A's processes run under A's uid");

    const serverPid = String(server.child.pid);
    const b = await submit(keyB, 'globex.train', {
      name: 'attacker',
      env: {
        A_WORK: aDirs.work,
        A_WORKLOAD: aDirs.workload,
        A_PIDS: aPids.join(' '),
        DATA: dataDir,
        SOURCE: REPO_ROOT,
        SERVER_PID: serverPid,
        B_PROJECT: projects.get('globex.train')!.id,
      },
      run: ATTACKS,
    });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    const bDone = await until(
      keyB,
      'globex.train',
      'attacker',
      (w) => w.status !== 'pending' && w.status !== 'running',
    );
    assert.equal(bDone.status, 'failed', 'B ended itself with kill -9 -1');
    const report = readFileSync(dirs('globex.train', b.body.id).log, 'utf8');
    assert.match(report, /DONE/, report);
    assert.equal(report.match(/^LEAK .*/gm), null, report);
    assert.match(
      report,
      new RegExp(
        `^ID ${projects.get('globex.train')!.uid}:${projects.get('globex.train')!.uid} groups=${projects.get('globex.train')!.uid}$`,
        'm',
      ),
    );
    for (const attack of ['read-a-work', 'read-db', 'read-server-environ', 'write-source', 'write-data'])
      assert.match(report, new RegExp(`^DENIED ${attack}$`, 'm'));

    const aDone = await until(keyA, 'acme.train', 'victim', (w) => w.status !== 'pending' && w.status !== 'running');
    assert.equal(aDone.status, 'succeeded', aDone.message);
    assert.equal(aDone.attempts, 1);
    assert.equal(readFileSync(join(aDirs.work, 'out.txt'), 'utf8'), 'a-done\n');
    assert.match(readFileSync(aDirs.log, 'utf8'), /a-step 39/);
    const st = statSync(aDirs.work);
    assert.equal(st.uid, projects.get('acme.train')!.uid);
    assert.equal(st.mode & 0o777, 0o700);
  });

  it('refuses a workdir that is a symbolic link out of the root, at submit', async () => {
    const r = await submit(keyB, 'globex.train', { name: 'escape', workdir: 'escape', run: 'true' });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, /leads outside the allowed root .* \(through a symbolic link\)/);
    const ok = await submit(keyB, 'globex.train', {
      name: 'inside',
      workdir: 'code',
      run: 'pwd; touch x || echo read-only',
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    await until(keyB, 'globex.train', 'inside', (w) => w.status === 'succeeded');
    const log = readFileSync(dirs('globex.train', ok.body.id).log, 'utf8');
    assert.match(log, new RegExp(`${join(workdirRoot, 'code')}\\n[^]*read-only`));
  });

  it('kills a memory hog over its limit and says OOMKilled; contains a fork bomb that calls setsid', async () => {
    const hog = await submit(keyB, 'globex.train', {
      name: 'hog',
      resources: { pool: 'dev', gpu: 1, memory: '1Gi' },
      run: `node -e "const a=[]; for(;;) a.push(Buffer.alloc(64<<20, 1))"`,
    });
    assert.equal(hog.status, 201, JSON.stringify(hog.body));
    const bomb = await submit(keyB, 'globex.train', {
      name: 'bomb',
      // Once the bomb holds every pid the task may have, nothing more forks: the shell execs its wait.
      run: `setsid sh -c 'while :; do sleep 30 & done' & exec sleep 6`,
    });
    assert.equal(bomb.status, 201, JSON.stringify(bomb.body));
    const pidsCurrent = join('/sys/fs/cgroup/pids/fabrik', `${bomb.body.id}.1.0`, 'pids.current');
    const held = await eventually(
      async () => {
        const n = Number(readIfExists(pidsCurrent).trim());
        return n >= 100 ? n : undefined;
      },
      20_000,
      'the bomb to fill its pids limit',
    );
    assert.ok(held <= 128, `the bomb is held at the pids limit: ${held}`);
    const h = await until(keyB, 'globex.train', 'hog', (w) => w.status === 'failed' || w.status === 'succeeded');
    assert.equal(h.status, 'failed');
    assert.equal(h.reason, 'OOMKilled', h.message);
    const bm = await until(keyB, 'globex.train', 'bomb', (w) => w.status === 'failed' || w.status === 'succeeded');
    assert.equal(bm.status, 'succeeded', bm.message);
    // The escaped loop is gone with its task: nothing of B's uid is left on the machine.
    await eventually(
      async () => {
        const left = spawnPs(projects.get('globex.train')!.uid);
        return left === '' ? true : undefined;
      },
      10_000,
      "B's processes to be gone",
    );
  });
});

function readIfExists(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function spawnPs(uid: number): string {
  try {
    return execFileSync('ps', ['-o', 'pid=', '-u', String(uid)], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // ps exits 1 when nothing matches
  }
}
