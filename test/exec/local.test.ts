// The local executor with real processes: gang environment, exit codes, graceful stop,
// log caps, process-group kill, and re-adoption by a new executor instance (a restarted server).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LocalExecutor } from '../../src/exec/local.js';
import { detectIsolation } from '../../src/exec/sandbox.js';
import type { ExecHandle, LaunchRequest, Observation } from '../../src/exec/types.js';
import { identityOf } from '../../src/tenancy/identity.js';

const dir = mkdtempSync(join(tmpdir(), 'fabrik-local-'));
const isolation = detectIsolation();
after(() => rmSync(dir, { recursive: true, force: true }));

function request(id: string, run: string, nodes = 1): LaunchRequest {
  return {
    workloadId: id,
    attempt: 1,
    name: id,
    project: 'acme.train',
    projectId: 'prj_local',
    identity: identityOf(250_001),
    limits: { pids: 512 },
    run,
    env: { GREETING: 'hello' },
    workdir: process.cwd(),
    maxRuntimeS: 600,
    placement: {
      pod: 'p',
      leaves: ['l'],
      nodes: Array.from({ length: nodes }, (_, i) => ({ node: `n${i}`, gpuIndexes: [2 * i, 2 * i + 1] })),
    },
  };
}

async function until(
  exec: LocalExecutor,
  id: string,
  handle: ExecHandle,
  done: (o: Observation) => boolean,
  ms = 15_000,
): Promise<Observation> {
  const deadline = Date.now() + ms;
  for (;;) {
    const o = (await exec.observe(new Map([[id, handle]]))).get(id)!;
    if (done(o) || Date.now() > deadline) return o;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('local executor', () => {
  const exec = new LocalExecutor({ workloadsDir: dir, isolation, logCapBytes: 64 * 1024 });

  it('runs every task of a gang with its rank, GPUs and rendezvous environment', async () => {
    const h = await exec.launch(request('wl_gang', 'node examples/gang/rendezvous.js && echo $GREETING', 2));
    const o = await until(exec, 'wl_gang', h, (x) => x.state !== 'running');
    assert.equal(o.state, 'succeeded', o.message);
    const ranks = [0, 1].map((r) =>
      readFileSync(exec.logPath({ projectId: 'prj_local', workloadId: 'wl_gang', attempt: 1, task: r })!, 'utf8'),
    );
    const envs = ranks.map((log) => JSON.parse(log.split('\n')[0]));
    assert.deepEqual(
      envs.map((e) => e.RANK),
      ['0', '1'],
    );
    assert.deepEqual(
      envs.map((e) => e.WORLD_SIZE),
      ['2', '2'],
    );
    assert.deepEqual(
      envs.map((e) => e.CUDA_VISIBLE_DEVICES),
      ['0,1', '2,3'],
    );
    assert.equal(envs[0].MASTER_ADDR, envs[1].MASTER_ADDR);
    assert.equal(envs[0].MASTER_PORT, envs[1].MASTER_PORT);
    assert.equal(envs[0].FABRIK_PROJECT, 'acme.train');
    assert.match(ranks[0], /hello/);
  });

  it('reports the exit code of a failing task', async () => {
    const h = await exec.launch(request('wl_fail', 'echo about to fail; exit 3'));
    const o = await until(exec, 'wl_fail', h, (x) => x.state !== 'running');
    assert.equal(o.state, 'failed');
    assert.equal(o.exitCode, 3);
    assert.match(o.message, /exited with 3/);
  });

  it('stops gracefully: SIGTERM first, so a training job saves its checkpoint', async () => {
    const req = {
      ...request('wl_train', 'node examples/train/train.js'),
      env: { STEPS: '100000', STEP_DELAY_MS: '5', CHECKPOINT_EVERY: '50' },
    };
    const h = await exec.launch(req);
    // Stop once it trains (its SIGTERM handler is installed by then), however busy the machine.
    const logFile = () => exec.logPath({ projectId: 'prj_local', workloadId: 'wl_train', attempt: 1, task: 0 });
    for (let i = 0; i < 300 && !/step \d+/.test(logFile() ? readFileSync(logFile()!, 'utf8') : ''); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await exec.stop(h, 10);
    const log = readFileSync(
      exec.logPath({ projectId: 'prj_local', workloadId: 'wl_train', attempt: 1, task: 0 })!,
      'utf8',
    );
    assert.match(log, /SIGTERM: checkpoint saved at step \d+/);
    assert.ok(existsSync(join(dir, 'prj_local', 'wl_train', 'work', 'checkpoint.json')));
    const o = await until(exec, 'wl_train', h, (x) => x.state !== 'running');
    assert.equal(o.state, 'failed', 'stopped work exits non-zero');
  });

  it('streams task output to the log line by line, not in blocks', async () => {
    const h = await exec.launch(request('wl_lines', 'echo first; sleep 5; echo second'));
    const path = () => exec.logPath({ projectId: 'prj_local', workloadId: 'wl_lines', attempt: 1, task: 0 });
    const t0 = Date.now();
    while (Date.now() - t0 < 3000 && !(path() && readFileSync(path()!, 'utf8').includes('first'))) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(readFileSync(path()!, 'utf8'), 'first\n', 'the first line is in the log while the task still runs');
    await exec.stop(h, 0);
  });

  it('kills the whole process group after the grace period', async () => {
    const h = await exec.launch(request('wl_stubborn', "trap '' TERM; sleep 300 & sleep 300 & wait"));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await exec.stop(h, 1);
    assert.ok(Date.now() - t0 < 5000);
    const o = await until(exec, 'wl_stubborn', h, (x) => x.state !== 'running', 3000);
    assert.notEqual(o.state, 'running');
  });

  it('caps the log of a task that writes too much, without blocking it', async () => {
    const h = await exec.launch(request('wl_chatty', 'head -c 5000000 /dev/zero | tr "\\0" x; echo; echo finished'));
    const o = await until(exec, 'wl_chatty', h, (x) => x.state !== 'running');
    assert.equal(o.state, 'succeeded');
    const path = exec.logPath({ projectId: 'prj_local', workloadId: 'wl_chatty', attempt: 1, task: 0 })!;
    assert.ok(statSync(path).size < 64 * 1024 + 200);
    assert.match(readFileSync(path, 'utf8'), /log truncated at 65536 bytes/);
  });

  it('re-adopts running tasks from their handle, and reports lost ones', async () => {
    const h = await exec.launch(request('wl_long', 'sleep 30'));
    const restarted = new LocalExecutor({ workloadsDir: dir, isolation });
    const seen = (await restarted.observe(new Map([['wl_long', JSON.parse(JSON.stringify(h))]]))).get('wl_long')!;
    assert.equal(seen.state, 'running');
    // Killed behind fabrik's back, with no exit record: lost.
    const pid = (h as any).tasks[0].pid as number;
    process.kill(-pid, 'SIGKILL');
    const o = await until(restarted, 'wl_long', h, (x) => x.state !== 'running', 3000);
    assert.equal(o.state, 'lost');
  });
});
