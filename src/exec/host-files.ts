// Files the server (root) shares with jobs that run as a project's uid. A job owns its attempt and
// work directories, so it can put a symbolic link or a FIFO where the server expects a file: a
// chown or write that followed the link would hand the job any file on the host, a read would show
// it another tenant's data, a FIFO would block the server. So:
//   - directories are created and chowned level by level through an open descriptor of the level
//     above (/proc/self/fd/N/name, as openat would), never following a link, only below a trusted
//     root, and the levels a job must not rename (project, workload) belong to root
//   - files are written to a fresh temporary name (O_EXCL) and renamed into place
//   - what a job wrote is read with O_NOFOLLOW | O_NONBLOCK, only if it is a small regular file
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ExecError } from './types.js';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

export interface DirLevel {
  readonly name: string;
  readonly mode: number;
  /** Owner of the directory; root when unset. */
  readonly owner?: Owner;
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const isRoot = () => process.getuid?.() === 0;

/**
 * Creates root/level1/level2/... (each level one path component) with its mode and owner, refusing
 * a level that is a symbolic link or not a directory. `root` itself is trusted (the server's own).
 */
export function ensureTree(root: string, levels: readonly DirLevel[]): void {
  let fd = openSync(root, DIR_FLAGS);
  try {
    for (const level of levels) {
      if (!/^[^/\0]+$/.test(level.name) || level.name === '.' || level.name === '..') {
        throw new Error(`not a directory name: ${JSON.stringify(level.name)}`);
      }
      const at = `/proc/self/fd/${fd}/${level.name}`;
      try {
        mkdirSync(at, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let child: number;
      try {
        child = openSync(at, DIR_FLAGS);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'ELOOP') {
          const why = `${level.name} under ${root} is not a directory (a symbolic link?): refusing to use it`;
          throw new ExecError(why, false);
        }
        throw err;
      }
      closeSync(fd);
      fd = child;
      // fchown first: chown clears set-id bits, fchmod then sets the mode wanted.
      if (isRoot()) fchownSync(fd, level.owner?.uid ?? 0, level.owner?.gid ?? 0);
      fchmodSync(fd, level.mode);
      root = `${root}/${level.name}`;
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes dir/name whole (temporary name, then rename), with mode and owner, never through a link. */
export function writeFileIn(dir: string, name: string, text: string, mode: number, owner?: Owner): void {
  const d = openSync(dir, DIR_FLAGS);
  try {
    const tmp = `/proc/self/fd/${d}/.${name}.${randomBytes(6).toString('hex')}.tmp`;
    const f = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(f, text);
      if (owner && isRoot()) fchownSync(f, owner.uid, owner.gid);
      fchmodSync(f, mode);
    } finally {
      closeSync(f);
    }
    renameSync(tmp, `/proc/self/fd/${d}/${name}`);
  } finally {
    closeSync(d);
  }
}

/** A small regular file's text, or undefined (absent, a link, a FIFO, a directory, too big). */
export function readSmallFile(path: string, maxBytes = 64 * 1024): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const buf = Buffer.alloc(st.size);
    const n = readSync(fd, buf, 0, st.size, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Whether path is a regular file itself (not a link to one). */
export function isPlainFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}
