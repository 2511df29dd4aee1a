// The HTTP side of an incoming call: its request id and its body, bounded in size.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** What an incoming x-request-id may look like to be kept (as the API server accepts it). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** A body declared more than this many times over the limit is not read: answered at once, connection closed. */
const DRAIN_FACTOR = 4;

/**
 * The body, or 'too-large' past `max` bytes. An oversized body is still read to its end (and
 * dropped) so that a client that sends it whole before reading the answer sees the 413; one
 * declared far beyond the limit is answered at once and its connection closed after the answer
 * (`close` is then true), and one that keeps coming far beyond it is cut.
 */
export function readBody(
  req: IncomingMessage,
  max: number,
): Promise<Buffer | { readonly tooLarge: true; readonly close: boolean } | 'aborted'> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > max * DRAIN_FACTOR) {
    req.resume();
    return Promise.resolve({ tooLarge: true, close: true });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max * DRAIN_FACTOR) {
        req.socket.destroy();
        resolve('aborted');
      } else if (size <= max) chunks.push(c);
    });
    req.on('end', () => {
      if (size > max) resolve({ tooLarge: true, close: false });
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on('error', () => resolve('aborted'));
    req.on('close', () => {
      if (!req.complete) resolve('aborted');
    });
  });
}
