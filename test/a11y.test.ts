/**
 * The citizen's enrollment and recovery pages in Chromium, at a phone's width (375 px) and a desktop's (1280 px):
 * axe-core (WCAG 2.x A and AA rules) finds no violation, and nothing is wider than the screen. Screenshots go to
 * .tmp/screenshots for a person to look at.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createAccount } from '../src/accounts/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import type { Service } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { accessibilityOf, launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { startTestService } from './helpers/service.ts';
import { lastSms } from './helpers/sms.ts';

const SHOTS = path.resolve(import.meta.dirname, '../.tmp/screenshots');

let database: TestDatabase;
let service: Service;
let browser: Browser;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  await insertResidents(service.db, [
    {
      pin: '001090000401',
      fullName: 'Đặng Văn Xem',
      familyName: 'Đặng',
      middleName: 'Văn',
      givenName: 'Xem',
      birthDate: '1990-04-01',
      sex: 'male',
      placeOfOrigin: null,
      permanentResidence: null,
      currentResidence: null,
      phone: '+84912000401',
    },
    {
      pin: '001090000402',
      fullName: 'Đặng Văn Quên',
      familyName: 'Đặng',
      middleName: 'Văn',
      givenName: 'Quên',
      birthDate: '1990-04-02',
      sex: 'male',
      placeOfOrigin: null,
      permanentResidence: null,
      currentResidence: null,
      phone: '+84912000402',
    },
  ]);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await createAccount(service.db, hasher, { pin: '001090000402', password: 'mật khẩu cũ đã quên' });
  browser = await launchChromium();
  mkdirSync(SHOTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await service?.close();
  await database?.drop();
});

/** axe's violations on the page (the CSP is bypassed for axe's own script only, in this test context). */
async function audit(page: Page, name: string, width: number) {
  const { violations, overflow } = await accessibilityOf(page);
  await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
  assert.deepEqual(violations, [], `${name} at ${width} px: axe`);
  assert.ok(overflow <= 0, `${name} at ${width} px: ${overflow} px wider than the screen`);
}

describe('enrollment and recovery pages', () => {
  for (const width of [375, 1280]) {
    it(`pass axe and fit the screen at ${width} px`, async () => {
      const context = await browser.newContext({ locale: 'vi-VN', viewport: { width, height: 800 }, bypassCSP: true });
      try {
        const page = await context.newPage();
        await page.goto(`${service.url}/enroll`);
        await audit(page, 'enroll', width);
        await page.getByLabel('Số định danh cá nhân').fill('001090000401');
        await page.getByLabel('Họ và tên').fill('Đặng Văn Xem');
        await page.getByLabel('Ngày sinh').fill('01/04/1990');
        await page.getByLabel('Mật khẩu mới').fill('một mật khẩu dài');
        await page.getByRole('button', { name: 'Đăng ký' }).click();
        await page.getByText('..01').waitFor();
        await audit(page, 'enroll-code', width);
        await page.getByLabel('Mã xác thực').fill('000000');
        await page.getByRole('button', { name: 'Xác nhận' }).click();
        await page.getByRole('alert').waitFor();
        await audit(page, 'enroll-code-wrong', width);

        await page.goto(`${service.url}/recover`);
        await audit(page, 'recover', width);
        await page.goto(`${service.url}/recover/officer`);
        await audit(page, 'recover-officer', width);
        await page.goto(`${service.url}/recover`);
        await page.getByLabel('Số định danh cá nhân').fill('001090000402');
        await page.getByLabel('Họ và tên').fill('Đặng Văn Quên');
        await page.getByLabel('Ngày sinh').fill('02/04/1990');
        await page.getByRole('button', { name: 'Gửi mã' }).click();
        await page.getByText('..02').waitFor();
        await page.getByLabel('Mã xác thực').fill((await lastSms(service.db, '+84912000402')).code!);
        await page.getByRole('button', { name: 'Xác nhận' }).click();
        await page.getByLabel('Mật khẩu mới').waitFor();
        await audit(page, 'recover-password', width);
        await page.getByLabel('Mật khẩu mới').fill('password');
        await page.getByRole('button', { name: 'Xác nhận' }).click();
        await page.getByRole('alert').waitFor();
        await audit(page, 'recover-password-weak', width);
      } finally {
        await context.close();
      }
    });
  }
});

describe('every other citizen page, in both languages', () => {
  for (const lang of ['vi', 'en'] as const) {
    for (const width of [320, 1280]) {
      it(`passes axe and fits the screen: ${lang} at ${width} px`, async () => {
        const context = await browser.newContext({
          locale: lang === 'vi' ? 'vi-VN' : 'en-GB',
          viewport: { width, height: 800 },
          bypassCSP: true,
        });
        try {
          const page = await context.newPage();
          for (const path of ['/', '/help', '/privacy', '/terms', '/accessibility', '/recover/officer', '/no/such']) {
            await page.goto(`${service.url}${path}?lang=${lang}`);
            await audit(page, `${path.replace(/\W+/g, '-') || 'home'}-${lang}`, width);
          }
          // Sign in through /account: the login page, then the account page itself.
          await page.goto(`${service.url}/account?lang=${lang}`);
          await page.locator('#pin').waitFor();
          await audit(page, `login-${lang}`, width);
          await page.locator('#pin').fill('001090000402');
          await page.locator('#password').fill('mật khẩu cũ đã quên');
          await page.locator('form[action$="/login"] button[type=submit]').click();
          await page.waitForURL(/\/account(\?|$)/);
          await audit(page, `account-${lang}`, width);
        } finally {
          await context.close();
        }
      });
    }
  }
});

describe('the keyboard alone', () => {
  it('signs in and consents to a portal with Tab, typing and Enter', async () => {
    const { authorizationRequest, demoPortal } = await import('./helpers/flow.ts');
    const { url } = await authorizationRequest(await demoPortal(service.url), { prompt: 'consent' });
    const context = await browser.newContext({ locale: 'vi-VN' });
    try {
      const page = await context.newPage();
      const redirected = new Promise<string>((resolve) =>
        page.on('request', (r) => r.url().startsWith('http://localhost:3001/callback') && resolve(r.url())),
      );
      await page.route('http://localhost:3001/**', (route) => route.fulfill({ status: 200, body: 'portal' }));
      await page.goto(url.toString());
      await page.locator('#pin').waitFor();
      // From the top of the page: Tab until the personal ID field has focus, type, Tab to the password, Enter.
      for (
        let i = 0;
        i < 10 && !(await page.evaluate(() => (globalThis as any).document.activeElement?.id === 'pin'));
        i++
      )
        await page.keyboard.press('Tab');
      await page.keyboard.type('001090012345');
      await page.keyboard.press('Tab');
      await page.keyboard.type('demo-password-2026');
      await page.keyboard.press('Enter');
      // The consent page: Tab to "Allow" and press Enter.
      await page.locator('form[action$="/consent"]').waitFor();
      for (
        let i = 0;
        i < 15 &&
        !(await page.evaluate(() =>
          (globalThis as any).document.activeElement?.closest?.('form')?.getAttribute('action')?.endsWith('/consent'),
        ));
        i++
      )
        await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      assert.match(await redirected, /[?&]code=/);
    } finally {
      await context.close();
    }
  });
});
