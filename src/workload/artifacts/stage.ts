// Launch: an attempt's registry inputs decrypted into inputs/<i>/ (root's, read by the project's
// group) and, once per workload, its code copied into work/ (the task's own), every file's size
// and sha256 checked as it is written, every directory level opened without following links;
// then the lineage edges `commit → attempt`. See ./index.ts for the layout and the whole life.
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  createWriteStream,
  fchmodSync,
  fchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../../domain/errors.js';
import type { ProjectIdentity } from '../../domain/identity.js';
import { newId, nowIso } from '../../domain/ids.js';
import { type DirLevel, ensureTree, readSmallFile, writeFileIn } from '../../exec/host-files.js';
import { ExecError, type Mount } from '../../exec/types.js';
import { workloadPaths } from '../../exec/workspace.js';
import { findBlob, openBlob } from '../../registry/content.js';
import { pathProblem } from '../../registry/names.js';
import type { WorkloadsTable } from '../../store/schema.js';
import type { ArtifactRef, WorkloadSpec } from '../spec.js';
import { ArtifactError, type ArtifactsOptions, refText } from './common.js';
import { type Version, verifiedVersion } from './verify.js';

const isRoot = () => process.getuid?.() === 0;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
/** Input copies: the project's group reads, nobody but root writes. */
const INPUT_DIR_MODE = 0o750;
const INPUT_FILE_MODE = 0o640;

/**
 * Materializes the inputs (and, once per workload, the code) of attempt `attempt`; returns the
 * mounts for the launch request. Idempotent: what an earlier call finished is kept. Throws
 * ExecError: retryable for the store's or the disk's passing troubles, not for refusals.
 */
export async function stageArtifacts(
  opts: ArtifactsOptions,
  w: WorkloadsTable,
  spec: WorkloadSpec,
  attempt: number,
  identity: ProjectIdentity,
): Promise<Mount[]> {
  try {
    const paths = workloadPaths(opts.workloadsDir, w.project_id, w.id, attempt);
    const levels = workloadLevels(w, identity);
    const mounts: Mount[] = [];
    const inputs = spec.inputs ?? [];
    if (inputs.length > 0) {
      ensureTree(opts.workloadsDir, [...levels, inputsLevel(identity)]);
      for (const [i, input] of inputs.entries()) {
        const dir = join(paths.workload, 'inputs');
        await materializeInput(opts, w, input, `inputs[${i}]`, dir, String(i), identity);
        mounts.push({ source: join(dir, String(i)), target: input.path, readOnly: true });
      }
    }
    if (spec.code) {
      ensureTree(opts.workloadsDir, [...levels, { name: 'work', mode: 0o700, owner: ownerOf(identity) }]);
      await copyCode(opts, w, spec.code, paths.workload, paths.work, identity);
    }
    await recordLineage(opts, w, attempt, [...inputs, ...(spec.code ? [spec.code] : [])]);
    return mounts;
  } catch (err) {
    throw asExecError(err);
  }
}

async function materializeInput(
  opts: ArtifactsOptions,
  w: WorkloadsTable,
  ref: ArtifactRef,
  what: string,
  parent: string,
  name: string,
  identity: ProjectIdentity,
): Promise<void> {
  const version = await verifiedVersion(opts, w, ref, what);
  const marker = `${name}.done`;
  const done = readSmallFile(join(parent, marker))?.trim();
  const target = join(parent, name);
  if (done === version.commit.id && existsDir(target)) return;
  // A copy cut short (a crash) is thrown away whole; root owns all of it, so nothing here is a
  // task's link. The new copy is built under a temporary name and renamed into place.
  const partial = join(parent, `.${name}.partial`);
  rmSync(partial, { recursive: true, force: true });
  rmSync(target, { recursive: true, force: true });
  const owner = isRoot() ? { uid: 0, gid: identity.gid } : undefined;
  ensureTree(parent, [{ name: `.${name}.partial`, mode: INPUT_DIR_MODE, owner }]);
  await writeVersion(opts, version, partial, what, ref, {
    dirMode: INPUT_DIR_MODE,
    fileMode: () => INPUT_FILE_MODE,
    owner,
  });
  renameSync(partial, target);
  writeFileIn(parent, marker, `${version.commit.id}\n`, 0o600);
}

/** The code version's files into the work directory, once per workload (a marker says it was done). */
async function copyCode(
  opts: ArtifactsOptions,
  w: WorkloadsTable,
  ref: ArtifactRef,
  workloadDir: string,
  workDir: string,
  identity: ProjectIdentity,
): Promise<void> {
  const version = await verifiedVersion(opts, w, ref, 'code');
  const marker = 'code.done';
  if (readSmallFile(join(workloadDir, marker))?.trim() === version.commit.id) return;
  // The work directory is the task's; no task of this workload has run before the marker is
  // written, but every level is still opened without following links.
  await writeVersion(opts, version, workDir, 'code', ref, {
    dirMode: 0o755,
    fileMode: (head) => (head.subarray(0, 2).toString('latin1') === '#!' ? 0o755 : 0o644),
    owner: ownerOf(identity),
  });
  writeFileIn(workloadDir, marker, `${version.commit.id}\n`, 0o600);
}

