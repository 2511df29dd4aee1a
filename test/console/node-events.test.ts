// Node state changes as events, on both dialects: a cordon, drain, uncordon or down writes a
// platform event (no org) in the change's transaction, which operators receive over
// /api/v1/events and its SSE stream (what the console's floor plan follows) and tenants never do.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_TYPES, eventRuleOf } from '../../src/app/events.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';

const API = '/api/v1';

interface Ev {
  id: string;
  type: string;
  subject: string;
  fabrikorg?: string;
  fabrikproject?: string;
  data: Record<string, unknown>;
}

/** The events of an SSE body, without the `event: cursor` message it starts with. */
function sseEvents(body: string): Ev[] {
  return body
    .split('\n\n')
    .filter((block) => !block.split('\n').includes('event: cursor'))
    .flatMap((block) => block.split('\n').filter((l) => l.startsWith('data: ')))
    .map((l) => JSON.parse(l.slice(6)) as Ev);
}

/** The cursor an SSE body says it starts from (its first message, `event: cursor`). */
function sseCursor(body: string): string | undefined {
  const block = body.split('\n\n').find((b) => b.split('\n').includes('event: cursor'));
  const data = block?.split('\n').find((l) => l.startsWith('data: '));
  return data ? (JSON.parse(data.slice(6)) as { cursor: string }).cursor : undefined;
}

describe('node event rules', () => {
  it('map every node state action to a node.* type that filters may name', () => {
    assert.equal(eventRuleOf('node.cordon'), 'node.cordoned');
    assert.equal(eventRuleOf('node.uncordon'), 'node.uncordoned');
    assert.equal(eventRuleOf('node.drain'), 'node.draining');
    assert.equal(eventRuleOf('node.down'), 'node.down');
    for (const t of ['node.cordoned', 'node.uncordoned', 'node.draining', 'node.down'])
      assert.ok(EVENT_TYPES.includes(t), t);
    assert.deepEqual([...EVENT_TYPES], [...EVENT_TYPES].sort(), 'the list stays sorted');
    assert.equal(eventRuleOf('fleet.apply'), undefined, 'fleet files write no event');
  });
});

for (const dialect of DIALECTS) {
  describe(`node events on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let acme: Tenant;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect);
      acme = await seedTenant(t, 'acme');
    });
    after(async () => {
      if (!skip) await t.close();
    });

    const stream = (token: string, query: string) =>
      t.app.inject({
        method: 'GET',
        url: `${API}/events/stream?timeout=3&${query}`,
        headers: { authorization: `Bearer ${token}` },
      });

    it('streams node state changes to operators, as platform events', { skip }, async () => {
      const head = await t.call('GET', `${API}/events?after=0&limit=1000`);
      const cursor = head.body.nextCursor as string;
      const live = stream(OPERATOR_TOKEN, `after=${cursor}&types=node.*`);
      await new Promise((r) => setTimeout(r, 300));
      for (const verb of ['cordon', 'uncordon', 'drain'])
        assert.equal((await t.call('POST', `${API}/fleet/nodes/b200-01/${verb}`)).status, 200, verb);
      assert.equal(
        (await t.call('PATCH', `${API}/fleet/nodes/b200-02`, { body: { state: 'down' } })).status,
        200,
        'down',
      );
      const got = sseEvents((await live).body);
      assert.deepEqual(
        got.map((e) => [e.type, e.subject, e.data.name, e.data.state]),
        [
          ['node.cordoned', 'fleet/nodes/b200-01', 'b200-01', 'cordoned'],
          ['node.uncordoned', 'fleet/nodes/b200-01', 'b200-01', 'ready'],
          ['node.draining', 'fleet/nodes/b200-01', 'b200-01', 'draining'],
          ['node.down', 'fleet/nodes/b200-02', 'b200-02', 'down'],
        ],
      );
      assert.ok(
        got.every((e) => e.fabrikorg === undefined && e.fabrikproject === undefined),
        'platform events: no org, no project',
      );
      // The same events on the page listing, each with its audit entry's sequence number.
      const listed = await t.call('GET', `${API}/events?after=${cursor}&types=node.*`);
      assert.deepEqual(
        listed.body.items.map((e: Ev) => e.id),
        got.map((e) => e.id),
      );
      const entries = await t.store.db
        .selectFrom('audit_entries')
        .select(['seq', 'action'])
        .where('action', 'like', 'node.%')
        .orderBy('seq')
        .execute();
      assert.deepEqual(
        entries.map((e) => `evt_${Number(e.seq)}`),
        got.map((e) => e.id),
      );
      // A change that is refused writes neither entry nor event.
      assert.equal((await t.call('POST', `${API}/fleet/nodes/b200-99/cordon`)).status, 404);
      const after404 = await t.call('GET', `${API}/events?after=${got.at(-1)!.id}&types=node.*`);
      assert.deepEqual(after404.body.items, []);
    });

    it('follows from after=latest as the overview does: the next node event, no history', { skip }, async () => {
      const head = (await t.call('GET', `${API}/events?after=latest`)).body.nextCursor as string;
      assert.ok(Number(head) > 0);
      const live = stream(OPERATOR_TOKEN, 'after=latest&types=node.*,workload.*');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await t.call('POST', `${API}/fleet/nodes/b200-03/cordon`)).status, 200);
      const res = await live;
      assert.equal(sseCursor(res.body), head, 'the cursor it started from: the newest event then');
      assert.deepEqual(
        sseEvents(res.body).map((e) => [e.type, e.data.name]),
        [['node.cordoned', 'b200-03']],
      );
      assert.equal((await t.call('POST', `${API}/fleet/nodes/b200-03/uncordon`)).status, 200);
    });

    it('never gives node events to tenants, on the stream or the listing', { skip }, async () => {
      for (const token of [acme.ownerToken, acme.viewerToken]) {
        // A tenant may ask for node.* (the type exists) and gets none, old or new.
        const live = stream(token, 'after=0&types=node.*');
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await t.call('POST', `${API}/fleet/nodes/b200-03/cordon`)).status, 200);
        assert.equal((await t.call('POST', `${API}/fleet/nodes/b200-03/uncordon`)).status, 200);
        const res = await live;
        assert.equal(res.statusCode, 200);
        assert.deepEqual(sseEvents(res.body), []);
        const all = await stream(token, 'after=0');
        const seen = sseEvents(all.body);
        assert.ok(seen.length > 0, 'the tenant does get its own events');
        assert.ok(!seen.some((e) => e.type.startsWith('node.')), 'no node event in the whole feed');
        assert.ok(!all.body.includes('b200-03'));
        const listed = await t.call('GET', `${API}/events?after=0&limit=1000`, { token });
        assert.ok(!listed.body.items.some((e: Ev) => e.type.startsWith('node.')));
      }
      // Operators still see all of them.
      const ops = await t.call('GET', `${API}/events?after=0&limit=1000&types=node.*`);
      assert.ok(ops.body.items.filter((e: Ev) => e.data.name === 'b200-03').length >= 4);
      // A tenant may not cordon (no event either).
      const refused = await t.call('POST', `${API}/fleet/nodes/b200-04/cordon`, { token: acme.ownerToken });
      assert.equal(refused.status, 403);
    });
  });
}
