// A small HTTP client for the fabrik API. Errors become CliError with the server's code and
// message and the exit code that goes with them.
import { EXIT, exitCodeForStatus } from './output.js';
import type { CliConfig } from './config.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly body: { error: { code: string; message: string; details: Record<string, unknown> } },
  ) {
    super(message);
  }

  static usage(message: string): CliError {
    return new CliError(message, EXIT.usage, { error: { code: 'USAGE', message, details: {} } });
  }
}

export class ApiClient {
  constructor(private readonly config: CliConfig) {}

  get endpoint(): string {
    return (this.config.endpoint ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    if (!this.config.apiKey) {
      throw new CliError('not logged in: run `fabrik login --endpoint URL` (or set FABRIK_API_KEY)', EXIT.auth, {
        error: { code: 'UNAUTHENTICATED', message: 'no API key configured', details: {} },
      });
    }
    let res: Response;
    try {
      res = await fetch(this.endpoint + path, {
        method,
        headers: {
          authorization: `Bearer ${this.config.apiKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const message = `cannot reach fabrik at ${this.endpoint}: ${(err as Error).cause ?? (err as Error).message}`;
      throw new CliError(message, EXIT.unreachable, { error: { code: 'UNREACHABLE', message, details: {} } });
    }
    const text = await res.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!res.ok) {
      const envelope =
        parsed && typeof parsed === 'object' && 'error' in (parsed as object)
          ? (parsed as CliError['body'])
          : { error: { code: `HTTP_${res.status}`, message: text || res.statusText, details: {} } };
      throw new CliError(envelope.error.message, exitCodeForStatus(res.status), envelope);
    }
    return parsed as T;
  }

  /** A streamed text response (logs), as chunks. */
  async stream(path: string): Promise<AsyncIterable<Uint8Array>> {
    let res: Response;
    try {
      res = await fetch(this.endpoint + path, { headers: { authorization: `Bearer ${this.config.apiKey ?? ''}` } });
    } catch (err) {
      const message = `cannot reach fabrik at ${this.endpoint}: ${(err as Error).cause ?? (err as Error).message}`;
      throw new CliError(message, EXIT.unreachable, { error: { code: 'UNREACHABLE', message, details: {} } });
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      const parsed = safeJson(text) as CliError['body'] | undefined;
      const envelope = parsed?.error
        ? parsed
        : { error: { code: `HTTP_${res.status}`, message: text || res.statusText, details: {} } };
      throw new CliError(envelope.error.message, exitCodeForStatus(res.status), envelope);
    }
    return res.body as unknown as AsyncIterable<Uint8Array>;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** Follows nextCursor until the listing is complete. */
  async all<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const url: string = cursor
        ? `${path}${sep}limit=1000&cursor=${encodeURIComponent(cursor)}`
        : `${path}${sep}limit=1000`;
      const page: { items: T[]; nextCursor: string | null } = await this.get(url);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function q(s: string): string {
  return encodeURIComponent(s);
}
