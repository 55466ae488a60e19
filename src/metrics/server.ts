/**
 * The metrics listener: `GET /metrics` in Prometheus's text format on its own port (METRICS_PORT), bound to
 * METRICS_HOST (loopback by default). Never on the public listener: the families tell an attacker how logins fail.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './registry.ts';

/** A running metrics listener. */
export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Listens on `host:port` (0: a free port) and serves the registry; `onError` hears listener errors. */
export async function startMetricsServer(
  metrics: Metrics,
  host: string,
  port: number,
  onError: (err: unknown) => void,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        onError(err);
        res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
      },
    );
  });
  server.listen(port, host);
  await once(server, 'listening');
  server.on('error', onError);
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
