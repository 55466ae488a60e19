/**
 * Assurance levels, step-up, claims release, pairwise subjects and consent, driven by openid-client.
 * Invariants: the token's acr is the level actually achieved; a required level the account cannot reach yields
 * unmet_authentication_requirements; step-up asks only for the second factor; a portal gets no claim outside the
 * scopes it asked for and was permitted; the personal ID never reaches an unpermitted portal; sub is pairwise per
 * sector and stable; consent can be denied and revoked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { addClient } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { listAccountGrants, revokeAccountGrant } from '../src/oidc/index.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { testEnv } from './helpers/service.ts';

const L1 = 'urn:dinhdanh:loa:1';
const L2 = 'urn:dinhdanh:loa:2';
const PIN2 = '079195004321';
const PASSWORD2 = 'mật khẩu mức hai';
let database: TestDatabase;
let service: Service;
let nextCode: () => Promise<string>;
let level2AccountId: string;

interface Portal {
  config: oidc.Configuration;
  redirect: string;
}

async function portal(
  name: string,
  redirect: string,
  opts: Partial<Parameters<typeof addClient>[1]> = {},
): Promise<Portal> {
  const c = await addClient(service.db, { name, redirectUris: [redirect], tokenEndpointAuthMethod: 'none', ...opts });
  const config = await oidc.discovery(
    new URL(service.url),
    c.client_id,
    { token_endpoint_auth_method: 'none' },
    oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
  return { config, redirect };
}

/** Follows the provider's redirects until the portal's redirect URI or a page. */
async function follow(agent: Agent, url: string, redirect: string) {
  let current = url;
  for (let i = 0; i < 12; i++) {
    if (current.startsWith(redirect)) return { done: true as const, url: current, html: '' };
    const res = await agent.get(current);
    if (res.status !== 302 && res.status !== 303)
      return { done: false as const, url: current, html: await res.text(), status: res.status };
    current = location(res, current);
  }
  throw new Error('too many redirects');
}

