// The event outbox through the API, on both dialects: one CloudEvents record per change, written in
// the change's transaction (a mutation that throws leaves neither entry nor event), in commit
// order with cursor paging, seen through the caller's visibility (another org's never, a
// project-scoped key only its project's, admin-only events only by admins), long-poll that answers
// as soon as an event exists, SSE that resumes with Last-Event-ID, the `types` filter, and
// `after=latest` (only events after the request; a tenant's resolves to its own newest event).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_TYPES } from '../../src/app/events.js';
import { SYSTEM_ACTOR, mutate } from '../../src/audit/journal.js';
import { newId, nowIso } from '../../src/domain/ids.js';
import { DIALECTS, type TestApp, type Tenant, seedTenant, skipReason, startTestApp } from '../helpers/harness.js';

const API = '/api/v1';
const job = (name: string) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '2h',
  run: 'python train.py',
});

interface Ev {
  id: string;
  type: string;
  subject: string;
  specversion: string;
  source: string;
  time: string;
  datacontenttype: string;
  fabrikorg?: string;
  fabrikproject?: string;
  data: Record<string, any>;
}

const seqOf = (e: Ev) => Number(e.id.slice(4));

/**
 * Parses a text/event-stream body into its events (id and JSON data), comment lines, and the
 * `event: cursor` message the stream starts with (the cursor it starts from).
 */
function parseSse(body: string): {
  events: { id: string; data: Ev }[];
  comments: string[];
  cursors: { id: string; cursor: string }[];
} {
  const events: { id: string; data: Ev }[] = [];
  const comments: string[] = [];
  const cursors: { id: string; cursor: string }[] = [];
  for (const block of body.split('\n\n')) {
    let id = '';
    let data = '';
    let name = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('event: ')) name = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (name === 'cursor') cursors.push({ id, cursor: JSON.parse(data).cursor });
    else if (data) events.push({ id, data: JSON.parse(data) });
  }
  return { events, comments, cursors };
}

