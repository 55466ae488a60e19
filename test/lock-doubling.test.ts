/**
 * Login locks grow for a persistent guesser. Invariant: each further lock of the same personal ID within 24 h lasts
 * twice the one before (LOGIN_LOCK_SECONDS, then 2x, 4x... capped at 24 h, never permanent); attempts during a lock
 * are refused without being counted or prolonging it; Retry-After tells the truth.
 * Here LOGIN_LOCK_SECONDS is 2 and LOGIN_MAX_FAILURES 2, so both locks run out while the test watches.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { sql } from 'kysely';
import type { Service } from '../src/main.ts';
import { Agent, actionOf, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PIN, demoPortal, follow } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const LOCK = 2;
let database: TestDatabase;
let service: Service;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, { LOGIN_LOCK_SECONDS: String(LOCK), LOGIN_MAX_FAILURES: '2' });
});
after(async () => {
  await service?.close();
  await database?.drop();
});

it('a second lock of the same personal ID within 24 h lasts twice the first', async () => {
  const agent = new Agent();
  const { url } = await authorizationRequest(await demoPortal(service.url));
  const start = await follow(agent, url.toString());
  const html = await start.res.text();
  const action = new URL(actionOf(html, 'login'), start.url);
  let n = 0;
  /** One wrong password for the demo citizen's ID from this browser: the status and Retry-After. */
  const guess = async () => {
    const res = await agent.post(action, { csrf: csrfOf(html), pin: DEMO_PIN, password: `wrong-guess-${n++}` });
    await res.arrayBuffer();
    return { status: res.status, retryAfter: Number(res.headers.get('retry-after') ?? 0) };
  };
  /** Guesses until the lock is over; the guess that is checked again (401) counts as the next run's first failure. */
  const waitOut = async (what: string, ms: number) => {
    const t0 = Date.now();
    await until(what, async () => (await guess()).status !== 429, ms);
    return Date.now() - t0;
  };

  assert.equal((await guess()).status, 401);
  assert.equal((await guess()).status, 401, 'the second failure is checked, then locks');
  const first = await guess();
  assert.equal(first.status, 429, 'locked');
  assert.ok(first.retryAfter >= 1 && first.retryAfter <= LOCK, `first lock: Retry-After ${first.retryAfter}`);
  const firstLasted = await waitOut('the first lock ends', (LOCK + 5) * 1000);

  // The guess that went through above was the first failure of a new run: one more locks again.
  assert.equal((await guess()).status, 401, 'the second run reaches the limit');
  const second = await guess();
  assert.equal(second.status, 429, 'locked again');
  assert.ok(
    second.retryAfter > LOCK && second.retryAfter <= 2 * LOCK,
    `second lock: Retry-After ${second.retryAfter}, twice LOGIN_LOCK_SECONDS`,
  );
  const secondLasted = await waitOut('the second lock ends', (2 * LOCK + 5) * 1000);
  assert.ok(
    secondLasted > firstLasted + (LOCK * 1000) / 2,
    `the second lock (${secondLasted} ms) outlasts the first (${firstLasted} ms) by about LOGIN_LOCK_SECONDS`,
  );

  // Side effect: each lock is audited with its length.
  const { rows } = await sql<{ seconds: number }>`select (details->>'seconds')::int as seconds from audit_events
    where action = 'lockout' order by seq`.execute(service.db);
  assert.deepEqual(
    rows.map((r) => r.seconds),
    [LOCK, 2 * LOCK],
  );
});
