/**
 * Invariant: a start that fails at any step leaves nothing behind and reports its own error: the HTTP port is free,
 * no timer or socket is left (none keeping the process alive, and no interval still running unref'd), no database
 * connection stays open. A node that started and stopped leaves nothing either.
 *
 * Each step of STARTUP_STEPS is made to fail in turn (`failAt`, a test-only option: the step throws once it has
 * run, so its own release is checked too); one real failure (the port taken) checks the error is passed through.
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.ts';
import { STARTUP_STEPS, startService } from '../src/main.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { freePort } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

let database: TestDatabase;
let observer: pg.Client;

// Every timer created and not yet cleared or fired, unref'd ones included (getActiveResourcesInfo omits those), with
// where it was created; the polling of `until` itself is left out.
const timers = new Map<number, string>();
const hook = createHook({
  init(id, type) {
    const stack = type === 'Timeout' ? (new Error().stack ?? '') : '';
    if (stack && !stack.includes('/helpers/wait.ts')) timers.set(id, stack);
  },
  destroy(id) {
    timers.delete(id);
  },
});

/** Handles that keep the event loop alive, counted by type. */
function liveHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (['Timeout', 'TCPServerWrap', 'TCPSocketWrap'].includes(type)) counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

/** Connections to the test database other than the observer's own. */
async function connections(): Promise<string[]> {
  const r = await observer.query<{ app: string }>(
    `select application_name as app from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid()`,
  );
  return r.rows.map((row) => row.app);
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** What is open now, to compare with after a start. */
function snapshot() {
  return { handles: liveHandles(), timers: new Set(timers.keys()) };
}

/** Timers created since `was` that are still set, by where they were created. */
const newTimers = (was: ReturnType<typeof snapshot>) => [...timers].filter(([id]) => !was.timers.has(id));

/** Handle types open beyond those open at `was`. */
const newHandles = (was: ReturnType<typeof snapshot>) =>
  [...liveHandles()].filter(([type, n]) => n > (was.handles.get(type) ?? 0));

/** Waits (polling) until `check` is empty; fails with what is left. */
async function untilNone<T>(what: string, check: () => T[] | Promise<T[]>) {
  await until(what, async () => (await check()).length === 0, 10_000).catch(async (err: Error) =>
    assert.fail(`${err.message}; left: ${JSON.stringify(await check(), null, 1)}`),
  );
}

/** Waits until the port refuses connections, nothing keeps the process alive and no connection is open. */
async function assertNothingLeft(port: number, was: ReturnType<typeof snapshot>) {
  await until(`port ${port} refuses connections`, () => refused(port), 10_000);
  await untilNone('no handle beyond those open before the start', () => newHandles(was));
  await untilNone('every timer created by the start cleared', () => newTimers(was));
  await untilNone('no database connection left', connections);
}

// One master key for every start: the first start seals the database's secrets with it.
const MASTER_KEY = randomBytes(32).toString('base64');
// METRICS_PORT=0: the metrics listener is acquired too (and must be released).
const configFor = (port: number) =>
  loadConfig(testEnv(database.url, { PORT: String(port), MASTER_KEY, METRICS_PORT: '0' }));

describe('start-up releases what it acquired', () => {
  before(async () => {
    database = await freshDatabase({ migrate: false }); // the first start migrates (and records it)
    observer = new pg.Client({ connectionString: database.url, application_name: 'startup-test-observer' });
    await observer.connect();
    hook.enable();
  });
  after(async () => {
    hook.disable();
    await observer?.end();
    await database?.drop();
  });

  for (const step of STARTUP_STEPS) {
    it(`a failure at "${step}" releases everything acquired, and is the error thrown`, async () => {
      const port = await freePort();
      const was = snapshot();
      await assert.rejects(startService(configFor(port), { failAt: step }), (err: Error) => {
        assert.equal(err.constructor, Error, 'the original error, not a wrapper');
        assert.equal(err.message, `injected failure at start-up step "${step}"`);
        return true;
      });
      await assertNothingLeft(port, was);
    });
  }

  it('a real failure (the port taken) is thrown as it is, after the database is released', async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const was = snapshot();
      await assert.rejects(startService(configFor(port)), { code: 'EADDRINUSE' });
      await untilNone('no database connection left', connections);
      await untilNone('no handle beyond the blocker', () => newHandles(was));
      await untilNone('every timer created by the start cleared', () => newTimers(was));
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    assert.ok(await refused(port));
  });

  it('a node that started, served and stopped leaves nothing either', async () => {
    const port = await freePort();
    const was = snapshot();
    const service = await startService(configFor(port));
    const res = await fetch(`${service.url}/readyz`);
    assert.equal(res.status, 200);
    assert.ok((await connections()).length > 0, 'the running node holds connections');
    await service.close({ graceMs: 0 });
    assert.equal(service.draining, true);
    await assertNothingLeft(port, was);
  });

  it('puts the migrations it applied and the demo data it seeded on the audit record', async () => {
    const { rows } = await observer.query<{ action: string; actor_type: string; details: { by?: string } }>(
      `select action, actor_type, details from audit_events
        where action in ('database.migrated', 'demo.seeded') order by seq`,
    );
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor_type, r.details.by]),
      [
        ['database.migrated', 'system', 'start'],
        ['demo.seeded', 'system', undefined],
      ],
      'once each: later starts found nothing to apply or seed',
    );
  });
});
