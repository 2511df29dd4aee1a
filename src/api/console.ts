// The web console (web/, built by Vite into web/dist) served at `/`: its files with long caching
// for the hashed assets, and index.html for the console's page paths (the console routes them in
// the browser). Console pages carry a strict CSP: nothing but this origin.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AppError } from '../domain/errors.js';

/** web/dist from src/api/ (sources through tsx) and from dist/api/ (compiled): both two levels down. */
export const CONSOLE_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../web/dist');

/** The console's pages (as web/src/app.tsx routes them): each answers index.html. */
export const CONSOLE_PAGES = [
  '/',
  '/signin',
  '/queue',
  '/workloads',
  '/workloads/*',
  '/deployments',
  '/registry',
  '/usage',
  '/audit',
  '/operators',
  '/simulator',
] as const;

export const CONSOLE_CSP = [
  "default-src 'self'",
  "img-src 'self' data: blob:",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

function consoleHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', CONSOLE_CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'same-origin');
}

export async function consoleRoutes(app: FastifyInstance, dist = CONSOLE_DIST): Promise<void> {
  const index = join(dist, 'index.html');
  if (!existsSync(index)) {
    // A server started from a checkout without `npm run build:web`: say how, instead of a bare 404.
    app.get('/', { schema: { hide: true }, config: { auth: false } }, async (_req, reply) => {
      const e = new AppError('NOT_FOUND', 'the web console is not built: run `npm run build:web` (or `npm start`)');
      reply.status(404).send(e.toJSON());
    });
    return;
  }
  await app.register(fastifyStatic, {
    root: dist,
    prefix: '/',
    // Routes for the files that exist now; anything else is the app's (or its scope's) 404.
    wildcard: false,
    index: false,
    serveDotFiles: false,
    // Cache headers are ours (setHeaders), not send's default max-age=0.
    cacheControl: false,
    setHeaders: (res, path) => {
      res.setHeader('content-security-policy', CONSOLE_CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      // Vite names assets by content hash: they never change under one name.
      res.setHeader('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  const sendIndex = (reply: FastifyReply) => {
    consoleHeaders(reply);
    reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', dist, { cacheControl: false });
  };
  // The console's own paths only (web/src/app.tsx routes them in the browser); every other path,
  // /hub's included, keeps its scope's 404.
  const page = { schema: { hide: true }, config: { auth: false } } as const;
  for (const path of CONSOLE_PAGES) app.get(path, page, async (_req, reply) => sendIndex(reply));
}
