/**
 * The staff console (/admin, issue 15 items 3 to 5), in Chromium. Invariants: only an account signed in at level 2
 * that holds a staff role gets in (a level-1 session is refused, a non-staff account gets an audited 403); every act
 * is authorized for its capability and target first (an officer scoped to a province cannot act elsewhere, and the
 * refusal is audited); a sandbox portal signs in test citizens and refuses real residents; moving it to production
 * is a security decision with a recorded reason. Every console page passes axe (WCAG 2.x A/AA) at 375 and 1280 px.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createAccount } from '../src/accounts/index.ts';
import { recordEvent } from '../src/audit/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher, currentTotp } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { grantRole } from '../src/staff/index.ts';
import { Agent } from './helpers/agent.ts';
import { accessibilityOf, launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PIN, DEMO_REDIRECT, loginThrough } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { resident } from './helpers/residents.ts';
import { testEnv } from './helpers/service.ts';

const PASSWORD = 'mật khẩu cán bộ 2026';
const OFFICER = resident('001080000801', 'Trần Văn Cán', '1980-08-01', { phone: '+84912000801' });
const SECURITY = resident('001080000802', 'Lê Thị An Ninh', '1980-08-02', { phone: '+84912000802' });
const AGENCY = resident('001080000803', 'Phạm Văn Cơ Quan', '1980-08-03', { phone: '+84912000803' });
const ADMIN = resident('001080000804', 'Đỗ Thị Quản Trị', '1980-08-04', { phone: '+84912000804' });
const NOSTAFF = resident('001080000805', 'Ngô Văn Dân', '1980-08-05', { phone: '+84912000805' });
/** Holds the officer role but is a level-1 account. */
const LEVEL1 = resident('001080000806', 'Vũ Văn Một', '1980-08-06', { phone: '+84912000806' });
const AUDITOR = resident('001080000809', 'Mai Thị Kiểm Toán', '1980-08-09', { phone: '+84912000809' });
/** A level-2 citizen the officer's other acts are done to. */
const CITIZEN2 = resident('001095000810', 'Đinh Văn Hai', '1995-08-10', { phone: '+84912000810' });
/** The citizen the officer verifies in person. */
const CITIZEN = resident('001095000807', 'Hoàng Thị Công Dân', '1995-08-07', { phone: '+84912000807' });
/** A citizen of another province (079, Hồ Chí Minh City): outside the officer's scope. */
const ELSEWHERE = resident('079095000808', 'Lý Văn Xa', '1995-08-08', { phone: '+84912000808' });
const TEST_L1 = { pin: '000099000001', password: 'sandbox-level1-2026' };
const SHOTS = path.resolve(import.meta.dirname, '../.tmp/console-shots');

let database: TestDatabase;
let service: Service;
let browser: Browser;
const codes = new Map<string, () => Promise<string>>();
const contexts: BrowserContext[] = [];

const accountIdOf = async (pin: string) =>
  (
    await sql<{ id: string }>`select a.id from accounts a join residents r on r.id = a.resident_id
    where r.pin = ${pin}`.execute(service.db)
  ).rows[0]!.id;

const events = async (action: string) =>
  (
    await sql<{
      actor_id: string | null;
      outcome: string;
      reason: string | null;
      client_id: string | null;
      ip: string | null;
      details: Record<string, unknown>;
    }>`select actor_id, outcome, reason, client_id, ip, details from audit_events where action = ${action}
    order by seq`.execute(service.db)
  ).rows;

before(async () => {
  database = await freshDatabase();
  // No publish lead time: a key generated in the console can be activated at once.
  const config = loadConfig(testEnv(database.url, { KEY_PUBLISH_LEAD_SECONDS: '0' }));
  service = await startService(config);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  const all = [OFFICER, SECURITY, AGENCY, ADMIN, NOSTAFF, LEVEL1, CITIZEN, ELSEWHERE, AUDITOR, CITIZEN2];
  await insertResidents(service.db, all);
  for (const r of all) await createAccount(service.db, hasher, { pin: r.pin, password: PASSWORD });
  for (const r of [OFFICER, SECURITY, AGENCY, ADMIN, NOSTAFF, AUDITOR, CITIZEN2]) {
    const { nextCode } = await makeLevel2(service.db, loadMasterKey(config), r.pin, await accountIdOf(r.pin));
    codes.set(r.pin, nextCode);
  }
  await grantRole(service.db, { pin: OFFICER.pin, role: 'officer', provinces: ['001'] }, 'test');
  await grantRole(service.db, { pin: SECURITY.pin, role: 'security' }, 'test');
  await grantRole(service.db, { pin: AGENCY.pin, role: 'agency_admin', agency: 'so-y-te' }, 'test');
  await grantRole(service.db, { pin: ADMIN.pin, role: 'admin' }, 'test');
  await grantRole(service.db, { pin: LEVEL1.pin, role: 'officer' }, 'test');
  await grantRole(service.db, { pin: AUDITOR.pin, role: 'auditor' }, 'test');
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchChromium();
});
after(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await service?.close();
  await database?.drop();
});

