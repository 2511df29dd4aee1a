// Placement policy as the scheduler core takes it: for a kind of workload, the nodes the
// sovereignty policies allow (a NodeAllowance), decided once per policy set, kind of workload and
// kind of node. The core stays pure: it only sees node names and the policy's name for reasons.
import type { NodeAllowance } from '../scheduler/types.js';
import type { CompiledPolicies } from './cedar.js';
import { nodeIsExclusive, type PlacementSubject, PlacementMemo } from './sovereignty.js';

/** A node as placement policy reads it. */
export interface PolicyNode {
  readonly name: string;
  readonly region: string;
  readonly pool: string;
  readonly gpuModel: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** How a policy set is named in reasons and entries: its first 12 hex digits. */
export const shortHash = (hash: string): string => hash.slice(0, 12);

/** The allowance of one subject over a node list; shared per subject class, so memoised here too. */
export class PlacementPolicy {
  private readonly memo: PlacementMemo;
  private readonly allowances = new Map<string, NodeAllowance | null>();

  constructor(
    readonly policies: CompiledPolicies,
    private readonly nodes: readonly PolicyNode[],
  ) {
    this.memo = new PlacementMemo(policies);
  }

  /** undefined when every node is allowed (the core then treats the workload like any other). */
  allowanceFor(s: PlacementSubject): NodeAllowance | undefined {
    const key = `${shortHash(this.policies.hash)}:${s.org}|${s.project}|${s.residency}|${s.classification}|${s.kind}`;
    let a = this.allowances.get(key);
    if (a === undefined) {
      const allowed: string[] = [];
      const forbidding = new Set<string>();
      for (const n of this.nodes) {
        const v = this.memo.decide(s, {
          region: n.region,
          pool: n.pool,
          gpuModel: n.gpuModel,
          exclusive: nodeIsExclusive(n.labels),
        });
        if (v.allowed) allowed.push(n.name);
        else if (v.error) forbidding.add(`evaluation error (${v.error})`);
        else for (const id of v.policyIds.length > 0 ? v.policyIds : ['(no permit)']) forbidding.add(id);
      }
      a =
        allowed.length === this.nodes.length
          ? null
          : { key, nodes: allowed, policy: `${[...forbidding].sort().join(', ')} @ ${shortHash(this.policies.hash)}` };
      this.allowances.set(key, a);
    }
    return a ?? undefined;
  }
}

/** When no policy set can be read: nothing is allowed anywhere (fail closed), and the reason says why. */
export function closedAllowance(error: string): NodeAllowance {
  return { key: 'policy-unavailable', nodes: [], policy: `none in force (${error})` };
}
