// One catalogue of coded errors. Every refusal fabrik gives has a stable `code`, an HTTP status,
// and a message a person can act on. The HTTP layer turns them into {"error":{code,message,details}}.

export const ERROR_STATUS = {
  INVALID_JSON: 400,
  VALIDATION_FAILED: 400,
  INVALID_ARGUMENT: 400,
  /** Invalid UTF-8 in a body, query or path, or a NUL character in one of their strings. */
  INVALID_ENCODING: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  QUOTA_EXCEEDS_CAPACITY: 422,
  UNPROCESSABLE: 422,
  FLEET_FILE_INVALID: 422,
  SPEC_INVALID: 400,
  WORKLOAD_INFEASIBLE: 422,
  RATE_LIMITED: 429,
  /** The request line or headers exceed what the HTTP server reads (Node's maxHeaderSize). */
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  /** A project's registry storage quota cannot hold an upload or a commit. */
  STORAGE_QUOTA_EXCEEDED: 507,
  /** A commit names content the org never uploaded (or whose size differs). */
  BLOB_NOT_FOUND: 422,
  /** Uploaded content whose sha256 is not the one announced. */
  DIGEST_MISMATCH: 422,
  /** A DSSE envelope or signature that does not verify, or is malformed. */
  SIGNATURE_INVALID: 422,
  /** A .safetensors or .gguf file whose header cannot be read. */
  FORMAT_INVALID: 422,
  /** A README.md model card whose front matter is not valid YAML or holds invalid fields. */
  MODEL_CARD_INVALID: 422,
  MODEL_CARD_TOO_LARGE: 413,
  /** A sovereignty policy file with a syntax or schema error (details.problems: line, column, message). */
  POLICY_INVALID: 422,
  /** A policy set that would leave running work in breach, loaded without accepting that. */
  POLICY_BREACH: 409,
  /** A sovereignty policy forbids it (details: policyIds, policyHash). */
  POLICY_DENIED: 403,
  /** An operator reaching tenant data without a break-glass grant for the org. */
  BREAK_GLASS_REQUIRED: 403,
  /** A price version whose validity overlaps another version of the same item. */
  PRICE_OVERLAP: 409,
  /** A price with an unknown item, a negative amount, or validity not on whole hours. */
  PRICE_INVALID: 400,
  /** A budget below zero, in an unknown unit, or with bad thresholds or action. */
  BUDGET_INVALID: 400,
  /** A submission refused: the project's monthly budget is used up and its action is `block`. */
  BUDGET_EXCEEDED: 402,
  /** A statement for a month that has not begun. */
  MONTH_IN_FUTURE: 400,
  /** A console mutation (cookie session) without the session's `x-csrf-token` header. */
  CSRF_FAILED: 403,
  /** Sign-in with OpenID Connect asked of a server that has none configured. */
  OIDC_NOT_CONFIGURED: 404,
  /** The identity provider's answer did not check out (state, nonce, code, token). */
  OIDC_FAILED: 401,
  /** An identity whose claims map to no role in any org (nor operator). */
  OIDC_NO_ROLE: 401,
  /** The identity provider cannot be reached (discovery, token endpoint). */
  OIDC_UNAVAILABLE: 503,
  /** An --oidc-roles mapping file with a syntax or schema error. */
  OIDC_ROLES_INVALID: 422,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
  }

  toJSON(): { error: { code: string; message: string; details: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** A resource that does not exist, or that the caller may not know exists: both read the same. */
export function notFound(kind: string, name: string): AppError {
  return new AppError('NOT_FOUND', `${kind} "${name}" not found`, { kind, name });
}

export function alreadyExists(kind: string, name: string): AppError {
  return new AppError('ALREADY_EXISTS', `${kind} "${name}" already exists`, { kind, name });
}

export function forbidden(action: string): AppError {
  return new AppError('FORBIDDEN', `your role does not allow ${action}`, { action });
}
