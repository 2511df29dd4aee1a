// CSRF for the session cookie: mutations carry `x-csrf-token` with the value of the `fabrik_csrf`
// cookie (readable by the page, not by other origins); reads carry nothing extra.
export const CSRF_COOKIE = 'fabrik_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** The value of cookie `name` in a `document.cookie` string, decoded; undefined when absent. */
export function cookieValue(cookies: string, name: string): string | undefined {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

export function isMutation(method: string): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
}

/** Headers a request needs for CSRF: the token on mutations when there is one (else none). */
export function csrfHeaders(method: string, cookies: string, fallbackToken?: string): Record<string, string> {
  if (!isMutation(method)) return {};
  const token = cookieValue(cookies, CSRF_COOKIE) ?? fallbackToken;
  return token ? { [CSRF_HEADER]: token } : {};
}
