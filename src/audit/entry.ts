// The shape of one audit entry and its canonical serialisation (RFC 8785 JSON Canonicalization
// Scheme: sorted keys, no insignificant whitespace). The canonical string is stored as is, so a
// Merkle log can later hash exactly these bytes without re-encoding anything.
import { createHash } from 'node:crypto';
import canonicalizeJson from 'canonicalize';

export type AuditOutcome = 'success' | 'denied';

export interface AuditEntry {
  readonly seq: number;
  readonly time: string;
  /** Org the change belongs to; '' for platform-wide changes (fleet, orgs created by operators). */
  readonly orgId: string;
  readonly actor: { readonly keyId: string; readonly principal: string };
  readonly action: string;
  readonly resource: string;
  readonly requestId: string;
  /** sha256 of the canonical JSON of the resource before and after the change; null when absent. */
  readonly beforeDigest: string | null;
  readonly afterDigest: string | null;
  readonly outcome: AuditOutcome;
}

export function canonicalJson(value: unknown): string {
  const s = canonicalizeJson(value);
  if (s === undefined) throw new Error('value cannot be serialised canonically');
  return s;
}

export function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Digest of a resource state: null stays null (created from nothing, deleted to nothing). */
export function stateDigest(state: unknown): string | null {
  return state === undefined || state === null ? null : `sha256:${sha256Hex(canonicalJson(state))}`;
}

export function serialiseEntry(entry: AuditEntry): string {
  return canonicalJson(entry);
}
