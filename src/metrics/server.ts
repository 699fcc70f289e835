import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './registry.js';

export interface MetricsServer {
  /** HOST:PORT actually bound (the port is the kernel's choice when 0 was asked for). */
  readonly address: string;
  /** Stops listening and ends open connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text format) on HOST:PORT. Anything else is 404 or 405.
 * Scrapers hold keep-alive connections open, so close() ends them instead of waiting.
 */
export async function startMetricsServer(
  metrics: MetricsRegistry,
  listen: { host: string; port: number },
): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET\n');
      return;
    }
    metrics.text().then(
      ({ body, contentType }) => {
        response.writeHead(200, { 'content-type': contentType });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const shown = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      const why =
        error.code === 'EADDRINUSE'
          ? 'the port is in use; pick another --metrics port'
          : error.code === 'EADDRNOTAVAIL'
            ? 'no interface of this host has that address'
            : error.message;
      reject(new Error(`cannot serve metrics on ${shown}: ${why}`));
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
