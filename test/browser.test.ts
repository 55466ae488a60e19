/**
 * Two agency portals (examples/portal) and dinhdanh in a real browser (Debian's Chromium via playwright-core).
 * Invariants: a citizen signed in at one portal reaches a second portal without typing a password again; signing out
 * at one portal ends the citizen's session at the other one too, by the provider's back-channel logout, which the
 * audit trail records; a portal that needs level 2 shows a clear page to a level-1 citizen.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import type { Browser, Page } from 'playwright-core';
import { createPortal, type Portal } from '../examples/portal/app.ts';
import { readPortalConfig } from '../examples/portal/config.ts';
import { connect, type DB } from '../src/db/index.ts';
import { launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './helpers/flow.ts';
import { cliJson, freePort, type NodeProcess, startNode } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The text of the first element matching `selector` (empty when absent). */
const text = async (page: Page, selector: string) => (await page.locator(selector).first().textContent()) ?? '';

let database: TestDatabase;
let db: Kysely<DB>;
let node: NodeProcess;
let env: Record<string, string>;
let issuer: string;
let browser: Browser;
const portals: Record<'a' | 'b' | 'land', Portal> = {} as never;
const logs: string[] = [];
const shots = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-browser-'));

const cli = (...args: string[]) => cliJson(env, ...args) as { client_id: string; client_secret: string };

/** Registers a portal with the CLI, as security staff would, and starts an instance of examples/portal for it. */
async function portal(key: keyof typeof portals, name: string, minLevel: 1 | 2): Promise<Portal> {
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const client = cli(
    'clients',
    'add',
    '--name',
    name,
    '--redirect-uri',
    `${base}/callback`,
    '--post-logout-redirect-uri',
    `${base}/`,
    '--backchannel-logout-uri',
    `${base}/backchannel-logout`,
    '--scopes',
    'openid profile',
    '--min-level',
    String(minLevel),
  );
  const config = readPortalConfig({
    PORTAL_NAME: name,
    PORT: String(port),
    ISSUER: issuer,
    CLIENT_ID: client.client_id,
    CLIENT_SECRET: client.client_secret,
    MIN_LEVEL: String(minLevel),
  });
  const p = createPortal(config, (event, details) => logs.push(`${key} ${event} ${JSON.stringify(details ?? {})}`));
  await p.listen();
  portals[key] = p;
  return p;
}

const url = (p: Portal, pathname = '/') => `${p.config.baseUrl}${pathname}`;

/** After a sign-in step: approves the provider's consent page if it is shown, until the portal's page is back. */
async function untilPortal(page: Page): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const consent = page.locator('form[action$="/consent"] button');
    await page.locator('#status, #error, form[action$="/consent"]').first().waitFor();
    if (!(await consent.count())) return;
    await consent.click();
  }
}

before(async () => {
  browser = await launchChromium();
  database = await freshDatabase();
  db = connect(database.url, 2);
  const port = await freePort();
  issuer = `http://localhost:${port}`;
  env = testEnv(database.url, { ISSUER: issuer, PORT: String(port), LOG_LEVEL: 'warn' });
  node = await startNode(env);
  await portal('a', 'Cổng Dịch vụ công quốc gia', 1);
  await portal('b', 'Cổng Bảo hiểm xã hội', 1);
  await portal('land', 'Cổng Đăng ký đất đai', 2);
});

after(async () => {
  await browser?.close();
  await Promise.all(Object.values(portals).map((p) => p.close()));
  await node?.stop();
  await db?.destroy();
  await database?.drop();
  rmSync(shots, { recursive: true, force: true });
});

