// The event outbox, reading side: events (written by mutate() through src/audit/outbox.ts) listed,
// long-polled and streamed through the caller's visibility; webhooks deliver them.
import type { Kysely } from 'kysely';
import { type CloudEvent, EVENT_TYPES, eventRuleOf } from '../audit/outbox.js';
import type { Trx } from '../store/db.js';
import { AppError } from '../domain/errors.js';
import { type Caller, grantScope, orgRole, roleRank } from '../policy/roles.js';
import type { Database, EventsTable } from '../store/schema.js';

export { type CloudEvent, EVENT_TYPES, eventRuleOf };

export function eventView(r: EventsTable): CloudEvent {
  return {
    specversion: '1.0',
    id: `evt_${Number(r.seq)}`,
    source: r.source,
    type: r.type,
    subject: r.subject,
    time: r.time,
    datacontenttype: 'application/json',
    ...(r.org_id ? { fabrikorg: r.org_id } : {}),
    ...(r.project_id ? { fabrikproject: r.project_id } : {}),
    data: JSON.parse(r.data),
  };
}

// Reading -------------------------------------------------------------------------------------

export interface EventQuery {
  /**
   * Only events after this cursor (a seq, or an event id `evt_<seq>`), or `latest`: after the
   * newest event there is when asked (only later ones come); default: from the start.
   */
  readonly after?: string;
  /** Comma-separated types, `prefix.*`, or `*`; default: all. */
  readonly types?: string;
  readonly limit?: number;
}

export interface EventPage {
  items: CloudEvent[];
  /** Pass as `after` to continue: the last event's cursor, or the one asked with when none came. */
  nextCursor: string;
  /** More events are there already (the page was full). */
  hasMore: boolean;
}

export const MAX_EVENT_PAGE = 1000;
export const DEFAULT_EVENT_PAGE = 100;

/** A cursor as a sequence number: `12` or `evt_12`. */
export function parseCursor(cursor: string | undefined, field = 'after'): number {
  if (cursor === undefined || cursor === '') return 0;
  const m = /^(?:evt_)?(\d{1,15})$/.exec(cursor.trim());
  if (!m) {
    throw new AppError('INVALID_ARGUMENT', `${field}: a cursor is an event id (evt_123) or its number (123)`, {
      field,
    });
  }
  return Number(m[1]);
}

/** The cursor that means "from now on": only events committed after the request. */
export const LATEST_CURSOR = 'latest';

/**
 * A cursor as a sequence number, `latest` resolved now: to the newest event the caller may see.
 * Not the global head: the events after either are the same for this caller (none it may see
 * lies between), and a tenant's cursors stay its own events' ids or what it sent, as everywhere
 * else in the feed, so it learns nothing of how busy the rest of the platform is.
 */
export async function resolveCursor(ctx: ReadCtx, cursor: string | undefined, field = 'after'): Promise<number> {
  if (cursor !== LATEST_CURSOR) return parseCursor(cursor, field);
  if (ctx.caller.operator) return headSeq(ctx.db);
  const scope = visibility(ctx.caller);
  if (!scope) return 0;
  const r = await scope(selectEvents(ctx.db)).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return Number(r?.seq ?? 0);
}

/** Parsed `types`: exact types and prefixes (`workload.*`); null for all. */
export function parseTypes(
  types: string | readonly string[] | undefined,
): { exact: string[]; prefixes: string[] } | null {
  const list = (typeof types === 'string' ? types.split(',') : [...(types ?? [])]).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0 || list.includes('*')) return null;
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const t of list) {
    if (t.endsWith('.*') && EVENT_TYPES.some((k) => k.startsWith(t.slice(0, -1)))) prefixes.push(t.slice(0, -1));
    else if (EVENT_TYPES.includes(t)) exact.push(t);
    else {
      throw new AppError(
        'INVALID_ARGUMENT',
        `types: unknown event type "${t.slice(0, 80)}"; known: ${EVENT_TYPES.join(', ')} (or a prefix such as workload.*)`,
        { field: 'types', known: EVENT_TYPES },
      );
    }
  }
  return { exact, prefixes };
}

/** Whether an event type passes a parsed filter. */
export function typeMatches(filter: ReturnType<typeof parseTypes>, type: string): boolean {
  return !filter || filter.exact.includes(type) || filter.prefixes.some((p) => type.startsWith(p));
}

/**
 * Events the caller may see: operators all; org-wide roles their orgs' events (those for admins
 * only with an org-wide admin role); project grants their projects' events. Never another org's,
 * never platform events for tenants. Returns null when the caller sees none at all.
 */
function visibility(caller: Caller) {
  if (caller.operator) return (q: EventSelect) => q;
  const { wideOrgs, projects } = grantScope(caller);
  const admin = wideOrgs.filter((o) => roleRank(orgRole(caller, o)) >= roleRank('admin'));
  if (!wideOrgs.length && !projects.length) return null;
  return (q: EventSelect) =>
    q.where((eb) =>
      eb.or([
        ...(wideOrgs.length ? [eb.and([eb('org_id', 'in', wideOrgs), eb('audience', '=', '')])] : []),
        ...(admin.length ? [eb('org_id', 'in', admin)] : []),
        ...(projects.length ? [eb.and([eb('project_id', 'in', projects), eb('audience', '=', '')])] : []),
      ]),
    );
}

