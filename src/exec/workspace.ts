// Where a workload's files live on disk, for every executor:
//   <root>/<projectId>/                    the project's directory (owned by its uid, 0700); removed
//                                          with the project after the retention period
//   <root>/<projectId>/<workloadId>/work/  FABRIK_WORKLOAD_DIR: kept across attempts (checkpoints,
//                                          outputs), the task's default working directory
//   <root>/<projectId>/<workloadId>/attempt-N/   logs and exit records of attempt N
// Other tenants' tasks run under other uids and (on the local executor) see none of this.
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ProjectIdentity } from '../domain/identity.js';

export interface WorkloadPaths {
  readonly project: string;
  readonly workload: string;
  readonly work: string;
  readonly attempt: string;
}

export function workloadPaths(root: string, projectId: string, workloadId: string, attempt: number): WorkloadPaths {
  const project = join(root, projectId);
  const workload = join(project, workloadId);
  return { project, workload, work: join(workload, 'work'), attempt: join(workload, `attempt-${attempt}`) };
}

/** Creates a directory (and parents) with `mode`, owned by `owner` when given (needs root). */
export function ensureDir(path: string, mode: number, owner?: ProjectIdentity): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode); // mkdir's mode is masked by the umask and ignored for existing directories
  if (owner && process.getuid?.() === 0) chownSync(path, owner.uid, owner.gid);
}
