// Identifiers and names. Ids are random, prefixed by kind so a reader knows what they point at;
// names are DNS labels chosen by people.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A random id like `prj_4f9k2m8q1x7c0d3a` (16 base36 characters, ~82 bits). */
export function newId(prefix: string): string {
  const bytes = randomBytes(16);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % 36];
  return `${prefix}_${s}`;
}

/** RFC 1123 label: lowercase alphanumerics and '-', 1–63 chars, starting and ending alphanumeric. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const DNS_LABEL = new RegExp(DNS_LABEL_PATTERN);

export function isDnsLabel(s: string): boolean {
  return DNS_LABEL.test(s);
}

/** The wall clock as an RFC 3339 string with milliseconds, the one timestamp format stored. */
export function nowIso(): string {
  return new Date().toISOString();
}
