// Placement policy as the scheduler core takes it: for a kind of workload, the nodes the
// sovereignty policies allow (a NodeAllowance), decided once per policy set, kind of workload and
// kind of node. The core stays pure: it only sees node names and the policy's name for reasons.
import type { NodeAllowance } from '../scheduler/types.js';
import type { CompiledPolicies } from './cedar.js';
import {
  type NodeFacts,
  nodeIsExclusive,
  nodeKey,
  type PlacementSubject,
  PlacementMemo,
  subjectKey,
} from './sovereignty.js';

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

/** Decisions of one policy set, kept while it is in force (across cycles and fleets). */
const memos = new WeakMap<CompiledPolicies, PlacementMemo>();
function memoOf(policies: CompiledPolicies): PlacementMemo {
  let m = memos.get(policies);
  if (!m) {
    m = new PlacementMemo(policies);
    memos.set(policies, m);
  }
  return m;
}

/** Nodes alike for policies (same region, pool, GPU model, dedication), asked about once. */
interface NodeClass {
  readonly facts: NodeFacts;
  readonly names: string[];
}

/** The allowances of workloads over one node list (one scheduling cycle, or one submit). */
export class PlacementPolicy {
  private readonly memo: PlacementMemo;
  private readonly classes: NodeClass[];
  private readonly allowances = new Map<string, NodeAllowance | null>();

  constructor(
    readonly policies: CompiledPolicies,
    nodes: readonly PolicyNode[],
  ) {
    this.memo = memoOf(policies);
    const byKey = new Map<string, NodeClass>();
    for (const n of nodes) {
      const facts: NodeFacts = {
        region: n.region,
        pool: n.pool,
        gpuModel: n.gpuModel,
        exclusive: nodeIsExclusive(n.labels),
      };
      const key = nodeKey(facts);
      let c = byKey.get(key);
      if (!c) {
        c = { facts, names: [] };
        byKey.set(key, c);
      }
      c.names.push(n.name);
    }
    this.classes = [...byKey.values()];
  }

  /** undefined when every node is allowed (the core then treats the workload like any other). */
  allowanceFor(s: PlacementSubject): NodeAllowance | undefined {
    const key = `${shortHash(this.policies.hash)}:${subjectKey(s)}`;
    let a = this.allowances.get(key);
    if (a === undefined) {
      const allowed: string[] = [];
      const forbidding = new Set<string>();
      let all = true;
      for (const c of this.classes) {
        const v = this.memo.decide(s, c.facts);
        if (v.allowed) {
          for (const name of c.names) allowed.push(name);
          continue;
        }
        all = false;
        if (v.error) forbidding.add(`evaluation error (${v.error})`);
        else for (const id of v.policyIds.length > 0 ? v.policyIds : ['(no permit)']) forbidding.add(id);
      }
      a = all
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
