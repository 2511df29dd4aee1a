// The Slurm executor without a cluster: output recorded from the dev cluster (scripts/slurm-dev,
// Slurm 22.05) parsed into fleet, node states and job observations; Slurm's refusals and outages
// through a fake command runner.
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CommandRunner } from '../../src/exec/slurm-cmd.js';
import { isTransient, slurmMessage } from '../../src/exec/slurm-cmd.js';
import { nodeStateOf, parseGres, parseSinfoJson } from '../../src/exec/slurm-fleet.js';
import { decodeExit, observeJob, parseComment, parseSqueueJson } from '../../src/exec/slurm-jobs.js';
import type { IdentityDirectory } from '../../src/exec/identities.js';
import { SlurmExecutor } from '../../src/exec/slurm.js';
import { ExecError, type LaunchRequest } from '../../src/exec/types.js';
import { workloadPaths } from '../../src/exec/workspace.js';
import { type ProjectIdentity, identityOf } from '../../src/tenancy/identity.js';

const fixture = (name: string) => readFileSync(join('test/fixtures/slurm', name), 'utf8');
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'fabrik-slurm-unit-')));
// As the server's data directory is under the Slurm executor: jobs pass through it.
chmodSync(dir, 0o711);
after(() => rmSync(dir, { recursive: true, force: true }));

describe('slurm fleet import (recorded sinfo --json)', () => {
  it('reads 4 nodes x 8 GPUs in pool gpu from an idle cluster', () => {
    const f = parseSinfoJson(fixture('sinfo-idle.json'));
    assert.deepEqual(f.spec.pools, [{ name: 'gpu', gpuModel: 'GPU', gpuMemoryGiB: 80 }]);
    assert.deepEqual(
      f.spec.nodes.map((n) => [n.name, n.pool, n.gpuCount, n.cpu, n.ramGiB]),
      ['n1', 'n2', 'n3', 'n4'].map((n) => [n, 'gpu', 8, 16, 62]),
    );
    // Features pod=slurm,rack=rack1 on the dev nodes; leaf and spine default within the pod.
    assert.deepEqual(
      [f.spec.nodes[0]!.pod, f.spec.nodes[0]!.rack, f.spec.nodes[0]!.ibLeaf],
      ['slurm', 'rack1', 'slurm-leaf'],
    );
    assert.deepEqual([...f.states.values()], ['ready', 'ready', 'ready', 'ready']);
    assert.equal(f.partitionOf.get('n3'), 'gpu');
    assert.deepEqual(f.skipped, []);
  });

  it('maps drained, draining and down nodes with Slurm reasons', () => {
    const s = parseSinfoJson(fixture('sinfo-states.json'));
    assert.deepEqual(Object.fromEntries(s.states), { n1: 'draining', n2: 'ready', n3: 'cordoned', n4: 'ready' });
    assert.equal(s.reasons.get('n1'), 'drain-while-busy');
    const d = parseSinfoJson(fixture('sinfo-down.json'));
    assert.equal(d.states.get('n4'), 'down');
    assert.equal(d.reasons.get('n4'), 'broken-test');
  });

  it('parses GRES strings and state combinations of other Slurm versions', () => {
    assert.deepEqual(parseGres('gpu:8'), { count: 8 });
    assert.deepEqual(parseGres('gpu:h100:8(S:0-1)'), { count: 8, type: 'h100' });
    assert.deepEqual(parseGres('gpu:a100:2(S:0),gpu:a100:2(S:1),mps:200'), { count: 4, type: 'a100' });
    assert.deepEqual(parseGres('(null)'), { count: 0 });
    assert.equal(nodeStateOf(['IDLE', 'DRAIN']), 'cordoned');
    assert.equal(nodeStateOf(['ALLOCATED', 'DRAIN']), 'draining');
    assert.equal(nodeStateOf('idle', ['NOT_RESPONDING']), 'down');
    assert.equal(nodeStateOf('mixed'), 'ready');
  });

  it('takes model, topology and labels from features; skips nodes fabrik cannot use', () => {
    const node = (name: string, gres: string, feats: string, partitions = ['big']) => ({
      name,
      gres,
      active_features: feats,
      partitions,
      cpus: 112,
      real_memory: 2_097_152,
      state: 'idle',
      state_flags: [],
    });
    const text = JSON.stringify({
      nodes: [
        node('b1', 'gpu:b200:8', 'pod=su1,rack=r01,leaf=l1,spine=s1,nvlink=5,ib'),
        node('h1', 'gpu:h100:8', 'pod=su2'),
        node('cpu1', '(null)', ''),
        node('GPU_01', 'gpu:8', ''),
      ],
    });
    const f = parseSinfoJson(text, { region: 'eu-1' });
    assert.deepEqual(
      f.spec.pools.map((p) => [p.name, p.gpuModel, p.gpuMemoryGiB]),
      [
        ['big-b200', 'B200', 180],
        ['big-h100', 'H100', 80],
      ],
    );
    const b1 = f.spec.nodes[0]!;
    assert.deepEqual(
      [b1.region, b1.pod, b1.rack, b1.ibLeaf, b1.ibSpine, b1.ramGiB],
      ['eu-1', 'su1', 'r01', 'l1', 's1', 2048],
    );
    assert.deepEqual(b1.labels, { nvlink: '5', ib: 'true' });
    assert.deepEqual(
      f.skipped.map((s) => s.node),
      ['cpu1', 'GPU_01'],
    );
    assert.equal(f.partitionOf.get('h1'), 'big');
  });
});

