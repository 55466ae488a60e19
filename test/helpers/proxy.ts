/**
 * A small HTTP load balancer for fault tests, behaving like HAProxy in http mode with health checks: requests go
 * round-robin to the backends whose `/readyz` said 200 at the last check (every 100 ms); a backend that refuses the
 * connection is skipped and the request redispatched (nothing was sent); a backend that dies mid-request yields a
 * 502 (that request ran on the dead node). Loopback only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Balancer {
  url: string;
  port: number;
  /** Backends currently in rotation. */
  ready(): string[];
  close(): Promise<void>;
}

export async function startProxy(backends: string[], port = 0): Promise<Balancer> {
  const up = new Map<string, boolean>(backends.map((b) => [b, true]));
  // A new backend connection per request: a refused connection is then certain to have carried nothing.
  const agent = new http.Agent({ keepAlive: false });
  let turn = 0;
  let stopped = false;

  const check = async () => {
    await Promise.all(
      backends.map(async (b) => {
        try {
          const r = await fetch(`${b}/readyz`, { signal: AbortSignal.timeout(1500) });
          await r.body?.cancel();
          up.set(b, r.status === 200);
        } catch {
          up.set(b, false);
        }
      }),
    );
  };
  const timer = setInterval(() => void check(), 100);
  await check();

  const pick = (skip: Set<string>) => {
    const live = backends.filter((b) => up.get(b) && !skip.has(b));
    return live.length ? live[turn++ % live.length] : undefined;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const tried = new Set<string>();
      const attempt = () => {
        const target = pick(tried);
        if (!target) {
          res.writeHead(503, { 'retry-after': '1' }).end('no backend');
          return;
        }
        tried.add(target);
        const u = new URL(target);
        let sent = false;
        const out = http.request(
          { host: u.hostname, port: u.port, method: req.method, path: req.url, headers: req.headers, agent },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
            r.on('error', () => res.destroy());
          },
        );
        out.on('socket', (s) => s.once('connect', () => (sent = true)));
        out.on('error', (err: NodeJS.ErrnoException) => {
          if (!sent && err.code === 'ECONNREFUSED' && !res.headersSent) {
            up.set(target, false);
            attempt();
          } else if (!res.headersSent) res.writeHead(502).end('backend failed');
          else res.destroy();
        });
        out.end(body);
      };
      attempt();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${actual}`,
    port: actual,
    ready: () => backends.filter((b) => up.get(b)),
    async close() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}
