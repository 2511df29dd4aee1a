// The shape of one audit entry and its canonical serialisation (RFC 8785 JSON Canonicalization
// Scheme: sorted keys, no insignificant whitespace). The canonical string is stored as is, so a
// Merkle log can later hash exactly these bytes without re-encoding anything.
import { createHash } from 'node:crypto';
import canonicalizeJson from 'canonicalize';

export type AuditOutcome = 'success' | 'denied';

/** Version of the entry format, hashed with it into the log (entries before the log have none). */
export const AUDIT_ENTRY_VERSION = 1 as const;

export interface AuditEntry {
  readonly version?: typeof AUDIT_ENTRY_VERSION;
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
  /** Whom the change is for, besides who made it: the principal of an API key created or revoked. */
  readonly subject?: string;
  /** On a summary of denials: how many of the actor's denials since `since` were not recorded one by one. */
  readonly suppressed?: { readonly count: number; readonly since: string };
  /** The sovereignty policy set that decided (placement, storage, access) or was loaded, by hash. */
  readonly policy?: PolicyFact;
  /** Where bytes were written: the blob store and its region (with several stores, the others under `also`). */
  readonly location?: LocationFact;
  /** An operator's access to tenant data under a break-glass grant. */
  readonly breakGlass?: { readonly grant: string; readonly reason: string };
}

export interface PolicyFact {
  readonly hash: string;
  /** The policies that decided, by @id. */
  readonly ids?: readonly string[];
  /** The version number, on a policy load. */
  readonly version?: number;
}

export interface StoreLocation {
  /** The blob store by name (`default` for the default store). */
  readonly store: string;
  readonly region: string;
}

/** The first store written to; `also`: the other stores of the same write, in configured order. */
export interface LocationFact extends StoreLocation {
  readonly also?: readonly StoreLocation[];
}

/** The optional facts a change may record in its entry. */
export type EntryFacts = Pick<AuditEntry, 'policy' | 'location' | 'breakGlass'>;
const FACT_KEYS = ['subject', 'suppressed', 'policy', 'location', 'breakGlass'] as const;

/** The optional fields of an entry, read back from its canonical form (they have no columns). */
export function optionalFields(
  canonical: string,
): Pick<AuditEntry, 'version' | 'subject' | 'suppressed' | 'policy' | 'location' | 'breakGlass'> {
  const version = canonical.includes(`"version":${AUDIT_ENTRY_VERSION}`) ? { version: AUDIT_ENTRY_VERSION } : {};
  if (!FACT_KEYS.some((k) => canonical.includes(`"${k}"`))) return version;
  // Our own canonical JSON, written by appendEntry from an AuditEntry.
  const e = JSON.parse(canonical) as AuditEntry;
  const out: Record<string, unknown> = { ...version };
  for (const k of FACT_KEYS) if (e[k] !== undefined) out[k] = e[k];
  return out as Pick<AuditEntry, 'version' | 'subject' | 'suppressed' | 'policy' | 'location' | 'breakGlass'>;
}

/** Longest resource (or subject) text an entry keeps. */
export const MAX_AUDIT_TEXT = 512;
// Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional marks,
// embeddings, overrides and isolates (U+061C, U+200E–F, U+202A–E, U+2066–9): text that could forge
// lines or reorder what a person reading the log sees.
const UNSAFE_TEXT = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Audit text as stored: unsafe characters written as visible `\u` escapes (four hex digits), and at most
 * MAX_AUDIT_TEXT characters (longer text ends in `…`). Resources come partly from request paths,
 * so a caller must not be able to write arbitrary text into the log.
 */
export function sanitiseAuditText(text: string): string {
  let s = text.replace(UNSAFE_TEXT, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (s.length > MAX_AUDIT_TEXT) {
    let end = MAX_AUDIT_TEXT - 1;
    // Never cut a surrogate pair in half.
    const last = s.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    s = `${s.slice(0, end)}…`;
  }
  return s;
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
