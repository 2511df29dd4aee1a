// The hash cache: sha256 by absolute path, size, mtime and inode, so a resumed push (or a pull
// into the same place again) does not hash unchanged files again. Kept in
// ~/.cache/fabrik/hashes.json ($XDG_CACHE_HOME), merged with other processes' writes, bounded.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

interface CacheEntry {
  sha256: string;
  at: number;
}

const CACHE_LIMIT = 50_000;

export function defaultHashCachePath(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'fabrik', 'hashes.json');
}

export class HashCache {
  private readonly entries: Map<string, CacheEntry>;
  private dirty = false;

  private constructor(
    readonly file: string | undefined,
    entries: Record<string, CacheEntry>,
  ) {
    this.entries = new Map(Object.entries(entries));
  }

  static async open(file: string | false | undefined): Promise<HashCache> {
    if (file === false) return new HashCache(undefined, {});
    const path = file ?? defaultHashCachePath();
    return new HashCache(path, await readCacheFile(path));
  }

  static key(abs: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>): string {
    return `${abs}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  }

  get(abs: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>): string | undefined {
    return this.entries.get(HashCache.key(abs, st))?.sha256;
  }

  set(abs: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>, sha256: string): void {
    this.entries.set(HashCache.key(abs, st), { sha256, at: Date.now() });
    this.dirty = true;
  }

  /** Writes the cache (merged with what other processes wrote meanwhile) atomically; best effort. */
  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    this.dirty = false;
    try {
      const merged = new Map(Object.entries(await readCacheFile(this.file)));
      for (const [k, v] of this.entries) merged.set(k, v);
      let list = [...merged.entries()];
      if (list.length > CACHE_LIMIT) list = list.sort((a, b) => b[1].at - a[1].at).slice(0, CACHE_LIMIT);
      await fsp.mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify(Object.fromEntries(list)), { mode: 0o600 });
      await fsp.rename(tmp, this.file);
    } catch {
      // A cache that cannot be written only costs hashing again next time.
    }
  }
}

async function readCacheFile(path: string): Promise<Record<string, CacheEntry>> {
  try {
    const parsed = JSON.parse(await fsp.readFile(path, 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** SHA-256 of a file, streaming; `onBytes` hears each chunk's length. */
export async function sha256File(abs: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return hash.digest('hex');
}
