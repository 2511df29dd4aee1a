// Sovereignty policies at placement, from the workload side: which facts of a workload the
// policies see, and the policy set in force over the current fleet. Submit (checkFeasible) and
// the scheduler loop (the snapshot's allowances) ask the same PlacementPolicy, so a workload
// refused at one is never placed by the other.
import type { Kysely } from 'kysely';
import type { NodeSpec } from '../fleet/fleet-file.js';
import { closedAllowance, PlacementPolicy } from '../policy/placement.js';
import type { PlacementSubject } from '../policy/sovereignty.js';
import { policyVersions } from '../policy/versions.js';
import type { NodeAllowance, WorkloadRequest } from '../scheduler/types.js';
import type { Database } from '../store/schema.js';
import type { WorkloadSpec } from './spec.js';

export function subjectOf(
  org: { readonly name: string; readonly residency: string },
  projectRef: string,
  spec: Pick<WorkloadSpec, 'classification' | 'kind'>,
): PlacementSubject {
  return {
    org: org.name,
    project: projectRef,
    residency: org.residency,
    classification: spec.classification,
    kind: spec.kind,
  };
}

/** A policy over the fleet, or the allowance every workload gets when no policy set can be read (none). */
export type PlacementRules = PlacementPolicy | { readonly closed: NodeAllowance };

export async function placementRules(db: Kysely<Database>, nodes: readonly NodeSpec[]): Promise<PlacementRules> {
  try {
    return new PlacementPolicy(await policyVersions(db).current(), nodes);
  } catch (err) {
    return { closed: closedAllowance((err as Error).message) };
  }
}

export function allowanceOf(rules: PlacementRules, subject: PlacementSubject): NodeAllowance | undefined {
  return rules instanceof PlacementPolicy ? rules.allowanceFor(subject) : rules.closed;
}

export function withAllowance(req: WorkloadRequest, allowance: NodeAllowance | undefined): WorkloadRequest {
  return allowance ? { ...req, allowedNodes: allowance } : req;
}

/** The hash of the set that decided, for the entry of a placement ('' when none was in force). */
export function rulesHash(rules: PlacementRules): string {
  return rules instanceof PlacementPolicy ? rules.policies.hash : '';
}