for (const dialect of DIALECTS) {
  describe(`events on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;
    let globex: Tenant;
    let acmeId: string;
    let globexId: string;
    let trainId: string;
    let researchId: string;
    let scopedToken: string;

    /** Every event the key sees, page by page. */
    async function all(token?: string, query = ''): Promise<Ev[]> {
      const out: Ev[] = [];
      let after = '0';
      for (;;) {
        const r = await t.call('GET', `${API}/events?after=${after}&limit=7${query}`, { token });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        out.push(...r.body.items);
        after = r.body.nextCursor;
        if (!r.body.hasMore) return out;
      }
    }

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme');
      globex = await seedTenant(t, 'globex');
      const must = async (method: string, url: string, body?: unknown, token?: string) => {
        const r = await t.call(method, `${API}${url}`, { body, token });
        if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      };
      acmeId = (await must('GET', '/orgs/acme')).id;
      globexId = (await must('GET', '/orgs/globex')).id;
      trainId = (await must('GET', '/projects/acme.train')).id;
      researchId = (await must('POST', '/orgs/acme/projects', { name: 'research' }, acme.ownerToken)).id;
      await must('POST', '/orgs/acme/serviceaccounts', { name: 'trainer', role: 'member', project: 'train' });
      scopedToken = (
        await must('POST', '/orgs/acme/keys', { name: 'trainer-ci', serviceAccount: 'trainer', project: 'train' })
      ).token;
      await must('PUT', '/projects/acme.research/quotas/rtxpro6000', { guaranteed: 4, limit: 8 });
      await must('POST', '/users', { name: 'carol' });
    });
    after(async () => {
      if (!skip) await t.close();
    });

    it('writes one event per change, in the same transaction as its audit entry', { skip }, async () => {
      const events = await all();
      const entries = await t.store.db.selectFrom('audit_entries').selectAll().orderBy('seq').execute();
      const bySeq = new Map(entries.map((e) => [Number(e.seq), e]));
      assert.ok(events.length > 10);
      for (const e of events) {
        const entry = bySeq.get(seqOf(e));
        assert.ok(entry, `${e.id} has an audit entry`);
        assert.equal(entry.outcome, 'success');
        assert.equal(e.time, entry.time);
        assert.equal(e.specversion, '1.0');
        assert.equal(e.source, '/fabrik');
        assert.equal(e.datacontenttype, 'application/json');
        assert.ok(EVENT_TYPES.includes(e.type), e.type);
      }
      const types = events.map((e) => e.type);
      for (const ty of ['org.created', 'user.created', 'member.added', 'apikey.created', 'project.created']) {
        assert.ok(types.includes(ty), `${ty} among ${[...new Set(types)].join(', ')}`);
      }
      // Fleet changes and the bootstrap are no events.
      assert.ok(entries.some((e) => e.action === 'fleet.apply'));
      assert.ok(!events.some((e) => e.subject.startsWith('fleet')));
      const created = events.find((e) => e.type === 'org.created' && e.data.name === 'acme')!;
      assert.equal(created.fabrikorg, acmeId, 'an org is the scope of its own creation');
      assert.equal(created.subject, 'orgs/acme');
    });

    it('writes neither entry nor event when the mutation throws', { skip }, async () => {
      const count = async () => ({
        entries: Number(
          (
            await t.store.db
              .selectFrom('audit_entries')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        ),
        events: Number(
          (
            await t.store.db
              .selectFrom('events')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        ),
      });
      const before = await count();
      const id = newId('prj');
      await assert.rejects(
        mutate(
          t.store.db,
          SYSTEM_ACTOR,
          { action: 'project.create', resource: 'orgs/acme/projects/boom', orgId: acmeId },
          async (trx) => {
            const now = nowIso();
            await trx
              .insertInto('projects')
              .values({
                id,
                org_id: acmeId,
                name: 'boom',
                display_name: 'boom',
                uid: 999_999,
                created_at: now,
                updated_at: now,
              })
              .execute();
            throw new Error('boom');
          },
        ),
        /boom/,
      );
      assert.deepEqual(await count(), before);
      assert.equal(
        await t.store.db.selectFrom('projects').select('id').where('id', '=', id).executeTakeFirst(),
        undefined,
      );
      // A refused request through the API: no event either.
      const dup = await t.call('POST', `${API}/orgs/acme/projects`, {
        body: { name: 'research' },
        token: acme.ownerToken,
      });
      assert.equal(dup.status, 409);
      const denied = await t.call('POST', `${API}/orgs/acme/projects`, {
        body: { name: 'x' },
        token: acme.viewerToken,
      });
      assert.equal(denied.status, 403);
      const after = await count();
      assert.equal(after.events, before.events, 'a conflict and a denial write no event');
      assert.equal(after.entries, before.entries + 1, 'the denial is on the audit record');
    });

    it('lists in commit order; cursor pages join up without gaps or repeats', { skip }, async () => {
      const paged = await all();
      const whole = (await t.call('GET', `${API}/events?limit=1000`)).body;
      assert.equal(whole.hasMore, false);
      assert.deepEqual(
        paged.map((e) => e.id),
        whole.items.map((e: Ev) => e.id),
      );
      const seqs = paged.map(seqOf);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      assert.equal(new Set(seqs).size, seqs.length);
      // The cursor is the event id or its number; the last page says where to go on from.
      const mid = paged[5]!;
      const a = (await t.call('GET', `${API}/events?after=${mid.id}&limit=3`)).body;
      const b = (await t.call('GET', `${API}/events?after=${seqOf(mid)}&limit=3`)).body;
      assert.deepEqual(a, b);
      assert.deepEqual(
        a.items.map((e: Ev) => e.id),
        paged.slice(6, 9).map((e) => e.id),
      );
      const end = (await t.call('GET', `${API}/events?after=${whole.nextCursor}`)).body;
      assert.deepEqual(end, { items: [], nextCursor: whole.nextCursor, hasMore: false });
      for (const bad of ['abc', '-1', 'evt_', '1.5', 'x'.repeat(40)]) {
        const r = await t.call('GET', `${API}/events?after=${bad}`);
        assert.equal(r.status, 400, bad);
      }
    });

    it("shows each caller what it may see: never another org's, a scoped key only its project", { skip }, async () => {
      const everything = await all();
      const theirs = await all(globex.ownerToken);
      assert.ok(theirs.length > 0);
      assert.ok(
        theirs.every((e) => e.fabrikorg === globexId),
        'globex sees only globex events',
      );
      assert.ok(!JSON.stringify(theirs).includes('acme'), "nothing of acme in globex's feed");
      assert.ok(!theirs.some((e) => e.type === 'user.created'), 'platform events are for operators');
      assert.ok(everything.some((e) => e.type === 'user.created' && !e.fabrikorg));

      const owner = await all(acme.ownerToken);
      const viewer = await all(acme.viewerToken);
      assert.ok(owner.every((e) => e.fabrikorg === acmeId));
      assert.ok(
        owner.some((e) => e.type === 'apikey.created'),
        'admins see key events',
      );
      assert.ok(!viewer.some((e) => e.type === 'apikey.created'), 'viewers may not list keys, nor their events');
      assert.ok(viewer.some((e) => e.type === 'project.created' && e.data.name === 'research'));
      assert.ok(viewer.some((e) => e.type === 'quota.changed' && e.fabrikproject === researchId));

      const scoped = await all(scopedToken);
      assert.ok(scoped.length > 0);
      assert.ok(
        scoped.every((e) => e.fabrikproject === trainId),
        `the scoped key sees only acme.train: ${scoped.map((e) => e.subject).join(', ')}`,
      );
      assert.ok(
        scoped.some((e) => e.type === 'quota.changed'),
        "its project's quota",
      );
      assert.ok(!JSON.stringify(scoped).includes(researchId) && !JSON.stringify(scoped).includes('research'));
    });

    it('follows a workload through its lifecycle', { skip }, async () => {
      const from = (await t.call('GET', `${API}/events?after=999999999999`)).body.nextCursor;
      assert.equal(from, '999999999999');
      const head = (await all()).at(-1)!.id;
      const w = await t.call('POST', `${API}/projects/acme.train/workloads`, {
        body: job('lifecycle'),
        token: acme.ownerToken,
      });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      await t.scheduler.cycle();
      const c = await t.call('POST', `${API}/projects/acme.train/workloads/lifecycle/cancel`, {
        token: acme.ownerToken,
      });
      assert.equal(c.status, 200, JSON.stringify(c.body));
      const evs = (await t.call('GET', `${API}/events?after=${head}&types=workload.*`, { token: acme.viewerToken }))
        .body.items as Ev[];
      assert.deepEqual(
        evs.map((e) => [e.type, e.data.status]),
        [
          ['workload.submitted', 'pending'],
          ['workload.placed', 'running'],
          ['workload.finished', 'cancelled'],
        ],
      );
      for (const e of evs) {
        assert.equal(e.subject, 'projects/acme.train/workloads/lifecycle');
        assert.equal(e.data.id, w.body.id);
        assert.equal(e.fabrikproject, trainId);
        assert.equal(e.fabrikorg, acmeId);
        assert.equal(e.data.spec, undefined, 'no spec: env values may be credentials');
      }
      assert.equal(evs[2]!.data.previousStatus, 'running');
      assert.ok(evs[1]!.data.placement.nodes.length === 1);
      // The scoped key of acme.train sees them too; globex does not.
      const scoped = (await t.call('GET', `${API}/events?after=${head}`, { token: scopedToken })).body.items as Ev[];
      assert.deepEqual(
        scoped.filter((e) => e.type.startsWith('workload.')).map((e) => e.id),
        evs.map((e) => e.id),
      );
      const g = (await t.call('GET', `${API}/events?after=${head}`, { token: globex.ownerToken })).body.items;
      assert.deepEqual(g, []);
    });

    it('filters by type: exact names, prefixes, and a 400 naming the known types', { skip }, async () => {
      const finished = await all(undefined, '&types=workload.finished');
      assert.ok(finished.length >= 1);
      assert.ok(finished.every((e) => e.type === 'workload.finished'));
      const two = await all(undefined, '&types=project.created,org.created');
      assert.deepEqual([...new Set(two.map((e) => e.type))].sort(), ['org.created', 'project.created']);
      const prefix = await all(undefined, '&types=project.*');
      assert.ok(prefix.length > 0 && prefix.every((e) => e.type.startsWith('project.')));
      const bad = await t.call('GET', `${API}/events?types=workload.finishd`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'INVALID_ARGUMENT');
      assert.match(bad.body.error.message, /unknown event type "workload\.finishd"; known: .*workload\.finished/);
    });

    it('never carries secret values or key tokens', { skip }, async () => {
      const value = `sk-${newId('x')}`;
      const put = await t.call('PUT', `${API}/projects/acme.train/secrets/wandb`, {
        body: { value },
        token: acme.ownerToken,
      });
      assert.equal(put.status, 201);
      const key = await t.call('POST', `${API}/orgs/acme/keys`, {
        body: { name: 'leak-check' },
        token: acme.ownerToken,
      });
      assert.equal(key.status, 201);
      const text = JSON.stringify(await all());
      assert.ok(!text.includes(value), 'no secret value');
      assert.ok(!text.includes(key.body.token), 'no key token');
      const ev = (await all(undefined, '&types=secret.created')).at(-1)!;
      assert.equal(ev.data.name, 'wandb');
      assert.equal(ev.fabrikproject, trainId);
    });

    it('long-polls: answers as soon as a visible event exists, waits out the rest', { skip }, async () => {
      const head = (await t.call('GET', `${API}/events?after=999999999999`)).body;
      const cur = (await all()).at(-1)!.id;
      assert.ok(head);
      const started = Date.now();
      const waiting = t.call('GET', `${API}/events?after=${cur}&wait=20`, { token: acme.viewerToken });
      const elsewhere = t.call('GET', `${API}/events?after=${cur}&wait=1`, { token: globex.ownerToken });
      await new Promise((r) => setTimeout(r, 300));
      const p = await t.call('POST', `${API}/orgs/acme/projects`, { body: { name: 'polled' }, token: acme.ownerToken });
      assert.equal(p.status, 201);
      const got = await waiting;
      const took = Date.now() - started;
      assert.equal(got.status, 200);
      assert.deepEqual(
        got.body.items.map((e: Ev) => [e.type, e.data.name]),
        [['project.created', 'polled']],
      );
      assert.ok(took < 5000, `answered after ${took} ms, not after the 20 s wait`);
      const other = await elsewhere;
      assert.deepEqual(other.body.items, [], "acme's event does not end globex's wait with anything");
      assert.ok(Date.now() - started >= 1000);
    });

    it('streams Server-Sent Events that resume with Last-Event-ID', { skip }, async () => {
      const first = await t.app.inject({
        method: 'GET',
        url: `${API}/events/stream?timeout=1`,
        headers: { authorization: `Bearer ${acme.ownerToken}` },
      });
      assert.equal(first.statusCode, 200);
      assert.match(String(first.headers['content-type']), /^text\/event-stream/);
      assert.equal(first.headers['cache-control'], 'no-cache');
      const one = parseSse(first.body);
      assert.deepEqual(one.cursors, [{ id: '0', cursor: '0' }], 'first the cursor it starts from');
      assert.ok(one.events.length > 5);
      assert.ok(one.comments.length > 0, 'a comment (heartbeat) keeps the connection alive');
      assert.ok(one.events.every((e) => e.id === e.data.id.slice(4) && e.data.fabrikorg === acmeId));
      assert.deepEqual(
        one.events.map((e) => e.data.id),
        (await all(acme.ownerToken)).map((e) => e.id),
      );
      const resumeAt = one.events[3]!.id;
      const again = await t.app.inject({
        method: 'GET',
        url: `${API}/events/stream?timeout=1&after=0&types=project.*,org.*`,
        headers: { authorization: `Bearer ${acme.ownerToken}`, 'last-event-id': resumeAt },
      });
      const two = parseSse(again.body);
      assert.deepEqual(two.cursors, [{ id: resumeAt, cursor: resumeAt }], 'Last-Event-ID wins over after=');
      assert.ok(two.events.length > 0);
      assert.ok(two.events.every((e) => Number(e.id) > Number(resumeAt) && /^(project|org)\./.test(e.data.type)));
      assert.deepEqual(
        two.events.map((e) => e.id),
        one.events
          .slice(4)
          .filter((e) => /^(project|org)\./.test(e.data.type))
          .map((e) => e.id),
      );
      // New events arrive on an open stream.
      const live = t.app.inject({
        method: 'GET',
        url: `${API}/events/stream?timeout=3&after=${one.events.at(-1)!.id}`,
        headers: { authorization: `Bearer ${acme.viewerToken}` },
      });
      await new Promise((r) => setTimeout(r, 300));
      await t.call('POST', `${API}/orgs/acme/projects`, { body: { name: 'streamed' }, token: acme.ownerToken });
      const three = parseSse((await live).body);
      assert.deepEqual(
        three.events.map((e) => e.data.data.name),
        ['streamed'],
      );
      const bad = await t.call('GET', `${API}/events/stream`, { headers: { 'last-event-id': 'nope' } });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /Last-Event-ID/);
    });

    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const newProject = async (org: string, name: string, token: string) => {
      const r = await t.call('POST', `${API}/orgs/${org}/projects`, { body: { name }, token });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    };
    const streamOf = (token: string, query: string, headers: Record<string, string> = {}) =>
      t.app.inject({
        method: 'GET',
        url: `${API}/events/stream?${query}`,
        headers: { authorization: `Bearer ${token}`, ...headers },
      });

    it('starts at after=latest: no history, the next events, the cursor it resolved to told first', {
      skip,
    }, async () => {
      const newest = (await all()).at(-1)!;
      const page = await t.call('GET', `${API}/events?after=latest&limit=1000`);
      assert.equal(page.status, 200);
      assert.deepEqual(page.body, { items: [], nextCursor: String(seqOf(newest)), hasMore: false });
      // Long-poll from latest: answered by the next event, and only by it.
      const waiting = t.call('GET', `${API}/events?after=latest&wait=10`, { token: acme.viewerToken });
      await sleep(300);
      await newProject('acme', 'latest-polled', acme.ownerToken);
      const polled = (await waiting).body;
      assert.deepEqual(
        polled.items.map((e: Ev) => [e.type, e.data.name]),
        [['project.created', 'latest-polled']],
      );
      // The stream from latest: first its cursor (the newest event of the moment), then what comes.
      const live = streamOf(acme.viewerToken, 'timeout=2&after=latest&types=project.*');
      await sleep(300);
      await newProject('acme', 'latest-streamed', acme.ownerToken);
      const got = parseSse((await live).body);
      assert.deepEqual(got.cursors, [{ id: polled.nextCursor, cursor: polled.nextCursor }]);
      assert.deepEqual(
        got.events.map((e) => [e.data.type, e.data.data.name]),
        [['project.created', 'latest-streamed']],
      );
      // A reconnect resumes from the cursor (Last-Event-ID), not from a new `latest`.
      const resumed = parseSse(
        (await streamOf(acme.viewerToken, 'timeout=1&after=latest', { 'last-event-id': polled.nextCursor })).body,
      );
      assert.deepEqual(
        resumed.events.map((e) => e.data.data.name),
        ['latest-streamed'],
      );
    });

    it("resolves a tenant's latest to its own newest event: never another org's, nor the platform's head", {
      skip,
    }, async () => {
      const theirs = (await all(globex.ownerToken)).at(-1)!;
      await newProject('acme', 'after-globex', acme.ownerToken);
      assert.ok(seqOf((await all()).at(-1)!) > seqOf(theirs), 'the platform moved on');
      const page = await t.call('GET', `${API}/events?after=latest`, { token: globex.ownerToken });
      assert.deepEqual(page.body, { items: [], nextCursor: String(seqOf(theirs)), hasMore: false });
      const scoped = await t.call('GET', `${API}/events?after=latest`, { token: scopedToken });
      assert.equal(scoped.body.nextCursor, String(seqOf((await all(scopedToken)).at(-1)!)));
      // On the stream: acme's next event does not come to globex, globex's own does.
      const live = streamOf(globex.ownerToken, 'timeout=2&after=latest');
      await sleep(300);
      await newProject('acme', 'unseen-by-globex', acme.ownerToken);
      await newProject('globex', 'seen-by-globex', globex.ownerToken);
      const res = await live;
      const got = parseSse(res.body);
      assert.deepEqual(got.cursors, [{ id: String(seqOf(theirs)), cursor: String(seqOf(theirs)) }]);
      assert.deepEqual(
        got.events.map((e) => [e.data.type, e.data.data.name]),
        [['project.created', 'seen-by-globex']],
      );
      assert.ok(!res.body.includes('unseen-by-globex') && !res.body.includes(acmeId), 'nothing of acme');
      // Anything else than a cursor or the literal `latest` is still a 400.
      for (const bad of ['Latest', 'LATEST', 'latest1', 'evt_latest', 'newest']) {
        assert.equal((await t.call('GET', `${API}/events?after=${bad}`)).status, 400, bad);
        assert.equal((await t.call('GET', `${API}/events/stream?timeout=1&after=${bad}`)).status, 400, bad);
      }
      const header = await t.call('GET', `${API}/events/stream?timeout=1`, { headers: { 'last-event-id': 'latest' } });
      assert.equal(header.status, 400, 'Last-Event-ID is a cursor, never `latest`');
      assert.match(header.body.error.message, /Last-Event-ID/);
    });
  });
}
