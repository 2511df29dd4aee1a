// The Slurm executor against a real cluster: `scripts/slurm-dev up` (slurmctld and four slurmd,
// n1..n4 with 8 GPUs each, on this host) and SLURM_CONF pointing at it. Submit, gang rendezvous,
// exit codes (from squeue and from the jobs' own exit records), stop with SIGTERM, Slurm's
// refusal, re-finding a job whose handle was lost, fleet import.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CommandRunner, execFileRunner } from '../../src/exec/slurm-cmd.js';
import { importSlurmFleet } from '../../src/exec/slurm-fleet.js';
import { SlurmExecutor } from '../../src/exec/slurm.js';
import { ExecError, type ExecHandle, type LaunchRequest, type Observation } from '../../src/exec/types.js';

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
after(() => rmSync(dir, { recursive: true, force: true }));
const run = `${Date.now().toString(36)}`;

function request(id: string, cmd: string, nodes: string[], gpus = 2): LaunchRequest {
  return {
    workloadId: `${id}_${run}`,
    attempt: 1,
    name: id,
    project: 'acme.train',
    run: cmd,
    env: { GREETING: 'hello, slurm' },
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
  const ex = new SlurmExecutor({ logDir: dir, partition: 'gpu' });

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

  it('runs a 1-node job with its GPUs, rank and spec environment, and keeps its log', async () => {
    const req = request('env', 'env | sort', ['n1']);
    const h = await ex.launch(req);
    const o = await until(ex, h, ended);
    assert.equal(o.state, 'succeeded', o.message);
    const log = readFileSync(ex.logPath({ workloadId: req.workloadId, attempt: 1, task: 0 })!, 'utf8');
    for (const line of [
      'CUDA_VISIBLE_DEVICES=0,1',
      'NVIDIA_VISIBLE_DEVICES=0,1',
      'RANK=0',
      'WORLD_SIZE=1',
      'LOCAL_RANK=0',
      `FABRIK_WORKLOAD_ID=${req.workloadId}`,
      'GREETING=hello, slurm',
      'SLURMD_NODENAME=n1',
    ]) {
      assert.ok(log.split('\n').includes(line), `${line} in the log:\n${log}`);
    }
    assert.equal(ex.logPath({ workloadId: req.workloadId, attempt: 1, task: 1 }), undefined);
  });

  it('runs a 2-node gang pinned to n2,n3: one rank per node, one rendezvous', async () => {
    const req = request('gang', 'node examples/gang/rendezvous.js; echo "node=$SLURMD_NODENAME"', ['n2', 'n3'], 8);
    const h = await ex.launch(req);
    const o = await until(ex, h, ended);
    assert.equal(o.state, 'succeeded', o.message);
    const logs = [0, 1].map((t) =>
      readFileSync(ex.logPath({ workloadId: req.workloadId, attempt: 1, task: t })!, 'utf8'),
    );
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
    const later = new SlurmExecutor({ logDir: dir, commandRunner: forgetful });
    const o2 = (await later.observe(new Map([['w', h]]))).get('w')!;
    assert.deepEqual([o2.state, o2.exitCode], ['failed', 3], o2.message);
    const gone = (await later.observe(new Map([['w', { ...h, jobId: '999999' }]]))).get('w')!;
    assert.equal(gone.state, 'lost', gone.message);
  });

  it('stops a job with SIGTERM first: its trap runs, then it is no longer running', async () => {
    const req = request(
      'stop',
      'trap "echo terminated > term.marker; exit 143" TERM; echo started; while :; do sleep 0.2; done',
      ['n1'],
      1,
    );
    const wd = mkdtempSync(join(dir, 'wd-'));
    const h = await ex.launch({ ...req, workdir: wd });
    const log = () =>
      readFileSync(ex.logPath({ workloadId: req.workloadId, attempt: 1, task: 0 }) ?? '/dev/null', 'utf8');
    for (let i = 0; i < 150 && !log().includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await ex.stop(h, 20);
    assert.ok(Date.now() - t0 < 15_000, 'stop returns once the job ended, before the grace period');
    assert.equal(readFileSync(join(wd, 'term.marker'), 'utf8').trim(), 'terminated');
    const o = await until(ex, h, ended, 10_000);
    assert.equal(o.state, 'failed', o.message);
  });

  it('kills a job that ignores SIGTERM after the grace period', async () => {
    const req = request('stubborn', 'trap "" TERM; echo started; while :; do sleep 0.2; done', ['n4'], 1);
    const h = await ex.launch(req);
    const log = () =>
      readFileSync(ex.logPath({ workloadId: req.workloadId, attempt: 1, task: 0 }) ?? '/dev/null', 'utf8');
    for (let i = 0; i < 150 && !log().includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
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
    const found = await ex.findByComment(req.workloadId);
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
