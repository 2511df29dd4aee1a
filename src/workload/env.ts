// A workload's environment: literal values, or references to secrets (`{secret: wandb}`) that are
// resolved only when a task starts, so the value never sits in the workload row, the API or the
// audit trail. Literal values that look like credentials get a warning at submit.
import { DNS_LABEL_RULE, describeValue, fail, formatPath, isDnsLabel, isRecord, type Path } from '../domain/input.js';

import { type EnvValue, type SecretRef, type WorkloadEnv, isSecretRef } from '../domain/env.js';

export { type EnvValue, type SecretRef, type WorkloadEnv, isSecretRef };

// fabrik sets these for every task (ranks, rendezvous, GPU visibility); a spec must not override them.
const RESERVED_ENV_PREFIXES = ['FABRIK_', 'CUDA_', 'NVIDIA_'];
const RESERVED_ENV = ['MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'NODE_RANK'];
const MAX_VARS = 256;
const MAX_VALUE = 32 * 1024;

export function readEnv(v: unknown): Record<string, EnvValue> {
  if (!isRecord(v)) fail(['env'], `must be a mapping of variable names to values, got ${describeValue(v)}`);
  const entries = Object.entries(v);
  if (entries.length > MAX_VARS) fail(['env'], `at most ${MAX_VARS} variables, got ${entries.length}`);
  const out: [string, EnvValue][] = [];
  for (const [k, raw] of entries) {
    const path: Path = ['env', k];
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(k))
      fail(path, `"${k}" is not a variable name (letters, digits, '_')`, true);
    if (RESERVED_ENV.includes(k) || RESERVED_ENV_PREFIXES.some((p) => k.startsWith(p))) {
      fail(
        path,
        `${k} is set by fabrik and cannot be overridden (reserved: ${RESERVED_ENV_PREFIXES.map((p) => `${p}*`).join(', ')}, ${RESERVED_ENV.join(', ')})`,
        true,
      );
    }
    if (isRecord(raw)) {
      out.push([k, readSecretRef(raw, path)]);
      continue;
    }
    // Numbers and booleans are taken as text: YAML reads `PORT: 8080` as a number.
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      fail(path, `must be a string or {secret: NAME}, got ${describeValue(raw)}`);
    }
    const value = String(raw);
    if (value.length > MAX_VALUE || value.includes('\0')) fail(path, 'must be at most 32 KiB without NUL characters');
    out.push([k, value]);
  }
  return Object.fromEntries(out);
}

function readSecretRef(raw: Record<string, unknown>, path: Path): SecretRef {
  const keys = Object.keys(raw);
  if (keys.length !== 1 || keys[0] !== 'secret') {
    const other = keys.find((k) => k !== 'secret');
    if (other !== undefined) fail([...path, other], `unknown field "${other}"; a reference is {secret: NAME}`, true);
    fail(path, 'a reference is {secret: NAME}');
  }
  // The message never echoes what was given: someone may have pasted the value where the name goes.
  if (typeof raw.secret !== 'string' || !isDnsLabel(raw.secret)) {
    fail([...path, 'secret'], `must name a secret (${DNS_LABEL_RULE}); store the value with \`fabrik secret create\``);
  }
  return { secret: raw.secret };
}

/** The secret references of an environment, with the variable each one sets. */
export function secretRefs(env: WorkloadEnv): { variable: string; secret: string }[] {
  return Object.entries(env).flatMap(([variable, v]) => (isSecretRef(v) ? [{ variable, secret: v.secret }] : []));
}

/** The environment when it holds no references (a server without secrets); throws naming the first reference. */
export function literalEnv(env: WorkloadEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (isSecretRef(v)) throw new Error(`env.${k} refers to secret "${v.secret}", but this server resolves no secrets`);
    out[k] = v;
  }
  return out;
}

// TOKEN only as a whole word: TOKENIZERS_PARALLELISM and MAX_TOKENS are common and harmless.
const SECRET_NAME = /(^|_)TOKEN(_|$)|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY/i;
const HARMLESS_VALUE = /^(true|false|yes|no|on|off|none|null|\d{1,6})?$/i;

const TOKEN_PATTERNS: readonly [string, RegExp][] = [
  ['a Hugging Face token', /\bhf_[A-Za-z0-9]{30,}/],
  ['an OpenAI/Anthropic-style API key', /\bsk-[A-Za-z0-9_-]{20,}/],
  ['a GitHub token', /\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/],
  ['a GitLab token', /\bglpat-[A-Za-z0-9_-]{20,}/],
  ['an AWS access key id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['a Slack token', /\bxox[abposr]-[A-Za-z0-9-]{10,}/],
  ['a fabrik API key', /\bfbk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/],
  ['a JSON Web Token', /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
  ['a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
];

/** Shannon entropy in bits per character. */
function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) h -= (n / s.length) * Math.log2(n / s.length);
  return h;
}

/**
 * Random-looking: 32+ characters of a token alphabet, mixing upper case, lower case and digits,
 * and close to the entropy a random string of that length has. Hex digests (git commits) and
 * paths are left alone.
 */
function looksRandom(v: string): boolean {
  if (v.length < 32 || v.length > 4096 || !/^[A-Za-z0-9+/=_.-]+$/.test(v)) return false;
  if (!/[a-z]/.test(v) || !/[A-Z]/.test(v) || !/[0-9]/.test(v)) return false;
  return entropy(v) >= 0.85 * Math.log2(Math.min(v.length, 64));
}

/** Why a literal value looks like a credential, or undefined. Never says what the value is. */
function credentialLike(name: string, value: string): string | undefined {
  for (const [what, re] of TOKEN_PATTERNS) if (re.test(value)) return `the value looks like ${what}`;
  if (looksRandom(value)) return 'the value looks like a random key or token';
  if (SECRET_NAME.test(name) && !HARMLESS_VALUE.test(value.trim())) return 'the name suggests a credential';
  return undefined;
}

/**
 * Warnings for literal values that look like credentials: they are stored with the workload and
 * shown to everyone who can read it. Each names the variable, never the value.
 */
export function envWarnings(env: WorkloadEnv): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (isSecretRef(v)) continue;
    const why = credentialLike(k, v);
    if (!why) continue;
    const suggested =
      k
        .toLowerCase()
        .replace(/_/g, '-')
        .slice(0, 63)
        .replace(/^-+|-+$/g, '') || 'my-secret';
    out.push(
      `${formatPath(['env', k])}: ${why}; it is stored in plain text with the workload. ` +
        `Keep it in a secret (fabrik secret create ${suggested}) and write ${k}: {secret: ${suggested}}`,
    );
  }
  return out;
}
