/**
 * Passkeys (issue 17). Invariants: a passkey proves level 2 only when a recent level-2 session of a level-2 account
 * registered it, and a level-1 account's passkey proves level 1; a passkey login carries `hwk`/`swk`, `user` and (at
 * level 2) `mfa`; failed assertions never count toward the password lockout; a sign count going backwards is refused
 * and audited; an account holds at most 10 passkeys; only a passkey gives the phishing-resistant level, and a portal
 * registered for it never gets a password + TOTP session; an assertion made for another origin (a look-alike site)
 * signs no one in. Chromium with a CDP virtual authenticator plays the citizen at http://localhost (a valid RP ID),
 * openid-client the portal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Frame, Page, Request } from 'playwright-core';
import {
  createAccount,
  MAX_PASSKEYS,
  passkeyAssurance,
  registrationOptions,
  relyingParty,
} from '../src/accounts/index.ts';
import { addClient } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { Agent, csrfOf } from './helpers/agent.ts';
import { accessibilityOf, launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_REDIRECT, demoPortal, follow, submitLogin } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { resident } from './helpers/residents.ts';
import { testEnv } from './helpers/service.ts';

const LEVEL1 = 'urn:dinhdanh:loa:1';
const LEVEL2 = 'urn:dinhdanh:loa:2';
/** PHISHING_RESISTANT_ACR's default. */
const PHISHING_RESISTANT = 'urn:dinhdanh:loa:2:phishing-resistant';
const ONE = resident('001090000701', 'Lý Văn Một', '1990-07-01', { phone: '+84912000701' });
const TWO = resident('001090000702', 'Lý Văn Hai', '1990-07-02', { phone: '+84912000702' });
/** A level-2 citizen with TOTP and no passkey. */
const THREE = resident('001090000703', 'Lý Văn Ba', '1990-07-03', { phone: '+84912000703' });
const PASSWORD = 'mật khẩu khóa truy cập';

let database: TestDatabase;
let service: Service;
let browser: Browser;
let portal: oidc.Configuration;
/** A portal registered with --require-phishing-resistant (same redirect URI as the demo portal). */
let strictPortal: oidc.Configuration;
let nextCode: () => Promise<string>;
let threeCode: () => Promise<string>;
let oneId: string;
let twoId: string;
let threeId: string;

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

const sessionsOf = async (accountId: string) =>
  (
    await sql<{ n: number }>`select count(*)::int as n from oidc_payloads
    where model = 'Session' and payload->>'accountId' = ${accountId}`.execute(service.db)
  ).rows[0]!.n;

before(async () => {
  database = await freshDatabase();
  const config = loadConfig(testEnv(database.url));
  service = await startService(config);
  assert.match(service.url, /^http:\/\/localhost:\d+$/, 'the service is reached at localhost (a valid RP ID)');
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await insertResidents(service.db, [ONE, TWO, THREE]);
  for (const r of [ONE, TWO, THREE]) await createAccount(service.db, hasher, { pin: r.pin, password: PASSWORD });
  oneId = await accountIdOf(ONE.pin);
  twoId = await accountIdOf(TWO.pin);
  threeId = await accountIdOf(THREE.pin);
  ({ nextCode } = await makeLevel2(service.db, loadMasterKey(config), TWO.pin, twoId));
  ({ nextCode: threeCode } = await makeLevel2(service.db, loadMasterKey(config), THREE.pin, threeId));
  portal = await demoPortal(service.url);
  const strict = await addClient(service.db, {
    name: 'Cổng thuế',
    redirectUris: [DEMO_REDIRECT],
    tokenEndpointAuthMethod: 'none',
    consent: 'implicit',
    minLevel: 2,
    phishingResistant: true,
  });
  assert.equal(strict.phishing_resistant, true);
  strictPortal = await oidc.discovery(
    new URL(service.url),
    strict.client_id,
    { token_endpoint_auth_method: 'none' },
    oidc.None(),
    { execute: [oidc.allowInsecureRequests] },
  );
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await service?.close();
  await database?.drop();
});

/**
 * A browser context with a CDP virtual authenticator (platform, resident keys, user verification); `synced`: its
 * credentials are backup-eligible and backed up (a passkey synced by a password manager).
 *
 * The virtual authenticator answers a conditional (autofill) request at once, as if the citizen picked the passkey
 * from the personal-ID field's suggestions: pages would sign in before a test could type a password or press the
 * button. So the context plays a browser without autofill for passkeys (isConditionalMediationAvailable false, as in
 * browsers that lack it) unless the test sets the `test_autofill=on` cookie.
 */
