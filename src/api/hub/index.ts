// The Hugging Face Hub protocol under /hub: what `@huggingface/hub` and `huggingface_hub` call,
// so a tenant's tools work against the sovereign registry unchanged (docs/registry.md).
//
// The Hub's own conventions apply here rather than /api/v1's: keys may come as `hf_<fabrik key>`
// (the JS client refuses tokens without that prefix), errors are `{"error": "<message>"}` with
// `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, or fabrik's code), and upload URLs
// carry a capability token instead of an Authorization header.
import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import { toAppError } from '../error-map.js';
import type { HubDeps } from './context.js';
import { downloadRoutes } from './download.js';
import { uploadRoutes } from './upload.js';

/** `hf_` + a fabrik key is the key: the same checks apply as for the bare key. */
function withoutHfPrefix(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer hf_') ? `Bearer ${header.slice('Bearer hf_'.length)}` : header;
}

export async function hubRoutes(app: FastifyInstance, deps: HubDeps): Promise<void> {
  await app.register(
    async (hub) => {
      hub.addHook('onRequest', async (req) => {
        if (req.routeOptions.config.auth === false) return;
        req.caller = await deps.auth.authenticate(withoutHfPrefix(req.headers.authorization));
      });
      // Part uploads are raw bytes of any type, streamed to the store; never parsed or buffered.
      hub.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
      hub.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
      hub.addContentTypeParser(['application/vnd.git-lfs+json'], { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, JSON.parse(body as string));
        } catch {
          done(new AppError('INVALID_JSON', 'request body is not valid JSON'), undefined);
        }
      });
      hub.setErrorHandler((err: FastifyError, req, reply) => {
        const e = toAppError(err);
        if (e.status >= 500) req.log.error({ err }, 'hub request failed');
        const hubCode = typeof e.details.hubErrorCode === 'string' ? e.details.hubErrorCode : e.code;
        reply
          .status(e.status)
          .header('x-error-code', hubCode)
          .header(
            'x-error-message',
            e.code === 'UNAUTHENTICATED'
              ? 'Invalid credentials in Authorization header'
              : e.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 500),
          )
          .header('content-type', 'application/json; charset=utf-8')
          .send({ error: e.message, code: e.code, details: e.details });
      });
      hub.setNotFoundHandler((req, reply) => {
        reply
          .status(404)
          .header('x-error-code', 'NOT_FOUND')
          .send({ error: `no Hub route ${req.method} ${req.url.split('?')[0]}`, code: 'NOT_FOUND' });
      });
      await downloadRoutes(hub, deps);
      await uploadRoutes(hub, deps);
    },
    { prefix: '/hub' },
  );
}
