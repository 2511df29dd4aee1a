// Reading a workload's task logs: the last N lines, or following the file while the attempt runs.
// Tenants read their own logs; operators outside the org only under break-glass (src/app/tenant-data.ts).
import { constants, existsSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AppError } from '../domain/errors.js';
import type { LogRequest } from '../exec/types.js';
import { projectRole } from '../policy/roles.js';
import type { Ctx } from '../app/context.js';
import { grantStillActive, operatorOutsideOrg, requireTenantDataAccess } from '../app/tenant-data.js';
import { findWorkload } from './service.js';

export type LogLocator = (req: LogRequest) => string | undefined;

export interface LogQuery {
  readonly task?: number;
  readonly attempt?: number;
  readonly tail?: number;
  readonly follow?: boolean;
}

export async function openLogs(
  ctx: Ctx,
  locate: LogLocator,
  projectRef: string,
  ref: string,
  q: LogQuery,
): Promise<Readable> {
  const { org, project, row } = await findWorkload(ctx, projectRef, ref);
  // Operators outside the org read logs only under break-glass (one audit entry per read).
  const resource = `projects/${org.name}.${project.name}/workloads/${row.name}/logs`;
  const breakGlass = operatorOutsideOrg(ctx, org.id);
  if (!breakGlass && !projectRole(ctx.caller, org.id, project.id)) {
    throw new AppError(
      'FORBIDDEN',
      "logs are visible to the project's own members only; operators read tenant logs only under break-glass",
    );
  }
  const attempt = q.attempt ?? Math.max(1, row.attempts);
  const task = q.task ?? 0;
  if (task >= row.nodes)
    throw new AppError(
      'INVALID_ARGUMENT',
      `task ${task} does not exist: the workload has ${row.nodes} task(s), 0 to ${row.nodes - 1}`,
    );
  const access = breakGlass ? await requireTenantDataAccess(ctx, org, 'logs', resource) : undefined;
  const grant = access?.via === 'policy' ? access.grant : null;
  const path = locate({ projectId: row.project_id, workloadId: row.id, attempt, task });
  if (!path || !existsSync(path)) {
    if (!q.follow) return Readable.from([]);
  }
  if (!q.follow) {
    const fh = path ? await openLogFile(path) : undefined;
    if (!fh) return Readable.from([]);
    const start = q.tail !== undefined ? await tailOffset(fh, q.tail) : 0;
    return fh.createReadStream({ start });
  }
  let start = 0;
  if (path && q.tail !== undefined) {
    const fh = await openLogFile(path);
    if (fh) {
      try {
        start = await tailOffset(fh, q.tail);
      } finally {
        await fh.close();
      }
    }
  }

  const isDone = async () => {
    const cur = await ctx.db
      .selectFrom('workloads')
      .select(['status', 'attempts'])
      .where('id', '=', row.id)
      .executeTakeFirst();
    return !cur || cur.attempts !== attempt || !(cur.status === 'running' || cur.status === 'pending');
  };
  // A followed log read under break-glass ends when the grant does (revoked or expired).
  const allowed = grant ? () => grantStillActive(ctx, grant) : undefined;
  return Readable.from(
    follow(
      () => path ?? locate({ projectId: row.project_id, workloadId: row.id, attempt, task }),
      start,
      isDone,
      allowed,
    ),
  );
}

/**
 * Opens a task log for reading, or undefined. Where a job owns the directory (Slurm) it could swap
 * the log for a link to another file or a FIFO between the check and the open: so no links are
 * followed, the open never blocks, and only a regular file is read.
 */
async function openLogFile(path: string): Promise<FileHandle | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  if ((await fh.stat()).isFile()) return fh;
  await fh.close();
  return undefined;
}

/** Byte offset where the last `lines` lines of a file begin. */
async function tailOffset(fh: FileHandle, lines: number): Promise<number> {
  const size = (await fh.stat()).size;
  const chunk = Math.min(size, Math.max(4096, lines * 200));
  const buf = Buffer.alloc(chunk);
  await fh.read(buf, 0, chunk, size - chunk);
  let seen = 0;
  // A trailing newline ends the last line; it does not start a new one.
  for (let i = buf.length - 2; i >= 0; i--) {
    if (buf[i] === 10 && ++seen === lines) return size - chunk + i + 1;
  }
  return size - chunk;
}

async function* follow(
  locate: () => string | undefined,
  start: number,
  isDone: () => Promise<boolean>,
  allowed?: () => Promise<boolean>,
): AsyncGenerator<Buffer> {
  let offset = start;
  for (;;) {
    if (allowed && !(await allowed())) return;
    const path = locate();
    const fh = path ? await openLogFile(path) : undefined;
    let size = offset;
    if (fh) {
      try {
        size = (await fh.stat()).size;
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          await fh.read(buf, 0, buf.length, offset);
          offset = size;
          yield buf;
        }
      } finally {
        await fh.close();
      }
    }
    if (await isDone()) {
      // One last read: output written just before the end.
      const last = path ? await openLogFile(path) : undefined;
      const more = last ? (await last.stat()).size > offset : false;
      await last?.close();
      if (more) continue;
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
