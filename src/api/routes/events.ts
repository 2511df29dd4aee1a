// Routes for the event feed: a page of events after a cursor (with long-poll), and the same as a
// Server-Sent Events stream (`id:` is the cursor, so Last-Event-ID resumes). Both see what the
// caller may see, nothing else; `after=latest` starts at the newest event of the moment.
import { PassThrough } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  MAX_STREAM_S,
  followEvents,
  listEvents,
  parseCursor,
  parseTypes,
  resolveCursor,
  waitForEvents,
} from '../../app/events.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };

/** Aborts when the client goes away before the answer is complete. */
function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => ac.abort());
  return ac.signal;
}

/** The stream's first message: `event: cursor`, the cursor as its id and its data. */
export function cursorMessage(cursor: string): string {
  return `event: cursor\nid: ${cursor}\ndata: ${JSON.stringify({ cursor })}\n\n`;
}

export async function eventRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Events (CloudEvents 1.0) after a cursor, in commit order; wait=N long-polls for the next one',
        querystring: S.EventListQuery,
        response: { 200: S.EventPage, ...errors },
      },
    },
    async (req, reply) => {
      const { wait, ...query } = req.query;
      const ctx = ctxOf(req, deps);
      if (!wait) return listEvents(ctx, query);
      return waitForEvents(ctx, query, wait * 1000, clientGone(reply));
    },
  );
  r.get(
    '/events/stream',
    {
      schema: {
        tags: ['events'],
        summary:
          'The event feed as Server-Sent Events: `id:` is the cursor (Last-Event-ID resumes), heartbeats while quiet',
        querystring: S.EventStreamQuery,
        headers: T.Object({ 'last-event-id': T.Optional(T.String({ maxLength: 100 })) }),
        response: { 200: T.String({ description: 'text/event-stream' }), ...errors },
      },
    },
    async (req, reply) => {
      const ctx = ctxOf(req, deps);
      const resumed = req.headers['last-event-id'];
      // Checked before the stream starts: bad input is a 400, not a broken stream. Last-Event-ID
      // is a cursor only (a resumed stream goes on where it was, never from `latest`).
      const after = resumed
        ? String(parseCursor(resumed, 'Last-Event-ID'))
        : String(await resolveCursor(ctx, req.query.after));
      parseTypes(req.query.types);
      const stream = new PassThrough();
      const ac = new AbortController();
      stream.once('close', () => ac.abort());
      reply.raw.once('close', () => ac.abort());
      const until = Date.now() + (req.query.timeout ?? MAX_STREAM_S) * 1000;
      void (async () => {
        try {
          // First the cursor the stream starts from (`latest` resolved): a named event, so an
          // EventSource's onmessage skips it, and with `id:` so a reconnect resumes from it.
          stream.write(`retry: 2000\n: fabrik event stream\n\n${cursorMessage(after)}`);
          for await (const page of followEvents(
            ctx,
            { after, types: req.query.types },
            { signal: ac.signal, untilMs: until },
          )) {
            if (page.items.length === 0) stream.write(': heartbeat\n\n');
            for (const e of page.items) {
              if (!stream.write(`id: ${e.id.slice(4)}\ndata: ${JSON.stringify(e)}\n\n`)) {
                await new Promise<void>((resolve) => {
                  const done = () => {
                    stream.off('drain', done).off('close', done);
                    resolve();
                  };
                  stream.once('drain', done).once('close', done);
                });
              }
            }
          }
        } catch (err) {
          req.log.warn({ err }, 'event stream ended by an error');
        } finally {
          stream.end();
        }
      })();
      reply
        .type('text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('x-accel-buffering', 'no');
      return reply.send(stream as never);
    },
  );
}
