// The Slurm executor against a real cluster: `scripts/slurm-dev up` (slurmctld and four slurmd,
// n1..n4 with 8 GPUs each, on this host) and SLURM_CONF pointing at it. Submit as the project's
// identity, gang rendezvous, exit codes (from squeue and from the jobs' own exit records), memory
// limit and OOM report, stop with SIGTERM, Slurm's refusal, re-finding a job whose handle was
// lost, fleet import. Tenant isolation has its own suite (slurm-isolation.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CommandRunner, execFileRunner } from '../../src/exec/slurm-cmd.js';
import { importSlurmFleet } from '../../src/exec/slurm-fleet.js';
import { LocalAccounts } from '../../src/exec/identities.js';
import { SlurmExecutor } from '../../src/exec/slurm.js';
import { ExecError, type ExecHandle, type LaunchRequest, type Observation } from '../../src/exec/types.js';
import { workloadPaths } from '../../src/exec/workspace.js';
import { identityOf } from '../../src/tenancy/identity.js';

const conf = process.env.SLURM_CONF;
const inCI = process.env.CI === 'true';
const skip = !conf && !inCI;
if (skip) {
  console.warn(
    '\n*** SKIPPING the Slurm executor tests: SLURM_CONF is not set. Start the dev cluster with\n' +
      '***   scripts/slurm-dev up && export SLURM_CONF=$(scripts/slurm-dev conf)\n' +
      '*** (in CI, with CI=true, these tests fail instead of skipping.)\n',
  );
}

// Shared with the "compute nodes": they are this host.
const dir = mkdtempSync(join(tmpdir(), 'fabrik-slurm-'));
const run = `${Date.now().toString(36)}`;
// Test uids of their own (260000 up), apart from the server's range and the other suites'.
const identity = identityOf(260_010);
const projectId = `prj_${run}`;
const accounts = new LocalAccounts();
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (!skip) await accounts.remove(identity);
});

function request(id: string, cmd: string, nodes: string[], gpus = 2): LaunchRequest {
  return {
    workloadId: `${id}_${run}`,
    attempt: 1,
    name: id,
    project: 'acme.train',
    projectId,
    identity,
    limits: { pids: 512 },
    run: cmd,
    env: { GREETING: 'hello, slurm' },
    // The repository (root's, world-readable) for the examples; undefined: the work directory.
    workdir: process.cwd(),
    maxRuntimeS: 120,
    placement: {
      pod: 'slurm',
      leaves: [],
      nodes: nodes.map((node) => ({ node, gpuIndexes: Array.from({ length: gpus }, (_, i) => i) })),
    },
  };
}

async function until(
  ex: SlurmExecutor,
  h: ExecHandle,
  done: (o: Observation) => boolean,
  ms = 30_000,
): Promise<Observation> {
  const deadline = Date.now() + ms;
  for (;;) {
    const o = (await ex.observe(new Map([['w', h]]))).get('w')!;
    if (done(o) || Date.now() > deadline) return o;
    await new Promise((r) => setTimeout(r, 150));
  }
}
const ended = (o: Observation) => o.state !== 'running';

