// Task start with and without isolation, on the local executor itself (no API, no scheduler): the
// time from launch() to the task's command running (its first act is to write a timestamp), for
// the best level this machine allows (`sandbox`: cgroups + bubblewrap + setpriv) against `none`
// (a plain supervised process), interleaved one by one so both see the same machine.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalExecutor } from '../src/exec/local.js';
import { type Isolation, detectIsolation } from '../src/exec/sandbox.js';
import type { ExecHandle } from '../src/exec/types.js';
import { workloadPaths } from '../src/exec/workspace.js';
import { identityOf } from '../src/tenancy/identity.js';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function startOnce(exec: LocalExecutor, dir: string, id: string): Promise<number> {
  const start = performance.timeOrigin + performance.now(); // ms since the epoch, sub-millisecond
  const h: ExecHandle = await exec.launch({
    workloadId: id,
    attempt: 1,
    name: id,
    project: 'bench.iso',
    projectId: 'prj_bench',
    identity: identityOf(240_001),
    limits: { pids: 256, memoryBytes: 512 * 1024 ** 2 },
    run: 'date +%s%N > "$FABRIK_WORKLOAD_DIR/t"',
    env: {},
    maxRuntimeS: 60,
    placement: { pod: 'p', leaves: [], nodes: [{ node: 'n', gpuIndexes: [0] }] },
  });
  const file = join(workloadPaths(dir, 'prj_bench', id, 1).work, 't');
  for (;;) {
    const o = (await exec.observe(new Map([[id, h]]))).get(id)!;
    if (o.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 2));
  }
  return Number(readFileSync(file, 'utf8').trim()) / 1e6 - start;
}

const settle = () => new Promise((r) => setTimeout(r, 50));

export async function isolationStart(count: number) {
  const best: Isolation = detectIsolation();
  const none: Isolation = { level: 'none', summary: 'none' };
  const dirs = [mkdtempSync(join(tmpdir(), 'fabrik-bench-iso-')), mkdtempSync(join(tmpdir(), 'fabrik-bench-raw-'))];
  const isolated = new LocalExecutor({ workloadsDir: dirs[0], isolation: best });
  const plain = new LocalExecutor({ workloadsDir: dirs[1], isolation: none });
  const a: number[] = [];
  const b: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      a.push(await startOnce(isolated, dirs[0], `wl_iso${i}`));
      // Starts are measured one at a time: the previous task's teardown (its namespaces, cgroups)
      // is given a moment so it does not compete with the next start for the two cores.
      await settle();
      b.push(await startOnce(plain, dirs[1], `wl_raw${i}`));
      await settle();
    }
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  a.sort((x, y) => x - y);
  b.sort((x, y) => x - y);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    level: best.level,
    cgroups: best.cgroups ?? null,
    count,
    startP50Ms: r(pct(a, 50)),
    startP99Ms: r(pct(a, 99)),
    unisolatedStartP50Ms: r(pct(b, 50)),
    unisolatedStartP99Ms: r(pct(b, 99)),
    addedP50Ms: r(pct(a, 50) - pct(b, 50)),
  };
}
