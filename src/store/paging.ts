// Cursor pagination: listings are ordered by a unique column; the cursor is the last value seen,
// opaque to clients (base64url JSON). Stable under inserts, unlike offsets.
import type { SelectQueryBuilder } from 'kysely';
import { AppError } from '../domain/errors.js';

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export interface PageRequest {
  readonly limit?: number;
  readonly cursor?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function encodeCursor(value: string | number): string {
  return Buffer.from(JSON.stringify([value])).toString('base64url');
}

/**
 * The value a cursor stands for: a string, or a safe integer (no ordering column holds anything
 * else). `expect: 'integer'` for listings ordered by an integer column, whose database would
 * otherwise fail on a string.
 */
export function decodeCursor(cursor: string, expect?: 'integer'): string | number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 1) {
      if (typeof v[0] === 'string' && expect !== 'integer') return v[0];
      if (Number.isSafeInteger(v[0])) return v[0];
    }
  } catch {
    // falls through to the error below
  }
  throw new AppError('INVALID_ARGUMENT', 'invalid cursor: pass the nextCursor of a previous page unchanged', {
    field: 'cursor',
  });
}

/** Fetches one page of `query` ordered by `column` (unique), mapping rows with `view`. */
export async function page<R, T>(
  query: SelectQueryBuilder<any, any, R>,
  column: string,
  req: PageRequest,
  view: (row: R) => T,
  direction: 'asc' | 'desc' = 'asc',
): Promise<Page<T>> {
  const limit = Math.min(Math.max(req.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  let q = query.orderBy(column as any, direction).limit(limit + 1);
  if (req.cursor !== undefined) q = q.where(column as any, direction === 'asc' ? '>' : '<', decodeCursor(req.cursor));
  const rows = (await q.execute()) as R[];
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items.at(-1) as Record<string, unknown> | undefined;
  const key = column.includes('.') ? column.slice(column.indexOf('.') + 1) : column;
  return {
    items: items.map(view),
    nextCursor: more && last ? encodeCursor(last[key] as string | number) : null,
  };
}
