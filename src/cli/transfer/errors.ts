// Failures as CliErrors: a failed answer keeps the server's error code (fabrik's envelope or the
// Hub's X-Error-Code) and maps its status to the CLI's exit code; network failures are
// `UNREACHABLE`. `retryable` says which of them are worth another try.
import { CliError } from '../client.js';
import { EXIT, exitCodeForStatus } from '../output.js';

/** A CliError from a failed answer: the server's code (envelope or X-Error-Code) and message. */
export async function hubError(res: Response, what: string): Promise<CliError> {
  const text = await res.text().catch(() => '');
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return errorFrom(res, parsed, text, what);
}

/**
 * fabrik's envelope `{error: {code, message, details}}`, or the Hub's `{error: "<message>", code?}`
 * with `X-Error-Code` (RepoNotFound, RevisionNotFound, …) and `X-Error-Message`.
 */
function errorFrom(res: Response, parsed: any, text: string, what: string): CliError {
  const env = parsed && typeof parsed.error === 'object' && parsed.error ? parsed.error : undefined;
  const code: string =
    env?.code ??
    res.headers.get('x-error-code') ??
    (typeof parsed?.code === 'string' ? parsed.code : undefined) ??
    (res.status === 507 ? 'STORAGE_QUOTA_EXCEEDED' : `HTTP_${res.status}`);
  const detail: string =
    env?.message ??
    (typeof parsed?.error === 'string' ? parsed.error : undefined) ??
    res.headers.get('x-error-message') ??
    (text.slice(0, 300) || res.statusText || `HTTP ${res.status}`);
  const message = `${what}: ${detail}`;
  const details = env?.details ?? (parsed && typeof parsed.details === 'object' ? parsed.details : {});
  return new CliError(message, exitCodeFor(res.status, code), {
    error: { code, message, details: { ...details, status: res.status } },
  });
}

function exitCodeFor(status: number, code: string): number {
  if (status === 507 || code === 'STORAGE_QUOTA_EXCEEDED') return EXIT.conflict;
  return exitCodeForStatus(status);
}

export function protocolError(message: string, code = 'PROTOCOL_ERROR'): CliError {
  return new CliError(message, EXIT.internal, { error: { code, message, details: {} } });
}

export function unreachable(endpoint: string, err: unknown): CliError {
  const cause = (err as Error).cause as Error | undefined;
  const message = `cannot reach fabrik at ${endpoint}: ${cause?.message ?? (err as Error).message}`;
  return new CliError(message, EXIT.unreachable, { error: { code: 'UNREACHABLE', message, details: {} } });
}

/** Network failures and 5xx answers (but not 507, a quota) are worth another try. */
export function retryable(err: unknown): boolean {
  if (err instanceof CliError) {
    const status = err.body.error.details.status;
    return (
      err.exitCode === EXIT.unreachable ||
      (typeof status === 'number' && status >= 500 && status !== 507 && status !== 501)
    );
  }
  return err instanceof Error && (err.name === 'TypeError' || (err as NodeJS.ErrnoException).code === 'ECONNRESET');
}

/** A 404 the client concludes itself (e.g. a repository without the revision). */
export function notFound(what: string, code: string): CliError {
  const message = `${what} not found`;
  return new CliError(message, EXIT.notFound, { error: { code, message, details: { status: 404 } } });
}

/** The CliError of an answer already read as JSON (allowed through, then found to be a failure). */
export function errorOf(r: { res: Response; body: any }, what: string): CliError {
  return errorFrom(r.res, r.body, '', what);
}
