// What staging (verify.ts, stage.ts) and publishing (publish.ts) share: the options, the refusal
// that fails an attempt, and how an artifact is named in messages.
import type { Kysely } from 'kysely';
import type { Registry } from '../../registry/registry.js';
import type { Database } from '../../store/schema.js';
import type { ArtifactRef } from '../spec.js';

/** A refusal to stage an attempt's artifacts: the attempt fails with this message, not retried. */
export class ArtifactError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactError';
  }
}

export interface ArtifactsOptions {
  readonly db: Kysely<Database>;
  readonly registry: Registry;
  /** The executors' workloads directory (`<dataDir>/workloads`). */
  readonly workloadsDir: string;
}

/** How an artifact is named in messages: `dataset acme.vision/corpus@<commit>`. */
export const refText = (r: ArtifactRef) => `${r.kind} ${r.repo}@${(r.commit ?? r.revision).slice(0, 12)}`;
