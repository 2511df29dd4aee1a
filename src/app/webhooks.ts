// Webhooks: an org subscribes a URL to event types; every matching event of that org is POSTed to
// it at least once, in event order per subscription (one request in flight per subscription, the
// next waits until the previous was delivered or given up), signed per the Standard Webhooks
// convention (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body">). The signing secret is shown once at creation and kept sealed with the
// server's master key, as tenant secrets are. Failed attempts are retried with exponential backoff
// and given up after a bounded number; the subscription then goes on with the next event.
import { createHmac, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Trx } from '../audit/journal.js';
import { AppError, notFound } from '../domain/errors.js';
import { newId, nowIso } from '../domain/ids.js';
import { type Page, type PageRequest, decodeCursor, page } from '../store/paging.js';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from '../store/schema.js';
import { type Ctx, findOrg, hasRole, requireRole, write } from './context.js';
import { secretBoxFor } from './secret-box.js';
import { headSeq, parseTypes } from './events.js';

export const MAX_WEBHOOKS_PER_ORG = 25;
export const MAX_URL_LENGTH = 2048;

export interface Webhook {
  id: string;
  org: string;
  url: string;
  /** Event types (or `prefix.*`) it receives; empty: all of the org's events. */
  types: string[];
  description: string;
  createdAt: string;
  createdBy: string;
  deliveries: { pending: number; delivered: number; failed: number };
}

/** The first answer to a creation: with the signing secret, shown this once. */
export interface CreatedWebhook extends Webhook {
  secret: string;
}

/** What an Idempotency-Key replay answers (and all that is stored as the replay): no secret. */
export interface ReplayedWebhook extends Webhook {
  secret: null;
  secretShownOnce: true;
}

export interface Delivery {
  id: string;
  webhook: string;
  event: { id: string; type: string };
  /** pending (to be tried, or tried again at nextAttemptAt), delivered, or failed (given up). */
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  deliveredAt: string | null;
}

/** What a subscription's sealed signing secret is bound to (AAD): its org and id. */
export const AT = (orgId: string, id: string) => ({ orgId, projectId: '', name: `webhook:${id}` });

/** Only absolute http(s) URLs without credentials: no file:, no unix sockets, no other schemes. */
export function checkTargetUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AppError(
      'INVALID_ARGUMENT',
      'url: not an absolute URL; give one such as https://hooks.example.com/fabrik',
      {
        field: 'url',
      },
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new AppError(
      'INVALID_ARGUMENT',
      `url: only http:// and https:// targets can receive webhooks, not ${u.protocol.slice(0, 20)}`,
      { field: 'url' },
    );
  }
  if (u.username || u.password) {
    throw new AppError('INVALID_ARGUMENT', 'url: no credentials in the URL; receivers verify the signature instead', {
      field: 'url',
    });
  }
  if (!u.hostname) throw new AppError('INVALID_ARGUMENT', 'url: the URL names no host', { field: 'url' });
  u.hash = '';
  if (u.toString().length > MAX_URL_LENGTH)
    throw new AppError('INVALID_ARGUMENT', `url: at most ${MAX_URL_LENGTH} characters`, { field: 'url' });
  return u.toString();
}

/** The Standard Webhooks signature header value for one request. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

async function webhookViews(db: Kysely<Database> | Trx, orgName: string, rows: WebhooksTable[]): Promise<Webhook[]> {
  const counts = new Map<string, Webhook['deliveries']>();
  if (rows.length) {
    const stats = await db
      .selectFrom('webhook_deliveries')
      .select(['webhook_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where(
        'webhook_id',
        'in',
        rows.map((r) => r.id),
      )
      .groupBy(['webhook_id', 'status'])
      .execute();
    for (const s of stats) {
      const c = counts.get(s.webhook_id) ?? { pending: 0, delivered: 0, failed: 0 };
      if (s.status === 'pending' || s.status === 'delivered' || s.status === 'failed') c[s.status] = Number(s.n);
      counts.set(s.webhook_id, c);
    }
  }
  return rows.map((r) => ({
    id: r.id,
    org: orgName,
    url: r.url,
    types: JSON.parse(r.types),
    description: r.description,
    createdAt: r.created_at,
    createdBy: r.created_by,
    deliveries: counts.get(r.id) ?? { pending: 0, delivered: 0, failed: 0 },
  }));
}

/** Subscriptions (their URLs may carry tokens) are for org-wide admins: to read and to write. */
function requireReader(ctx: Ctx, orgId: string): void {
  if (!hasRole(ctx, orgId, 'admin')) throw new AppError('FORBIDDEN', 'webhooks are managed by org admins');
}

