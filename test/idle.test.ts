/**
 * Invariant: an idle node costs (almost) nothing and still keeps every bound its loops give. A `dinhdanh start`
 * process with metrics on, no traffic: its main thread sleeps between the loops' runs (no timer waking it tens of
 * times a second for an empty audit queue or an event-loop sampler), and its key watcher reads the key set once per
 * KEY_CHECK_SECONDS without opening a scheduled-transition transaction while none is due. A due transition still
 * runs at its time (test/keys.test.ts: staged -> active after the lead time, on two nodes).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.ts';
import { connect } from '../src/db/index.ts';
import { generateKey, loadKeyMaterial, loadMasterKey, runScheduledTransitions } from '../src/keys/index.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { freePort, type NodeProcess, startNode } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

let database: TestDatabase;
let env: Record<string, string>;
let node: NodeProcess;
let stats: pg.Client;

/** Times the node's main thread went to sleep and was woken (voluntary context switches), from /proc. */
const sleeps = () => {
  const pid = node.child.pid!;
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1]);
};

/** Reads of `signing_keys` so far (PostgreSQL reports a backend's counters when it goes idle, within a few s). */
const keyReads = async () => {
  const r = await stats.query(
    `select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) as n from pg_stat_user_tables where relname = 'signing_keys'`,
  );
  return Number(r.rows[0].n);
};

/** Measures `read` over `ms` (a measuring window, not a wait for something): its increase per second. */
async function rate(read: () => number | Promise<number>, ms: number): Promise<number> {
  const [a, t0] = [await read(), performance.now()];
  await new Promise((r) => setTimeout(r, ms));
  return ((await read()) - a) / ((performance.now() - t0) / 1000);
}

before(async () => {
  database = await freshDatabase();
  const port = await freePort();
  env = testEnv(database.url, {
    PORT: String(port),
    ISSUER: `http://localhost:${port}`,
    LOG_LEVEL: 'warn',
    METRICS_PORT: String(await freePort()),
    KEY_CHECK_SECONDS: '1',
  });
  node = await startNode(env);
  await until('the node is ready', async () => (await fetch(`${env.ISSUER}/readyz`).catch(() => null))?.status === 200);
  stats = new pg.Client({ connectionString: database.url });
  await stats.connect();
});
after(async () => {
  await node?.stop();
  await stats?.end();
  await database?.drop();
});

describe('an idle node', () => {
  it('sleeps between its loops: its main thread wakes at most 20 times a second', async () => {
    // The loops left: the worker each second (a few round trips), the key check each second here. Before: the audit
    // queue's 25 ms timer and prom-client's 10 ms event-loop sampler (now only while requests come) woke it about 140
    // times a second.
    let last = 0;
    await until(
      'a 2 s window with at most 20 wakeups a second (start-up work over)',
      async () => {
        last = await rate(sleeps, 2000);
        return last <= 20;
      },
      40_000,
    ).catch((err) => assert.fail(`${err.message}; last window: ${last.toFixed(1)} wakeups/s`));
  });

  it('reads the key set once per KEY_CHECK_SECONDS, with no scheduled-transition transaction while none is due', async () => {
    // Before: every check also ran runScheduledTransitions (a transaction reading the keys again): 2 reads a second.
    let last = 0;
    await until(
      'a 10 s window with about one key-set read a second',
      async () => {
        last = await rate(keyReads, 10_000);
        return last <= 1.5;
      },
      45_000,
    ).catch((err) => assert.fail(`${err.message}; last window: ${last.toFixed(2)} reads/s`));
    assert.ok(last >= 0.5, `the watcher still checks every second (${last.toFixed(2)} reads/s)`);
  });
});

describe('the next scheduled key transition', () => {
  it('is the time at which runScheduledTransitions performs it', async () => {
    const config = loadConfig(env);
    const master = loadMasterKey(config);
    const db = connect(database.url, 1);
    try {
      const hour = { leadSeconds: 3600, retentionSeconds: 3600, rotationDays: 90 };
      const staged = await generateKey(db, master, 'ES256', 'test', true);
      const { nextTransitionAt } = await loadKeyMaterial(db, master, hour);
      const created = (
        await db.selectFrom('signing_keys').select('created_at').where('kid', '=', staged).executeTakeFirstOrThrow()
      ).created_at;
      assert.equal(nextTransitionAt, new Date(created).getTime() + 3600_000, 'the staged key, after the lead time');
      assert.deepEqual(await runScheduledTransitions(db, master, hour), [], 'nothing before then');
      // Past its time (lead 0): the transition is due now, and it is performed.
      const now = { ...hour, leadSeconds: 0 };
      assert.ok(((await loadKeyMaterial(db, master, now)).nextTransitionAt ?? Infinity) <= Date.now());
      assert.deepEqual(await runScheduledTransitions(db, master, now), [`activated ${staged}`]);
      // Next: the retired key's removal after retention (the new active key has no successor due before 90 days).
      const retired = await db
        .selectFrom('signing_keys')
        .select(['retired_at'])
        .where('state', '=', 'retired')
        .execute();
      const earliest = Math.min(...retired.map((r) => new Date(r.retired_at!).getTime()));
      assert.equal((await loadKeyMaterial(db, master, hour)).nextTransitionAt, earliest + 3600_000);
    } finally {
      await db.destroy();
    }
  });
});