describe('slurm executor on the dev cluster', { skip: skip && 'SLURM_CONF is not set', concurrency: true }, () => {
  const ex = new SlurmExecutor({ logDir: dir, partition: 'gpu', identities: accounts });
  const log = (req: LaunchRequest, task = 0) =>
    readFileSync(ex.logPath({ projectId, workloadId: req.workloadId, attempt: 1, task }) ?? '/dev/null', 'utf8');

  before(async () => {
    if (!conf)
      throw new Error('CI=true but SLURM_CONF is not set: .ci/run must run scripts/slurm-dev up and export SLURM_CONF');
    const r = await execFileRunner('sinfo', ['-h', '-o', '%D %T'], {
      env: { PATH: process.env.PATH ?? '', SLURM_CONF: conf },
      timeoutMs: 15_000,
    });
    if (r.code !== 0)
      throw new Error(
        `the Slurm dev cluster does not answer (${r.spawnError ?? r.stderr.trim()}); run scripts/slurm-dev up`,
      );
  });

  it('runs a 1-node job as the project identity, with its GPUs, rank and spec environment, in its work directory', async () => {
    const req = { ...request('env', 'id -u; id -g; pwd; env | sort', ['n1']), workdir: undefined };
    const h = await ex.launch(req);
    const o = await until(ex, h, ended);
    assert.equal(o.state, 'succeeded', o.message);
    const text = log(req);
    const paths = workloadPaths(dir, projectId, req.workloadId, 1);
    for (const line of [
      '260010',
      '260010',
      paths.work,
      `HOME=${paths.work}`,
      `FABRIK_WORKLOAD_DIR=${paths.work}`,
      'USER=fabrik-260010',
      'CUDA_VISIBLE_DEVICES=0,1',
      'NVIDIA_VISIBLE_DEVICES=0,1',
      'RANK=0',
      'WORLD_SIZE=1',
      'LOCAL_RANK=0',
      `FABRIK_WORKLOAD_ID=${req.workloadId}`,
      'GREETING=hello, slurm',
      'SLURMD_NODENAME=n1',
    ]) {
      assert.ok(text.split('\n').includes(line), `${line} in the log:\n${text}`);
    }
    assert.equal(ex.logPath({ projectId, workloadId: req.workloadId, attempt: 1, task: 1 }), undefined);
    const mode = (p: string) => [statSync(p).mode & 0o7777, statSync(p).uid, statSync(p).gid];
    assert.deepEqual(mode(dir), [0o711, 0, 0]);
    assert.deepEqual(mode(paths.project), [0o710, 0, 260010]);
    assert.deepEqual(mode(paths.workload), [0o710, 0, 260010]);
    assert.deepEqual(mode(paths.work), [0o700, 260010, 260010]);
    assert.deepEqual(mode(paths.attempt), [0o700, 260010, 260010]);
    assert.deepEqual(mode(join(paths.attempt, 'env')), [0o600, 260010, 260010]);
  });

  it('sets --mem per node: a job over it is killed and reported OOMKilled, also once Slurm forgot it', async () => {
    const req = {
      ...request('oom', `node -e 'const a = []; for (;;) a.push(Buffer.alloc(8 << 20, 1))'`, ['n2'], 1),
      limits: { pids: 512, memoryBytes: 128 * 1024 * 1024 },
    };
    const h = await ex.launch(req);
    const o = await until(ex, h, ended, 60_000);
    assert.deepEqual([o.state, o.reason], ['failed', 'OOMKilled'], o.message);
    const forgetful: CommandRunner = async (cmd, args, opts) =>
      cmd === 'squeue' ? { code: 0, stdout: '{"jobs":[]}', stderr: '' } : execFileRunner(cmd, args, opts);
    const later = new SlurmExecutor({ logDir: dir, commandRunner: forgetful, identities: accounts });
    const o2 = (await later.observe(new Map([['w', h]]))).get('w')!;
    assert.deepEqual([o2.state, o2.reason], ['failed', 'OOMKilled'], o2.message);
  });

  it('runs a 2-node gang pinned to n2,n3: one rank per node, one rendezvous', async () => {
    const req = request('gang', 'node examples/gang/rendezvous.js; echo "node=$SLURMD_NODENAME"', ['n2', 'n3'], 8);
    const h = await ex.launch(req);
    const o = await until(ex, h, ended);
    assert.equal(o.state, 'succeeded', o.message);
    const logs = [0, 1].map((t) => log(req, t));
    const envs = logs.map((l) => JSON.parse(l.split('\n')[0]!));
    assert.deepEqual(envs.map((e) => e.RANK).sort(), ['0', '1']);
    assert.deepEqual(envs.map((e) => e.NODE_RANK).sort(), ['0', '1']);
    assert.equal(envs[0].MASTER_ADDR, envs[1].MASTER_ADDR);
    assert.equal(envs[0].MASTER_PORT, envs[1].MASTER_PORT);
    assert.ok(envs[0].MASTER_ADDR, 'MASTER_ADDR is set');
    assert.deepEqual(
      envs.map((e) => [e.WORLD_SIZE, e.FABRIK_NUM_NODES, e.CUDA_VISIBLE_DEVICES]),
      [
        ['2', '2', '0,1,2,3,4,5,6,7'],
        ['2', '2', '0,1,2,3,4,5,6,7'],
      ],
    );
    assert.deepEqual(logs.map((l) => /node=(n\d)/.exec(l)?.[1]).sort(), ['n2', 'n3']);
  });

  it('reports a failing job with its exit code, from squeue and, once Slurm forgot it, from its exit record', async () => {
    const req = request('fail', 'echo failing; exit 3', ['n4'], 1);
    const h = await ex.launch(req);
    const o = await until(ex, h, ended);
    assert.deepEqual([o.state, o.exitCode], ['failed', 3], o.message);
    assert.match(o.message, /task 0 exited with 3/);
    // As after MinJobAge: squeue no longer lists any job.
    const forgetful: CommandRunner = async (cmd, args, opts) =>
      cmd === 'squeue' ? { code: 0, stdout: '{"jobs":[]}', stderr: '' } : execFileRunner(cmd, args, opts);
    const later = new SlurmExecutor({ logDir: dir, commandRunner: forgetful, identities: accounts });
    const o2 = (await later.observe(new Map([['w', h]]))).get('w')!;
    assert.deepEqual([o2.state, o2.exitCode], ['failed', 3], o2.message);
    const gone = (await later.observe(new Map([['w', { ...h, jobId: '999999' }]]))).get('w')!;
    assert.equal(gone.state, 'lost', gone.message);
  });

  it('stops a job with SIGTERM first: its trap runs, then it is no longer running', async () => {
    const req = {
      ...request(
        'stop',
        'trap "echo terminated > term.marker; exit 143" TERM; echo started; while :; do sleep 0.2; done',
        ['n1'],
        1,
      ),
      workdir: undefined,
    };
    const h = await ex.launch(req);
    for (let i = 0; i < 150 && !log(req).includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await ex.stop(h, 20);
    assert.ok(Date.now() - t0 < 15_000, 'stop returns once the job ended, before the grace period');
    const work = workloadPaths(dir, projectId, req.workloadId, 1).work;
    assert.equal(readFileSync(join(work, 'term.marker'), 'utf8').trim(), 'terminated');
    const o = await until(ex, h, ended, 10_000);
    assert.equal(o.state, 'failed', o.message);
  });

  it('kills a job that ignores SIGTERM after the grace period', async () => {
    const req = request('stubborn', 'trap "" TERM; echo started; while :; do sleep 0.2; done', ['n4'], 1);
    const h = await ex.launch(req);
    for (let i = 0; i < 150 && !log(req).includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
    await ex.stop(h, 1);
    const o = await until(ex, h, ended, 20_000);
    assert.notEqual(o.state, 'running', o.message);
  });

  it("passes on Slurm's refusal of an unknown node as a final ExecError", async () => {
    await assert.rejects(ex.launch(request('bad', 'true', ['n1', 'n9'])), (e: unknown) => {
      assert.ok(e instanceof ExecError);
      assert.equal(e.retryable, false);
      assert.match(e.message, /Invalid node name specified/);
      return true;
    });
  });

  it('re-finds a job whose handle was lost by its comment, and a second launch adopts it', async () => {
    const req = request('refind', 'sleep 2', ['n3'], 1);
    const h = (await ex.launch(req)) as { jobId: string };
    const found = await ex.findByComment(projectId, req.workloadId);
    assert.deepEqual(
      found.map((f) => [f.handle.jobId, f.handle.attempt]),
      [[h.jobId, 1]],
    );
    const again = (await ex.launch(req)) as { jobId: string };
    assert.equal(again.jobId, h.jobId, 'no second job for the same attempt');
    const o = await until(ex, again as unknown as ExecHandle, ended);
    assert.equal(o.state, 'succeeded', o.message);
  });

  it('imports the fleet from the live cluster: 4 nodes with 8 GPUs', async () => {
    const f = await importSlurmFleet();
    assert.deepEqual(
      f.spec.nodes.map((n) => [n.name, n.gpuCount]),
      [
        ['n1', 8],
        ['n2', 8],
        ['n3', 8],
        ['n4', 8],
      ],
    );
    assert.deepEqual(
      f.spec.pools.map((p) => p.name),
      ['gpu'],
    );
  });
});
