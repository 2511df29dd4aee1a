// Which replica answers a call: pure, no I/O. A routing table is turned once per version into an
// index (model names → deployments, each with its ready replicas in an array); per call, `pick()`
// makes one pass over that deployment's ready replicas, allocates nothing, and returns
//
//   the preferred replica — the highest rendezvous score of (affinity key, replica), so calls that
//     share a system prompt or session land on the same replica and reuse its KV cache, and only
//     1/n of the keys move when a replica comes or goes —
//   unless it has more than `loadCap` requests outstanding beyond the least loaded one; then the
//     least loaded (ties go round-robin, so an idle deployment spreads work too).
//
// Replica runtime state (outstanding count, local failure mark) lives in `ReplicaSlot` objects kept
// across table versions by (deployment id, replica id), so a new table does not forget the load.
//
// A replica that answers 503 with Retry-After (its queue is full, it is loading or stopping) is
// only skipped for that long: nothing is wrong with it that the control plane should act on.
// A replica this gateway failed to reach is marked failed and skipped at once, without waiting for
// the control plane. The mark ends when a table lists the replica as anything but ready (the
// control plane saw it; when it is ready again it is back), when a table drops it, or after
// `quarantineMs` if the control plane keeps calling it ready (a passing health check: give it another
// try rather than lose it for good).
import type { GatewayCaller, RouteDeployment, RouteReplica, RoutingTable } from '../types.js';

export interface ReplicaSlot {
  readonly deploymentId: string;
  readonly id: string;
  url: string;
  node: string;
  /** `Bearer <token>`, computed once; undefined: send no Authorization. */
  authorization: string | undefined;
  /** Hash of the id: the replica's side of the rendezvous score. */
  readonly seed: number;
  /** Calls dispatched to it by this gateway and not finished. */
  outstanding: number;
  /** Unix ms when this gateway last failed to reach it; 0: not marked. */
  failedAt: number;
  /** Unix ms until which it asked not to be sent calls (503 with Retry-After: busy, loading); 0: none. */
  backoffUntil: number;
}

export interface DeploymentRoute {
  readonly deployment: RouteDeployment;
  /** `org.project/name`: metric label and the unambiguous model name. */
  readonly qualified: string;
  /** Ready replicas in table order (locally failed ones included; pick skips them). */
  readonly ready: readonly ReplicaSlot[];
  /** Round-robin start of the least-loaded scan. */
  rr: number;
}

export interface RouteIndex {
  readonly table: RoutingTable;
  readonly byId: ReadonlyMap<string, DeploymentRoute>;
  /** Every name a call may use (names, aliases, both also qualified) → deployments answering to it. */
  readonly byName: ReadonlyMap<string, readonly DeploymentRoute[]>;
  /** Every slot of the table (any state), by slotKey. */
  readonly slots: ReadonlyMap<string, ReplicaSlot>;
  /** Every replica URL in the table (any state): connection pools for others can be closed. */
  readonly urls: ReadonlySet<string>;
}

export const EMPTY_TABLE: RoutingTable = { version: -1, deployments: [] };

export const slotKey = (deploymentId: string, replicaId: string) => `${deploymentId}\u0000${replicaId}`;

/** 32-bit FNV-1a of a string. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** murmur3's finaliser: spreads (key xor seed) over 32 bits, so scores of near keys are unrelated. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function rendezvousScore(key: number, seed: number): number {
  return mix((key ^ seed) >>> 0);
}

function updateSlot(slot: ReplicaSlot, r: RouteReplica): void {
  slot.url = r.url;
  slot.node = r.node;
  slot.authorization = r.token === undefined ? undefined : `Bearer ${r.token}`;
  // The table says it is out of rotation: the control plane knows, the local mark has done its job.
  if (r.state !== 'ready') slot.failedAt = 0;
}

/** The index of a new table, reusing the slots of the previous index (their load and marks). */
export function buildIndex(table: RoutingTable, previous?: RouteIndex): RouteIndex {
  const byId = new Map<string, DeploymentRoute>();
  const byName = new Map<string, DeploymentRoute[]>();
  const slots = new Map<string, ReplicaSlot>();
  const urls = new Set<string>();
  const add = (name: string, route: DeploymentRoute) => {
    const list = byName.get(name);
    if (!list) byName.set(name, [route]);
    else if (!list.includes(route)) list.push(route);
  };
  for (const d of table.deployments) {
    const ready: ReplicaSlot[] = [];
    for (const r of d.replicas) {
      const key = slotKey(d.id, r.id);
      const slot: ReplicaSlot = previous?.slots.get(key) ?? {
        deploymentId: d.id,
        id: r.id,
        url: r.url,
        node: r.node,
        authorization: undefined,
        seed: hashString(r.id),
        outstanding: 0,
        failedAt: 0,
        backoffUntil: 0,
      };
      updateSlot(slot, r);
      slots.set(key, slot);
      urls.add(r.url);
      if (r.state === 'ready') ready.push(slot);
    }
    const qualified = `${d.project}/${d.name}`;
    const route: DeploymentRoute = { deployment: d, qualified, ready, rr: 0 };
    byId.set(d.id, route);
    for (const name of [d.name, ...d.aliases]) {
      add(name, route);
      add(`${d.project}/${name}`, route);
    }
  }
  return { table, byId, byName, slots, urls };
}

