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
/** The citizen the officer verifies in person. */
const CITIZEN = resident('001095000807', 'Hoàng Thị Công Dân', '1995-08-07', { phone: '+84912000807' });
/** A citizen of another province (079, Hồ Chí Minh City): outside the officer's scope. */
const ELSEWHERE = resident('079095000808', 'Lý Văn Xa', '1995-08-08', { phone: '+84912000808' });
const TEST_L1 = { pin: '001099000001', password: 'sandbox-level1-2026' };
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
  const config = loadConfig(testEnv(database.url));
  service = await startService(config);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  const all = [OFFICER, SECURITY, AGENCY, ADMIN, NOSTAFF, LEVEL1, CITIZEN, ELSEWHERE];
  await insertResidents(service.db, all);
  for (const r of all) await createAccount(service.db, hasher, { pin: r.pin, password: PASSWORD });
  for (const r of [OFFICER, SECURITY, AGENCY, ADMIN, NOSTAFF]) {
    const { nextCode } = await makeLevel2(service.db, loadMasterKey(config), r.pin, await accountIdOf(r.pin));
    codes.set(r.pin, nextCode);
  }
  await grantRole(service.db, { pin: OFFICER.pin, role: 'officer', provinces: ['001'] }, 'test');
  await grantRole(service.db, { pin: SECURITY.pin, role: 'security' }, 'test');
  await grantRole(service.db, { pin: AGENCY.pin, role: 'agency_admin', agency: 'so-y-te' }, 'test');
  await grantRole(service.db, { pin: ADMIN.pin, role: 'admin' }, 'test');
  await grantRole(service.db, { pin: LEVEL1.pin, role: 'officer' }, 'test');
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
    await page.goto(`${service.url}/admin/security`);
    assert.equal(await page.locator('table.data tbody tr').count(), before + 1);
    await page.getByText('Chờ kích hoạt').first().waitFor();
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

    const security = await staffSignIn(SECURITY);
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
