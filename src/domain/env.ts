// A task environment as a spec gives it: literal values or references to secrets. Parsed in
// src/workload/env.ts, resolved at launch by src/tenancy/secrets.ts.

/** A reference to a secret of the workload's project, or of its org when the project has none by that name. */
export interface SecretRef {
  readonly secret: string;
}

/** Literal text, or a secret reference: the two forms a spec may give. */
export type EnvValue = string | SecretRef;

export type WorkloadEnv = Readonly<Record<string, EnvValue>>;

export function isSecretRef(v: EnvValue): v is SecretRef {
  return typeof v === 'object' && v !== null && typeof v.secret === 'string';
}
