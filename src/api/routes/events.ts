// Routes for the event feed: a page of events after a cursor (with long-poll), and the same as a
// Server-Sent Events stream (`id:` is the cursor, so Last-Event-ID resumes). Both see what the
// caller may see, nothing else.
import { PassThrough } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { MAX_STREAM_S, followEvents, listEvents, parseCursor, parseTypes, waitForEvents } from '../../app/events.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody };

/** Aborts when the client goes away before the answer is complete. */
function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => ac.abort());
  return ac.signal;
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
      // Checked before the stream starts: bad input is a 400, not a broken stream.
      const after = String(parseCursor(resumed ?? req.query.after, resumed ? 'Last-Event-ID' : 'after'));
      parseTypes(req.query.types);
      const stream = new PassThrough();
      const ac = new AbortController();
      stream.once('close', () => ac.abort());
      reply.raw.once('close', () => ac.abort());
      const until = Date.now() + (req.query.timeout ?? MAX_STREAM_S) * 1000;
      void (async () => {
        try {
          stream.write('retry: 2000\n: fabrik event stream\n\n');
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