async function citizenBrowser({ synced = false } = {}): Promise<{ context: BrowserContext; page: Page }> {
  // bypassCSP: for axe's own script (accessibilityOf), in tests only.
  const context = await browser.newContext({ locale: 'vi-VN', bypassCSP: true });
  await context.addInitScript(() => {
    const g = globalThis as unknown as {
      document: { cookie: string };
      PublicKeyCredential?: { isConditionalMediationAvailable?: () => Promise<boolean> };
    };
    if (g.PublicKeyCredential && !g.document.cookie.split('; ').includes('test_autofill=on'))
      g.PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
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
      ...(synced ? { defaultBackupEligibility: true, defaultBackupState: true } : {}),
    },
  });
  await page.route('http://localhost:3001/**', (route) => route.fulfill({ status: 200, body: 'portal' }));
  return { context, page };
}

/**
 * Starts an authorization at `at` (the demo portal by default) in `page`; `done()` gives the portal's callback URL
 * (consenting if asked).
 */
async function startAtPortal(page: Page, params: Record<string, string> = {}, at = portal) {
  const request = await authorizationRequest(at, params);
  const ours = (href: string) => {
    const url = new URL(href);
    return url.href.startsWith(DEMO_REDIRECT) && url.searchParams.get('state') === request.state;
  };
  let reached = false;
  let failed = false;
  let redirect: (url: string) => void = () => {};
  let settle: () => void = () => {};
  const redirected = new Promise<string>((resolve) => {
    redirect = resolve;
  });
  // The navigation to the portal's callback ends on its stubbed page or, when the request failed (a redirect's
  // target may not reach the stub), on Chromium's error page, committed just after the failure. It must be over
  // before the next test navigates this page, or it interrupts that navigation.
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const onRequest = (r: Request) => {
    if (!ours(r.url())) return;
    reached = true;
    redirect(r.url());
  };
  const onFailed = (r: Request) => {
    if (ours(r.url())) failed = true;
  };
  const onNavigated = (f: Frame) => {
    if (f === page.mainFrame() && (ours(f.url()) || (failed && f.url().startsWith('chrome-error:')))) settle();
  };
  page.on('request', onRequest).on('requestfailed', onFailed).on('framenavigated', onNavigated);
  // The previous portal callback may still be ending (its stubbed page): one retry if that interrupts this one.
  for (let i = 0; ; i++) {
    try {
      await page.goto(request.url.toString());
      break;
    } catch (err) {
      // Interrupted by this request's own redirect to the login page: there already. Or signed in already, sent
      // straight back to the portal (whose stub a redirect's target may not reach).
      if (page.url().includes('/interaction/') || reached) break;
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
      // Only the navigation's end matters (within 5 s, as the old wait for the stub's URL allowed).
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([settled, deadline]);
      page.off('request', onRequest).off('requestfailed', onFailed).off('framenavigated', onNavigated);
      return url;
    },
  };
}

/** The portal's token request: the ID token's claims. */
async function tokensFor(
  callback: string,
  { verifier, state }: { verifier: string; state: string },
  at = portal,
): Promise<oidc.IDToken> {
  const tokens = await oidc.authorizationCodeGrant(at, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return tokens.claims()!;
}

/** axe (WCAG 2.x A/AA) and no sideways scrolling at phone (375 px) and desktop (1280 px) widths. */
async function accessible(page: Page, what: string) {
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: 800 });
    const { violations, overflow } = await accessibilityOf(page);
    assert.deepEqual(violations, [], `${what} at ${width} px`);
    assert.ok(overflow <= 0, `${what} fits ${width} px (${overflow} px too wide)`);
  }
  await page.setViewportSize({ width: 1280, height: 720 });
}

const passwordStep = async (page: Page, pin: string) => {
  await page.locator('#pin').fill(pin);
  await page.locator('#password').fill(PASSWORD);
  await page.locator('form[action$="/login"] button[type=submit]').click();
};