describe('slurm job observation (recorded squeue --json)', () => {
  const jobs = new Map(parseSqueueJson(fixture('squeue.json')).map((j) => [j.jobId, j]));
  const none = { started: false, tasks: [] };

  it('reads states, comments and raw wait statuses', () => {
    assert.deepEqual(
      [...jobs.values()].map((j) => j.state),
      ['PENDING', 'RUNNING', 'PENDING', 'FAILED', 'FAILED', 'COMPLETED', 'CANCELLED'],
    );
    assert.equal(jobs.get('221')!.exitCode, 3);
    assert.equal(jobs.get('222')!.signal, 9);
    assert.deepEqual(parseComment(jobs.get('219')!.comment), { workloadId: 'wl_run', attempt: 2 });
    assert.deepEqual(decodeExit({ status: 'SIGNALED', return_code: 0, signal: { id: 15 } }), { signal: 15 });
    assert.deepEqual(decodeExit(768), { exitCode: 3 });
  });

  it('maps Slurm states to running, succeeded, failed and lost', () => {
    assert.match(observeJob('218', jobs.get('218'), none).message, /pending in Slurm.*JobHeldUser/);
    assert.equal(observeJob('219', jobs.get('219'), none).state, 'running');
    assert.equal(observeJob('223', jobs.get('223'), none).state, 'succeeded');
    const failed = observeJob('221', jobs.get('221'), none);
    assert.deepEqual([failed.state, failed.exitCode], ['failed', 3]);
    assert.match(failed.message, /NonZeroExitCode/);
    assert.equal(observeJob('9', { ...jobs.get('221')!, state: 'NODE_FAIL' }, none).state, 'lost');
    const oom = observeJob('10', { ...jobs.get('221')!, state: 'OUT_OF_MEMORY' }, none);
    assert.deepEqual([oom.state, oom.reason], ['failed', 'OOMKilled']);
    assert.match(oom.message, /ran out of memory/);
  });

  it('after Slurm forgot a job: its exit records, the root-cause task of a gang first', () => {
    const rec = {
      started: true,
      exit: { jobId: '5', code: 143, signal: null },
      tasks: [
        { jobId: '5', code: 143, signal: 'SIGTERM' },
        { jobId: '5', code: 3, signal: null },
      ],
    };
    const o = observeJob('5', undefined, rec);
    assert.deepEqual([o.state, o.exitCode, o.message], ['failed', 3, 'task 1 exited with 3 (Slurm job 5)']);
    const ok = observeJob('6', undefined, {
      started: true,
      exit: { jobId: '6', code: 0, signal: null },
      tasks: [{ jobId: '6', code: 0, signal: null }],
    });
    assert.equal(ok.state, 'succeeded');
    assert.match(observeJob('7', undefined, { started: true, tasks: [] }).message, /without an exit record/);
    assert.equal(observeJob('8', undefined, none).state, 'lost');
    // The task's cgroup counted an OOM kill: still known once squeue's OUT_OF_MEMORY is gone.
    const oom = observeJob('11', undefined, {
      started: true,
      exit: { jobId: '11', code: 137, signal: null },
      tasks: [{ jobId: '11', code: 137, signal: 'SIGKILL', oom: true }],
    });
    assert.deepEqual([oom.state, oom.exitCode, oom.reason], ['failed', 137, 'OOMKilled']);
  });
});

