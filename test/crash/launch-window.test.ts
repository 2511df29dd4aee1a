// Exactly-once launch, from outside: kill -9 of the server at random points while workloads are
// being placed and launched (and once exactly between the engine's acceptance and the commit of
// the handle), on the local executor and on Slurm. Each workload's task appends a line to a file
// in its own work directory when it starts: after restarts, every workload must have finished
// with exactly one start, one attempt on record and one `Started` event.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStore } from '../../src/store/db.js';
import {
  type ServerProcess,
  api,
  eventually,
  killAllServerProcesses,
  startServerProcess,
} from '../helpers/child-server.js';
import { OPERATOR_TOKEN } from '../helpers/harness.js';

const conf = process.env.SLURM_CONF;
const slurmSkip = !conf && process.env.CI !== 'true' ? 'SLURM_CONF is not set (scripts/slurm-dev up)' : false;
if (slurmSkip) console.warn(`\n*** SKIPPING the Slurm launch-window trials: ${slurmSkip} ***\n`);

const TRIALS = Number(process.env.FABRIK_CRASH_TRIALS ?? 10);
const PER_TRIAL = 5;

interface Target {
  readonly executor: 'local' | 'slurm';
  readonly pool: string;
  readonly uidBase: number;
  /** How long after the burst of submits the kill may come (ms): covers placement and launch. */
  readonly windowMs: number;
}

function startFor(t: Target, dataDir: string, extraEnv: Record<string, string> = {}): Promise<ServerProcess> {
  return startServerProcess({
    dataDir,
    database: join(dataDir, 'fabrik.db'),
    bootstrapToken: OPERATOR_TOKEN,
    ...(t.executor === 'local' ? { devGpus: 16 } : {}),
    env: {
      FABRIK_EXECUTOR: t.executor,
      FABRIK_RECONCILE_INTERVAL_MS: '100',
      FABRIK_SCHEDULER_INTERVAL_MS: '200',
      FABRIK_UID_BASE: String(t.uidBase),
      ...(conf ? { SLURM_CONF: conf } : {}),
      ...extraEnv,
    },
  });
}

function suite(t: Target, skip: string | false) {
  describe(`exactly-once launch under kill -9 (${t.executor} executor)`, { skip }, () => {
    const dataDir = mkdtempSync(join(tmpdir(), `fabrik-once-${t.executor}-`));
    after(async () => {
      await killAllServerProcesses();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const submitted: string[] = [];

    async function setup(): Promise<ServerProcess> {
      const s = await startFor(t, dataDir);
      const call = api(s.url, OPERATOR_TOKEN);
      assert.equal((await call('POST', '/api/v1/orgs', { name: 'once', residency: 'de' })).status, 201);
      assert.equal((await call('POST', '/api/v1/orgs/once/projects', { name: 'p' })).status, 201);
      const q = await call('PUT', `/api/v1/projects/once.p/quotas/${t.pool}`, { guaranteed: 16, limit: 16 });
      assert.equal(q.status, 200, JSON.stringify(q.body));
      return s;
    }

    const burst = async (s: ServerProcess, tag: string) => {
      const call = api(s.url, OPERATOR_TOKEN);
      for (let i = 0; i < PER_TRIAL; i++) {
        // A submit the dying server never answered is not acknowledged: it may or may not exist.
        const r = await call('POST', '/api/v1/projects/once.p/workloads', {
          kind: 'batch',
          name: `${tag}-${i}`,
          resources: { pool: t.pool, gpu: 1 },
          max_duration: '10m',
          run: 'echo "start $FABRIK_ATTEMPT" >> "$FABRIK_WORKLOAD_DIR/starts"; sleep 1',
        }).catch(() => undefined);
        if (!r) return;
        if (r.status === 201) submitted.push(r.body.id);
        else throw new Error(`submit: ${r.status} ${JSON.stringify(r.body)}`);
      }
    };

    it(`survives kill -9 at ${TRIALS * PER_TRIAL} random points of the launch window, and right after a launch`, async () => {
      let s = await setup();
      // Exactly in the window: the server dies after the engine took the first launch, before the commit.
      await s.stop();
      s = await startFor(t, dataDir, { FABRIK_FAULT: 'crash-after-launch' });
      await burst(s, 'fault');
      await eventually(
        async () => (s.child.exitCode !== null || s.child.signalCode ? true : undefined),
        30_000,
        'the injected crash',
      );
      for (let trial = 0; trial < TRIALS; trial++) {
        s = await startFor(t, dataDir);
        await burst(s, `t${trial}`);
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * t.windowMs)));
        await s.kill9();
      }
      s = await startFor(t, dataDir);
      const store = await openStore(join(dataDir, 'fabrik.db'), { migrate: false });
      try {
        await eventually(
          async () => {
            const open = await store.db
              .selectFrom('workloads')
              .select('id')
              .where('id', 'in', submitted)
              .where('status', 'in', ['pending', 'running'])
              .execute();
            return open.length === 0 ? true : undefined;
          },
          180_000,
          'every workload to finish',
        );
        const rows = await store.db.selectFrom('workloads').selectAll().where('id', 'in', submitted).execute();
        assert.equal(rows.length, submitted.length, 'every acknowledged submit is there');
        const root = join(dataDir, 'workloads');
        const project = readdirSync(root)[0];
        for (const w of rows) {
          assert.equal(w.status, 'succeeded', `${w.name}: ${w.message}`);
          assert.equal(w.attempts, 1, `${w.name} ran one attempt`);
          const starts = readFileSync(join(root, project, w.id, 'work', 'starts'), 'utf8')
            .trim()
            .split('\n');
          assert.deepEqual(starts, ['start 1'], `${w.name} started exactly once`);
          const attempts = await store.db
            .selectFrom('workload_attempts')
            .selectAll()
            .where('workload_id', '=', w.id)
            .execute();
          assert.equal(attempts.length, 1);
          assert.equal(attempts[0].state, 'ended');
          const started = await store.db
            .selectFrom('workload_events')
            .select('id')
            .where('workload_id', '=', w.id)
            .where('reason', '=', 'Started')
            .execute();
          assert.equal(started.length, 1, `${w.name} has one Started event`);
        }
      } finally {
        await store.close();
      }
    });
  });
}

suite({ executor: 'local', pool: 'dev', uidBase: 270_000, windowMs: 800 }, false);
suite({ executor: 'slurm', pool: 'gpu', uidBase: 271_000, windowMs: 2500 }, slurmSkip);
