/**
 * Brute force and enumeration. Invariants: after N failures a personal ID is locked for a while (429 with
 * Retry-After and a clear page), whether or not an account exists, on every node at once; officers can unlock;
 * an unknown ID and a wrong password both run argon2 and get the same answer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type * as oidc from 'openid-client';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher, type PasswordHasher } from '../src/credentials/index.ts';
import { type Service, startService } from '../src/main.ts';
import { Agent, actionOf, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, demoPortal, follow } from './helpers/flow.ts';
import { testEnv } from './helpers/service.ts';

const root = path.resolve(import.meta.dirname, '..');
let database: TestDatabase;
let env: Record<string, string>;
let a: Service;
let b: Service;
let portalA: oidc.Configuration;
let portalB: oidc.Configuration;
const argonCalls: string[] = [];

before(async () => {
  database = await freshDatabase();
  env = testEnv(database.url, {
    MASTER_KEY: randomBytes(32).toString('base64'),
    LOGIN_MAX_FAILURES: '3',
    LOGIN_LOCK_SECONDS: '120',
  });
  const config = loadConfig(env);
  const real = await argon2idHasher(config.argon2);
  // Counts argon2 work per call: the unknown-ID path must do it too.
  const counting: PasswordHasher = {
    hash: real.hash,
    needsRehash: real.needsRehash,
    verifyOrDummy: (hash, pw) => {
      argonCalls.push(hash ? 'real' : 'dummy');
      return real.verifyOrDummy(hash, pw);
    },
  };
  a = await startService(config, { hasher: counting });
  b = await startService(config, { hasher: counting });
  portalA = await demoPortal(a.url);
  portalB = await demoPortal(b.url);
});
after(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

async function attempt(portal: oidc.Configuration, pin: string, password: string, accept = 'text/html') {
  const agent = new Agent();
  const { url } = await authorizationRequest(portal);
  const start = await follow(agent, url.toString());
  const page = await (await agent.get(start.url)).text();
  return agent.post(new URL(actionOf(page, 'login'), start.url), { csrf: csrfOf(page), pin, password }, { accept });
}

describe('login limits', () => {
  it('run argon2 for an unknown ID exactly as for a wrong password', async () => {
    argonCalls.length = 0;
    const wrong = await attempt(portalA, '079195004321', 'whatever-password'); // resident without account
    const unknown = await attempt(portalA, '001090099998', 'whatever-password');
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(argonCalls, ['dummy', 'dummy']);
    argonCalls.length = 0;
    await attempt(portalA, DEMO_PIN, 'wrong-password-1');
    assert.deepEqual(argonCalls, ['real']);
    const t1 = (await wrong.text()).replace(/[\w-]{30,}/g, '');
    const t2 = (await unknown.text()).replace(/[\w-]{30,}/g, '');
    assert.equal(t1.replace(/value="\d+"/, ''), t2.replace(/value="\d+"/, ''), 'same page apart from the typed ID');
  });

  it('lock a personal ID after N failures across two nodes, with 429, Retry-After and a clear page', async () => {
    // One failure on node A above; two more on node B make three.
    assert.equal((await attempt(portalB, DEMO_PIN, 'wrong-password-2')).status, 401);
    assert.equal((await attempt(portalB, DEMO_PIN, 'wrong-password-3')).status, 401);
    const locked = await attempt(portalA, DEMO_PIN, DEMO_PASSWORD);
    assert.equal(locked.status, 429);
    const retry = Number(locked.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 120, `Retry-After ${retry}`);
    assert.match(await locked.text(), /thử lại sau 2 phút/);
    const api = await attempt(portalB, DEMO_PIN, DEMO_PASSWORD, 'application/json');
    assert.equal(api.status, 429, 'node B sees the same lock');
    assert.deepEqual(await api.json(), { error: 'rate_limited', error_description: 'too many failed attempts' });
    const { rows } = await sql<{ n: string }>`select count(*) as n from audit_events where action = 'lockout'`.execute(
      a.db,
    );
    assert.equal(Number(rows[0]?.n), 1, 'the lockout is audited');
  });

  it('check parallel attempts one at a time: a burst cannot exceed the limit', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 12 }, (_, i) => attempt(portalA, '001090066666', `burst-${i}-password`)),
    );
    const checked = statuses.filter((r) => r.status === 401).length;
    assert.ok(checked <= 3, `${checked} passwords were checked; the limit is 3`);
    assert.ok(statuses.filter((r) => r.status === 429).length >= 9);
    const retry = Math.max(...statuses.map((r) => Number(r.headers.get('retry-after') ?? 0)));
    assert.ok(retry <= 120, `one lock of 120 s, not a pile of them (Retry-After ${retry})`);
  });

  it('lock unknown IDs the same way (a lock reveals nothing)', async () => {
    for (let i = 0; i < 3; i++)
      assert.equal((await attempt(portalA, '001090077777', `nope-${i}-password`)).status, 401);
    assert.equal((await attempt(portalA, '001090077777', 'nope-password')).status, 429);
  });

  it('are lifted by an officer with `dinhdanh accounts unlock`, which is audited', async () => {
    const r = spawnSync(
      process.execPath,
      ['src/cli/main.ts', 'accounts', 'unlock', '--personal-id', DEMO_PIN, '--operator', 'officer-17'],
      { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const ok = await attempt(portalA, DEMO_PIN, DEMO_PASSWORD);
    assert.equal(ok.status, 303);
    const { rows } = await sql<{
      actor_id: string;
    }>`select actor_id from audit_events where action = 'account.unlocked'`.execute(a.db);
    assert.equal(rows[0]?.actor_id, 'officer-17');
  });

  it('never count a correct login as a failure: 20 concurrent correct logins on two nodes all succeed', async () => {
    // Invariant: a citizen with two tabs, a retrying app or a family member signing in at once is never locked out
    // by their own correct logins (checks of one ID run one at a time instead of being counted in advance).
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => attempt(i % 2 ? portalA : portalB, DEMO_PIN, DEMO_PASSWORD)),
    );
    assert.deepEqual(
      statuses.map((r) => r.status),
      Array(20).fill(303),
    );
  });

  it('record logins with reason and no secret, pseudonymously', async () => {
    const { rows } = await sql<{ reason: string | null; subject: string; details: unknown; outcome: string }>`
      select reason, subject, details, outcome from audit_events where action = 'login' order by seq`.execute(a.db);
    assert.ok(rows.some((r) => r.reason === 'wrong_password'));
    assert.ok(rows.some((r) => r.reason === 'unknown_account'));
    assert.ok(rows.some((r) => r.reason === 'locked'));
    assert.ok(rows.some((r) => r.outcome === 'success'));
    const all = JSON.stringify(rows);
    assert.doesNotMatch(
      all,
      /wrong-password|demo-password|001090012345/,
      'no password and no personal ID in the trail',
    );
  });
});