export type Resolution =
  | { readonly kind: 'found'; readonly route: DeploymentRoute }
  | { readonly kind: 'missing' }
  | { readonly kind: 'ambiguous'; readonly candidates: readonly string[] };

/**
 * The deployment a model name means for this caller. Only deployments of projects the caller may
 * use count: one it may not use is `missing`, exactly like one that does not exist.
 */
export function resolveModel(index: RouteIndex, caller: GatewayCaller, model: string): Resolution {
  const list = index.byName.get(model);
  if (!list) return { kind: 'missing' };
  let found: DeploymentRoute | undefined;
  let many = false;
  for (const route of list) {
    if (!caller.canUse(route.deployment.projectId)) continue;
    if (found) many = true;
    else found = route;
  }
  if (!found) return { kind: 'missing' };
  if (!many) return { kind: 'found', route: found };
  const candidates = list.filter((r) => caller.canUse(r.deployment.projectId)).map((r) => r.qualified);
  return { kind: 'ambiguous', candidates };
}

export interface PickOptions {
  /** How many more outstanding calls than the least loaded the preferred replica may have. */
  readonly loadCap: number;
  /** Hard cap per replica; a replica at it takes nothing more (Infinity: none). */
  readonly maxInflight: number;
  readonly quarantineMs: number;
}

/** Whether the slot may take a call now (below `cap`); ends an expired local failure mark on the way. */
function usable(s: ReplicaSlot, now: number, o: PickOptions, cap = o.maxInflight): boolean {
  if (s.backoffUntil > now) return false;
  if (s.failedAt !== 0) {
    if (now - s.failedAt < o.quarantineMs) return false;
    s.failedAt = 0;
  }
  return s.outstanding < cap;
}

/**
 * The replica for a call with affinity key `key` (0: none, least loaded only), or undefined when no
 * ready replica can take it (none ready, all failed here, or all at maxInflight). Does not count the
 * call as outstanding: the caller does that when it dispatches.
 */
export function pick(route: DeploymentRoute, key: number, now: number, o: PickOptions): ReplicaSlot | undefined {
  const ready = route.ready;
  const n = ready.length;
  if (n === 0) return undefined;
  let start = route.rr;
  route.rr = start + 1 >= n ? 0 : start + 1;
  if (start >= n) start = 0; // the array may have shrunk since rr was set
  let least: ReplicaSlot | undefined;
  let preferred: ReplicaSlot | undefined;
  let best = -1;
  for (let i = 0, j = start; i < n; i++, j = j + 1 === n ? 0 : j + 1) {
    const s = ready[j];
    if (!usable(s, now, o)) continue;
    if (least === undefined || s.outstanding < least.outstanding) least = s;
    if (key !== 0) {
      const score = rendezvousScore(key, s.seed);
      if (score > best) {
        best = score;
        preferred = s;
      }
    }
  }
  if (preferred !== undefined && least !== undefined && preferred.outstanding <= least.outstanding + o.loadCap)
    return preferred;
  return least;
}

/** Whether any ready replica could take calls but for its cap (if none: ask for one, scale from zero). */
export function hasLiveReplica(route: DeploymentRoute, now: number, o: PickOptions): boolean {
  for (const s of route.ready) if (usable(s, now, o, Number.POSITIVE_INFINITY)) return true;
  return false;
}
