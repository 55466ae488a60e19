/**
 * SSO session lifetime. Invariants: a session unused for SESSION_IDLE_SECONDS ends, so a silent (`prompt=none`)
 * authorization then gets `login_required` and no code; each use restarts the idle clock; and however it is used, a
 * session never outlives SESSION_TTL_SECONDS from its login.
 *
 * The idle time lives in the Session row's expiry (oidc-provider saves the session with the idle TTL at every request
 * that loads it). SESSION_IDLE_SECONDS cannot be below 60, so instead of waiting, the tests age that row as the clock
 * would: its `expires_at` and the payload's `exp` are moved back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type * as oidc from 'openid-client';
import type { Service } from '../src/main.ts';
import { Agent, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_REDIRECT, demoPortal, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

const IDLE = 60;
const ABSOLUTE = 600;
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, {
    SESSION_IDLE_SECONDS: String(IDLE),
    SESSION_TTL_SECONDS: String(ABSOLUTE),
  });
  portal = await demoPortal(service.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

const epoch = () => Math.floor(Date.now() / 1000);

/** Ids of the stored SSO sessions. */
async function sessionIds(): Promise<Set<string>> {
  const { rows } = await sql<{ id: string }>`select id from oidc_payloads where model = 'Session'`.execute(service.db);
  return new Set(rows.map((r) => r.id));
}

/** Signs a new browser in through the demo portal; returns it with its session's row id. */
async function signedIn(): Promise<{ agent: Agent; row: string }> {
  const before = await sessionIds();
  const agent = new Agent();
  const callback = await loginThrough(agent, (await authorizationRequest(portal)).url.toString());
  assert.ok(new URL(callback).searchParams.get('code'), 'signed in');
  const added = [...(await sessionIds())].filter((id) => !before.has(id));
  assert.equal(added.length, 1, 'one new SSO session row');
  return { agent, row: added[0]! };
}

/** Seconds the stored session has left (by its row's expiry). */
async function secondsLeft(row: string): Promise<number> {
  const { rows } = await sql<{ left: number }>`select extract(epoch from expires_at - now())::float8 as left
    from oidc_payloads where model = 'Session' and id = ${row}`.execute(service.db);
  assert.equal(rows.length, 1, 'the session row is there');
  return rows[0]!.left;
}

/** Makes the session row expire in `seconds` (negative: already expired), as if it had been idle meanwhile. */
async function expireIn(row: string, seconds: number): Promise<void> {
  const exp = epoch() + seconds;
  await sql`update oidc_payloads set expires_at = to_timestamp(${exp}),
    payload = jsonb_set(payload, '{exp}', to_jsonb(${exp}::bigint))
    where model = 'Session' and id = ${row}`.execute(service.db);
}

/** A `prompt=none` authorization in this browser: the code, or the error, the portal receives. */
async function silent(agent: Agent): Promise<{ code: string | null; error: string | null }> {
  const { url } = await authorizationRequest(portal, { prompt: 'none' });
  let current = url.toString();
  for (let i = 0; i < 6 && !current.startsWith(DEMO_REDIRECT); i++) {
    const res = await agent.get(current);
    assert.ok(res.status === 302 || res.status === 303, `prompt=none never shows a page (got ${res.status})`);
    current = location(res, current);
  }
  const back = new URL(current);
  assert.equal(back.origin + back.pathname, DEMO_REDIRECT);
  return { code: back.searchParams.get('code'), error: back.searchParams.get('error') };
}

describe('session idle timeout', () => {
  it('a session idle for SESSION_IDLE_SECONDS ends: a silent authorization then gets login_required', async () => {
    const { agent, row } = await signedIn();
    const left = await secondsLeft(row);
    assert.ok(left > IDLE - 10 && left <= IDLE + 1, `the session is kept for the idle time, not longer (${left} s)`);
    const fresh = await silent(agent);
    assert.ok(fresh.code, 'while in use, a silent authorization gets a code');
    assert.equal(fresh.error, null);

    await expireIn(row, -1); // SESSION_IDLE_SECONDS without a request
    const idle = await silent(agent);
    assert.equal(idle.error, 'login_required');
    assert.equal(idle.code, null, 'no code for an idle session');
  });

  it('each use restarts the idle clock', async () => {
    const { agent, row } = await signedIn();
    await expireIn(row, 5); // nearly idle for SESSION_IDLE_SECONDS
    assert.ok((await silent(agent)).code, 'still in time: a code');
    const left = await secondsLeft(row);
    assert.ok(left > IDLE - 10, `the use gave the session another SESSION_IDLE_SECONDS (${left} s left)`);
  });

  it('however often it is used, a session never outlives SESSION_TTL_SECONDS from its login', async () => {
    const { agent, row } = await signedIn();
    // The login was SESSION_TTL_SECONDS - 20 s ago: a use now may keep the session 20 s more, not SESSION_IDLE_SECONDS.
    await sql`update oidc_payloads set payload = jsonb_set(payload, '{loginTs}', to_jsonb(${epoch() - ABSOLUTE + 20}::bigint))
      where model = 'Session' and id = ${row}`.execute(service.db);
    assert.ok((await silent(agent)).code);
    const left = await secondsLeft(row);
    assert.ok(left <= 21 && left > 10, `kept only until the absolute end (${left} s left)`);
    await expireIn(row, -1);
    assert.equal((await silent(agent)).error, 'login_required');
  });
});
