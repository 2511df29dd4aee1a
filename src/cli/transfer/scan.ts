// The local directory of a push: its regular files (symlinks inside it followed, symlinks out of
// it refused) and what is not pushed, with the reason.
import { promises as fsp } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { CliError } from '../client.js';
import type { Skipped } from './types.js';

export interface LocalFile {
  /** Path in the repository, `/`-separated. */
  readonly path: string;
  /** Where the content is read from (through a symlink inside the directory: its target). */
  readonly abs: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

/**
 * The regular files under `root`, sorted by path. Symlinks to files inside the directory are
 * pushed with their target's content; symlinks that lead out of it are refused (a usage error);
 * everything else that is not pushed is listed in `skipped` with the reason.
 */
export async function scanDirectory(root: string): Promise<{ files: LocalFile[]; skipped: Skipped[] }> {
  let top: string;
  try {
    top = await fsp.realpath(root);
    if (!(await fsp.stat(top)).isDirectory()) throw CliError.usage(`${root} is not a directory`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw CliError.usage(`cannot read directory ${root}: ${(err as Error).message}`);
  }
  const files: LocalFile[] = [];
  const skipped: Skipped[] = [];
  const inside = (p: string) => p === top || p.startsWith(top + sep);

  async function walk(dir: string, rel: string): Promise<number> {
    const entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    let count = 0;
    for (const e of entries) {
      const abs = join(dir, e.name);
      const path = rel ? `${rel}/${e.name}` : e.name;
      const st = await fsp.lstat(abs);
      if (st.isDirectory()) {
        if (e.name === '.git') {
          skipped.push({ path: `${path}/`, reason: 'version-control directory' });
          continue;
        }
        const n = await walk(abs, path);
        if (n === 0) skipped.push({ path: `${path}/`, reason: 'empty directory (a repository holds only files)' });
        count += n;
      } else if (st.isFile()) {
        files.push({ path, abs, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
        count++;
      } else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await fsp.realpath(abs);
        } catch {
          skipped.push({ path, reason: `dangling symlink (to ${await fsp.readlink(abs).catch(() => '?')})` });
          continue;
        }
        if (!inside(target))
          throw CliError.usage(
            `${path} is a symlink to ${target}, outside ${top}: refusing to push it (copy the file in, or remove the link)`,
          );
        const tst = await fsp.stat(target);
        if (tst.isFile()) {
          files.push({ path, abs: target, size: tst.size, mtimeMs: tst.mtimeMs, ino: tst.ino });
          count++;
        } else if (tst.isDirectory()) {
          skipped.push({
            path,
            reason: `symlink to the directory ${relative(top, target) || '.'} (pushed under its own path)`,
          });
        } else {
          skipped.push({ path, reason: 'symlink to something that is not a regular file' });
        }
      } else {
        const kind = st.isFIFO()
          ? 'fifo'
          : st.isSocket()
            ? 'socket'
            : st.isCharacterDevice() || st.isBlockDevice()
              ? 'device'
              : 'special file';
        skipped.push({ path, reason: `not a regular file (${kind})` });
      }
    }
    return count;
  }

  await walk(top, '');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, skipped };
}
