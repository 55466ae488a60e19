/**
 * What a citizen does on /account besides looking. Invariants: revoking a portal's access there ends it at once (its
 * refresh and access tokens stop working) and is audited, and a citizen can revoke only their own grants; a password
 * change needs the current password: a wrong one changes nothing and is counted, and LOGIN_MAX_FAILURES (5) wrong
 * ones lock the form (429) so even the right password is refused until the lock ends.
 * (A successful change, which ends the other sessions, is covered in tokens.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { addClient } from '../src/clients/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import type { Service } from '../src/main.ts';
import { listAccountGrants } from '../src/oidc/index.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

const REDIRECT = 'http://localhost:4931/cb';
const PIN_B = '079195004321';
const PASSWORD_B = 'mật khẩu của chị Bình';
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let clientId: string;
let accountA: string;
let accountB: string;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  accountB = await createAccount(service.db, hasher, { pin: PIN_B, password: PASSWORD_B });
  const { rows } = await sql<{ id: string }>`select a.id from accounts a join residents r on r.id = a.resident_id
    where r.pin = ${DEMO_PIN}`.execute(service.db);
  accountA = rows[0]!.id;
  const c = await addClient(service.db, { name: 'Cổng thu hồi', redirectUris: [REDIRECT] });
  clientId = c.client_id;
  portal = await oidc.discovery(new URL(service.url), c.client_id, c.client_secret!, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** Signs in to the portal in `agent` (consenting to offline access); returns the tokens. */