/** Starts an authorization; returns the checks and where the browser ends up. */
async function start(agent: Agent, p: Portal, params: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(p.config, {
    redirect_uri: p.redirect,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { verifier, state, step: await follow(agent, url.toString(), p.redirect) };
}

async function submit(
  agent: Agent,
  step: { url: string; html: string },
  action: string,
  fields: Record<string, string>,
  redirect: string,
) {
  const res = await agent.post(new URL(actionOf(step.html, action), step.url), { csrf: csrfOf(step.html), ...fields });
  if (res.status !== 303 && res.status !== 302)
    return { done: false as const, url: step.url, html: await res.text(), status: res.status };
  return follow(agent, location(res, step.url), redirect);
}

/** Password, then consent if asked; returns where the browser is. */
async function passwordAndConsent(
  agent: Agent,
  p: Portal,
  step: { url: string; html: string; done: boolean },
  pin: string,
  password: string,
) {
  let s = step;
  if (!s.done && /\/login"/.test(s.html)) s = await submit(agent, s, 'login', { pin, password }, p.redirect);
  if (!s.done && /\/consent"/.test(s.html)) s = await submit(agent, s, 'consent', {}, p.redirect);
  return s;
}

async function tokens(p: Portal, callback: string, verifier: string, state: string) {
  return oidc.authorizationCodeGrant(p.config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
}

const idClaims = (t: { id_token?: string }) => decodeJwt(t.id_token as string);

before(async () => {
  database = await freshDatabase();
  const env = testEnv(database.url);
  const config = loadConfig(env);
  service = await startService(config);
  const master = loadMasterKey(config);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  level2AccountId = await createAccount(service.db, hasher, { pin: PIN2, password: PASSWORD2 });
  ({ nextCode } = await makeLevel2(service.db, master, PIN2, level2AccountId));
});
after(async () => {
  await service?.close();
  await database?.drop();
});

describe('levels in tokens', () => {
  it('without acr requested, a level-1 login says level 1 with pwd', async () => {
    const p = await portal('Cổng A', 'http://localhost:4101/cb');
    const agent = new Agent();
    const { verifier, state, step } = await start(agent, p);
    const end = await passwordAndConsent(agent, p, step, DEMO_PIN, DEMO_PASSWORD);
    const claims = idClaims(await tokens(p, end.url, verifier, state));
    assert.equal(claims.acr, L1);
    assert.deepEqual(claims.amr, ['pwd']);
  });

  it('a voluntary level 2 for a level-1 account logs in at level 1 and says so', async () => {
    const p = await portal('Cổng B', 'http://localhost:4102/cb');
    const agent = new Agent();
    const { verifier, state, step } = await start(agent, p, { acr_values: `${L2} ${L1}` });
    const end = await passwordAndConsent(agent, p, step, DEMO_PIN, DEMO_PASSWORD);
    assert.equal(idClaims(await tokens(p, end.url, verifier, state)).acr, L1);
  });

  for (const [label, params, opts] of [
    [
      'an essential level 2 (claims parameter)',
      { claims: JSON.stringify({ id_token: { acr: { essential: true, values: [L2] } } }) },
      {},
    ],
    ['the client minimum level 2', {}, { minLevel: 2 as const }],
    [
      'an essential alias LoA2',
      { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'LoA2' } } }) },
      {},
    ],
  ] as const) {
    it(`${label} for a level-1 account gives unmet_authentication_requirements, after a page that explains`, async () => {
      const p = await portal('Cổng C', 'http://localhost:4103/cb', opts);
      const agent = new Agent();
      const { step } = await start(agent, p, params);
      const page = await submit(agent, step as never, 'login', { pin: DEMO_PIN, password: DEMO_PASSWORD }, p.redirect);
      assert.equal(page.done, false);
      assert.match(page.html, /mức 2/);
      const back = await submit(agent, page as never, 'unmet', {}, p.redirect);
      assert.ok(back.done);
      assert.equal(new URL(back.url).searchParams.get('error'), 'unmet_authentication_requirements');
    });
  }

  it('a level-2 account at a level-2 portal gives password then TOTP: acr level 2, amr pwd otp mfa', async () => {
    const p = await portal('Cổng Đất đai', 'http://localhost:4104/cb', { minLevel: 2 });
    const agent = new Agent();
    const { verifier, state, step } = await start(agent, p);
    const otp = await submit(agent, step as never, 'login', { pin: PIN2, password: PASSWORD2 }, p.redirect);
    assert.equal(otp.done, false);
    assert.match(otp.html, /\/otp"/);
    const wrong = await submit(agent, otp as never, 'otp', { code: '000000' }, p.redirect);
    assert.equal(wrong.done ? 0 : wrong.status, 401);
    let end = await submit(agent, wrong as never, 'otp', { code: await nextCode() }, p.redirect);
    if (!end.done && /\/consent"/.test(end.html)) end = await submit(agent, end, 'consent', {}, p.redirect);
    const claims = idClaims(await tokens(p, end.url, verifier, state));
    assert.equal(claims.acr, L2);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
  });

  it('an OTP post without a proven password is refused', async () => {
    const p = await portal('Cổng E', 'http://localhost:4105/cb', { minLevel: 2 });
    const agent = new Agent();
    const { step } = await start(agent, p);
    const res = await agent.post(
      `${new URL(step.url).origin}${new URL(step.url).pathname}/otp`,
      { csrf: csrfOf(step.html), code: '123456' },
      { accept: 'application/json' },
    );
    assert.equal(res.status, 400);
  });

  it('steps up a level-1 session asking only for the TOTP code, and the session stays upgraded', async () => {
    const low = await portal('Cổng F', 'http://localhost:4106/cb');
    const high = await portal('Cổng G', 'http://localhost:4107/cb', { minLevel: 2 });
    const agent = new Agent();
    const a = await start(agent, low);
    const endA = await passwordAndConsent(agent, low, a.step, PIN2, PASSWORD2);
    assert.equal(idClaims(await tokens(low, endA.url, a.verifier, a.state)).acr, L1, 'no level asked: password only');

    const b = await start(agent, high);
    assert.equal(b.step.done, false);
    assert.doesNotMatch(b.step.html, /name="password"/, 'no password asked again');
    assert.match(b.step.html, /\/otp"/);
    let endB = await submit(agent, b.step as never, 'otp', { code: await nextCode() }, high.redirect);
    if (!endB.done && /\/consent"/.test(endB.html)) endB = await submit(agent, endB, 'consent', {}, high.redirect);
    const claimsB = idClaims(await tokens(high, endB.url, b.verifier, b.state));
    assert.equal(claimsB.acr, L2);
    assert.deepEqual(claimsB.amr, ['pwd', 'otp', 'mfa']);
    const { rows } = await sql<{ n: string }>`select count(*) as n from audit_events where action = 'step_up'`.execute(
      service.db,
    );
    assert.equal(Number(rows[0]?.n), 1, 'the step-up is audited');

    const again = await start(agent, low);
    assert.ok(again.step.done, 'SSO without a prompt');
    assert.equal(idClaims(await tokens(low, again.step.url, again.verifier, again.state)).acr, L2, 'session upgraded');
  });

  it('max_age=0 asks for the password again', async () => {
    const p = await portal('Cổng H', 'http://localhost:4108/cb');
    const agent = new Agent();
    const first = await start(agent, p);
    await passwordAndConsent(agent, p, first.step, DEMO_PIN, DEMO_PASSWORD);
    const again = await start(agent, p, { max_age: '0' });
    assert.equal(again.step.done, false);
    assert.match(again.step.html, /name="password"/);
  });
});

describe('subjects and claims', () => {
  it('pairwise sub differs across sectors and is stable within one; public sub only when registered so', async () => {
    const a1 = await portal('Sector A', 'http://localhost:4201/cb');
    const b1 = await portal('Sector B', 'http://127.0.0.1:4202/cb');
    const pub = await portal('Public', 'http://localhost:4203/cb', { subjectType: 'public' });
    const agent = new Agent();
    const subs: string[] = [];
    for (const p of [a1, b1, a1, pub]) {
      const s = await start(agent, p);
      const end = await passwordAndConsent(agent, p, s.step, DEMO_PIN, DEMO_PASSWORD);
      subs.push(String(idClaims(await tokens(p, end.url, s.verifier, s.state)).sub));
    }
    assert.notEqual(subs[0], subs[1], 'different sectors, different sub');
    assert.equal(subs[0], subs[2], 'same sector, same sub');
    const { rows } = await sql<{
      id: string;
    }>`select a.id from accounts a join residents r on r.id = a.resident_id where r.pin = ${DEMO_PIN}`.execute(
      service.db,
    );
    assert.equal(subs[3], rows[0]?.id, 'public sub is the internal account id');
    assert.ok(subs.every((s) => s !== DEMO_PIN));
  });

  it('never releases the personal ID to an unpermitted portal, by scope or by claims parameter', async () => {
    const p = await portal('Không được phép', 'http://localhost:4301/cb');
    const agent = new Agent();
    const byScope = await start(agent, p, { scope: 'openid national_id' });
    assert.ok(byScope.step.done);
    assert.equal(new URL(byScope.step.url).searchParams.get('error'), 'invalid_scope');
    const claims = JSON.stringify({
      userinfo: { personal_identification_number: { essential: true } },
      id_token: { personal_identification_number: null },
    });
    const s = await start(agent, p, { scope: 'openid profile', claims });
    const end = await passwordAndConsent(agent, p, s.step, DEMO_PIN, DEMO_PASSWORD);
    const t = await tokens(p, end.url, s.verifier, s.state);
    assert.equal(idClaims(t).personal_identification_number, undefined);
    const info = await oidc.fetchUserInfo(p.config, t.access_token, String(idClaims(t).sub));
    assert.equal(info.personal_identification_number, undefined);
    assert.equal(info.name, 'Nguyễn Văn An', 'profile was requested and permitted');
  });

  it('releases the personal ID to a permitted portal that asks for it, and nothing it did not ask for', async () => {
    const p = await portal('Thuế', 'http://localhost:4302/cb', { allowPersonalId: true });
    const agent = new Agent();
    const s = await start(agent, p, { scope: 'openid national_id' });
    const end = await passwordAndConsent(agent, p, s.step, DEMO_PIN, DEMO_PASSWORD);
    const t = await tokens(p, end.url, s.verifier, s.state);
    const info = await oidc.fetchUserInfo(p.config, t.access_token, String(idClaims(t).sub));
    assert.equal(info.personal_identification_number, DEMO_PIN);
    assert.equal(info.name, undefined, 'profile was not requested');
  });

  it('sees registry changes at the next userinfo call', async () => {
    const p = await portal('Cổng I', 'http://localhost:4303/cb');
    const agent = new Agent();
    const s = await start(agent, p, { scope: 'openid profile' });
    const end = await passwordAndConsent(agent, p, s.step, DEMO_PIN, DEMO_PASSWORD);
    const t = await tokens(p, end.url, s.verifier, s.state);
    await sql`update residents set full_name = 'Nguyễn Văn Anh', given_name = 'Anh' where pin = ${DEMO_PIN}`.execute(
      service.db,
    );
    const info = await oidc.fetchUserInfo(p.config, t.access_token, String(idClaims(t).sub));
    assert.equal(info.name, 'Nguyễn Văn Anh');
    await sql`update residents set full_name = 'Nguyễn Văn An', given_name = 'An' where pin = ${DEMO_PIN}`.execute(
      service.db,
    );
  });
});

describe('consent', () => {
  it('deny returns access_denied to the portal', async () => {
    const p = await portal('Cổng J', 'http://localhost:4401/cb');
    const agent = new Agent();
    const s = await start(agent, p, { scope: 'openid profile' });
    const consent = await submit(
      agent,
      s.step as never,
      'login',
      { pin: DEMO_PIN, password: DEMO_PASSWORD },
      p.redirect,
    );
    assert.match(consent.html, /Họ tên, ngày sinh, giới tính/, 'plain-language list of the data');
    const back = await submit(agent, consent as never, 'abort', {}, p.redirect);
    assert.equal(new URL(back.url).searchParams.get('error'), 'access_denied');
  });

  it('remembers approval per scope set and asks again for a new scope', async () => {
    const p = await portal('Cổng K', 'http://localhost:4402/cb');
    const agent = new Agent();
    const s = await start(agent, p, { scope: 'openid profile' });
    await passwordAndConsent(agent, p, s.step, DEMO_PIN, DEMO_PASSWORD);
    assert.ok((await start(agent, p, { scope: 'openid profile' })).step.done, 'remembered');
    const otherDevice = new Agent();
    const fresh = await start(otherDevice, p, { scope: 'openid profile' });
    const end = await submit(
      otherDevice,
      fresh.step as never,
      'login',
      { pin: DEMO_PIN, password: DEMO_PASSWORD },
      p.redirect,
    );
    assert.ok(end.done, 'remembered on another device: no consent page after the password');
    const more = await start(agent, p, { scope: 'openid profile address' });
    assert.equal(more.step.done, false);
    assert.match(more.step.html, /Địa chỉ thường trú/);
  });

  it('a pre-consented portal shows no consent page and the consent is recorded', async () => {
    const p = await portal('Cổng quốc gia', 'http://localhost:4403/cb', { consent: 'implicit' });
    const agent = new Agent();
    const s = await start(agent, p, { scope: 'openid profile' });
    const end = await submit(agent, s.step as never, 'login', { pin: DEMO_PIN, password: DEMO_PASSWORD }, p.redirect);
    assert.ok(end.done, 'straight back to the portal');
    const { rows } = await sql<{
      n: string;
    }>`select count(*) as n from audit_events where action = 'consent.implicit'`.execute(service.db);
    assert.ok(Number(rows[0]?.n) >= 1);
  });

  it('a revoked grant stops refresh', async () => {
    const p = await portal('Cổng L', 'http://localhost:4404/cb');
    const agent = new Agent();
    const s = await start(agent, p, { scope: 'openid offline_access', prompt: 'consent' });
    const end = await passwordAndConsent(agent, p, s.step, DEMO_PIN, DEMO_PASSWORD);
    const t = await tokens(p, end.url, s.verifier, s.state);
    assert.ok(t.refresh_token, 'a refresh token was issued');
    const refreshed = await oidc.refreshTokenGrant(p.config, t.refresh_token);
    const { rows } = await sql<{
      id: string;
    }>`select a.id from accounts a join residents r on r.id = a.resident_id where r.pin = ${DEMO_PIN}`.execute(
      service.db,
    );
    const accountId = rows[0]!.id;
    const grant = (await listAccountGrants(service.db, accountId)).find(
      (g) => g.clientId === p.config.clientMetadata().client_id,
    );
    assert.ok(grant);
    assert.ok(await revokeAccountGrant(service.db, accountId, grant.grantId));
    await assert.rejects(
      oidc.refreshTokenGrant(p.config, refreshed.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
  });
});