type EventSelect = ReturnType<typeof selectEvents>;

function selectEvents(db: Kysely<Database>) {
  return db.selectFrom('events').selectAll();
}

interface ReadCtx {
  readonly db: Kysely<Database>;
  readonly caller: Caller;
}

/** One page of events after the cursor, in order, as the caller may see them. */
export async function listEvents(ctx: ReadCtx, query: EventQuery): Promise<EventPage> {
  const after = await resolveCursor(ctx, query.after);
  const filter = parseTypes(query.types);
  const limit = Math.min(Math.max(query.limit ?? DEFAULT_EVENT_PAGE, 1), MAX_EVENT_PAGE);
  const scope = visibility(ctx.caller);
  if (!scope) return { items: [], nextCursor: String(after), hasMore: false };
  let q = scope(selectEvents(ctx.db)).where('seq', '>', after);
  if (filter) {
    q = q.where((eb) =>
      eb.or([
        ...(filter.exact.length ? [eb('type', 'in', filter.exact)] : []),
        ...filter.prefixes.map((p) => eb('type', 'like', `${p}%`)),
      ]),
    );
  }
  const rows = await q
    .orderBy('seq')
    .limit(limit + 1)
    .execute();
  const items = rows.slice(0, limit);
  return {
    items: items.map(eventView),
    nextCursor: String(items.length ? Number(items.at(-1)!.seq) : after),
    hasMore: rows.length > limit,
  };
}

/**
 * Long-poll: the first page after the cursor; when it is empty, waits (at most `waitMs`, or until
 * `signal` aborts) for an event the caller may see and answers as soon as one exists.
 */
export async function waitForEvents(
  ctx: ReadCtx,
  query: EventQuery,
  waitMs: number,
  signal?: AbortSignal,
): Promise<EventPage> {
  const deadline = Date.now() + waitMs;
  // `latest` once, at the start: the wait is for events after the head of now.
  const from = { ...query, after: String(await resolveCursor(ctx, query.after)) };
  for (;;) {
    // The head before the read: anything committed after it wakes the wait below.
    const head = await headSeq(ctx.db);
    const page = await listEvents(ctx, from);
    const left = deadline - Date.now();
    if (page.items.length || left <= 0 || signal?.aborted) return page;
    await eventFeed(ctx.db).waitBeyond(head, left, signal);
  }
}

/** Heartbeat of an event stream when nothing happens; a stream ends after MAX_STREAM_S at most. */
export const STREAM_HEARTBEAT_MS = 15_000;
export const MAX_STREAM_S = 600;

/**
 * An event stream (what SSE sends): pages after the cursor as they come, a heartbeat (an empty
 * page) when nothing came for a while, until `signal` aborts or `untilMs` (epoch ms) passes.
 */
export async function* followEvents(
  ctx: ReadCtx,
  query: EventQuery,
  opts: { signal: AbortSignal; untilMs: number; heartbeatMs?: number },
): AsyncGenerator<EventPage> {
  let after = String(await resolveCursor(ctx, query.after));
  while (!opts.signal.aborted) {
    const left = opts.untilMs - Date.now();
    if (left <= 0) return;
    const page = await waitForEvents(
      ctx,
      { ...query, after, limit: MAX_EVENT_PAGE },
      Math.min(left, opts.heartbeatMs ?? STREAM_HEARTBEAT_MS),
      opts.signal,
    );
    after = page.nextCursor;
    if (opts.signal.aborted) return;
    yield page;
  }
}

/** The newest event's seq (0 when none). */
export async function headSeq(db: Kysely<Database> | Trx): Promise<number> {
  const r = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('seq').as('m'))
    .executeTakeFirst();
  return Number(r?.m ?? 0);
}

/**
 * Wakes waiters when new events are committed, on every replica: one query of the head per
 * interval per database, only while someone waits.
 */
class EventFeed {
  private readonly waiters = new Set<{ readonly seq: number; readonly wake: () => void }>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly intervalMs: number,
  ) {}

  /** Resolves once an event after `seq` exists, after `ms`, or when `signal` aborts. */
  waitBeyond(seq: number, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timeout = setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(timeout);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(w);
        resolve();
      };
      const w = { seq, wake: done };
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(w);
      this.timer ??= setInterval(() => void this.poll(), this.intervalMs);
    });
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    if (this.waiters.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    this.polling = true;
    try {
      const head = await headSeq(this.db);
      for (const w of [...this.waiters]) if (head > w.seq) w.wake();
    } catch {
      // The database is closing or unreachable: the waits end by their own timeouts.
    } finally {
      this.polling = false;
    }
  }
}

const feeds = new WeakMap<Kysely<Database>, EventFeed>();

export const EVENT_POLL_MS = 200;

function eventFeed(db: Kysely<Database>): EventFeed {
  let f = feeds.get(db);
  if (!f) {
    f = new EventFeed(db, EVENT_POLL_MS);
    feeds.set(db, f);
  }
  return f;
}
