/**
 * Passkeys (issue 17). Invariants: a passkey proves level 2 only when a recent level-2 session of a level-2 account
 * registered it, and a level-1 account's passkey proves level 1; a passkey login carries `hwk`/`swk`, `user` and (at
 * level 2) `mfa`; failed assertions never count toward the password lockout; a sign count going backwards is refused
 * and audited; an account holds at most 10 passkeys. Chromium with a CDP virtual authenticator plays the citizen at
 * http://localhost (a valid RP ID), openid-client the portal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  createAccount,
  MAX_PASSKEYS,
  passkeyAssurance,
  registrationOptions,
  relyingParty,
} from '../src/accounts/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { Agent, csrfOf } from './helpers/agent.ts';
import { launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, demoPortal, follow, submitLogin } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { resident } from './helpers/residents.ts';
import { testEnv } from './helpers/service.ts';

const LEVEL1 = 'urn:dinhdanh:loa:1';
const LEVEL2 = 'urn:dinhdanh:loa:2';
const ONE = resident('001090000701', 'Lý Văn Một', '1990-07-01', { phone: '+84912000701' });
const TWO = resident('001090000702', 'Lý Văn Hai', '1990-07-02', { phone: '+84912000702' });
const PASSWORD = 'mật khẩu khóa truy cập';

let database: TestDatabase;
let service: Service;
let browser: Browser;
let portal: oidc.Configuration;
let nextCode: () => Promise<string>;
let oneId: string;
let twoId: string;

const accountIdOf = async (pin: string) =>
  (
    await sql<{ id: string }>`select a.id from accounts a join residents r on r.id = a.resident_id
    where r.pin = ${pin}`.execute(service.db)
  ).rows[0]!.id;

const passkeyRows = async (accountId: string) =>
  (
    await sql<{ id: string; level: number; backed_up: boolean; clone_suspected_at: Date | null }>`
    select id, level, backed_up, clone_suspected_at from passkeys where account_id = ${accountId}`.execute(service.db)
  ).rows;

const events = async (action: string, subject: string) =>
  (
    await sql<{ outcome: string; reason: string | null; details: Record<string, unknown> }>`
    select outcome, reason, details from audit_events where action = ${action} and subject = ${subject}
    order by seq`.execute(service.db)
  ).rows;

before(async () => {
  database = await freshDatabase();
  const config = loadConfig(testEnv(database.url));
  service = await startService(config);
  assert.match(service.url, /^http:\/\/localhost:\d+$/, 'the service is reached at localhost (a valid RP ID)');
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await insertResidents(service.db, [ONE, TWO]);
  for (const r of [ONE, TWO]) await createAccount(service.db, hasher, { pin: r.pin, password: PASSWORD });
  oneId = await accountIdOf(ONE.pin);
  twoId = await accountIdOf(TWO.pin);
  ({ nextCode } = await makeLevel2(service.db, loadMasterKey(config), TWO.pin, twoId));
  portal = await demoPortal(service.url);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await service?.close();
  await database?.drop();
});

/** A browser context with a CDP virtual authenticator (platform, resident keys, user verification). */
async function citizenBrowser(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ locale: 'vi-VN' });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
    },
  });
  await page.route('http://localhost:3001/**', (route) => route.fulfill({ status: 200, body: 'portal' }));
  return { context, page };
}

/** Starts an authorization at the demo portal in `page`; `done()` gives the portal's callback URL (consenting if asked). */
async function startAtPortal(page: Page, params: Record<string, string> = {}) {
  const request = await authorizationRequest(portal, params);
  const redirected = new Promise<string>((resolve) =>
    page.on('request', (r) => r.url().startsWith('http://localhost:3001/callback') && resolve(r.url())),
  );
  // The previous portal callback may still be ending (its stubbed page): one retry if that interrupts this one.
  for (let i = 0; ; i++) {
    try {
      await page.goto(request.url.toString());
      break;
    } catch (err) {
      // Interrupted by this request's own redirect to the login page: there already.
      if (page.url().includes('/interaction/')) break;
      if (i === 2) throw err;
    }
  }
  return {
    ...request,
    async done(): Promise<string> {
      const consent = page.locator('form[action$="/consent"] button');
      const first = await Promise.race([
        redirected.then((u) => ({ u })),
        consent.waitFor({ timeout: 15_000 }).then(() => null),
      ]);
      if (!first) await consent.click();
      const url = await redirected;
      // The portal's page (stubbed; a redirect's target may not reach the stub): only the navigation's end matters.
      await page.waitForURL((u) => u.href.startsWith('http://localhost:3001/callback')).catch(() => {});
      return url;
    },
  };
}