/** Every file of a version below `root`, decrypted, its size and sha256 checked as it is written. */
async function writeVersion(
  opts: ArtifactsOptions,
  v: Version,
  root: string,
  what: string,
  ref: ArtifactRef,
  o: { dirMode: number; fileMode: (head: Buffer) => number; owner?: { uid: number; gid: number } },
): Promise<void> {
  const reg = opts.registry;
  for (const f of v.files) {
    const problem = pathProblem(f.path);
    if (problem) throw new ArtifactError(`${what}: ${refText(ref)} holds a file path that ${problem}`);
    const blob = await findBlob(opts.db, v.orgId, f.blobId);
    if (!blob)
      throw new ArtifactError(`${what}: the content of ${f.path} in ${refText(ref)} is missing from the store`);
    const parts = f.path.split('/');
    const dirFd = openDirs(root, parts.slice(0, -1), o.dirMode, o.owner);
    let fd: number;
    try {
      fd = openSync(`/proc/self/fd/${dirFd}/${parts.at(-1)}`, NEW_FILE, 0o600);
    } finally {
      closeSync(dirFd);
    }
    try {
      if (o.owner && isRoot()) fchownSync(fd, o.owner.uid, o.owner.gid);
      const hash = createHash('sha256');
      let bytes = 0;
      let head = Buffer.alloc(0);
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          if (head.length < 2) head = Buffer.concat([head, chunk.subarray(0, 2)]);
          bytes += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(await openBlob(reg, blob), tap, createWriteStream('', { fd, autoClose: false }));
      const digest = hash.digest('hex');
      if (bytes !== f.size || digest !== f.sha256) {
        throw new ArtifactError(
          `${what}: ${f.path} of ${refText(ref)} read back as ${bytes} bytes with sha256 ${digest}, not the signed ${f.size} bytes ${f.sha256}`,
        );
      }
      fchmodSync(fd, o.fileMode(head));
    } finally {
      closeSync(fd);
    }
  }
}

/** `commit → attempt` for every version the attempt reads; once each. */
async function recordLineage(
  opts: ArtifactsOptions,
  w: WorkloadsTable,
  attempt: number,
  refs: readonly ArtifactRef[],
): Promise<void> {
  const to = `${w.id}:${attempt}`;
  for (const ref of refs) {
    if (!ref.commit) continue;
    await opts.db
      .insertInto('lineage_edges')
      .values({
        id: newId('lin'),
        org_id: w.org_id,
        from_kind: 'commit',
        from_id: ref.commit,
        to_kind: 'attempt',
        to_id: to,
        created_at: nowIso(),
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

function ownerOf(identity: ProjectIdentity): { uid: number; gid: number } | undefined {
  return isRoot() ? { uid: identity.uid, gid: identity.gid } : undefined;
}

/** The project and workload levels as the executors make them: root's, passable by the project's gid. */
function workloadLevels(w: WorkloadsTable, identity: ProjectIdentity): DirLevel[] {
  const group = isRoot() ? { uid: 0, gid: identity.gid } : undefined;
  const mode = group ? 0o710 : 0o700;
  return [
    { name: w.project_id, mode, owner: group },
    { name: w.id, mode, owner: group },
  ];
}

function inputsLevel(identity: ProjectIdentity): DirLevel {
  return { name: 'inputs', mode: INPUT_DIR_MODE, owner: isRoot() ? { uid: 0, gid: identity.gid } : undefined };
}

function existsDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Opens root/a/b/… (creating what is missing, never following a link); returns the last fd. */
function openDirs(root: string, parts: readonly string[], mode: number, owner?: { uid: number; gid: number }): number {
  let fd = openSync(root, DIR_FLAGS);
  try {
    for (const p of parts) {
      const at = `/proc/self/fd/${fd}/${p}`;
      let created = false;
      try {
        mkdirSync(at, { mode: 0o700 });
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let child: number;
      try {
        child = openSync(at, DIR_FLAGS);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'ELOOP') throw new ArtifactError(`${p} under ${root} is not a directory`);
        throw err;
      }
      closeSync(fd);
      fd = child;
      if (created) {
        if (owner && isRoot()) fchownSync(fd, owner.uid, owner.gid);
        fchmodSync(fd, mode);
      }
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Refusals fail the attempt; the disk's or the store's passing troubles are tried again. */
function asExecError(err: unknown): ExecError {
  if (err instanceof ExecError) return err;
  const e = err as Error & { code?: unknown; $metadata?: unknown };
  if (err instanceof ArtifactError || err instanceof AppError) return new ExecError(e.message, false);
  const transient =
    e.$metadata !== undefined ||
    (typeof e.code === 'string' &&
      ['ENOSPC', 'EIO', 'EAGAIN', 'EBUSY', 'ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED'].includes(e.code));
  return new ExecError(`staging the registry inputs failed: ${e.message}`, transient);
}