describe('two portals in a browser', () => {
  it('single sign-on from portal A to portal B, then logout at B ends the session at A (back-channel)', async () => {
    const { a, b } = portals;
    const context = await browser.newContext({ locale: 'vi-VN' });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();

    // Portal A: signed out, sign in with personal ID and password, consent.
    await page.goto(url(a));
    assert.match(await text(page, '#status'), /Bạn chưa đăng nhập/);
    await page.getByText('Đăng nhập bằng định danh điện tử').click();
    await page.waitForURL(`${issuer}/interaction/**`);
    await page.fill('#pin', DEMO_PIN);
    await page.fill('#password', DEMO_PASSWORD);
    await page.locator('form[action$="/login"] button[type=submit]').click();
    await untilPortal(page);
    assert.equal(new URL(page.url()).origin, new URL(url(a)).origin);
    assert.equal(await text(page, '#name'), 'Nguyễn Văn An');
    assert.match(await text(page, 'main'), /urn:dinhdanh:loa:1/, 'the page shows the acr received');
    assert.equal(a.sessions.signedIn().length, 1, 'portal A keeps one signed-in session');
    assert.ok(a.sessions.signedIn()[0]!.user!.sid, 'the ID token named the provider session (sid)');

    const shot = path.join(shots, 'portal-a.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    assert.ok(png.length > 1000, 'a non-empty screenshot');
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');

    // Portal B in the same browser: no password asked (consent for B may be asked once).
    const pageB = await context.newPage();
    await pageB.goto(url(b));
    await pageB.locator('#login').click();
    await pageB.locator('#status, #error, form[action$="/consent"], #password').first().waitFor();
    assert.equal(await pageB.locator('#password').count(), 0, 'no password asked at the second portal');
    await untilPortal(pageB);
    assert.equal(await text(pageB, '#name'), 'Nguyễn Văn An');
    assert.equal(b.sessions.signedIn().length, 1);

    // A's back-channel endpoint refuses what is not a logout token: even the provider's signed ID token for A.
    for (const token of [a.sessions.signedIn()[0]!.user!.idToken, 'not-a-jwt']) {
      const res = await fetch(url(a, '/backchannel-logout'), {
        method: 'POST',
        body: new URLSearchParams({ logout_token: token }),
      });
      assert.equal(res.status, 400);
    }
    assert.equal(a.sessions.signedIn().length, 1, 'a refused token ends no session');

    // Logout at B, confirmed on the provider's page; B shows the completed logout.
    await pageB.locator('#logout').click();
    await pageB.waitForURL(`${issuer}/session/end**`);
    await pageB.locator('button[name="logout"]').click();
    await pageB.locator('#logged-out').waitFor();
    assert.equal(new URL(pageB.url()).origin, new URL(url(b)).origin);
    assert.equal(b.sessions.signedIn().length, 0, 'B ended its own session');

    // A learns of it through the back channel (queued delivery: poll with a generous deadline).
    let signedOut = false;
    for (const t0 = Date.now(); Date.now() - t0 < 30_000 && !signedOut; ) {
      await page.reload();
      signedOut = (await page.locator('#login').count()) === 1;
      if (!signedOut) await sleep(250);
    }
    const detail = `\nportal log:\n${logs.join('\n')}\nprovider output (tail):\n${node.output().slice(-3000)}`;
    assert.ok(signedOut, `portal A shows the citizen signed out after the logout at B${detail}`);
    assert.match(await text(page, '#status'), /Bạn chưa đăng nhập/);
    assert.equal(a.sessions.signedIn().length, 0, `portal A's session store is empty${detail}`);

    // The delivery to A is in the audit trail (recorded once A answered).
    let rows: { outcome: string }[] = [];
    for (
      const t0 = Date.now();
      Date.now() - t0 < 30_000 && !rows.some((r) => r.outcome === 'success');
      await sleep(200)
    ) {
      ({ rows } = await sql<{ outcome: string }>`
        select outcome from audit_events
        where action = 'backchannel_logout' and client_id = ${a.config.clientId}`.execute(db));
    }
    assert.ok(
      rows.some((r) => r.outcome === 'success'),
      `audit: backchannel_logout to A succeeded (${JSON.stringify(rows)})`,
    );
    await context.close();
  });

  it('a level-2 portal shows a level-1 citizen a clear page (unmet_authentication_requirements)', async () => {
    const { land } = portals;
    const context = await browser.newContext({ locale: 'vi-VN' });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    await page.goto(url(land));
    assert.match(await text(page, 'main'), /mức 2/);
    await page.locator('#login').click();
    await page.fill('#pin', DEMO_PIN);
    await page.fill('#password', DEMO_PASSWORD);
    await page.locator('form[action$="/login"] button[type=submit]').click();
    // The provider explains level 2, then sends the citizen back to the portal with the error.
    await page.locator('form[action$="/unmet"] button').click();
    await page.locator('#error').waitFor();
    assert.equal(new URL(page.url()).origin, new URL(url(land)).origin);
    assert.equal(await text(page, '#error-code'), 'unmet_authentication_requirements');
    assert.match(await text(page, '#error'), /yêu cầu tài khoản định danh điện tử mức 2/);
    assert.equal(land.sessions.signedIn().length, 0, 'nobody is signed in at the level-2 portal');
    await context.close();
  });
});
