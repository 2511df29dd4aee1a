// Tenant isolation on Slurm, seen from the hostile tenant's side: real Slurm (scripts/slurm-dev),
// real processes. Tenant A's job and tenant B's jobs run under their projects' own uids; B tries to
// read A's files, logs and environment, the server's database, log and master key and its
// environment, to signal A's processes and Slurm job, to write where it must not, to exceed its
// memory, and to fork without bound (in new sessions). B reports each attempt itself ("DENIED x"
// or "LEAK x"); no LEAK may appear, and A's job must finish untouched with its expected output.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalAccounts } from '../../src/exec/identities.js';
import { execFileRunner } from '../../src/exec/slurm-cmd.js';
import { SlurmExecutor } from '../../src/exec/slurm.js';
import { ExecError, type ExecHandle, type LaunchRequest, type Observation } from '../../src/exec/types.js';
import { resolveWorkdir } from '../../src/exec/workdir.js';
import { workloadPaths } from '../../src/exec/workspace.js';
import { identityOf } from '../../src/tenancy/identity.js';

const conf = process.env.SLURM_CONF;
const inCI = process.env.CI === 'true';
const skip = !conf && !inCI;
if (skip) {
  console.warn(
    '\n*** SKIPPING the Slurm tenant-isolation tests: SLURM_CONF is not set. Start the dev cluster with\n' +
      '***   scripts/slurm-dev up && export SLURM_CONF=$(scripts/slurm-dev conf)\n' +
      '*** (in CI, with CI=true, these tests fail instead of skipping.)\n',
  );
}

const run = Date.now().toString(36);
// The server's data directory, with stand-ins for what it keeps there (all 0600, as the server's).
const dataDir = realpathSync(mkdtempSync(join(tmpdir(), 'fabrik-slurm-iso-')));
const logDir = join(dataDir, 'workloads');
// A directory standing for the server's source tree: root's, 0755.
const srcDir = realpathSync(mkdtempSync(join(tmpdir(), 'fabrik-slurm-src-')));
// Test uids of this suite's own, apart from the server's range and the other suites'.
const A = { identity: identityOf(262_001), projectId: `prj_a_${run}` };
const B = { identity: identityOf(262_002), projectId: `prj_b_${run}` };
const B_PIDS = 256;
const accounts = new LocalAccounts();
let server: ChildProcess | undefined;
const launched: ExecHandle[] = [];
after(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(srcDir, { recursive: true, force: true });
});

function request(who: typeof A, name: string, cmd: string, node: string, env: Record<string, string> = {}) {
  return {
    workloadId: `${name}_${run}`,
    attempt: 1,
    name,
    project: `${who === A ? 'acme' : 'evil'}.train`,
    projectId: who.projectId,
    identity: who.identity,
    limits: { pids: B_PIDS, memoryBytes: 1024 ** 3 },
    run: cmd,
    env,
    maxRuntimeS: 300,
    placement: { pod: 'slurm', leaves: [], nodes: [{ node, gpuIndexes: [0] }] },
  } satisfies LaunchRequest;
}

async function until(ex: SlurmExecutor, h: ExecHandle, done: (o: Observation) => boolean, ms = 90_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const o = (await ex.observe(new Map([['w', h]]))).get('w')!;
    if (done(o) || Date.now() > deadline) return o;
    await new Promise((r) => setTimeout(r, 200));
  }
}
const ended = (o: Observation) => o.state !== 'running';

/** Processes of a uid on this host (the dev cluster's nodes are this host). */
function processesOf(uid: number): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(readFileSync(`/proc/${pid}/status`, 'utf8'))) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

// Tenant A: records its pid and a private file, then works (forking) until the test releases it.
const A_RUN = `echo A-START
echo $$ > "$FABRIK_WORKLOAD_DIR/pid"
echo a-private-data > "$FABRIK_WORKLOAD_DIR/secret"
i=0
while [ ! -e "$FABRIK_WORKLOAD_DIR/release" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(cat "$FABRIK_WORKLOAD_DIR/secret")" = a-private-data ] && echo A-SECRET-INTACT
echo A-DONE`;