/** A fresh browser (bypassCSP: for axe's own script, in tests only). */
async function newPage(): Promise<Page> {
  const context = await browser.newContext({ locale: 'vi-VN', bypassCSP: true });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

/** axe (WCAG 2.x A/AA) and no sideways scrolling at 375 and 1280 px; a screenshot of each. */
async function accessible(page: Page, what: string) {
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: 800 });
    const { violations, overflow } = await accessibilityOf(page);
    assert.deepEqual(violations, [], `${what} at ${width} px`);
    assert.ok(overflow <= 0, `${what} fits ${width} px (${overflow} px too wide)`);
    await page.screenshot({ path: path.join(SHOTS, `${what}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** The password step on the provider's login page. */
async function passwordStep(page: Page, pin: string, password = PASSWORD) {
  await page.locator('#pin').fill(pin);
  await page.locator('#password').fill(password);
  await page.locator('form[action$="/login"] button[type=submit]').click();
}

/** Signs a staff member in to the console at level 2 (password, then TOTP). */
async function staffSignIn(r: { pin: string }): Promise<Page> {
  const page = await newPage();
  await page.goto(`${service.url}/admin`);
  await passwordStep(page, r.pin);
  await page.locator('#code').fill(await codes.get(r.pin)!());
  await page.locator('form[action$="/otp"] button[type=submit]').click();
  await page.waitForURL((u) => u.pathname === '/admin');
  return page;
}

describe('who gets in', () => {
  it('a level-1 session is refused the console (the sign-in asks for level 2)', async () => {
    const page = await newPage();
    await page.goto(`${service.url}/admin`);
    await passwordStep(page, LEVEL1.pin);
    // The provider cannot reach level 2 for this account: its page, then back to the console's refusal.
    await page.locator('form[action$="/unmet"] button').click();
    await page.getByRole('heading', { name: 'Cần đăng nhập mức 2' }).waitFor();
    await accessible(page, 'need-level2');
    const res = await page.goto(`${service.url}/admin/citizens`);
    assert.notEqual(new URL(page.url()).pathname, '/admin/citizens', 'never shown the officer area');
    assert.ok(res);
  });

  it('a level-2 account without a staff role gets a 403 page, audited', async () => {
    const page = await newPage();
    await page.goto(`${service.url}/admin`);
    await passwordStep(page, NOSTAFF.pin);
    await page.locator('#code').fill(await codes.get(NOSTAFF.pin)!());
    await page.locator('form[action$="/otp"] button[type=submit]').click();
    await page.getByRole('heading', { name: 'Không có quyền truy cập' }).waitFor();
    const res = await page.goto(`${service.url}/admin`);
    assert.equal(res?.status(), 403);
    await accessible(page, 'not-staff');
    const denied = (await events('admin.denied')).filter((e) => e.actor_id === null || e.reason === 'not_staff');
    assert.ok(denied.length >= 1, 'audited');
    assert.equal(denied.at(-1)!.outcome, 'failure');
  });
});

describe('officer', () => {
  let page: Page;
  it('verifies a citizen in person (confirmation names the citizen); the citizen redeems the code and reaches level 2', async () => {
    page = await staffSignIn(OFFICER);
    await accessible(page, 'home-officer');
    assert.deepEqual(await page.locator('header nav a').allTextContents(), ['Công dân'], 'only the areas of the role');
    await page.getByRole('link', { name: 'Công dân' }).first().click();
    await accessible(page, 'officer-lookup');
    await page.locator('#pin').fill(CITIZEN.pin);
    await page.getByRole('button', { name: 'Tra cứu' }).click();
    await page.getByRole('heading', { name: `Công dân: ${CITIZEN.fullName}` }).waitFor();
    assert.ok(!page.url().includes(CITIZEN.pin), 'the personal ID is not in the URL');
    await accessible(page, 'officer-citizen');
    await page.getByRole('button', { name: 'Xác minh trực tiếp (cấp mã kích hoạt mức 2)' }).click();
    await page.getByRole('heading', { name: 'Xác nhận thao tác' }).waitFor();
    await page.getByText(CITIZEN.fullName).waitFor();
    await accessible(page, 'officer-confirm');
    await page.getByLabel('Tôi đã đối chiếu giấy tờ tùy thân').check();
    await page.getByRole('button', { name: 'Xác nhận' }).click();
    const code = (await page.locator('#one-time-code').textContent())!.trim();
    assert.ok(code.length >= 8, 'an activation code is shown');
    await accessible(page, 'officer-code');
    const verified = await events('account.verified_in_person');
    assert.equal(verified.length, 1);
    assert.equal(verified[0]!.actor_id, await accountIdOf(OFFICER.pin));
    assert.deepEqual([verified[0]!.details.role, verified[0]!.details.via], ['officer', 'console']);
    assert.ok(verified[0]!.ip, 'with the IP');

    // The citizen, at home: /account, the code, then an authenticator.
    const citizen = await newPage();
    await citizen.goto(`${service.url}/account`);
    await passwordStep(citizen, CITIZEN.pin);
    await citizen.waitForURL((u) => u.pathname === '/account');
    await citizen.locator('form[action="/account/activate"] #code').fill(code);
    await citizen.locator('form[action="/account/activate"] button').click();
    await citizen.waitForURL((u) => u.pathname === '/account/totp');
    const secret = (await citizen.locator('main code').first().textContent())!.replace(/\s/g, '');
    await citizen.locator('#code').fill(await currentTotp(secret, Math.floor(Date.now() / 30000) * 30));
    await citizen.locator('form[action="/account/totp"] button').click();
    await citizen.locator('ul.codes').waitFor();
    const { rows } = await sql<{
      level: number;
    }>`select level from accounts where id = ${await accountIdOf(CITIZEN.pin)}`.execute(service.db);
    assert.equal(rows[0]!.level, 2, 'the citizen reached level 2');
  });

  it('an officer scoped to province 001 is refused a citizen of 079, and the attempt is audited', async () => {
    const viewed = (await events('account.viewed')).length;
    await page.goto(`${service.url}/admin/citizens`);
    await page.locator('#pin').fill(ELSEWHERE.pin);
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/citizens/lookup')),
      page.getByRole('button', { name: 'Tra cứu' }).click(),
    ]);
    assert.equal(res.status(), 403);
    await page.getByRole('heading', { name: 'Không có quyền truy cập' }).waitFor();
    await accessible(page, 'denied');
    const denied = (await events('admin.denied')).at(-1)!;
    assert.equal(denied.actor_id, await accountIdOf(OFFICER.pin));
    assert.deepEqual([denied.outcome, denied.details.capability], ['failure', 'accounts.read']);
    assert.equal((await events('account.viewed')).length, viewed, 'nothing was looked up');
  });

  it('the officer cannot open the security desk (403, audited)', async () => {
    const res = await page.goto(`${service.url}/admin/security`);
    assert.equal(res?.status(), 403);
    assert.equal((await events('admin.denied')).at(-1)!.details.capability, 'keys.read');
  });

  /** Looks CITIZEN2 up, picks the act, checks the confirmation names the citizen, confirms; the result's response. */
  async function officerAct(button: string, shot?: string) {
    await page.goto(`${service.url}/admin/citizens`);
    await page.locator('#pin').fill(CITIZEN2.pin);
    await page.getByRole('button', { name: 'Tra cứu' }).click();
    await page.getByRole('button', { name: button }).click();
    await page.getByRole('heading', { name: 'Xác nhận thao tác' }).waitFor();
    await page.getByText(CITIZEN2.fullName).waitFor();
    await page.locator('main strong', { hasText: button }).waitFor();
    if (shot) await accessible(page, shot);
    await page.getByLabel('Tôi đã đối chiếu giấy tờ tùy thân').check();
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/citizens/act')),
      page.getByRole('button', { name: 'Xác nhận' }).click(),
    ]);
    await page.getByRole('heading', { name: 'Đã thực hiện' }).waitFor();
    return res;
  }
  const accountRow = async (pin: string) =>
    (
      await sql<{ status: string; level: number }>`select status, level from accounts
      where id = ${await accountIdOf(pin)}`.execute(service.db)
    ).rows[0]!;

  it('issues a password-reset code: shown once (no-store), never in the audit trail', async () => {
    const res = await officerAct('Cấp mã đặt lại mật khẩu', 'officer-confirm-reset');
    assert.equal(res.headers()['cache-control'], 'no-store');
    const code = (await page.locator('#one-time-code').textContent())!.trim();
    assert.ok(code.length >= 8, 'a reset code is shown');
    await page.getByText('/recover/officer').first().waitFor();
    await accessible(page, 'officer-reset-code');
    const issued = (await events('account.reset_password')).at(-1)!;
    assert.equal(issued.actor_id, await accountIdOf(OFFICER.pin));
    assert.ok(!JSON.stringify(issued).includes(code), 'the code is not in the trail');
  });

  it('suspends, then reactivates the account, each after its confirmation', async () => {
    await officerAct('Tạm khóa tài khoản');
    await page.getByText('Tài khoản đã bị tạm khóa').waitFor();
    assert.equal((await accountRow(CITIZEN2.pin)).status, 'suspended');
    await officerAct('Mở lại tài khoản');
    await page.getByText('Tài khoản đã được mở lại.').waitFor();
    assert.equal((await accountRow(CITIZEN2.pin)).status, 'active');
    assert.equal((await events('account.suspend')).at(-1)!.details.via, 'console');
    assert.equal((await events('account.reactivate')).length, 1);
  });

  it('resets the second factor (back to level 1) and lifts a sign-in lock', async () => {
    assert.equal((await accountRow(CITIZEN2.pin)).level, 2);
    await officerAct('Gỡ ứng dụng xác thực (mất điện thoại)');
    await page.getByText('Đã gỡ ứng dụng xác thực').waitFor();
    assert.equal((await accountRow(CITIZEN2.pin)).level, 1);
    await officerAct('Gỡ khóa đăng nhập tạm thời');
    await page.getByText('Đã gỡ khóa đăng nhập tạm thời.').waitFor();
    const unlocked = (await events('account.unlocked')).at(-1)!;
    assert.deepEqual([unlocked.actor_id, unlocked.details.role], [await accountIdOf(OFFICER.pin), 'officer']);
  });
});

describe('security desk', () => {
  let page: Page;
  it('rotates a signing key: the list gains a staged key, audited', async () => {
    page = await staffSignIn(SECURITY);
    await page.goto(`${service.url}/admin/security`);
    await accessible(page, 'security');
    const before = await page.locator('table.data tbody tr').count();
    await page.locator('#rotate-alg').selectOption('ES256');
    await page.getByRole('button', { name: 'Xoay khóa', exact: true }).click();
    await page.getByText('Đã cập nhật khóa ký.').waitFor();
    await accessible(page, 'security-done');
    const staged = (await page.locator('main p.ok code').textContent())!.trim();
    await page.goto(`${service.url}/admin/security`);
    assert.equal(await page.locator('table.data tbody tr').count(), before + 1);
    // KEY_PUBLISH_LEAD_SECONDS=0 here: the rotated key signs at once.
    await page.locator('table.data tbody tr', { hasText: staged }).getByText('Đang ký').waitFor();
    const rotated = await events('key.rotated');
    assert.equal(rotated.length, 1);
    assert.equal(rotated[0]!.details.role, 'security');
  });

  it('revoking asks for the key id typed again', async () => {
    await page.locator('table.data tbody tr').first().getByRole('button', { name: 'Thu hồi' }).click();
    await page.getByRole('heading', { name: 'Thu hồi khóa ký' }).waitFor();
    await accessible(page, 'security-revoke');
    await page.locator('#typed').fill('not-the-kid');
    await page.getByRole('button', { name: 'Thu hồi' }).click();
    await page.getByText('Mã khóa gõ lại không khớp.').waitFor();
    assert.equal((await events('key.revoked')).length, 0);
  });

  it('generates, activates, retires and revokes (typed) a key; rotates cookie keys; all audited', async () => {
    const desk = `${service.url}/admin/security`;
    const row = (kid: string) => page.locator('table.data tbody tr', { hasText: kid });
    const generate = async () => {
      await page.goto(desk);
      await page.locator('#generate-alg').selectOption('ES256');
      await page.getByRole('button', { name: 'Tạo khóa chờ' }).click();
      await page.getByText('Đã cập nhật khóa ký.').waitFor();
      return (await page.locator('main p.ok code').textContent())!.trim();
    };
    const first = await generate();
    await page.goto(desk);
    await row(first).getByText('Chờ kích hoạt').waitFor();
    await row(first).getByRole('button', { name: 'Kích hoạt' }).click();
    await page.getByText('Đã cập nhật khóa ký.').waitFor();
    await page.goto(desk);
    await row(first).getByText('Đang ký').waitFor();
    // Retiring needs a staged successor: it takes over.
    const second = await generate();
    await page.goto(desk);
    await row(first).getByRole('button', { name: 'Cho nghỉ' }).click();
    await page.getByText('Đã cập nhật khóa ký.').waitFor();
    await page.goto(desk);
    await row(first).getByText('Đã nghỉ (vẫn xác minh)').waitFor();
    await row(second).getByText('Đang ký').waitFor();
    await row(first).getByRole('button', { name: 'Thu hồi' }).click();
    await page.locator('#typed').fill(first);
    await page.getByRole('button', { name: 'Thu hồi' }).click();
    await page.getByText('Đã cập nhật khóa ký.').waitFor();
    await page.goto(desk);
    await row(first).getByText('Đã thu hồi', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Xoay khóa cookie' }).click();
    await page.getByText('Đã tạo thế hệ khóa cookie mới:').waitFor();
    assert.deepEqual(
      [
        (await events('key.generated')).length,
        (await events('key.activated')).at(-1)!.details.kid,
        (await events('key.retired')).at(-1)!.details.kid,
        (await events('key.revoked')).at(-1)!.details.kid,
        (await events('key.cookies_rotated')).at(-1)!.details.role,
      ],
      [2, first, first, first, 'security'],
    );
    const { rows } = await sql<{ kid: string; state: string }>`select kid, state from signing_keys
      where kid in (${first}, ${second}) order by kid`.execute(service.db);
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.kid, r.state])), { [first]: 'revoked', [second]: 'active' });
  });

  it('verifies the audit chain now; the desk shows the last verification', async () => {
    await page.goto(`${service.url}/admin/security`);
    await page.getByRole('button', { name: 'Kiểm tra ngay' }).click();
    await page.locator('#chain-result.ok').waitFor();
    await page.goto(`${service.url}/admin/security`);
    assert.doesNotMatch(
      (await page.locator('main').textContent()) ?? '',
      /Lần kiểm tra thành công gần nhất: Chưa bao giờ/,
    );
  });
});

describe('agency onboarding', () => {
  let agencyPage: Page;
  let clientId: string;
  let portal: oidc.Configuration;
  let securityPage: Page;

  it('an agency admin registers a sandbox portal (public, PKCE); the client id is shown', async () => {
    agencyPage = await staffSignIn(AGENCY);
    const page = agencyPage;
    assert.deepEqual(await page.locator('header nav a').allTextContents(), ['Cổng dịch vụ']);
    await page.goto(`${service.url}/admin/agency`);
    await page.getByText(TEST_L1.password).waitFor();
    await accessible(page, 'agency');
    await page.getByRole('link', { name: 'Đăng ký cổng mới' }).click();
    await accessible(page, 'agency-register');
    await page.locator('#name').fill('Cổng đặt lịch khám bệnh');
    await page.locator('#redirect_uris').fill(DEMO_REDIRECT);
    await page.locator('input[name=auth_method][value=none]').check();
    await page.locator('input[name=scope][value=email]').check();
    await page.getByRole('button', { name: 'Đăng ký cổng mới' }).click();
    await page.getByRole('heading', { name: 'Đã đăng ký cổng' }).waitFor();
    await accessible(page, 'agency-registered');
    clientId = (await page.locator('code.secret').textContent())!.trim();
    const stored = await sql<{ metadata: Record<string, unknown> }>`select metadata from clients
      where client_id = ${clientId}`.execute(service.db);
    assert.equal(stored.rows[0]!.metadata.dinhdanh_environment, 'sandbox');
    assert.equal(stored.rows[0]!.metadata.dinhdanh_agency, 'so-y-te');
    const registered = (await events('client.registered')).at(-1)!;
    assert.deepEqual([registered.client_id, registered.details.via], [clientId, 'console']);
  });

  it('a test citizen signs in to the sandbox portal; a real resident is refused (access_denied)', async () => {
    portal = await oidc.discovery(new URL(service.url), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const start = async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(portal, {
        redirect_uri: DEMO_REDIRECT,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      return { url, verifier, state };
    };
    const ok = await start();
    const callback = await loginThrough(new Agent(), ok.url.toString(), TEST_L1.pin, TEST_L1.password);
    const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
      pkceCodeVerifier: ok.verifier,
      expectedState: ok.state,
    });
    const sub = tokens.claims()!.sub;
    assert.ok(sub, 'a sandbox ID token for the test citizen');
    const info = await oidc.fetchUserInfo(portal, tokens.access_token, sub);
    assert.equal(info.name, 'Công Dân Thử Một');

    const refused = await start();
    const back = await loginThrough(new Agent(), refused.url.toString(), DEMO_PIN, 'demo-password-2026');
    assert.equal(new URL(back).searchParams.get('error'), 'access_denied', 'a real resident never reaches it');
  });

  it('usage per portal shows the sign-ins of today', async () => {
    const page = agencyPage;
    await page.goto(`${service.url}/admin/agency`);
    await page.getByRole('link', { name: 'Thống kê sử dụng' }).click();
    await page.locator('#usage').waitFor();
    await accessible(page, 'agency-usage');
    const today = page.locator('#usage tbody tr').first().locator('td');
    assert.ok(Number(await today.nth(1).textContent()) >= 1, 'level-1 sign-ins today');
    assert.ok(Number(await page.locator('#active-grants').textContent()) >= 1, 'the test citizen’s grant');
  });

  it('requests production with a reason; security approves it with a reason (audited)', async () => {
    const page = agencyPage;
    await page.goto(`${service.url}/admin/agency`);
    await page.getByLabel('Lý do, dịch vụ và ngày dự kiến').fill('Khai trương dịch vụ đặt lịch ngày 1/1');
    await page.getByRole('button', { name: 'Đề nghị đưa vào vận hành' }).click();
    await page.getByText('Đã gửi đề nghị').waitFor();
    assert.equal((await events('client.production_requested')).at(-1)!.client_id, clientId);

    securityPage = await staffSignIn(SECURITY);
    const security = securityPage;
    await security.goto(`${service.url}/admin/security`);
    const card = security.locator('.card', { hasText: clientId });
    await card.getByText('Khai trương dịch vụ đặt lịch').waitFor();
    await accessible(security, 'security-pending');
    await card.getByLabel('Lý do').fill('Đã kiểm tra cấu hình và hợp đồng');
    await card.getByRole('button', { name: 'Duyệt đưa vào vận hành' }).click();
    await security.getByText('Cổng đã được đưa vào vận hành.').waitFor();
    const approved = (await events('client.approved')).at(-1)!;
    assert.deepEqual(
      [approved.client_id, approved.reason, approved.details.role],
      [clientId, 'Đã kiểm tra cấu hình và hợp đồng', 'security'],
    );
    const stored = await sql<{ metadata: Record<string, unknown> }>`select metadata from clients
      where client_id = ${clientId}`.execute(service.db);
    assert.equal(stored.rows[0]!.metadata.dinhdanh_environment, undefined, 'in production');
  });

  const metadata = async () =>
    (
      await sql<{ metadata: Record<string, unknown> }>`select metadata from clients
      where client_id = ${clientId}`.execute(service.db)
    ).rows[0]!.metadata;
  const card = () => agencyPage.locator('.card', { hasText: clientId });

  it("edits the portal (a bad value, or a production portal's redirect URIs, refused with the form); disables and enables it", async () => {
    const page = agencyPage;
    await page.goto(`${service.url}/admin/agency`);
    await card().getByRole('link', { name: 'Sửa' }).click();
    await page.getByRole('heading', { name: 'Sửa cổng: Cổng đặt lịch khám bệnh' }).waitFor();
    await accessible(page, 'agency-edit');
    // In production: where its codes go is security staff's decision.
    await page.locator('#redirect_uris').fill(`${DEMO_REDIRECT}\nhttp://127.0.0.1:8089/callback`);
    const [moved] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/agency/edit')),
      page.getByRole('button', { name: 'Lưu thay đổi' }).click(),
    ]);
    assert.equal(moved.status(), 403);
    await page.locator('#form-error').waitFor();
    assert.match((await page.locator('#form-error').textContent()) ?? '', /security staff/);
    await page.locator('#redirect_uris').fill(DEMO_REDIRECT);
    await page.locator('#post_logout').fill('ftp://example.vn/out');
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/agency/edit')),
      page.getByRole('button', { name: 'Lưu thay đổi' }).click(),
    ]);
    assert.equal(refused.status(), 400);
    await page.locator('#form-error').waitFor();
    await accessible(page, 'agency-edit-error');
    const out = 'http://127.0.0.1:8089/signed-out';
    await page.locator('#post_logout').fill(out);
    await page.getByRole('button', { name: 'Lưu thay đổi' }).click();
    await page.getByText('Đã lưu thay đổi của cổng.').waitFor();
    assert.deepEqual((await metadata()).post_logout_redirect_uris, [out]);
    assert.deepEqual((await metadata()).redirect_uris, [DEMO_REDIRECT]);
    const updated = (await events('client.updated')).at(-1)!;
    assert.deepEqual(
      [updated.client_id, updated.details.changed, updated.details.role],
      [clientId, ['post_logout_redirect_uris'], 'agency_admin'],
    );

    await page.goto(`${service.url}/admin/agency`);
    await card().getByRole('button', { name: 'Vô hiệu hóa cổng' }).click();
    await page.getByText('Cổng đã bị vô hiệu hóa').waitFor();
    assert.equal((await metadata()).dinhdanh_disabled, true);
    await page.goto(`${service.url}/admin/agency`);
    await card().getByText('Đã vô hiệu hóa').waitFor();
    await card().getByRole('button', { name: 'Bật lại cổng' }).click();
    await page.getByText('Cổng đã được bật lại.').waitFor();
    assert.equal((await metadata()).dinhdanh_disabled, undefined);
    assert.deepEqual(
      [(await events('client.disabled')).at(-1)!.client_id, (await events('client.enabled')).at(-1)!.client_id],
      [clientId, clientId],
    );
  });

  it('asks for national_id with a reason; security approves it (reason recorded) and the scope includes it', async () => {
    const page = agencyPage;
    await page.goto(`${service.url}/admin/agency/edit?client=${clientId}`);
    await page.getByLabel('Phạm vi national_id (số định danh cá nhân)').check();
    await page.locator('#ask-reason').fill('Hồ sơ khám bệnh cần số định danh theo Nghị định 59/2022');
    await page.getByRole('button', { name: 'Gửi đề nghị' }).click();
    await page.getByText('Đã gửi đề nghị').waitFor();
    const asked = (await events('client.change_requested')).at(-1)!;
    assert.deepEqual([asked.client_id, asked.details.scopes], [clientId, ['national_id']]);
    assert.doesNotMatch(String((await metadata()).scope), /national_id/, 'nothing granted by asking');

    const security = securityPage;
    await security.goto(`${service.url}/admin/security`);
    const request = security.locator('.card', { hasText: clientId });
    await request.getByText('Nghị định 59/2022').waitFor();
    await accessible(security, 'security-change-request');
    await request.getByLabel('Lý do duyệt').fill('Đã đối chiếu căn cứ pháp lý');
    await request.getByRole('button', { name: 'Duyệt đề nghị' }).click();
    await security.getByText('Đã duyệt đề nghị của cổng.').waitFor();
    const approved = (await events('client.change_approved')).at(-1)!;
    assert.deepEqual(
      [approved.client_id, approved.reason, approved.details.role],
      [clientId, 'Đã đối chiếu căn cứ pháp lý', 'security'],
    );
    assert.ok(
      String((await metadata()).scope)
        .split(' ')
        .includes('national_id'),
      'the scope includes national_id',
    );
    await security.goto(`${service.url}/admin/security`);
    await security.getByText('Không có đề nghị nào đang chờ.').waitFor();
  });
});

