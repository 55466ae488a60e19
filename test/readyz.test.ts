/**
 * Readiness tells the truth, and why. Invariant: with its database unreachable a node answers `/readyz` with 503, the
 * reason (`unreachable`) and Retry-After, fast and never cached, while `/healthz` (liveness) stays 200 so the node is
 * taken out of rotation, not restarted; once the database is back, `/readyz` is 200 again.
 *
 * test/faults/database.test.ts checks the 503 under load but not the reason, and runs only without TEST_DATABASE_URL;
 * this file brings its own throwaway PostgreSQL (test/helpers/pgserver.ts), so it runs in both suites.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Service } from '../src/main.ts';
import { type PgServer, startPgServer } from './helpers/pgserver.ts';
import { startTestService } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

let server: PgServer;
let service: Service;

before(async () => {
  server = await startPgServer();
  service = await startTestService(server.url, { DB_CONNECT_TIMEOUT_MS: '500', DEMO_SEED: 'never' });
});
after(async () => {
  await service?.close();
  await server?.destroy();
});

async function readyz() {
  const t0 = Date.now();
  const res = await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(5000) });
  return {
    status: res.status,
    ms: Date.now() - t0,
    retryAfter: res.headers.get('retry-after'),
    cacheControl: res.headers.get('cache-control'),
    body: (await res.json()) as { status: string; database: string; pendingMigrations: string[] },
  };
}

it('/readyz answers 503 with the reason while the database is unreachable, and 200 once it is back', async () => {
  const up = await readyz();
  assert.equal(up.status, 200);
  assert.deepEqual(up.body, { status: 'ready', database: 'ok', pendingMigrations: [] });

  await server.stop();
  let down: Awaited<ReturnType<typeof readyz>> | undefined;
  await until('/readyz says 503', async () => {
    down = await readyz();
    return down.status === 503;
  });
  assert.deepEqual(down!.body, { status: 'unreachable', database: 'unreachable', pendingMigrations: [] });
  assert.ok(Number(down!.retryAfter) > 0, `Retry-After ${down!.retryAfter}`);
  assert.equal(down!.cacheControl, 'no-store');
  assert.ok(down!.ms < 1000, `answered in ${down!.ms} ms, within the probe's deadline`);
  const live = await fetch(`${service.url}/healthz`);
  assert.equal(live.status, 200, 'alive: take it out of rotation, do not restart it');
  assert.deepEqual(await live.json(), { status: 'ok' });

  await server.start();
  await until('/readyz says 200 again', async () => (await readyz()).status === 200, 10_000);
  assert.deepEqual((await readyz()).body, { status: 'ready', database: 'ok', pendingMigrations: [] });
});