// Tenant B: every attempt prints DENIED or LEAK. Bash (for a sleep that needs no fork, below).
const B_RUN = `bash -s <<'PROBE'
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "LEAK $name"; else echo "DENIED $name"; fi; }
try list-data-dir ls "$DATA"
try read-db cat "$DATA/fabrik.db"
try read-server-log cat "$DATA/logs/fabrik.log"
try read-master-key cat "$DATA/master.key"
try list-workloads ls "$DATA/workloads"
try list-a-project ls "$A_PROJECT"
try read-a-secret cat "$A_WORK/secret"
try read-a-log cat "$A_ATTEMPT/task-0.log"
try read-a-env-file cat "$A_ATTEMPT/env"
try read-a-environ grep -q A_TOKEN "/proc/$A_PID/environ"
try read-server-environ grep -q server-secret "/proc/$SERVER_PID/environ"
try signal-a kill -9 "$A_PID"
try stop-a kill -STOP "$A_PID"
try scancel-a scancel "$A_JOB"
try see-a-job sh -c 'squeue -h -o %i | grep -qx "$A_JOB"'
try write-data-dir touch "$DATA/evil"
try write-workloads touch "$DATA/workloads/evil"
try write-a-work touch "$A_WORK/evil"
try write-a-attempt touch "$A_ATTEMPT/evil"
try write-src touch "$SRC/evil"
try replace-src-file sh -c 'echo evil > "$SRC/server.js"'
try read-shadow cat /etc/shadow
try leave-cgroup sh -c 'echo $$ > /sys/fs/cgroup/freezer/cgroup.procs'
# Fork without bound, every copy in a session of its own (setsid), so that no process group holds it.
printf '%s\\n' 'setsid bash "$0" </dev/null >/dev/null 2>&1 &' 'setsid bash "$0" </dev/null >/dev/null 2>&1 &' wait >"$HOME/bomb.sh"
# From here on this shell cannot count on a fork either: builtins only.
mkfifo "$HOME/clock" && exec 9<>"$HOME/clock"
me=$(id -u); n=0
bash "$HOME/bomb.sh" </dev/null >/dev/null 2>&1 &
read -t 4 -u 9
for s in /proc/[0-9]*/status; do
  while read -r k v _; do [ "$k" = Uid: ] && { [ "$v" = "$me" ] && n=$((n + 1)); break; }; done 2>/dev/null <"$s"
done
echo "BOMB processes=$n limit=$LIMIT"
if [ "$n" -le $((LIMIT + 16)) ]; then echo "DENIED fork-bomb"; else echo "LEAK fork-bomb"; fi
PROBE`;

