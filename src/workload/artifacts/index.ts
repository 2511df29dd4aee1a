// Registry models and datasets as a workload's inputs, code and outputs (the spec's `inputs`,
// `code` and `outputs`, src/workload/spec.ts):
//
// - At submit (pinArtifacts): every input and code reference is resolved to its 40-hex commit,
//   which the stored spec keeps, so a tag moved later does not change what a queued or retried
//   workload reads. The submitter must be able to read them (404 otherwise, as for any repo it
//   cannot see; 422 for an unknown revision) and hold member on the project of every output repo.
// - At launch (WorkloadArtifacts.stage, before the executor starts anything; idempotent per
//   attempt): each pinned version's DSSE envelope is checked against the platform key and the
//   version's manifest (an unsigned or altered version fails the attempt, naming the reason), then
//   its files are decrypted out of the registry into the workload's directory, each file's sha256
//   checked while it is written:
//     <workloads>/<project>/<workload>/inputs/<i>/   input i: root's, group = the project's gid,
//                                                   dirs 0750, files 0640: the project's tasks
//                                                   (which run as its uid and gid) read, nobody
//                                                   writes; other projects cannot even pass the
//                                                   0710 project directory above
//     <workloads>/<project>/<workload>/work/         `code`: copied in, owned by the project's uid
//                                                   (the task's own directory), once per workload
//   Lineage edges `commit → attempt` record what each attempt read.
// - When an attempt succeeds (WorkloadArtifacts.publish): each output directory of the work
//   directory is walked without following links, each file stored as an encrypted blob of the org
//   (src/registry/ingest.ts) and the lot committed, signed, in one transaction as a new version
//   whose producer is the attempt. A failure leaves nothing visible (the commit is atomic) and
//   ends the workload `failed` (OutputPublishFailed).
//
// Who publishes: a principal that stands for the workload, `workload:<id>`, holding member on the
// output repos' projects and nothing else (never operator), so commit()'s own checks run as for
// a person. Those rights are what the submitter held at submit, when they were checked; like a
// job's service token they last as long as the workload does (cancel it to withdraw them).
//
// The modules: common.ts (options, ArtifactError), check.ts (submit), verify.ts and stage.ts
// (launch), publish.ts (success); WorkloadArtifacts below is what the reconciler holds.
import type { ProjectIdentity } from '../../domain/identity.js';
import type { Mount } from '../../exec/types.js';
import type { WorkloadsTable } from '../../store/schema.js';
import type { WorkloadSpec } from '../spec.js';
import type { ArtifactsOptions } from './common.js';
import { publishOutputs } from './publish.js';
import { stageArtifacts } from './stage.js';

export { pinArtifacts } from './check.js';
export { ArtifactError, type ArtifactsOptions } from './common.js';
export { collectOutputFiles } from './publish.js';

export class WorkloadArtifacts {
  constructor(private readonly opts: ArtifactsOptions) {}

  /** Whether the spec asks for anything of the registry. */
  static wanted(spec: WorkloadSpec): boolean {
    return (spec.inputs?.length ?? 0) > 0 || (spec.outputs?.length ?? 0) > 0 || spec.code !== undefined;
  }

  /** Inputs and code of an attempt, staged for launch; the mounts. See stageArtifacts (./stage.ts). */
  stage(w: WorkloadsTable, spec: WorkloadSpec, attempt: number, identity: ProjectIdentity): Promise<Mount[]> {
    return stageArtifacts(this.opts, w, spec, attempt, identity);
  }

  /** The outputs of a succeeded attempt, published; one line each. See publishOutputs (./publish.ts). */
  publish(
    w: WorkloadsTable,
    spec: WorkloadSpec,
    attempt: number,
    stillWanted: () => Promise<boolean>,
  ): Promise<string[]> {
    return publishOutputs(this.opts, w, spec, attempt, stillWanted);
  }
}
