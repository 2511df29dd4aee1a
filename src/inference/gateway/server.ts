// The gateway as its own HTTP server (`fabrik gateway`, tests, benchmarks): /v1/* to the gateway,
// /metrics (its Registry) and /healthz beside it. node:http directly, keep-alive longer than the
// usual load balancer idle timeout so a proxy in front never reuses a connection being closed.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sendError } from './errors.js';
import type { Gateway } from './gateway.js';
import { requestIdOf } from './request.js';

export interface GatewayServer {
  readonly server: Server;
  readonly port: number;
  /** `http://host:port` (without /v1). */
  readonly url: string;
  /** Stops accepting, ends idle connections, waits for running calls (streams end with their replicas). */
  close(): Promise<void>;
}

export async function startGatewayServer(
  gateway: Gateway,
  opts: { readonly port: number; readonly host?: string },
): Promise<GatewayServer> {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/v1' || url.startsWith('/v1/') || url.startsWith('/v1?')) return gateway.handle(req, res);
    res.setHeader('x-request-id', requestIdOf(req));
    const path = url.split('?')[0];
    if (path === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    } else if (path === '/metrics' && req.method === 'GET') {
      gateway.metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': gateway.metrics.contentType });
          res.end(text);
        },
        () => sendError(res, { status: 500, message: 'metrics failed', type: 'server_error', param: null, code: null }),
      );
    } else
      sendError(res, {
        status: 404,
        message: `Invalid URL (${req.method} ${url})`,
        type: 'invalid_request_error',
        param: null,
        code: null,
      });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // Streams and long generations: no limit on a whole request's time (the replicas' own timeouts apply).
  server.requestTimeout = 0;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