describe('tenant isolation on Slurm', { skip: skip && 'SLURM_CONF is not set', concurrency: false }, () => {
  let ex: SlurmExecutor;

  before(async () => {
    if (!conf)
      throw new Error('CI=true but SLURM_CONF is not set: .ci/run must run scripts/slurm-dev up and export SLURM_CONF');
    const r = await execFileRunner('sinfo', ['-h', '-o', '%D %T'], {
      env: { PATH: process.env.PATH ?? '', SLURM_CONF: conf },
      timeoutMs: 15_000,
    });
    if (r.code !== 0) throw new Error(`the Slurm dev cluster does not answer (${r.spawnError ?? r.stderr.trim()})`);
    mkdirSync(join(dataDir, 'logs'), { mode: 0o700 });
    for (const [f, text] of [
      ['fabrik.db', 'SQLite format 3 tenant-data'],
      ['logs/fabrik.log', 'log with request ids'],
      ['master.key', 'master-key-bytes'],
    ]) {
      writeFileSync(join(dataDir, f!), text!, { mode: 0o600 });
    }
    chmodSync(srcDir, 0o755);
    writeFileSync(join(srcDir, 'server.js'), 'the real server\n', { mode: 0o644 });
    // A root process with a secret in its environment, standing for the server.
    server = spawn('sleep', ['600'], { env: { PATH: process.env.PATH, FABRIK_MASTER_KEY: 'server-secret' } });
    ex = new SlurmExecutor({ logDir, dataDir, partition: 'gpu', identities: accounts });
  });
  after(async () => {
    server?.kill('SIGKILL');
    // A failed assertion leaves jobs behind: end them before their accounts go.
    for (const h of launched) await ex.stop(h, 0).catch(() => undefined);
    for (let i = 0; i < 100 && [A, B].some((t) => processesOf(t.identity.uid) > 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!skip) for (const t of [A, B]) await accounts.remove(t.identity);
  });

  it("B's jobs are denied every way into A and into the server; A finishes untouched", async () => {
    const a = request(A, 'victim', A_RUN, 'n1', { A_TOKEN: 'a-secret-token' });
    const aPaths = workloadPaths(logDir, A.projectId, a.workloadId, 1);
    const ha = await ex.launch(a);
    launched.push(ha);
    const pidFile = join(aPaths.work, 'pid');
    for (let i = 0; i < 300 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
    const aPid = readFileSync(pidFile, 'utf8').trim();
    assert.match(aPid, /^\d+$/, "A's job started and wrote its pid");

    const probe = request(B, 'probe', B_RUN, 'n1', {
      DATA: dataDir,
      SRC: srcDir,
      A_PROJECT: aPaths.project,
      A_WORK: aPaths.work,
      A_ATTEMPT: aPaths.attempt,
      A_PID: aPid,
      A_JOB: String((ha as { jobId: string }).jobId),
      SERVER_PID: String(server!.pid),
      LIMIT: String(B_PIDS),
    });
    // Over its memory (256 MiB): the kernel's OOM killer within the job's cgroup, nowhere else.
    const hog = {
      ...request(B, 'hog', `node -e 'const a = []; for (;;) a.push(Buffer.alloc(8 << 20, 1))'`, 'n2'),
      limits: { pids: B_PIDS, memoryBytes: 256 * 1024 * 1024 },
    };
    // One after the other: under Slurm the process limit is RLIMIT_NPROC, which counts all of B's
    // processes on the node, so while the probe's fork bomb holds them the hog's shell could not
    // even fork node (it then exits 2, "cannot fork": the flake this order removes).
    const hp = await ex.launch(probe);
    launched.push(hp);
    const op = await until(ex, hp, ended);
    for (let i = 0; i < 100 && processesOf(B.identity.uid) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    const hh = await ex.launch(hog);
    launched.push(hh);
    const oh = await until(ex, hh, ended);

    const bLog = readFileSync(
      ex.logPath({ projectId: B.projectId, workloadId: probe.workloadId, attempt: 1, task: 0 })!,
      'utf8',
    );
    const lines = bLog.split('\n');
    assert.equal(op.state, 'succeeded', `${op.message}\n${bLog}`);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('LEAK')),
      [],
      bLog,
    );
    for (const what of [
      'list-data-dir',
      'read-db',
      'read-server-log',
      'read-master-key',
      'list-workloads',
      'list-a-project',
      'read-a-secret',
      'read-a-log',
      'read-a-env-file',
      'read-a-environ',
      'read-server-environ',
      'signal-a',
      'stop-a',
      'scancel-a',
      'see-a-job',
      'write-data-dir',
      'write-workloads',
      'write-a-work',
      'write-a-attempt',
      'write-src',
      'replace-src-file',
      'read-shadow',
      'leave-cgroup',
      'fork-bomb',
    ]) {
      assert.ok(lines.includes(`DENIED ${what}`), `DENIED ${what} in B's report:\n${bLog}`);
    }
    // The bomb really ran into the limit (and not into something else).
    const bomb = /BOMB processes=(\d+)/.exec(bLog);
    assert.ok(bomb && Number(bomb[1]) >= B_PIDS / 2, `the fork bomb grew to its limit:\n${bLog}`);
    assert.deepEqual([oh.state, oh.reason], ['failed', 'OOMKilled'], oh.message);

    // Nothing of B outlives its jobs: Slurm's cgroup held every process, setsid or not.
    for (let i = 0; i < 100 && processesOf(B.identity.uid) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(processesOf(B.identity.uid), 0, "no process of B's uid is left");
    for (const p of [join(dataDir, 'evil'), join(logDir, 'evil'), join(aPaths.work, 'evil'), join(srcDir, 'evil')]) {
      assert.equal(existsSync(p), false, `${p} was not written`);
    }
    assert.equal(readFileSync(join(srcDir, 'server.js'), 'utf8'), 'the real server\n');

    writeFileSync(join(aPaths.work, 'release'), '');
    const oa = await until(ex, ha, ended);
    const aLog = readFileSync(
      ex.logPath({ projectId: A.projectId, workloadId: a.workloadId, attempt: 1, task: 0 })!,
      'utf8',
    );
    assert.equal(oa.state, 'succeeded', `${oa.message}\n${aLog}`);
    assert.deepEqual(aLog.trim().split('\n'), ['A-START', 'A-SECRET-INTACT', 'A-DONE']);
  });

  it('a symbolic link out of the workdir root is refused at resolveWorkdir, and Slurm takes only resolved paths', async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'fabrik-slurm-wd-')));
    try {
      mkdirSync(join(root, 'project'));
      symlinkSync(dataDir, join(root, 'escape'));
      symlinkSync(join(root, 'project'), join(root, 'inside'));
      assert.throws(() => resolveWorkdir(root, 'escape'), /leads outside the allowed root/);
      assert.equal(resolveWorkdir(root, 'inside'), join(root, 'project'));
      // The reconciler resolves; a path that still holds a link never reaches sbatch.
      const req = { ...request(B, 'escape', 'ls', 'n3'), workdir: join(root, 'escape') };
      await assert.rejects(ex.launch(req), (e: unknown) => e instanceof ExecError && !e.retryable);
      await assert.rejects(ex.launch({ ...req, workdir: join(root, 'inside') }), /not a resolved path/);
      const found = await ex.findByComment(B.projectId, req.workloadId);
      assert.deepEqual(found, [], 'no Slurm job was submitted');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