/** The portal's token request: the ID token's claims. */
async function tokensFor(
  callback: string,
  { verifier, state }: { verifier: string; state: string },
): Promise<oidc.IDToken> {
  const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return tokens.claims()!;
}

const passwordStep = async (page: Page, pin: string) => {
  await page.locator('#pin').fill(pin);
  await page.locator('#password').fill(PASSWORD);
  await page.locator('form[action$="/login"] button[type=submit]').click();
};

describe('acr/amr of a passkey login', () => {
  const base = { accountLevel: 2, passkeyLevel: 2, userVerified: true, backupEligible: false, backedUp: false };
  it('a device-bound level-2 passkey of a level-2 account with user verification: level 2, hwk user mfa', () => {
    assert.deepEqual(passkeyAssurance(base), { level: 2, amr: ['hwk', 'user', 'mfa'] });
  });
  it('a synced (backup-eligible or backed-up) passkey says swk', () => {
    assert.deepEqual(passkeyAssurance({ ...base, backupEligible: true }).amr, ['swk', 'user', 'mfa']);
    assert.deepEqual(passkeyAssurance({ ...base, backedUp: true }).amr, ['swk', 'user', 'mfa']);
  });
  it('never above the account or the passkey, and never level 2 without user verification', () => {
    assert.deepEqual(passkeyAssurance({ ...base, accountLevel: 1 }), { level: 1, amr: ['hwk', 'user'] });
    assert.deepEqual(passkeyAssurance({ ...base, passkeyLevel: 1 }), { level: 1, amr: ['hwk', 'user'] });
    assert.deepEqual(passkeyAssurance({ ...base, userVerified: false }), { level: 1, amr: ['hwk'] });
  });
});