async function portalLogin(agent: Agent, pin: string, password: string) {
  const { url, verifier, state } = await authorizationRequest(portal, {
    redirect_uri: REDIRECT,
    scope: 'openid offline_access',
    prompt: 'consent',
  });
  const callback = await loginThrough(agent, url.toString(), pin, password, REDIRECT);
  return oidc.authorizationCodeGrant(portal, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
}

/** The account page of `agent`, signing in on the way if the agent has no session yet. */
async function accountPage(agent: Agent, pin: string, password: string): Promise<string> {
  let current = `${service.url}/account`;
  let res = await agent.get(current);
  for (let i = 0; i < 10; i++) {
    if (res.status === 302 || res.status === 303) {
      current = location(res, current);
      res = await agent.get(current);
      continue;
    }
    const html = await res.text();
    if (!/\/login"/.test(html)) {
      assert.equal(res.status, 200);
      assert.equal(new URL(current).pathname, '/account');
      return html;
    }
    res = await agent.post(new URL(actionOf(html, 'login'), current), { csrf: csrfOf(html), pin, password });
  }
  throw new Error('never reached /account');
}

const post = (agent: Agent, path: string, form: Record<string, string>) =>
  agent.post(`${service.url}${path}`, form, { accept: 'text/html' });

const passwordHash = async (accountId: string) =>
  (await sql<{ h: string }>`select password_hash as h from accounts where id = ${accountId}`.execute(service.db))
    .rows[0]!.h;

describe("revoking a portal's access on /account", () => {
  it("ends the portal's access at once: its refresh and access tokens stop working; audited", async () => {
    const agent = new Agent();
    const tokens = await portalLogin(agent, DEMO_PIN, DEMO_PASSWORD);
    const refreshed = await oidc.refreshTokenGrant(portal, tokens.refresh_token!);
    assert.ok(refreshed.access_token, 'the refresh token works before');
    const html = await accountPage(agent, DEMO_PIN, DEMO_PASSWORD);
    assert.match(html, /Cổng thu hồi/, 'the portal is listed');
    const [grant] = (await listAccountGrants(service.db, accountA)).filter((g) => g.clientId === clientId);
    assert.ok(grant);
    assert.ok(html.includes(`value="${grant.grantId}"`), "the page offers to revoke this portal's grant");

    const res = await post(agent, '/account/grants/revoke', { csrf: csrfOf(html), grant: grant.grantId });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Đã thu hồi/);
    await assert.rejects(
      oidc.refreshTokenGrant(portal, refreshed.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
      'the refresh token stopped working',
    );
    assert.equal((await oidc.tokenIntrospection(portal, refreshed.access_token)).active, false, 'and the access token');
    assert.ok(!(await listAccountGrants(service.db, accountA)).some((g) => g.clientId === clientId), 'grant gone');
    assert.ok(!(await accountPage(agent, DEMO_PIN, DEMO_PASSWORD)).includes(grant.grantId), 'no longer listed');
    const { rows } = await sql<{ details: { grantId: string } }>`select details from audit_events
      where action = 'consent.revoked' and subject = ${accountA}`.execute(service.db);
    assert.deepEqual(
      rows.map((r) => r.details.grantId),
      [grant.grantId],
    );
  });

  it("refuses to revoke another citizen's grant (404), which keeps working", async () => {
    const b = await portalLogin(new Agent(), PIN_B, PASSWORD_B);
    const [grantB] = (await listAccountGrants(service.db, accountB)).filter((g) => g.clientId === clientId);
    assert.ok(grantB);
    const agent = new Agent();
    const html = await accountPage(agent, DEMO_PIN, DEMO_PASSWORD);
    const res = await post(agent, '/account/grants/revoke', { csrf: csrfOf(html), grant: grantB.grantId });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
    assert.ok((await oidc.refreshTokenGrant(portal, b.refresh_token!)).access_token, "B's portal access is intact");
  });

  it('refuses a revocation without the CSRF token (403)', async () => {
    const agent = new Agent();
    await accountPage(agent, DEMO_PIN, DEMO_PASSWORD);
    const res = await post(agent, '/account/grants/revoke', { grant: 'anything' });
    assert.equal(res.status, 403);
    await res.arrayBuffer();
  });
});

describe('the password change form refuses', () => {
  it('a wrong current password: a message, nothing changed, the failure audited', async () => {
    const agent = new Agent();
    const html = await accountPage(agent, PIN_B, PASSWORD_B);
    const before = await passwordHash(accountB);
    const res = await post(agent, '/account/password', {
      csrf: csrfOf(html),
      current: 'not my password',
      next: 'một mật khẩu mới rất dài',
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Mật khẩu hiện tại không đúng\./);
    assert.equal(await passwordHash(accountB), before, 'the password is unchanged');
    const { rows } = await sql<{ reason: string }>`select reason from audit_events where action = 'password.changed'
      and outcome = 'failure' and subject = ${accountB}`.execute(service.db);
    assert.deepEqual(
      rows.map((r) => r.reason),
      ['wrong_code'],
    );
  });

  it('a new password that breaks the policy, with the reason; a right current password is not counted', async () => {
    const agent = new Agent();
    const html = await accountPage(agent, PIN_B, PASSWORD_B);
    const before = await passwordHash(accountB);
    const res = await post(agent, '/account/password', { csrf: csrfOf(html), current: PASSWORD_B, next: 'ngắn' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /ít nhất 8 ký tự/);
    assert.equal(await passwordHash(accountB), before);
  });

  it('5 wrong current passwords: the fifth answers 429, and then even the right one is refused', async () => {
    // The wrong password of the first test was cleared by the right one of the second: these five are a fresh run.
    const agent = new Agent();
    const html = await accountPage(agent, PIN_B, PASSWORD_B);
    const before = await passwordHash(accountB);
    const attempt = (current: string) =>
      post(agent, '/account/password', { csrf: csrfOf(html), current, next: 'một mật khẩu mới rất dài' });
    for (let i = 1; i <= 4; i++) {
      const res = await attempt(`wrong guess ${i}`);
      assert.equal(res.status, 400, `wrong ${i}`);
      assert.match(await res.text(), /Mật khẩu hiện tại không đúng\./);
    }
    const fifth = await attempt('wrong guess 5');
    assert.equal(fifth.status, 429, 'locked');
    assert.ok(Number(fifth.headers.get('retry-after')) > 0);
    assert.match(await fifth.text(), /thử lại sau \d+ phút/);
    const right = await attempt(PASSWORD_B);
    assert.equal(right.status, 429, 'the right password is refused while locked');
    await right.arrayBuffer();
    assert.equal(await passwordHash(accountB), before, 'the password is unchanged');
    // The lock is the password form's own: the account's code forms (second factor, activation) are not locked.
    const code = await post(agent, '/account/activate', { csrf: csrfOf(html), code: 'AAAA-BBBB-CCCC-DDDD' });
    assert.notEqual(code.status, 429, 'the code forms keep their own counter');
    await code.arrayBuffer();
  });
});
