/**
 * Guessing the second factor. Invariant: after LOGIN_MAX_FAILURES (5) wrong codes at login, that account's second
 * factor is locked (429 with Retry-After) in every browser, whoever knows the password; while locked even the right
 * code is refused without being checked (so it is not spent); once the lock ends the right code works.
 * Here LOGIN_LOCK_SECONDS is 3, so the lock runs out while the test watches.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { addClient } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, follow, submitLogin } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const LOCK = 3;
const PIN2 = '079195004321';
const PASSWORD2 = 'mật khẩu mức hai';
const REDIRECT = 'http://localhost:4921/cb';
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let accountId: string;
let nextCode: () => Promise<string>;

before(async () => {
  database = await freshDatabase();
  const config = loadConfig(testEnv(database.url, { LOGIN_LOCK_SECONDS: String(LOCK) }));
  service = await startService(config);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  accountId = await createAccount(service.db, hasher, { pin: PIN2, password: PASSWORD2 });
  ({ nextCode } = await makeLevel2(service.db, loadMasterKey(config), PIN2, accountId));
  const c = await addClient(service.db, {
    name: 'Cổng mức 2',
    redirectUris: [REDIRECT],
    tokenEndpointAuthMethod: 'none',
    minLevel: 2,
    consent: 'implicit',
  });
  portal = await oidc.discovery(
    new URL(service.url),
    c.client_id,
    { token_endpoint_auth_method: 'none' },
    oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** A browser that has given the right password: it is on the second-factor page. */
async function atSecondFactor() {
  const agent = new Agent();
  const { url, verifier, state } = await authorizationRequest(portal, { redirect_uri: REDIRECT, scope: 'openid' });
  const start = await follow(agent, url.toString(), REDIRECT);
  const otp = await submitLogin(agent, start.url, PIN2, PASSWORD2, await start.res.text());
  assert.equal(otp.status, 200, 'the password is right');
  const html = await otp.text();
  const action = new URL(actionOf(html, 'otp'), start.url);
  return {
    agent,
    verifier,
    state,
    /** Submits a code; returns the response. */
    code: (code: string) => agent.post(action, { csrf: csrfOf(html), code }),
  };
}

/** A six-digit code that is not the next right one. */
const wrongOf = (code: string) => code.slice(0, 5) + String((Number(code[5]) + 1) % 10);

const lastStep = async () =>
  (await sql<{ s: string }>`select totp_last_step as s from accounts where id = ${accountId}`.execute(service.db))
    .rows[0]?.s;

it('5 wrong second-factor codes lock the account’s second factor; the right code is refused until the lock ends', async () => {
  const a = await atSecondFactor();
  for (let i = 1; i <= 4; i++) {
    const res = await a.code(wrongOf(await nextCode()));
    assert.equal(res.status, 401, `wrong code ${i}: refused, form again`);
    assert.match(await res.text(), /Mã không đúng hoặc đã dùng/);
  }
  const wrong5 = wrongOf(await nextCode());
  const lockedAfter = Date.now(); // the lock begins while the fifth code is checked, after this
  const fifth = await a.code(wrong5);
  assert.equal(fifth.status, 429, 'the fifth wrong code locks');
  const retry = Number(fifth.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= LOCK, `Retry-After ${retry}`);
  await fifth.arrayBuffer();

  // The right code now: refused without being checked, so its step is not spent.
  const stepBefore = await lastStep();
  const right = await a.code(await nextCode());
  assert.equal(right.status, 429, 'the right code is refused while locked');
  assert.ok(Number(right.headers.get('retry-after')) >= 1);
  await right.arrayBuffer();
  assert.equal(await lastStep(), stepBefore, 'the refused code was not checked (its step is unused)');

  // Another browser that knows the password is refused too: the lock is the account's, not the browser's.
  const b = await atSecondFactor();
  const elsewhere = await b.code(await nextCode());
  assert.equal(elsewhere.status, 429);
  await elsewhere.arrayBuffer();

  // Once the lock ends, the right code works.
  let done: Response | undefined;
  await until(
    'the right code is accepted after the lock',
    async () => {
      const res = await a.code(await nextCode());
      if (res.status === 429) {
        await res.arrayBuffer();
        return false;
      }
      done = res;
      return true;
    },
    (LOCK + 5) * 1000,
  );
  const held = Date.now() - lockedAfter;
  assert.ok(held >= LOCK * 1000 - 100, `the right code was refused for the whole LOGIN_LOCK_SECONDS (${held} ms)`);
  assert.equal(done!.status, 303, 'accepted');
  const callback = await follow(a.agent, location(done!, service.url), REDIRECT);
  const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback.url), {
    pkceCodeVerifier: a.verifier,
    expectedState: a.state,
  });
  assert.equal(decodeJwt(tokens.id_token!).acr, 'urn:dinhdanh:loa:2');

  const { rows } = await sql<{ n: string }>`select count(*) as n from audit_events where action = 'login.second_factor'
    and outcome = 'failure' and reason = 'wrong_code' and subject = ${accountId}`.execute(service.db);
  assert.equal(Number(rows[0]?.n), 5, 'the five wrong codes are audited; refusals during the lock check nothing');
});