describe('admin area', () => {
  it('lists staff, grants and revokes a role (audited)', async () => {
    const page = await staffSignIn(ADMIN);
    await page.goto(`${service.url}/admin/staff`);
    await accessible(page, 'staff');
    await page.locator('#grant-pin').fill(NOSTAFF.pin);
    await page.locator('#grant-role').selectOption('auditor');
    await page.getByRole('button', { name: 'Cấp vai trò' }).click();
    await page.getByText('Đã cấp vai trò.').waitFor();
    const granted = (await events('staff.granted')).at(-1)!;
    assert.equal(granted.details.granted, 'auditor');
    await page.goto(`${service.url}/admin/staff`);
    const row = page.locator('tr', { hasText: NOSTAFF.fullName });
    await row.getByRole('button', { name: 'Thu hồi vai trò' }).click();
    await page.getByText('Đã thu hồi vai trò.').waitFor();
    assert.equal((await events('staff.revoked')).at(-1)!.details.revoked, 'auditor');
  });
});

describe('auditor', () => {
  let page: Page;
  const seqs = async () =>
    await page
      .locator('#events tbody tr')
      .evaluateAll((rows) => rows.map((r) => Number((r as unknown as { dataset: { seq: string } }).dataset.seq)));

  it("searches the trail by actor and action (finds the officer's act), then pages with the cursor", async () => {
    page = await staffSignIn(AUDITOR);
    assert.deepEqual(await page.locator('header nav a').allTextContents(), ['An ninh', 'Nhật ký']);
    await page.getByRole('link', { name: 'Nhật ký' }).first().click();
    await page.locator('#events').waitFor();
    await accessible(page, 'audit-search');
    const officer = await accountIdOf(OFFICER.pin);
    await page.locator('#f-actor').fill(officer);
    await page.locator('#f-action').fill('account.verified_in_person');
    await page.locator('form[method=get] button[type=submit]').click();
    await page.waitForURL((u) => u.searchParams.get('actor') === officer);
    assert.equal(await page.locator('#events tbody tr').count(), 1);
    await page.locator('#events tbody tr', { hasText: 'account.verified_in_person' }).waitFor();

    await page.goto(`${service.url}/admin/audit`);
    const first = await seqs();
    assert.equal(first.length, 25, 'a full first page');
    assert.deepEqual(
      first,
      [...first].sort((a, b) => b - a),
      'newest first',
    );
    await page.locator('#next-page').click();
    await page.waitForURL((u) => u.searchParams.get('cursor') === String(first.at(-1)));
    const second = await seqs();
    assert.ok(second.length > 0 && second[0]! < first.at(-1)!, 'the next page continues where the first ended');
  });

  it('a personal ID is searched through a POST form (never in the URL), and the search is recorded', async () => {
    await page.goto(`${service.url}/admin/audit?subject=${CITIZEN.pin}`);
    await page.getByText('Không nhập số định danh cá nhân vào bộ lọc này').first().waitFor();
    await page.goto(`${service.url}/admin/audit`);
    // The GET filter refuses one in the browser already (pattern), so it never reaches a URL.
    await page.locator('#f-subject').fill(CITIZEN.pin);
    await page.locator('form[method=get] button[type=submit]').click();
    assert.equal(
      await page
        .locator('#f-subject')
        .evaluate((e) => (e as unknown as { validity: { patternMismatch: boolean } }).validity.patternMismatch),
      true,
    );
    assert.ok(!page.url().includes(CITIZEN.pin));
    await page.locator('#audit-pin').fill(CITIZEN.pin);
    await page.locator('form[action="/admin/audit/person"] button').click();
    await page.getByRole('heading', { name: 'Tra cứu theo số định danh cá nhân' }).waitFor();
    assert.ok(!page.url().includes(CITIZEN.pin), 'not in the URL');
    await page.locator('#events tbody tr', { hasText: 'account.verified_in_person' }).waitFor();
    await accessible(page, 'audit-person');
    const searched = (await events('audit.searched')).at(-1)!;
    assert.deepEqual([searched.actor_id, searched.details.role], [await accountIdOf(AUDITOR.pin), 'auditor']);
  });

  it('lists registry import runs and the audit chain status; verifies now', async () => {
    await recordEvent(service.db, {
      actor: { type: 'operator', id: 'ops' },
      action: 'registry.imported',
      outcome: 'success',
      details: {
        file: 'dan-cu-2026-01.csv',
        format: 'csv',
        inserted: 12,
        updated: 3,
        rejected: 1,
        disabledAccounts: 0,
      },
    });
    await page.goto(`${service.url}/admin/audit/imports`);
    await page.locator('#imports tbody tr', { hasText: 'dan-cu-2026-01.csv' }).waitFor();
    await accessible(page, 'audit-imports');
    await page.getByRole('link', { name: 'Chuỗi nhật ký' }).click();
    await page.locator('#chain-status.ok').waitFor();
    await accessible(page, 'audit-chain');
    await page.getByRole('button', { name: 'Kiểm tra ngay' }).click();
    await page.locator('#chain-result.ok').waitFor();
    assert.equal((await events('audit.verified')).at(-1)!.outcome, 'success');
  });

  it('is refused the officer area (403, audited)', async () => {
    const res = await page.goto(`${service.url}/admin/citizens`);
    assert.equal(res?.status(), 403);
    const denied = (await events('admin.denied')).at(-1)!;
    assert.deepEqual([denied.actor_id, denied.details.capability], [await accountIdOf(AUDITOR.pin), 'accounts.read']);
  });
});