export async function createWebhook(
  ctx: Ctx,
  orgName: string,
  input: { url: string; types?: string[]; description?: string },
): Promise<CreatedWebhook> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'webhook.create', resource: `orgs/${org.name}/webhooks`, orgId: org.id };
  await requireRole(ctx, spec, 'admin', 'managing webhooks');
  if (org.status !== 'active') throw new AppError('CONFLICT', `organization "${org.name}" is ${org.status}`);
  const url = checkTargetUrl(input.url);
  const types = [...new Set((input.types ?? []).map((t) => t.trim()))];
  parseTypes(types);
  // Looked up only now: a caller who may not see the org learns nothing about the server.
  const box = secretBoxFor(ctx.db);
  let secret = '';
  const replay = await write(ctx, spec, async (trx) => {
    const n = await trx
      .selectFrom('webhooks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', org.id)
      .executeTakeFirstOrThrow();
    if (Number(n.n) >= MAX_WEBHOOKS_PER_ORG)
      throw new AppError('UNPROCESSABLE', `at most ${MAX_WEBHOOKS_PER_ORG} webhooks per org`);
    const id = newId('whk');
    secret = newSecret();
    const sealed = box.seal(secret, AT(org.id, id));
    const row: WebhooksTable = {
      id,
      org_id: org.id,
      url,
      types: JSON.stringify(types),
      description: input.description ?? '',
      key_id: sealed.keyId,
      nonce: sealed.nonce,
      ciphertext: sealed.ciphertext,
      // Under the audit head lock every event up to the head is committed: it gets later ones.
      cursor: await headSeq(trx),
      lease_until: '',
      created_at: nowIso(),
      created_by: ctx.caller.principal,
    };
    await trx.insertInto('webhooks').values(row).execute();
    const [view] = await webhookViews(trx, org.name, [row]);
    const replayed: ReplayedWebhook = { ...view!, secret: null, secretShownOnce: true };
    // The audit digest and the event cover the subscription, never its secret.
    return { result: replayed, after: view, resource: `orgs/${org.name}/webhooks/${id}` };
  });
  const { secretShownOnce: _, ...view } = replay;
  return { ...view, secret };
}

export async function listWebhooks(ctx: Ctx, orgName: string, req: PageRequest): Promise<Page<Webhook>> {
  const org = await findOrg(ctx, orgName);
  requireReader(ctx, org.id);
  const q = ctx.db.selectFrom('webhooks').selectAll().where('org_id', '=', org.id);
  const rows = await page(q, 'id', req, (r) => r);
  return { items: await webhookViews(ctx.db, org.name, rows.items), nextCursor: rows.nextCursor };
}

async function findWebhook(ctx: Ctx, orgName: string, id: string, db: Kysely<Database> | Trx = ctx.db) {
  const org = await findOrg(ctx, orgName, db);
  const row = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('id', '=', id)
    .where('org_id', '=', org.id)
    .executeTakeFirst();
  return { org, row };
}

export async function getWebhook(ctx: Ctx, orgName: string, id: string): Promise<Webhook> {
  const { org, row } = await findWebhook(ctx, orgName, id);
  requireReader(ctx, org.id);
  if (!row) throw notFound('webhook', id);
  return (await webhookViews(ctx.db, org.name, [row]))[0]!;
}

export async function deleteWebhook(ctx: Ctx, orgName: string, id: string): Promise<void> {
  const org = await findOrg(ctx, orgName);
  const spec = { action: 'webhook.delete', resource: `orgs/${org.name}/webhooks/${id}`, orgId: org.id };
  await requireRole(ctx, spec, 'admin', 'managing webhooks');
  await write(ctx, spec, async (trx) => {
    const { row } = await findWebhook(ctx, orgName, id, trx);
    if (!row) throw notFound('webhook', id);
    const [view] = await webhookViews(trx, org.name, [row]);
    await trx.deleteFrom('webhook_deliveries').where('webhook_id', '=', row.id).execute();
    await trx.deleteFrom('webhooks').where('id', '=', row.id).execute();
    return { result: undefined, before: view, after: null };
  });
}

function deliveryView(r: WebhookDeliveriesTable): Delivery {
  return {
    id: r.id,
    webhook: r.webhook_id,
    event: { id: `evt_${Number(r.event_seq)}`, type: r.event_type },
    status: r.status,
    attempts: r.attempts,
    lastStatusCode: r.last_status,
    lastError: r.last_error || null,
    nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deliveredAt: r.delivered_at || null,
  };
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

/** A subscription's deliveries, newest event first. */
export async function listDeliveries(
  ctx: Ctx,
  orgName: string,
  id: string,
  filter: { status?: string },
  req: PageRequest,
): Promise<Page<Delivery>> {
  const { org, row } = await findWebhook(ctx, orgName, id);
  requireReader(ctx, org.id);
  if (!row) throw notFound('webhook', id);
  if (filter.status !== undefined && !(DELIVERY_STATUSES as readonly string[]).includes(filter.status)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `status: unknown delivery status "${filter.status.slice(0, 40)}"; valid: ${DELIVERY_STATUSES.join(', ')}`,
      { field: 'status', valid: DELIVERY_STATUSES },
    );
  }
  // Ordered by event seq: a cursor must hold one.
  if (req.cursor !== undefined) decodeCursor(req.cursor, 'integer');
  let q = ctx.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', row.id);
  if (filter.status) q = q.where('status', '=', filter.status);
  return page(q, 'event_seq', req, deliveryView, 'desc');
}