describe('acr/amr of a passkey login', () => {
  const base = { accountLevel: 2, passkeyLevel: 2, userVerified: true, backupEligible: false, backedUp: false };
  it('a device-bound level-2 passkey of a level-2 account with user verification: level 2, hwk user mfa', () => {
    assert.deepEqual(passkeyAssurance(base), { level: 2, amr: ['hwk', 'user', 'mfa'], phishingResistant: true });
  });
  it('a synced (backup-eligible or backed-up) passkey says swk', () => {
    assert.deepEqual(passkeyAssurance({ ...base, backupEligible: true }).amr, ['swk', 'user', 'mfa']);
    assert.deepEqual(passkeyAssurance({ ...base, backedUp: true }).amr, ['swk', 'user', 'mfa']);
  });
  it('never above the account or the passkey, and never level 2 without user verification', () => {
    const level1 = { level: 1, amr: ['hwk', 'user'], phishingResistant: false };
    assert.deepEqual(passkeyAssurance({ ...base, accountLevel: 1 }), level1);
    assert.deepEqual(passkeyAssurance({ ...base, passkeyLevel: 1 }), level1);
    assert.deepEqual(passkeyAssurance({ ...base, userVerified: false }), {
      level: 1,
      amr: ['hwk'],
      phishingResistant: false,
    });
  });
  it('phishing-resistant: every level-2 passkey login; with PHISHING_RESISTANT_DEVICE_BOUND, device-bound ones only', () => {
    assert.equal(passkeyAssurance({ ...base, backupEligible: true }).phishingResistant, true);
    assert.equal(passkeyAssurance({ ...base, deviceBoundOnly: true }).phishingResistant, true);
    const synced = passkeyAssurance({ ...base, backupEligible: true, deviceBoundOnly: true });
    assert.deepEqual(synced, { level: 2, amr: ['swk', 'user', 'mfa'], phishingResistant: false }, 'still level 2');
  });
});

