// `npm run bench -- audit --json [--leaves 1000000] [--appends 100000] [--dialects sqlite,postgres]`: the verifiable audit log on
// SQLite and PostgreSQL, in one run:
//   appendsPerSec       the sequencer integrating committed entries (batches of 5,000) into the
//                       stored tree, with their nodes written: entries per second
//   inclusionProofMs    median time to build an inclusion proof from the stored nodes (one query)
//   consistencyProofMs  the same for consistency proofs, at `leaves` generated leaves
//   verifyMs            a full database check of `leaves` entries offline: hash every stored
//                       entry and compare with the committed leaves (what `fabrik audit verify
//                       --database` does after fetching the tiles), rebuilding the root
//   postRatioWithLog    the API's POST throughput (creating projects over HTTP, a server process
//                       on SQLite) with the sequencer running every 250 ms, over the same server
//                       with it switched off (FABRIK_AUDIT_SEQUENCER=off), alternating, same run
//   writesPerSec        audited writes per second through mutate() in process, with and without
//                       the sequencer (mutateRatioWithLog: their ratio)
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SYSTEM_ACTOR, mutate } from '../src/audit/journal.js';
import { logKeys } from '../src/audit/log/keys.js';
import { Sequencer } from '../src/audit/log/sequencer.js';
import { nodeReader } from '../src/audit/log/tree-store.js';
import { leafHash } from '../src/audit/merkle/hash.js';
import { appendLeaves, consistencyProof, inclusionProof, rootFromFrontier } from '../src/audit/merkle/tree.js';
import { type Store, openStore } from '../src/store/db.js';
import { startServerProcess } from '../test/helpers/child-server.js';
import { OPERATOR_TOKEN, freshDatabase, postgresAvailable } from '../test/helpers/harness.js';
import { measure } from './api.js';

