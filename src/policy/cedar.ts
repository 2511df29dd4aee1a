// Cedar policy sets, compiled once and asked many times. `compilePolicies` parses and validates a
// policy text against the schema (strict mode) and reports every problem with its line and
// column; a set that compiles is preparsed inside the Cedar engine, so a decision only builds the
// request's entities. `decide` fails closed: an engine error is a deny, with the error kept.
import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { SOVEREIGNTY_SCHEMA } from './default-policies.js';

export interface PolicyProblem {
  readonly line: number;
  readonly column: number;
  /** The policy's @id, when the problem is inside one. */
  readonly policyId?: string;
  readonly message: string;
}

export interface CompiledPolicies {
  /** SHA-256 hex of the text as given: what the log records and every decision names. */
  readonly hash: string;
  readonly text: string;
  /** The policies' @id annotations, in file order. */
  readonly ids: readonly string[];
  /** The engine's handle of the preparsed set. */
  readonly engineId: string;
}

export type CompileResult =
  | { readonly ok: true; readonly policies: CompiledPolicies }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

export interface EntityRef {
  readonly type: string;
  readonly id: string;
}

export interface CedarEntity extends EntityRef {
  readonly attrs: Readonly<Record<string, string | boolean | number>>;
}

export interface CedarRequest {
  readonly principal: CedarEntity;
  readonly action: string;
  readonly resource: CedarEntity;
  readonly context?: Readonly<Record<string, string | boolean | number>>;
}

export interface CedarDecision {
  readonly allowed: boolean;
  /** The policies that decided: the forbids that fired on a deny, the permits on an allow. */
  readonly policyIds: readonly string[];
  /** Set when the engine could not evaluate (then always a deny). */
  readonly error?: string;
}

/** At most this much policy text (a site's policies are a few kB). */
export const MAX_POLICY_BYTES = 256 * 1024;
const SCHEMA_NAME = 'fabrik-sovereignty';
const ID_ANNOTATION = /^\s*@id\s*\(\s*"([A-Za-z0-9][A-Za-z0-9._-]{0,62})"\s*\)/m;

let schemaLoaded = false;
function ensureSchema(): void {
  if (schemaLoaded) return;
  const r = cedar.preparseSchema(SCHEMA_NAME, SOVEREIGNTY_SCHEMA);
  if (r.type !== 'success') throw new Error(`the built-in Cedar schema does not parse: ${r.errors[0]?.message}`);
  schemaLoaded = true;
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

function problemOf(text: string, e: cedar.DetailedError, policyId?: string): PolicyProblem {
  const at = e.sourceLocations?.[0];
  const where = at ? lineColumn(text, at.start) : { line: 1, column: 1 };
  const hint = [at?.label, e.help].filter(Boolean).join('; ');
  return { ...where, ...(policyId ? { policyId } : {}), message: hint ? `${e.message} (${hint})` : e.message };
}

/** Parses, checks the @ids, validates against the schema and preparses. Nothing is kept on failure. */
export function compilePolicies(text: string): CompileResult {
  ensureSchema();
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) {
    return { ok: false, problems: [{ line: 1, column: 1, message: `policy text over ${MAX_POLICY_BYTES} bytes` }] };
  }
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== 'success') return { ok: false, problems: parts.errors.map((e) => problemOf(text, e)) };
  if (parts.policy_templates.length > 0) {
    return { ok: false, problems: [{ line: 1, column: 1, message: 'policy templates are not supported' }] };
  }
  // Where each policy starts in the file, to place problems reported per policy.
  const starts: number[] = [];
  let from = 0;
  const ids: string[] = [];
  const problems: PolicyProblem[] = [];
  parts.policies.forEach((p, i) => {
    const head = p.slice(0, 40);
    const at = text.indexOf(head, from);
    starts.push(at < 0 ? from : at);
    from = at < 0 ? from : at + head.length;
    const id = ID_ANNOTATION.exec(p)?.[1];
    const where = lineColumn(text, starts[i]!);
    if (!id) problems.push({ ...where, message: `policy ${i + 1} has no @id("…") annotation` });
    else if (ids.includes(id)) problems.push({ ...where, policyId: id, message: `@id "${id}" is used twice` });
    ids.push(id ?? `policy${i}`);
  });
  if (problems.length > 0) return { ok: false, problems };
  const validation = cedar.validate({
    schema: SOVEREIGNTY_SCHEMA,
    policies: { staticPolicies: text },
    validationSettings: { mode: 'strict' },
  });
  if (validation.type !== 'success') return { ok: false, problems: validation.errors.map((e) => problemOf(text, e)) };
  if (validation.validationErrors.length > 0) {
    return {
      ok: false,
      problems: validation.validationErrors.map((v) => {
        const index = Number(/^policy(\d+)$/.exec(v.policyId)?.[1] ?? -1);
        return problemOf(text, v.error, ids[index]);
      }),
    };
  }
  const hash = createHash('sha256').update(text).digest('hex');
  const engineId = `policies-${hash}`;
  const byId: Record<string, string> = {};
  parts.policies.forEach((p, i) => {
    byId[ids[i]!] = p;
  });
  const pre = cedar.preparsePolicySet(engineId, { staticPolicies: byId });
  if (pre.type !== 'success') return { ok: false, problems: pre.errors.map((e) => problemOf(text, e)) };
  return { ok: true, policies: { hash, text, ids, engineId } };
}

const uid = (e: EntityRef) => ({ type: e.type, id: e.id });

/** One decision. Deny unless a permit applies and no forbid does; any engine error is a deny. */
export function decide(policies: CompiledPolicies, req: CedarRequest): CedarDecision {
  try {
    const answer = cedar.statefulIsAuthorized({
      principal: uid(req.principal),
      action: { type: 'Action', id: req.action },
      resource: uid(req.resource),
      context: { ...(req.context ?? {}) },
      preparsedPolicySetId: policies.engineId,
      preparsedSchemaName: SCHEMA_NAME,
      validateRequest: true,
      entities: [req.principal, req.resource].map((e) => ({ uid: uid(e), attrs: { ...e.attrs }, parents: [] })),
    });
    if (answer.type !== 'success') {
      return { allowed: false, policyIds: [], error: answer.errors.map((e) => e.message).join('; ') };
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      // A policy that errors is skipped by Cedar; we refuse instead: a broken forbid must not open a door.
      const error = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`).join('; ');
      return { allowed: false, policyIds: diagnostics.errors.map((e) => e.policyId), error };
    }
    return { allowed: decision === 'allow', policyIds: diagnostics.reason };
  } catch (err) {
    return { allowed: false, policyIds: [], error: (err as Error).message };
  }
}
