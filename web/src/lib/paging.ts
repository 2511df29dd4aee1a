// Cursor paging as the API gives it: each page answers `nextCursor` (null on the last). Going
// back needs the cursors that led to earlier pages, so the pager keeps them as a stack.
export interface Pager {
  /** cursors[i] fetched page i (undefined: the first page). */
  readonly cursors: readonly (string | undefined)[];
  readonly index: number;
  /** The next page's cursor as the current page answered it; null on the last page. */
  readonly next: string | null;
}

export const firstPage: Pager = { cursors: [undefined], index: 0, next: null };

export function currentCursor(p: Pager): string | undefined {
  return p.cursors[p.index];
}

/** Records what the current page answered. */
export function answered(p: Pager, nextCursor: string | null): Pager {
  return { ...p, next: nextCursor };
}

export function hasNext(p: Pager): boolean {
  return p.next !== null;
}

export function hasPrev(p: Pager): boolean {
  return p.index > 0;
}

export function forward(p: Pager): Pager {
  if (p.next === null) return p;
  return { cursors: [...p.cursors.slice(0, p.index + 1), p.next], index: p.index + 1, next: null };
}

export function back(p: Pager): Pager {
  if (p.index === 0) return p;
  return { cursors: p.cursors, index: p.index - 1, next: null };
}

/** Every item of a listing: follows nextCursor until the last page (bounded, for the floor plan). */
export async function fetchAll<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
  maxPages = 100,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const r = await page(cursor);
    out.push(...r.items);
    if (r.nextCursor === null) return out;
    cursor = r.nextCursor;
  }
  throw new Error(`more than ${maxPages} pages`);
}
