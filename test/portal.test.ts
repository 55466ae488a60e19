/**
 * The example portal agencies copy (examples/portal), in Chromium. Invariants: at a small phone's width (320 px) and
 * a desktop's (1280 px) its pages — signed out, signed in, signed out again, a failed login — pass axe-core (WCAG 2.x
 * A and AA), in Vietnamese and, after the language switch, in English; nothing is wider than the screen; long values
 * (the pairwise `sub`) wrap over a few lines, never one letter per line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createPortal, type Portal } from '../examples/portal/app.ts';
import { readPortalConfig } from '../examples/portal/config.ts';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { accessibilityOf, launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './helpers/flow.ts';
import { freePort } from './helpers/process.ts';
import { startTestService } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;
let portal: Portal;
let browser: Browser;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const client = await addClient(service.db, {
    name: 'Cổng Dịch vụ công quốc gia',
    redirectUris: [`${base}/callback`],
    postLogoutRedirectUris: [`${base}/`],
    scopes: ['profile'],
  });
  portal = createPortal(
    readPortalConfig({
      PORTAL_NAME: 'Cổng Dịch vụ công quốc gia',
      PORT: String(port),
      ISSUER: service.url,
      CLIENT_ID: client.client_id,
      CLIENT_SECRET: client.client_secret,
    }),
  );
  await portal.listen();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await portal?.close();
  await service?.close();
  await database?.drop();
});

/** Asserts the page passes axe (the CSP is bypassed for axe's own script, in this test's context) and fits. */
async function check(page: Page, name: string, width: number) {
  const { violations, overflow: wider } = await accessibilityOf(page);
  assert.deepEqual(violations, [], `${name} at ${width} px: axe`);
  assert.ok(wider <= 0, `${name} at ${width} px: ${wider} px wider than the screen`);
}

describe('the example portal in a browser', () => {
  for (const width of [320, 1280]) {
    it(`passes axe and fits the screen at ${width} px, in Vietnamese and English`, async () => {
      const context = await browser.newContext({ locale: 'vi-VN', viewport: { width, height: 720 }, bypassCSP: true });
      context.setDefaultTimeout(15_000);
      try {
        const page = await context.newPage();
        const home = portal.config.baseUrl;
        await page.goto(home);
        assert.equal(await page.getAttribute('html', 'lang'), 'vi');
        await check(page, 'signed out (vi)', width);

        // Sign in at the provider; approve the consent page.
        await page.locator('#login').click();
        await page.fill('#pin', DEMO_PIN);
        await page.fill('#password', DEMO_PASSWORD);
        await page.locator('form[action$="/login"] button[type=submit]').click();
        await page.locator('form[action$="/consent"] button').first().click();
        await page.locator('#name').waitFor();
        assert.equal(new URL(page.url()).origin, new URL(home).origin);
        await check(page, 'signed in (vi)', width);

        // The pairwise `sub` wraps over a few lines; before the fix it took one line per letter at a phone's width.
        const sub = await page.evaluate(() => {
          const el = (
            globalThis as unknown as {
              document: { getElementById(id: string): { textContent: string; getClientRects(): { length: number } } };
            }
          ).document.getElementById('sub');
          return { length: el.textContent.length, lines: el.getClientRects().length };
        });
        assert.ok(sub.length >= 20, `a long sub (${sub.length} characters)`);
        assert.ok(sub.lines <= 3, `sub takes ${sub.lines} lines at ${width} px`);
        const height = await page.evaluate(
          () =>
            (globalThis as unknown as { document: { documentElement: { scrollHeight: number } } }).document
              .documentElement.scrollHeight,
        );
        assert.ok(height < 1600, `the signed-in page is ${height} px tall at ${width} px`);

        // The language switch: the same page in English, and the choice kept.
        await page.locator('#lang').click();
        await page.locator('html[lang="en"]').waitFor();
        assert.match((await page.locator('#status').textContent()) ?? '', /You are signed in as/);
        await check(page, 'signed in (en)', width);

        // Logout, confirmed at the provider; back on the portal, still in English.
        await page.locator('#logout').click();
        await page.locator('button[name="logout"]').click();
        await page.locator('#logged-out').waitFor();
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        await check(page, 'signed out after logout (en)', width);

        // A failed login's page (an answer this browser did not ask for), and its language switch.
        await page.goto(`${home}/callback?state=not-ours&code=x`);
        assert.equal(await page.locator('#error-code').textContent(), 'session_expired');
        await check(page, 'error (en)', width);
        await page.locator('#lang').click();
        await page.locator('html[lang="vi"]').waitFor();
        assert.equal(await page.locator('#error-code').textContent(), 'session_expired');
        await check(page, 'error (vi)', width);
      } finally {
        await context.close();
      }
    });
  }
});
