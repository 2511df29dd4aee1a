// Storage quota of a project: the bytes of the distinct blobs its versions hold (a blob counts
// once per project however many versions name it), plus, at upload time, what its open uploads
// will add. Checked when an upload is offered and again, exactly, when a commit lands.
import type { Kysely } from 'kysely';
import { type Ctx, findProject, requireOperatorTo, write } from '../app/context.js';
import type { Trx } from '../audit/journal.js';
import { AppError } from '../domain/errors.js';
import { nowIso } from '../domain/ids.js';
import type { Database } from '../store/schema.js';
import type { Registry } from './registry.js';

export interface StorageUsage {
  project: string;
  /** null: no limit. */
  limitBytes: number | null;
  usedBytes: number;
  /** Bytes of uploads in progress (counted against the limit while they last). */
  uploadingBytes: number;
}

async function limitOf(db: Kysely<Database> | Trx, reg: Registry, projectId: string): Promise<number | null> {
  const row = await db
    .selectFrom('storage_quotas')
    .select('limit_bytes')
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  const limit = row ? Number(row.limit_bytes) : reg.limits.defaultQuotaBytes;
  return limit > 0 ? limit : null;
}

export async function usedBytes(db: Kysely<Database> | Trx, projectId: string): Promise<number> {
  const r = await db
    .selectFrom('project_blobs')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), eb.val(0)).as('n'))
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

async function uploadingBytes(db: Kysely<Database> | Trx, projectId: string): Promise<number> {
  const r = await db
    .selectFrom('uploads')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), eb.val(0)).as('n'))
    .where('project_id', '=', projectId)
    .where('status', '=', 'open')
    .where('expires_at', '>', nowIso())
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Refuses (507) when `adding` more bytes would take the project over its storage quota. */
export async function checkRoom(
  db: Kysely<Database> | Trx,
  reg: Registry,
  projectId: string,
  adding: number,
  o: { countOpenUploads: boolean },
): Promise<void> {
  const limit = await limitOf(db, reg, projectId);
  if (limit === null) return;
  const used = await usedBytes(db, projectId);
  const pending = o.countOpenUploads ? await uploadingBytes(db, projectId) : 0;
  if (used + pending + adding > limit) {
    throw new AppError(
      'STORAGE_QUOTA_EXCEEDED',
      `the project's storage quota of ${limit} bytes cannot hold ${adding} more bytes (${used} stored, ${pending} being uploaded)`,
      { limitBytes: limit, usedBytes: used, uploadingBytes: pending, addingBytes: adding },
    );
  }
}

export async function storageUsage(ctx: Ctx, reg: Registry, projectRef: string): Promise<StorageUsage> {
  const { org, project } = await findProject(ctx, projectRef);
  return {
    project: `${org.name}.${project.name}`,
    limitBytes: await limitOf(ctx.db, reg, project.id),
    usedBytes: await usedBytes(ctx.db, project.id),
    uploadingBytes: await uploadingBytes(ctx.db, project.id),
  };
}

/** Operators set a project's storage quota; null goes back to the server's default. */
export async function setStorageQuota(
  ctx: Ctx,
  reg: Registry,
  projectRef: string,
  limitBytes: number | null,
): Promise<StorageUsage> {
  const { org, project } = await findProject(ctx, projectRef);
  const ref = `${org.name}.${project.name}`;
  const spec = {
    action: 'storage-quota.set',
    resource: `projects/${ref}/storage-quota`,
    orgId: org.id,
    projectId: project.id,
  };
  await requireOperatorTo(ctx, spec, 'set storage quotas');
  if (limitBytes !== null && (!Number.isSafeInteger(limitBytes) || limitBytes < 0)) {
    throw new AppError('INVALID_ARGUMENT', 'limitBytes must be a non-negative integer or null');
  }
  await write(ctx, spec, async (trx) => {
    const before = await trx
      .selectFrom('storage_quotas')
      .selectAll()
      .where('project_id', '=', project.id)
      .executeTakeFirst();
    if (limitBytes === null) {
      await trx.deleteFrom('storage_quotas').where('project_id', '=', project.id).execute();
      return { result: undefined, before };
    }
    const row = { project_id: project.id, limit_bytes: limitBytes, updated_at: nowIso() };
    await trx
      .insertInto('storage_quotas')
      .values(row)
      .onConflict((oc) => oc.column('project_id').doUpdateSet({ limit_bytes: limitBytes, updated_at: row.updated_at }))
      .execute();
    return { result: undefined, before, after: row };
  });
  return storageUsage(ctx, reg, projectRef);
}