describe('slurm executor against a fake runner', () => {
  const identity = identityOf(260_020);
  const req: LaunchRequest = {
    workloadId: 'wl_fake',
    attempt: 1,
    name: 'fake',
    project: 'acme.train',
    projectId: 'prj_fake',
    identity,
    limits: { cpus: 1.5, memoryBytes: 3 * 1024 ** 3, pids: 100 },
    run: 'true',
    env: { SECRET: 's3cret' },
    workdir: dir,
    maxRuntimeS: 61,
    placement: {
      pod: 'p',
      leaves: [],
      nodes: [
        { node: 'n2', gpuIndexes: [0, 1] },
        { node: 'n3', gpuIndexes: [0, 1] },
      ],
    },
  };
  const fake = (code: number, stderr: string, stdout = ''): { runner: CommandRunner; calls: string[][] } => {
    const calls: string[][] = [];
    const runner: CommandRunner = async (cmd, args) => {
      calls.push([cmd, ...args]);
      return { code, stdout, stderr };
    };
    return { calls, runner };
  };
  /** An identity directory that only records (or refuses), so no account is made here. */
  const accounts = (calls: string[][] = [], refuse = false): IdentityDirectory => ({
    kind: 'site',
    ensure: async (i: ProjectIdentity) => {
      calls.push(['ensure', i.user]);
      if (refuse) throw new ExecError(`uid ${i.uid} not found`, false);
    },
    remove: async () => {},
  });

  it('submits as the project identity, pinned to the placement, with its limits', async () => {
    const f = fake(0, '', '42\n');
    const ex = new SlurmExecutor({
      logDir: join(dir, 'a'),
      commandRunner: f.runner,
      partition: 'gpu',
      identities: accounts(f.calls),
    });
    const h = await ex.launch(req);
    assert.deepEqual(h, {
      executor: 'slurm',
      jobId: '42',
      projectId: 'prj_fake',
      workloadId: 'wl_fake',
      attempt: 1,
      tasks: 2,
    });
    assert.deepEqual(f.calls[0], ['ensure', 'fabrik-260020'], 'the account is ensured before sbatch');
    const args = f.calls[1]!;
    const paths = workloadPaths(join(dir, 'a'), 'prj_fake', 'wl_fake', 1);
    for (const a of [
      '--uid=260020',
      '--gid=260020',
      '--nodelist=n2,n3',
      '--nodes=2',
      '--ntasks-per-node=1',
      '--gres=gpu:2',
      '--time=2',
      '--comment=fabrik:wl_fake:1',
      '--partition=gpu',
      '--no-requeue',
      '--mem=3072M',
      '--cpus-per-task=2',
      `--chdir=${paths.attempt}`,
    ]) {
      assert.ok(args.includes(a), `${a} in ${args.join(' ')}`);
    }
    assert.deepEqual(args.slice(-4), [join(paths.attempt, 'batch.sh'), paths.attempt, String(64 * 1024 * 1024), '100']);
    const env = readFileSync(join(paths.attempt, 'env'), 'utf8').split('\0');
    for (const kv of [`FABRIK_WORKLOAD_DIR=${paths.work}`, `HOME=${paths.work}`, 'SECRET=s3cret']) {
      assert.ok(env.includes(kv), `${kv} in the env file`);
    }
    const mode = (p: string) => {
      const st = statSync(p);
      return [(st.mode & 0o7777).toString(8), st.uid, st.gid];
    };
    assert.deepEqual(mode(join(dir, 'a')), ['711', 0, 0]);
    assert.deepEqual(mode(paths.project), ['710', 0, 260020]);
    assert.deepEqual(mode(paths.workload), ['710', 0, 260020]);
    assert.deepEqual(mode(paths.work), ['700', 260020, 260020]);
    assert.deepEqual(mode(paths.attempt), ['700', 260020, 260020]);
    assert.deepEqual(mode(join(paths.attempt, 'env')), ['600', 260020, 260020]);
    assert.deepEqual(mode(join(paths.attempt, 'task.sh')), ['500', 260020, 260020]);
  });

  it('launches nothing when the identity does not resolve', async () => {
    const f = fake(0, '', '42\n');
    const ex = new SlurmExecutor({ logDir: join(dir, 'e'), commandRunner: f.runner, identities: accounts([], true) });
    await assert.rejects(
      ex.launch(req),
      (e: unknown) => e instanceof ExecError && !e.retryable && /260020/.test(e.message),
    );
    assert.deepEqual(f.calls, [], 'no sbatch');
  });

  it('takes only resolved working directories, and never follows a link the job left in its directories', async () => {
    const f = fake(0, '', '43\n');
    const logDir = join(dir, 'f');
    const ex = new SlurmExecutor({ logDir, commandRunner: f.runner, identities: accounts() });
    mkdirSync(join(dir, 'root'));
    symlinkSync('/etc', join(dir, 'root', 'out'));
    for (const workdir of [join(dir, 'root', 'out'), join(dir, 'root', 'missing'), 'relative']) {
      await assert.rejects(ex.launch({ ...req, workdir }), (e: unknown) => e instanceof ExecError && !e.retryable);
    }
    // A job of the project owns work/ and attempt-N/: it could swap them for links to root's files.
    const paths = workloadPaths(logDir, 'prj_fake', 'wl_fake', 2);
    mkdirSync(paths.workload, { recursive: true });
    symlinkSync('/etc', paths.work);
    await assert.rejects(
      ex.launch({ ...req, attempt: 2 }),
      (e: unknown) => e instanceof ExecError && !e.retryable && /not a directory \(a symbolic link\?\)/.test(e.message),
    );
    assert.equal(statSync('/etc').uid, 0, '/etc is still root');
    rmSync(paths.work);
    // A log that is a link is not served.
    const p1 = workloadPaths(logDir, 'prj_fake', 'wl_fake', 3);
    await ex.launch({ ...req, attempt: 3 });
    symlinkSync('/etc/shadow', join(p1.attempt, 'task-0.log'));
    writeFileSync(join(p1.attempt, 'task-1.log'), 'hello\n');
    assert.equal(ex.logPath({ projectId: 'prj_fake', workloadId: 'wl_fake', attempt: 3, task: 0 }), undefined);
    assert.equal(
      ex.logPath({ projectId: 'prj_fake', workloadId: 'wl_fake', attempt: 3, task: 1 }),
      join(p1.attempt, 'task-1.log'),
    );
  });

  it("a rejection is final, an unreachable controller retryable, both with Slurm's words", async () => {
    const bad = new SlurmExecutor({
      logDir: join(dir, 'b'),
      identities: accounts(),
      commandRunner: fake(1, 'sbatch: error: Batch job submission failed: Invalid node name specified\n').runner,
    });
    await assert.rejects(
      bad.launch(req),
      (e: unknown) => e instanceof ExecError && !e.retryable && e.message === 'sbatch: Invalid node name specified',
    );
    const down = new SlurmExecutor({
      logDir: join(dir, 'c'),
      identities: accounts(),
      commandRunner: fake(
        1,
        'sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n',
      ).runner,
    });
    await assert.rejects(down.launch(req), (e: unknown) => e instanceof ExecError && e.retryable);
    // An outage never reads as "lost": observe throws instead.
    await assert.rejects(
      down.observe(new Map([['wl_fake', { executor: 'slurm', jobId: '42', workloadId: 'wl_fake', attempt: 1 }]])),
      ExecError,
    );
    assert.equal(slurmMessage('squeue: error: Invalid job id specified\n'), 'Invalid job id specified');
    assert.ok(isTransient('Socket timed out on send/recv operation'));
  });

  it('refuses environment names a shell cannot carry', async () => {
    const ex = new SlurmExecutor({
      logDir: join(dir, 'd'),
      commandRunner: fake(0, '', '1\n').runner,
      identities: accounts(),
    });
    await assert.rejects(ex.launch({ ...req, env: { 'BAD-NAME': 'x' } }), /not a shell variable name/);
  });
});
