// Pieces every page uses: a cursor-paged listing, the API's error shown as it came, tables.
import { type ReactNode, useCallback, useEffect, useState } from 'react';
import { describeError } from '../api/client.js';
import { type Pager, answered, back, currentCursor, firstPage, forward, hasNext, hasPrev } from '../lib/paging.js';

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p role="alert" className="error">
      {describeError(error)}
    </p>
  );
}

export interface Paged<T> {
  readonly items: T[];
  readonly error: unknown;
  readonly loading: boolean;
  readonly pager: Pager;
  next(): void;
  prev(): void;
  reload(): void;
}

/** One page of a cursor listing at a time; changing `deps` starts again at the first page. */
export function usePaged<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
  deps: readonly unknown[],
): Paged<T> {
  const [pager, setPager] = useState<Pager>(firstPage);
  const [items, setItems] = useState<T[]>([]);
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps restart the listing
  useEffect(() => setPager(firstPage), deps);
  const cursor = currentCursor(pager);
  // biome-ignore lint/correctness/useExhaustiveDependencies: refetch on page, reload and deps
  useEffect(() => {
    let live = true;
    setLoading(true);
    fetchPage(cursor)
      .then((r) => {
        if (!live) return;
        setItems(r.items);
        setError(undefined);
        setPager((p) => answered(p, r.nextCursor));
      })
      .catch((e) => live && setError(e))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [cursor, pager.index, tick, ...deps]);
  return {
    items,
    error,
    loading,
    pager,
    next: useCallback(() => setPager(forward), []),
    prev: useCallback(() => setPager(back), []),
    reload: useCallback(() => setTick((t) => t + 1), []),
  };
}

export function PageButtons({ paged, label }: { paged: Paged<unknown>; label: string }) {
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={paged.prev} disabled={!hasPrev(paged.pager)}>
        Previous page
      </button>
      <span>Page {paged.pager.index + 1}</span>
      <button type="button" onClick={paged.next} disabled={!hasNext(paged.pager)}>
        Next page
      </button>
    </nav>
  );
}

export function Table({ caption, head, rows }: { caption: string; head: string[]; rows: ReactNode[][] }) {
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          {head.map((h) => (
            <th key={h} scope="col">
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <tr>
            <td colSpan={head.length}>Nothing here.</td>
          </tr>
        ) : (
          rows.map((r, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are positional within one page
            <tr key={i}>
              {r.map((c, j) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: cells are positional
                <td key={j}>{c}</td>
              ))}
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').slice(0, 19);
}

/** The projects the caller can see (for project pickers): every page of every visible org. */
export function useProjects(): { projects: string[]; error: unknown } {
  const [projects, setProjects] = useState<string[]>([]);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    import('../lib/projects.js').then((m) => m.visibleProjects()).then(setProjects, setError);
  }, []);
  return { projects, error };
}