describe('passkeys in Chromium', () => {
  let a: { context: BrowserContext; page: Page };
  let b: { context: BrowserContext; page: Page };
  after(async () => {
    await a?.context.close();
    await b?.context.close();
  });

  it('a level-2 session registers a level-2 passkey on /account, audited', async () => {
    a = await citizenBrowser();
    const { page } = a;
    const flow = await startAtPortal(page, { acr_values: LEVEL2 });
    await passwordStep(page, TWO.pin);
    await page.locator('#code').fill(await nextCode());
    await page.locator('form[action$="/otp"] button[type=submit]').click();
    await flow.done();
    await page.goto(`${service.url}/account`);
    await page.getByRole('heading', { name: 'Khóa truy cập (passkey)' }).waitFor();
    await page.getByRole('button', { name: 'Thêm khóa truy cập' }).click();
    await page.getByText('Đã thêm khóa truy cập.').waitFor();
    const rows = await passkeyRows(twoId);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.level, 2, 'registered by a fresh level-2 session: proves level 2');
    const registered = await events('passkey.registered', twoId);
    assert.deepEqual(
      registered.map((e) => [e.outcome, e.details.level]),
      [['success', 2]],
    );
    await page.goto(`${service.url}/account`);
    await page.getByText('dùng được cho mức 2').waitFor();
  });

  it('usernameless passkey login at a level-2 portal: ID token with level-2 acr and amr hwk user mfa', async () => {
    const { context, page } = a;
    await context.clearCookies();
    const flow = await startAtPortal(page, { acr_values: LEVEL2 });
    await page.getByRole('button', { name: 'Đăng nhập bằng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow);
    assert.equal(claims.acr, LEVEL2);
    assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    const [used] = await sql<{ last_used_at: Date | null }>`select last_used_at from passkeys
      where account_id = ${twoId}`
      .execute(service.db)
      .then((r) => r.rows);
    assert.ok(used?.last_used_at, 'last use recorded');
  });

  it('step-up with a passkey: a password session reaching a level-2 portal is offered it (TOTP still there)', async () => {
    const { context, page } = a;
    await context.clearCookies();
    const first = await startAtPortal(page);
    await passwordStep(page, TWO.pin);
    assert.equal((await tokensFor(await first.done(), first)).acr, LEVEL1);
    const flow = await startAtPortal(page, { acr_values: LEVEL2 });
    await page.locator('#code').waitFor();
    await page.getByRole('button', { name: 'Dùng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow);
    assert.equal(claims.acr, LEVEL2);
    assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    const stepUps = await events('step_up', twoId);
    assert.deepEqual(stepUps.at(-1)?.details.amr, ['hwk', 'user', 'mfa']);
  });

  it('a sign count going backwards is refused, flagged and audited (a cloned authenticator)', async () => {
    const { context, page } = a;
    await sql`update passkeys set sign_count = 1000000 where account_id = ${twoId}`.execute(service.db);
    await context.clearCookies();
    await startAtPortal(page, { acr_values: LEVEL2 });
    await page.getByRole('button', { name: 'Đăng nhập bằng khóa truy cập (passkey)' }).click();
    await page.getByText('Không xác minh được khóa truy cập').waitFor();
    assert.ok((await passkeyRows(twoId))[0]!.clone_suspected_at, 'flagged for /account');
    assert.equal((await events('passkey.clone_suspected', twoId)).length, 1);
    assert.equal((await events('login.passkey', twoId)).at(-1)?.reason, 'sign_count');
  });

  it("a level-1 account's passkey gives level 1 (amr without mfa)", async () => {
    b = await citizenBrowser();
    const { context, page } = b;
    await page.goto(`${service.url}/account`);
    await passwordStep(page, ONE.pin);
    await page.waitForURL(/\/account(\?|$)/);
    await page.getByRole('button', { name: 'Thêm khóa truy cập' }).click();
    await page.getByText('Đã thêm khóa truy cập.').waitFor();
    assert.deepEqual(
      (await passkeyRows(oneId)).map((r) => r.level),
      [1],
    );
    await context.clearCookies();
    const flow = await startAtPortal(page);
    await page.getByRole('button', { name: 'Đăng nhập bằng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow);
    assert.equal(claims.acr, LEVEL1);
    assert.deepEqual(claims.amr, ['hwk', 'user']);
  });

  it('the 11th passkey is refused, and audited', async () => {
    const { page } = b;
    for (let i = 1; i < MAX_PASSKEYS; i++)
      await sql`insert into passkeys (id, account_id, public_key, aaguid, backup_eligible, backed_up, level, name)
        values (${`filler-${i}`}, ${oneId}, '\\x00', '00000000-0000-0000-0000-000000000000', false, false, 1,
        ${`filler ${i}`})`.execute(service.db);
    assert.equal((await passkeyRows(oneId)).length, MAX_PASSKEYS);
    await page.goto(`${service.url}/account`);
    await page.getByRole('button', { name: 'Thêm khóa truy cập' }).click();
    await page.getByText('Trình duyệt chưa hoàn tất khóa truy cập').waitFor();
    assert.equal((await passkeyRows(oneId)).length, MAX_PASSKEYS);
    assert.equal((await events('passkey.registered', oneId)).at(-1)?.reason, 'too_many');
    await assert.rejects(
      registrationOptions(service.db, relyingParty(service.url), 'register:test', {
        accountId: oneId,
        userName: 'x',
        displayName: 'x',
      }),
      /at most 10/,
    );
  });
});

describe('limits', () => {
  it('failed passkey assertions never lock the password', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal);
    const start = await follow(agent, url.toString());
    const html = await start.res.text();
    const action = new URL(`${new URL(start.url).pathname}/passkey`, start.url);
    const forged = JSON.stringify({ id: 'forged', rawId: 'forged', type: 'public-key', response: {} });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      await agent.post(new URL(`${action}/options`), { csrf: csrfOf(html) });
      statuses.push((await agent.post(action, { csrf: csrfOf(html), response: forged })).status);
    }
    assert.ok(
      statuses.every((s) => s === 401 || s === 429),
      `refused: ${statuses}`,
    );
    assert.ok(statuses.includes(429), 'the passkey limiter locks after repeated failures');
    const login = await submitLogin(agent, start.url, ONE.pin, PASSWORD, html);
    assert.equal(login.status, 303, 'the password still works');
  });
});
