/**
 * Invariant: a node that is stopped (SIGTERM, a rolling deploy) drops no request: `/readyz` turns 503 at once, it
 * keeps serving through its grace period while the load balancer takes it out, finishes what is in flight and exits
 * 0. A node that dies (kill -9) loses only the requests it was running: behind a load balancer the other nodes
 * finish every other flow, and the restarted node serves again.
 *
 * Real dinhdanh processes behind a small HTTP load balancer with `/readyz` health checks (test/helpers/proxy.ts),
 * a steady bounded load of logins, refreshes and client_credentials grants.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { addClient } from '../../src/clients/index.ts';
import { connect, type DB } from '../../src/db/index.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type LoadTarget, startLoad } from '../helpers/load.ts';
import { freePort, type NodeProcess, startNode } from '../helpers/process.ts';
import { type Balancer, startProxy } from '../helpers/proxy.ts';
import { testEnv } from '../helpers/service.ts';
import { until } from '../helpers/wait.ts';

const REDIRECT = 'http://localhost:4701/cb';

let database: TestDatabase;
let db: Kysely<DB>;
let proxy: Balancer;
let env: Record<string, string>;
const ports: number[] = [];
const nodes: (NodeProcess | undefined)[] = [];
let target: LoadTarget;

const backend = (i: number) => `http://localhost:${ports[i]}`;
const start = async (i: number, extra: Record<string, string> = {}) => {
  nodes[i] = await startNode({ ...env, PORT: String(ports[i]), ...(i ? { DEMO_SEED: 'never' } : {}), ...extra });
};

describe('nodes stopped and killed under load', { timeout: 300_000 }, () => {
  before(async () => {
    database = await freshDatabase();
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    const proxyPort = await freePort();
    env = testEnv(database.url, {
      ISSUER: `http://localhost:${proxyPort}`,
      MASTER_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'warn',
      LOGIN_MAX_FAILURES: '100',
      LOGIN_IP_FAILURES: '1000000',
    });
    await start(0);
    await Promise.all([start(1), start(2)]);
    proxy = await startProxy([0, 1, 2].map(backend), proxyPort);
    db = connect(database.url, 2);
    const portal = await addClient(db, { name: 'Cổng thử nghiệm', redirectUris: [REDIRECT] });
    const service = await addClient(db, { name: 'Dịch vụ nền', redirectUris: [], clientCredentials: true });
    target = {
      issuer: proxy.url,
      nodes: [],
      portal: { clientId: portal.client_id, secret: portal.client_secret!, redirectUri: REDIRECT },
      service: { clientId: service.client_id, secret: service.client_secret! },
    };
  });
  after(async () => {
    await proxy?.close();
    await Promise.all(nodes.map((n) => n?.stop()));
    await db?.destroy();
    await database?.drop();
  });

  it('SIGTERM during load: /readyz 503 at once, zero requests dropped, exit 0', async () => {
    // Node 1 restarted with a grace period long enough for the balancer's checks (every 100 ms).
    await nodes[1]!.stop();
    await start(1, { SHUTDOWN_GRACE_SECONDS: '2', SHUTDOWN_TIMEOUT_SECONDS: '20' });
    await until('node 1 back in rotation', () => proxy.ready().includes(backend(1)));
    const load = startLoad(target, { workers: 4 });
    try {
      await until('load warmed up', () => load.tally.outcomes.filter((o) => o.result === 'ok').length >= 10);
      const node = nodes[1]!;
      const exited = new Promise<number | null>((r) => node.child.once('exit', (code) => r(code)));
      const t0 = Date.now();
      node.child.kill('SIGTERM');
      await until('/readyz on the stopping node says 503', async () => {
        const r = await fetch(`${backend(1)}/readyz`);
        await r.body?.cancel();
        return r.status === 503;
      });
      assert.ok(Date.now() - t0 < 1000, 'readiness turned 503 within a second of the signal');
      const code = await exited;
      assert.equal(code, 0, `exit code 0:\n${node.output().slice(-2000)}`);
      assert.ok(Date.now() - t0 < 25_000, 'stopped within grace + timeout');
      const stoppedAt = Date.now();
      await until('load continues on the other nodes', () =>
        load.tally.outcomes.some((o) => o.result === 'ok' && o.at > stoppedAt + 1000),
      );
    } finally {
      await load.stop();
    }
    const failed = load.tally.outcomes.filter((o) => o.result !== 'ok');
    assert.deepEqual(failed, [], 'no request dropped or refused');
    await start(1);
  });

  it('kill -9 of one node of three: only its requests in flight fail, the others finish every flow, it serves again after restart', async () => {
    await until('all three in rotation', () => proxy.ready().length === 3);
    const load = startLoad(target, { workers: 4 });
    let killedAt = 0;
    try {
      await until('load warmed up', () => load.tally.outcomes.filter((o) => o.result === 'ok').length >= 10);
      killedAt = Date.now();
      nodes[2]!.child.kill('SIGKILL');
      await until('load continues without node 2', () =>
        load.tally.outcomes.some((o) => o.result === 'ok' && o.at > killedAt + 2000),
      );
      await start(2);
      await until('node 2 back in rotation', () => proxy.ready().includes(backend(2)));
      const backAt = Date.now();
      await until('load runs on all three again', () =>
        load.tally.outcomes.some((o) => o.result === 'ok' && o.at > backAt + 2000),
      );
    } finally {
      await load.stop();
    }
    const failed = load.tally.outcomes.filter((o) => o.result !== 'ok');
    // At most one operation per worker was running on the node when it died; nothing failed later.
    assert.ok(failed.length <= 4, `at most the operations in flight failed: ${JSON.stringify(failed)}`);
    for (const f of failed) {
      assert.ok(f.result === 502 || f.result === 'dropped', `a request cut by the dead node: ${JSON.stringify(f)}`);
      assert.ok(f.at - killedAt < 1000, 'failed at the moment of the kill, not later');
    }
    // The restarted node serves: a grant straight to it.
    const res = await fetch(`${backend(2)}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${target.service.clientId}:${target.service.secret}`).toString('base64')}`,
      },
    });
    assert.equal(res.status, 200);
  });
});