describe('passkeys in Chromium', () => {
  let a: { context: BrowserContext; page: Page };
  let b: { context: BrowserContext; page: Page };
  let c: { context: BrowserContext; page: Page };
  after(async () => {
    await a?.context.close();
    await b?.context.close();
    await c?.context.close();
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
    await accessible(page, '/account with its passkey list');
  });

  it('usernameless passkey login at a level-2 portal: ID token with level-2 acr and amr hwk user mfa', async () => {
    const { context, page } = a;
    await context.clearCookies();
    const flow = await startAtPortal(page, { acr_values: LEVEL2 });
    const button = page.getByRole('button', { name: 'Đăng nhập bằng khóa truy cập (passkey)' });
    await button.waitFor();
    await accessible(page, 'the login page with the passkey button');
    await button.click();
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
    await accessible(page, 'the step-up page (passkey first, then the code)');
    await page.getByRole('button', { name: 'Dùng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow);
    assert.equal(claims.acr, LEVEL2);
    assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    const stepUps = await events('step_up', twoId);
    assert.deepEqual(stepUps.at(-1)?.details.amr, ['hwk', 'user', 'mfa']);
  });

  it('autofill (conditional UI) on the personal-ID field signs in with the passkey, through the same endpoint', async () => {
    const { context, page } = a;
    await context.clearCookies();
    await context.addCookies([{ name: 'test_autofill', value: 'on', url: service.url }]);
    const posts: string[] = [];
    const listen = (r: { method(): string; url(): string }) => {
      if (r.method() === 'POST') posts.push(new URL(r.url()).pathname.replace(/^\/interaction\/[^/]+/, ''));
    };
    page.on('request', listen);
    try {
      // No click: the virtual authenticator answers the autofill request as a citizen picking the suggestion would.
      const flow = await startAtPortal(page, { acr_values: LEVEL2 });
      const claims = await tokensFor(await flow.done(), flow);
      assert.equal(claims.acr, LEVEL2);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      assert.deepEqual(
        posts.filter((x) => x.startsWith('/passkey')),
        ['/passkey/options', '/passkey'],
        'the conditional request posts to the button form endpoint',
      );
    } finally {
      page.off('request', listen);
      await context.clearCookies();
    }
    // The field that offers passkeys among its suggestions.
    await startAtPortal(page);
    assert.equal(await page.locator('#pin').getAttribute('autocomplete'), 'username webauthn');
  });

  it('a portal requiring phishing resistance steps up a password + TOTP session with a passkey (no code)', async () => {
    const { context, page } = a;
    await context.clearCookies();
    const first = await startAtPortal(page, { acr_values: LEVEL2 });
    await passwordStep(page, TWO.pin);
    await page.locator('#code').fill(await nextCode());
    await page.locator('form[action$="/otp"] button[type=submit]').click();
    assert.equal((await tokensFor(await first.done(), first)).acr, LEVEL2);
    const flow = await startAtPortal(page, {}, strictPortal);
    await page.getByRole('heading', { name: 'Xác nhận bằng khóa truy cập (passkey)' }).waitFor();
    assert.equal(await page.locator('#code').count(), 0, 'a code cannot answer it');
    await accessible(page, 'the passkey-only step-up page');
    await page.getByRole('button', { name: 'Dùng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow, strictPortal);
    assert.equal(claims.acr, PHISHING_RESISTANT);
    assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    assert.equal((await events('step_up', twoId)).at(-1)?.details.acr, PHISHING_RESISTANT);
  });

  it('a portal requiring phishing resistance accepts a passkey sign-in at once (even asking for level 2)', async () => {
    const { context, page } = a;
    await context.clearCookies();
    const flow = await startAtPortal(page, { acr_values: LEVEL2 }, strictPortal);
    await page.getByRole('button', { name: 'Đăng nhập bằng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow, strictPortal);
    assert.equal(claims.acr, PHISHING_RESISTANT, 'never below what the portal is registered for');
    // The same session at a level-2 portal: its own word.
    const next = await startAtPortal(page, { acr_values: LEVEL2 });
    assert.equal((await tokensFor(await next.done(), next)).acr, LEVEL2);
  });

  it('an assertion made on another origin (a look-alike site) is refused and signs no one in', async () => {
    const { context, page } = a;
    await context.clearCookies();
    await startAtPortal(page, { acr_values: LEVEL2 });
    const action = `${page.url()}/passkey`;
    const csrf = await page.locator('form[data-passkey] input[name=csrf]').inputValue();
    const options = await page.evaluate(
      async ([url, token]) =>
        (await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf: token, lang: 'vi' }) })).json(),
      [`${action}/options`, csrf] as const,
    );
    // The look-alike site (another origin under the same RP ID) relays the real challenge to the authenticator.
    await page.goto('http://localhost:3001/lookalike');
    const answer = await page.evaluate(
      async (challenge: string) => {
        const b64u = (b: ArrayBuffer | null) =>
          b
            ? btoa(String.fromCharCode(...new Uint8Array(b)))
                .replace(/\+/g, '-')
                .replace(/\//g, '_')
                .replace(/=+$/, '')
            : undefined;
        const raw = Uint8Array.from(atob(challenge.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
        const nav = globalThis as unknown as { navigator: { credentials: { get(o: unknown): Promise<any> } } };
        const c = await nav.navigator.credentials.get({
          publicKey: { challenge: raw, rpId: 'localhost', userVerification: 'required', allowCredentials: [] },
        });
        return {
          id: c.id,
          rawId: b64u(c.rawId),
          type: c.type,
          response: {
            clientDataJSON: b64u(c.response.clientDataJSON),
            authenticatorData: b64u(c.response.authenticatorData),
            signature: b64u(c.response.signature),
            userHandle: b64u(c.response.userHandle),
          },
          clientExtensionResults: {},
        };
      },
      (options as { challenge: string }).challenge,
    );
    const clientData = JSON.parse(Buffer.from(answer.response.clientDataJSON!, 'base64url').toString());
    assert.equal(clientData.origin, 'http://localhost:3001', 'a genuine assertion, for the other origin');
    const before = (await events('login.passkey', twoId)).length;
    const sessionsBefore = await sessionsOf(twoId);
    const logins = (await events('login', twoId)).length;
    const res = await context.request.post(action, {
      form: { csrf, lang: 'vi', response: JSON.stringify(answer) },
      maxRedirects: 0,
    });
    assert.equal(res.status(), 401);
    assert.match(await res.text(), /Không xác minh được khóa truy cập/);
    const failures = (await events('login.passkey', twoId)).slice(before);
    assert.deepEqual(
      failures.map((e) => [e.outcome, e.reason]),
      [['failure', 'invalid_response']],
    );
    assert.equal(await sessionsOf(twoId), sessionsBefore, 'no new session for the citizen');
    assert.equal((await events('login', twoId)).length, logins, 'no sign-in');
  });

  it('a citizen with no passkey at a portal requiring phishing resistance: a clear page, then unmet_authentication_requirements', async () => {
    const { context, page } = a;
    await context.clearCookies();
    const flow = await startAtPortal(page, {}, strictPortal);
    await passwordStep(page, THREE.pin);
    await page.getByRole('heading', { name: 'Cần đăng nhập bằng khóa truy cập (passkey)' }).waitFor();
    await accessible(page, 'the phishing-resistant refusal page');
    await page.getByRole('button', { name: 'Quay lại cổng dịch vụ' }).click();
    const callback = new URL(await flow.done());
    assert.equal(callback.searchParams.get('error'), 'unmet_authentication_requirements');
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

  it('rename and remove on /account (removal asks first)', async () => {
    const { page } = b;
    await page.goto(`${service.url}/account`);
    const real = (await passkeyRows(oneId)).find((r) => !r.id.startsWith('filler-'))!;
    const rename = page.locator(`form[action="/account/passkeys/rename"]:has(input[value="${real.id}"])`);
    await rename.locator('input[name=name]').fill('Điện thoại của tôi');
    await rename.getByRole('button', { name: 'Đổi tên' }).click();
    await page.getByText('Đã đổi tên khóa truy cập.').waitFor();
    await accessible(page, 'the rename result page');
    const [named] = await sql<{ name: string }>`select name from passkeys where id = ${real.id}`
      .execute(service.db)
      .then((r) => r.rows);
    assert.equal(named?.name, 'Điện thoại của tôi');
    assert.equal((await events('passkey.renamed', oneId)).length, 1);
    await page.goto(`${service.url}/account`);
    await page.locator('form[action="/account/passkeys/remove"]:has(input[value="filler-1"]) button').click();
    await page.getByRole('heading', { name: 'Xóa khóa truy cập?' }).waitFor();
    assert.equal(
      await page.getByText('Cảnh báo: đây là cách xác thực mức 2 cuối cùng').count(),
      0,
      'level 1: no warning',
    );
    assert.equal((await passkeyRows(oneId)).length, MAX_PASSKEYS, 'nothing removed before the confirmation');
    await accessible(page, 'the removal confirmation page');
    await page.getByRole('button', { name: 'Xóa khóa truy cập' }).click();
    await page.getByText('Đã xóa khóa truy cập.').waitFor();
    assert.equal((await passkeyRows(oneId)).length, MAX_PASSKEYS - 1);
    assert.deepEqual(
      (await events('passkey.removed', oneId)).map((e) => [e.outcome, e.details.credential]),
      [['success', 'filler-1']],
    );
  });

  it('a synced passkey (backup-eligible, backed up) gives amr swk', async () => {
    c = await citizenBrowser({ synced: true });
    const { context, page } = c;
    const first = await startAtPortal(page, { acr_values: LEVEL2 });
    await passwordStep(page, THREE.pin);
    await page.locator('#code').fill(await threeCode());
    await page.locator('form[action$="/otp"] button[type=submit]').click();
    await first.done();
    await page.goto(`${service.url}/account`);
    await page.getByRole('button', { name: 'Thêm khóa truy cập' }).click();
    await page.getByText('Đã thêm khóa truy cập.').waitFor();
    const rows = await passkeyRows(threeId);
    assert.deepEqual(
      rows.map((r) => [r.level, r.backed_up]),
      [[2, true]],
    );
    await page.goto(`${service.url}/account`);
    await page.getByText('đồng bộ giữa các thiết bị').waitFor();
    await context.clearCookies();
    const flow = await startAtPortal(page, { acr_values: LEVEL2 });
    await page.getByRole('button', { name: 'Đăng nhập bằng khóa truy cập (passkey)' }).click();
    const claims = await tokensFor(await flow.done(), flow);
    assert.equal(claims.acr, LEVEL2);
    assert.deepEqual(claims.amr, ['swk', 'user', 'mfa']);
  });

  it("removing the account's last level-2 factor warns that it drops to level 1", async () => {
    const { page } = c;
    // The citizen has no authenticator app any more (an officer's reset, say): the synced passkey is all that is left.
    await sql`update accounts set totp_secret_sealed = null where id = ${threeId}`.execute(service.db);
    await page.goto(`${service.url}/account`);
    await page.locator('form[action="/account/passkeys/remove"] button').click();
    await page.getByText('Cảnh báo: đây là cách xác thực mức 2 cuối cùng').waitFor();
    await accessible(page, 'the removal confirmation with its warning');
    await page.getByRole('link', { name: 'Giữ lại' }).click();
    await page.waitForURL(/\/account(\?|$)/);
    assert.equal((await passkeyRows(threeId)).length, 1, 'kept');
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