const say = (m: string) => process.stderr.write(`bench audit: ${m}\n`);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name}: "${args[i + 1]}" is not a positive integer`);
  return v;
}

/** Synthetic entries as the journal writes them (canonical JSON), seq from..from+n-1. */
function entryRows(from: number, n: number) {
  return Array.from({ length: n }, (_, i) => {
    const seq = from + i;
    const canonical = `{"action":"bench.write","actor":{"keyId":"","principal":"system:bench"},"afterDigest":null,"beforeDigest":null,"orgId":"","outcome":"success","requestId":"${randomBytes(8).toString('hex')}","resource":"bench/${seq}","seq":${seq},"time":"2026-12-01T00:00:00.000Z","version":1}`;
    return { seq, canonical };
  });
}

/** Bulk rows straight through the driver: generating millions of rows is setup, not what is measured. */
async function bulkInsert(store: Store, url: string, table: string, cols: string[], rows: unknown[][]): Promise<void> {
  if (store.dialect === 'sqlite') {
    const d = new Database(url);
    const stmt = d.prepare(`insert into ${table} (${cols.join(',')}) values (${cols.map(() => '?').join(',')})`);
    d.transaction((rs: unknown[][]) => {
      for (const r of rs) stmt.run(...r);
    })(rows);
    d.close();
    return;
  }
  const c = new pg.Client({ connectionString: url });
  // A connection the server ends fails the query in flight; it must not also end the process.
  c.on('error', () => {});
  await c.connect();
  const types: Record<string, string> = { level: 'int', idx: 'bigint', hash: 'text', seq: 'bigint', canonical: 'text' };
  for (let i = 0; i < rows.length; i += 50_000) {
    const part = rows.slice(i, i + 50_000);
    await c.query(
      `insert into ${table} (${cols.join(',')}) select * from unnest(${cols.map((col, k) => `$${k + 1}::${types[col] ?? 'text'}[]`).join(',')})`,
      cols.map((_, k) => part.map((r) => r[k])),
    );
  }
  await c.end();
}

async function appendsPerSec(store: Store, url: string, n: number): Promise<number> {
  const rows = entryRows(1, n);
  const now = new Date().toISOString();
  await bulkInsert(
    store,
    url,
    'audit_entries',
    [
      'seq',
      'time',
      'org_id',
      'action',
      'resource',
      'request_id',
      'actor_key_id',
      'actor_principal',
      'outcome',
      'canonical',
    ],
    rows.map((r) => [
      r.seq,
      now,
      '',
      'bench.write',
      `bench/${r.seq}`,
      'bench',
      '',
      'system:bench',
      'success',
      r.canonical,
    ]),
  );
  const seqr = new Sequencer(store.db, { keys: logKeys(randomBytes(32), 'bench/audit'), dialect: store.dialect });
  const t = performance.now();
  while ((await seqr.integrate()) > 0) {
    // until all are in
  }
  return Math.round(n / ((performance.now() - t) / 1000));
}

/** A tree of `leaves` random leaves stored as the sequencer stores it; proofs timed over it. */
async function proofTimes(store: Store, url: string, leaves: number) {
  let size = 0;
  let frontier: Buffer[] = [];
  const batch = 100_000;
  // The appends test left its tree in place: the generated one goes into a clean table.
  await store.db.deleteFrom('audit_log_nodes').execute();
  for (let done = 0; done < leaves; done += batch) {
    const hashes = Array.from({ length: Math.min(batch, leaves - done) }, () => randomBytes(32));
    const next = appendLeaves(size, frontier, hashes);
    await bulkInsert(
      store,
      url,
      'audit_log_nodes',
      ['level', 'idx', 'hash'],
      next.nodes.map((x) => [x.id.level, x.id.index, x.hash.toString('hex')]),
    );
    ({ size, frontier } = next);
    say(`  ${size.toLocaleString('en')} leaves stored`);
  }
  const read = nodeReader(store.db);
  const inc: number[] = [];
  const con: number[] = [];
  for (let i = 0; i < 200; i++) {
    let t = performance.now();
    await inclusionProof(randomInt(leaves), leaves, read);
    inc.push(performance.now() - t);
    t = performance.now();
    await consistencyProof(1 + randomInt(leaves - 1), leaves, read);
    con.push(performance.now() - t);
  }
  return { inclusionProofMs: round(median(inc)), consistencyProofMs: round(median(con)), leaves };
}

/** Hashing a database's entries and rebuilding the root, as `audit verify --database` does. */
function verifyMs(n: number): number {
  const rows = entryRows(1, n);
  const t = performance.now();
  const leaves = rows.map((r) => leafHash(Buffer.from(r.canonical, 'utf8')));
  rootFromFrontier(appendLeaves(0, [], leaves).frontier);
  return Math.round(performance.now() - t);
}

/** Audited writes per second for `seconds`, with or without a sequencer running beside them. */
async function writesPerSec(store: Store, withLog: boolean, seconds: number): Promise<number> {
  const seqr = new Sequencer(store.db, { keys: logKeys(randomBytes(32), 'bench/audit'), dialect: store.dialect });
  if (withLog) seqr.start();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    await mutate(store.db, SYSTEM_ACTOR, { action: 'bench.write', resource: `bench/${n}`, orgId: '' }, async () => ({
      result: n,
      after: { n },
    }));
    n++;
  }
  await seqr.stop();
  return n / seconds;
}

/** POST /api/v1/orgs/acme/projects per second against a server process, the sequencer on or off. */
async function httpPostsPerSec(withLog: boolean, seconds: number): Promise<number> {
  const db = await freshDatabase('sqlite');
  const server = await startServerProcess({
    database: db.url,
    bootstrapToken: OPERATOR_TOKEN,
    env: { FABRIK_RATE_LIMIT: '1000000000', FABRIK_AUDIT_SEQUENCER: withLog ? 'on' : 'off' },
  });
  try {
    const call = async (path: string, body: unknown) => {
      const r = await fetch(server.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!r.ok) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
    };
    await call('/api/v1/orgs', { name: 'acme', residency: 'de' });
    let n = 0;
    const post = (duration: number) =>
      measure({
        url: server.url,
        connections: 10,
        duration,
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
        requests: [
          {
            method: 'POST',
            path: '/api/v1/orgs/acme/projects',
            setupRequest: (req) => ({ ...req, body: JSON.stringify({ name: `p-${(n++).toString(36)}` }) }),
          },
        ],
      });
    await post(1); // warm-up
    const m = await post(seconds);
    if (m.non2xx > 0 || m.errors > 0) throw new Error(`POST: ${m.non2xx} non-2xx, ${m.errors} errors`);
    return m.rps;
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
    await db.drop();
  }
}

export default async function (args: string[]): Promise<object> {
  const leaves = arg(args, '--leaves', 1_000_000);
  const appends = arg(args, '--appends', 100_000);
  const out: Record<string, unknown> = { bench: 'audit' };
  // `--dialects sqlite` for a run at 10 M leaves: PostgreSQL takes long to load 20 M node rows here.
  const i = args.indexOf('--dialects');
  const dialects = (i >= 0 ? String(args[i + 1]).split(',') : ['sqlite', 'postgres']) as ('sqlite' | 'postgres')[];
  for (const dialect of dialects) {
    if (dialect === 'postgres' && !(await postgresAvailable())) {
      out.postgres = { skipped: 'PostgreSQL not reachable' };
      continue;
    }
    const db = await freshDatabase(dialect);
    const store = await openStore(db.url);
    try {
      say(`${dialect}: ${appends.toLocaleString('en')} appends…`);
      const perSec = await appendsPerSec(store, db.url, appends);
      say(`${dialect}: ${perSec} appends/s; a tree of ${leaves.toLocaleString('en')} leaves for proofs…`);
      out[dialect] = { appendsPerSec: perSec, ...(await proofTimes(store, db.url, leaves)) };
      say(`${dialect}: ${JSON.stringify(out[dialect])}`);
    } finally {
      await store.close();
      await db.drop();
    }
  }
  // The issue's figure is a full verify of 1 M entries; 10 M canonical rows would not fit the heap.
  const verifyEntries = Math.min(leaves, 1_000_000);
  say(`verify: hashing ${verifyEntries.toLocaleString('en')} entries and rebuilding the root…`);
  out.verifyMs = verifyMs(verifyEntries);
  out.verifyEntries = verifyEntries;
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-bench-audit-'));
  try {
    const store = await openStore(join(dir, 'fabrik.db'));
    // Alternating, so drift on the machine spoils neither side alone.
    const without: number[] = [];
    const withLog: number[] = [];
    for (let i = 0; i < 3; i++) {
      without.push(await writesPerSec(store, false, 3));
      withLog.push(await writesPerSec(store, true, 3));
    }
    await store.close();
    out.writesPerSec = { withoutLog: Math.round(median(without)), withLog: Math.round(median(withLog)) };
    out.mutateRatioWithLog = round(median(withLog) / median(without), 2);
    say(`audited writes/s without the log ${median(without).toFixed(0)}, with it ${median(withLog).toFixed(0)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The API's POST throughput, alternating servers with and without the sequencer.
  const postsOff: number[] = [];
  const postsOn: number[] = [];
  for (let k = 0; k < 3; k++) {
    postsOff.push(await httpPostsPerSec(false, 5));
    postsOn.push(await httpPostsPerSec(true, 5));
    say(`POST/s without the log ${postsOff.at(-1)}, with it ${postsOn.at(-1)}`);
  }
  out.postsPerSec = { withoutLog: median(postsOff), withLog: median(postsOn) };
  out.postRatioWithLog = round(median(postsOn) / median(postsOff), 2);
  const cpu = cpus();
  out.machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores`;
  return out;
}
