/**
 * `npm run screenshots`: every citizen page and the example portal's pages, in Vietnamese and English, at a small
 * phone's width (320 px), a phone's (375 px) and a desktop's (1280 px), as PNG files for a person to look at.
 *
 * A throwaway service: a fresh database on TEST_DATABASE_URL or DATABASE_URL when set (dropped at the end), else an
 * embedded PostgreSQL in a temporary DATA_DIR (removed at the end). Debian's Chromium through playwright-core (never
 * downloaded). SMS codes are read from the development outbox. A page wider than the screen is reported.
 *
 *   npm run screenshots [-- --out DIR] [--widths 320,375,1280] [--langs vi,en]
 *
 * Lives in bench/ (with the other tools run by npm scripts) so that typecheck and lint cover it.
 */
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { createPortal, type Portal } from '../examples/portal/app.ts';
import { readPortalConfig } from '../examples/portal/config.ts';
import { accountIdForPin, createAccount, issueActivationCode } from '../src/accounts/index.ts';
import { addClient } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { freshDatabase, type TestDatabase } from '../test/helpers/db.ts';
import { makeLevel2 } from '../test/helpers/level2.ts';
import { freePort } from '../test/helpers/process.ts';
import { resident } from '../test/helpers/residents.ts';
import { testEnv } from '../test/helpers/service.ts';
import { lastSms } from '../test/helpers/sms.ts';

type Lang = 'vi' | 'en';

const root = path.resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    out: { type: 'string', default: '.tmp/screenshots' },
    widths: { type: 'string', default: '320,375,1280' },
    langs: { type: 'string', default: 'vi,en' },
  },
});
const OUT = path.resolve(root, opts.out);
const WIDTHS = opts.widths.split(',').map(Number);
const LANGS = opts.langs.split(',').filter((l): l is Lang => l === 'vi' || l === 'en');
if (!WIDTHS.length || WIDTHS.some((w) => !Number.isInteger(w) || w < 200 || w > 4000) || !LANGS.length) {
  process.stderr.write('usage: npm run screenshots [-- --out DIR] [--widths 320,375,1280] [--langs vi,en]\n');
  process.exit(1);
}
/** Our files: `NN-page-lang-width.png` (only these are replaced; other files in the folder stay). */
const OURS = /^\d\d-[a-z0-9-]+-(vi|en)-\d+\.png$/;
const PASSWORD = 'mật khẩu để chụp màn hình';
const NEW_PASSWORD = 'một mật khẩu mới dài';
const dmy = (iso: string) => iso.split('-').reverse().join('/');

/** The citizens of one language's run: each flow changes its citizen, so each run has its own. */
function citizens(lang: Lang) {
  const n = lang === 'vi' ? 1 : 2;
  const r = (k: number, name: string, day: string) =>
    resident(`00109000${n}${k}0${k}`, name, `1990-0${n}-${day}`, { phone: `+849120${n}${k}0${k}0` });
  return {
    main: r(1, 'Lê Văn Minh', '11'),
    level2: r(2, 'Phạm Văn Đồng', '12'),
    enroll: r(3, 'Hoàng Văn Thái', '13'),
    recover: r(4, 'Vũ Đình Trọng', '14'),
  };
}

let database: TestDatabase | undefined;
let dataTmp: string | undefined;
let service: Service | undefined;
let browser: Browser | undefined;
const portals: Portal[] = [];
let count = 0;
const wide: string[] = [];
const skipped: string[] = [];
const failed: string[] = [];

/** A portal instance of examples/portal, registered directly (security staff would use `dinhdanh clients add`). */
async function startPortal(svc: Service, name: string, minLevel: 1 | 2): Promise<Portal> {
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const client = await addClient(svc.db, {
    name,
    redirectUris: [`${base}/callback`],
    postLogoutRedirectUris: [`${base}/`],
    scopes: ['profile'],
    minLevel,
  });
  const portal = createPortal(
    readPortalConfig({
      PORTAL_NAME: name,
      PORT: String(port),
      ISSUER: svc.url,
      CLIENT_ID: client.client_id,
      CLIENT_SECRET: client.client_secret,
      MIN_LEVEL: String(minLevel),
    }),
  );
  await portal.listen();
  portals.push(portal);
  return portal;
}

/** One language's screenshots: `shot` photographs the current page at every width. */
function camera(lang: Lang) {
  let step = 0;
  return async function shot(page: Page, name: string): Promise<void> {
    step++;
    const original = page.viewportSize();
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width < 600 ? 720 : 800 });
      const over = await page.evaluate(() => {
        const g = globalThis as unknown as {
          document: { documentElement: { scrollWidth: number } };
          innerWidth: number;
        };
        return g.document.documentElement.scrollWidth - g.innerWidth;
      });
      const file = `${String(step).padStart(2, '0')}-${name}-${lang}-${width}.png`;
      if (over > 0) wide.push(`${file}: ${over} px wider than the screen`);
      await page.screenshot({ path: path.join(OUT, file), fullPage: true });
      count++;
    }
    if (original) await page.setViewportSize(original);
  };
}

/** Clicks and waits for the page the click leads to. */
async function submit(page: Page, target: Locator): Promise<void> {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), target.click()]);
}

/** Runs one flow; a failure is reported (with a screenshot of where it stopped) and the other flows go on. */
async function flow(context: BrowserContext, what: string, run: (page: Page) => Promise<void>): Promise<void> {
  const page = await context.newPage();
  try {
    await run(page);
  } catch (err) {
    const file = `failed-${what.replace(/[^a-z0-9]+/gi, '-')}.png`;
    await page.screenshot({ path: path.join(OUT, file), fullPage: true }).catch(() => {});
    failed.push(`${what}: ${(err as Error).message.split('\n')[0]} (at ${page.url()}; see ${file})`);
  } finally {
    await page.close();
  }
}

/** Every page, in one language. */
async function run(svc: Service, master: Buffer, level1: Portal, level2: Portal, lang: Lang): Promise<void> {
  const who = citizens(lang);
  const shot = camera(lang);
  const context = await browser!.newContext({
    locale: lang === 'vi' ? 'vi-VN' : 'en-GB',
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(15_000);
  // The language as a citizen who chose it would have it (the provider's and the portals' own cookies).
  await context.addCookies([
    { name: 'lang', value: lang, url: svc.url },
    { name: 'portal_lang', value: lang, url: level1.config.baseUrl },
  ]);
  const { nextCode } = await makeLevel2(svc.db, master, who.level2.pin, await accountIdForPin(svc.db, who.level2.pin));

  /** Signs in at the provider page in front (password), then approves consent if asked, until `done` shows. */
  const signIn = async (page: Page, pin: string, password: string) => {
    await page.fill('#pin', pin);
    await page.fill('#password', password);
    await submit(page, page.locator('form[action$="/login"] button[type=submit]'));
  };
  const consentIfAsked = async (page: Page, until: string) => {
    await page.locator(`${until}, form[action$="/consent"]`).first().waitFor();
    if (await page.locator('form[action$="/consent"]').count())
      await submit(page, page.locator('form[action$="/consent"] button').first());
    await page.locator(until).first().waitFor();
  };

  await flow(context, `${lang} sign-in, account, level 2 refused, logout`, async (page) => {
    const res = await page.goto(`${svc.url}/`);
    if (res?.status() === 404) skipped.push(`home / (${lang}): 404, not there yet`);
    else await shot(page, 'home');

    await page.goto(level1.config.baseUrl);
    await shot(page, 'portal-signed-out');
    await submit(page, page.locator('#login'));
    await page.locator('#pin').waitFor();
    await shot(page, 'login');
    await signIn(page, who.main.pin, 'not the password');
    await page.locator('[role=alert], .error').first().waitFor();
    await shot(page, 'login-failed');
    await signIn(page, who.main.pin, PASSWORD);
    await page.locator('form[action$="/consent"]').waitFor();
    await shot(page, 'consent');
    await submit(page, page.locator('form[action$="/consent"] button').first());
    await page.locator('#name').waitFor();
    await shot(page, 'portal-signed-in');

    await page.goto(`${svc.url}/account`);
    await consentIfAsked(page, 'form[action="/account/password"]');
    await shot(page, 'account');

    // A level-1 citizen at a level-2 portal: the provider explains, the portal shows its error page.
    await page.goto(level2.config.baseUrl);
    await shot(page, 'portal-level2-signed-out');
    await submit(page, page.locator('#login'));
    await page.locator('form[action$="/unmet"]').waitFor();
    await shot(page, 'unmet');
    await submit(page, page.locator('form[action$="/unmet"] button'));
    await page.locator('#error').waitFor();
    await shot(page, 'portal-error');

    // The officer's in-person check, then the citizen's activation on /account: the authenticator page.
    const { code } = await issueActivationCode(svc.db, who.main.pin, 'CA-SCREENSHOTS');
    await page.goto(`${svc.url}/account`);
    await page.locator('form[action="/account/activate"] #code').fill(code);
    await submit(page, page.locator('form[action="/account/activate"] button'));
    await page.locator('img[src="/account/totp/qr.svg"]').waitFor();
    await shot(page, 'account-totp');

    await page.goto(level1.config.baseUrl);
    await submit(page, page.locator('#logout'));
    await page.locator('button[name="logout"]').waitFor();
    await shot(page, 'logout-confirm');
    await submit(page, page.locator('button[name="logout"]'));
    await page.locator('#logged-out').waitFor();
    await shot(page, 'portal-signed-out-after-logout');

    // Logout at the provider with no portal to return to: its own "signed out" page (asked first when signed in).
    await page.goto(`${svc.url}/session/end`);
    if (await page.locator('button[name="logout"]').count()) await submit(page, page.locator('button[name="logout"]'));
    await shot(page, 'logged-out');

    // An error page: an authorization request from a portal that does not exist.
    await page.goto(`${svc.url}/auth?client_id=no-such-portal&response_type=code&scope=openid`);
    await shot(page, 'error');
    await page.goto(`${svc.url}/no-such-page`);
    await shot(page, 'not-found');
  });

  await flow(context, `${lang} second factor`, async (page) => {
    await page.goto(level2.config.baseUrl);
    await submit(page, page.locator('#login'));
    await signIn(page, who.level2.pin, PASSWORD);
    await page.locator('form[action$="/otp"]').waitFor();
    await shot(page, 'second-factor');
    await page.fill('#code', '000000');
    await submit(page, page.locator('form[action$="/otp"] button[type=submit]'));
    await page.locator('[role=alert], .error').first().waitFor();
    await shot(page, 'second-factor-failed');
    await page.fill('#code', await nextCode());
    await submit(page, page.locator('form[action$="/otp"] button[type=submit]'));
    await consentIfAsked(page, '#name');
    await shot(page, 'portal-level2-signed-in');
    await page.goto(`${svc.url}/account`);
    await consentIfAsked(page, 'form[action="/account/password"]');
    await shot(page, 'account-level2');
  });
  await context.clearCookies({ name: /^(?!lang$|portal_lang$)/ });

  await flow(context, `${lang} enrollment`, async (page) => {
    await page.goto(`${svc.url}/enroll`);
    await shot(page, 'enroll');
    await page.fill('#pin', who.enroll.pin);
    await page.fill('#fullName', who.enroll.fullName);
    await page.fill('#birthDate', dmy(who.enroll.birthDate));
    await page.fill('#password', PASSWORD);
    await submit(page, page.locator('form[action="/enroll"] button[type=submit]'));
    await page.locator('#code').waitFor();
    await shot(page, 'enroll-code');
    await page.fill('#code', '000000');
    await submit(page, page.locator('form[action="/enroll/code"] button[type=submit]'));
    await page.locator('[role=alert], .error').first().waitFor();
    await shot(page, 'enroll-code-failed');
    await page.fill('#code', (await lastSms(svc.db, who.enroll.phone!)).code!);
    await submit(page, page.locator('form[action="/enroll/code"] button[type=submit]'));
    await shot(page, 'enroll-done');
  });

  await flow(context, `${lang} recovery`, async (page) => {
    await page.goto(`${svc.url}/recover`);
    await shot(page, 'recover');
    await page.goto(`${svc.url}/recover/officer`);
    await shot(page, 'recover-officer');
    await page.goto(`${svc.url}/recover`);
    await page.fill('#pin', who.recover.pin);
    await page.fill('#fullName', who.recover.fullName);
    await page.fill('#birthDate', dmy(who.recover.birthDate));
    await submit(page, page.locator('form[action="/recover"] button[type=submit]'));
    await page.locator('#code').waitFor();
    await shot(page, 'recover-code');
    await page.fill('#code', (await lastSms(svc.db, who.recover.phone!)).code!);
    await submit(page, page.locator('form[action="/recover/code"] button[type=submit]'));
    await page.locator('#password').waitFor();
    await shot(page, 'recover-password');
    await page.fill('#password', 'password');
    await submit(page, page.locator('form[action="/recover/password"] button[type=submit]'));
    await page.locator('[role=alert], .error').first().waitFor();
    await shot(page, 'recover-password-weak');
    await page.fill('#password', NEW_PASSWORD);
    await submit(page, page.locator('form[action="/recover/password"] button[type=submit]'));
    await shot(page, 'recover-done');
    // The next sign-in tells the citizen about the reset, once.
    await page.goto(level1.config.baseUrl);
    await submit(page, page.locator('#login'));
    await signIn(page, who.recover.pin, NEW_PASSWORD);
    await shot(page, 'reset-notice');
  });
  await context.close();
}

async function main(): Promise<void> {
  const t0 = Date.now();
  mkdirSync(OUT, { recursive: true });
  for (const f of readdirSync(OUT)) if (OURS.test(f) || f.startsWith('failed-')) rmSync(path.join(OUT, f));

  const external = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (external) {
    process.env.TEST_DATABASE_URL = external;
    database = await freshDatabase();
  }
  const env = testEnv(database?.url, { LOG_LEVEL: 'error' });
  dataTmp = path.dirname(env.DATA_DIR!);
  // The embedded server runs as the postgres system user when this runs as root: it must reach DATA_DIR.
  chmodSync(dataTmp, 0o755);
  const config = loadConfig(env);
  service = await startService(config);
  const master = loadMasterKey(config);
  process.stdout.write(`service on ${service.url} (${external ? 'a fresh database' : 'embedded PostgreSQL'})\n`);

  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  for (const lang of LANGS) {
    const who = citizens(lang);
    await insertResidents(service.db, Object.values(who));
    for (const r of [who.main, who.level2, who.recover])
      await createAccount(service.db, hasher, { pin: r.pin, password: PASSWORD });
  }
  const level1 = await startPortal(service, 'Cổng Dịch vụ công quốc gia', 1);
  const level2 = await startPortal(service, 'Cổng Đăng ký đất đai', 2);
  browser = await launchChromium();

  for (const lang of LANGS) await run(service, master, level1, level2, lang);

  const seconds = Math.round((Date.now() - t0) / 1000);
  for (const s of skipped) process.stdout.write(`skipped: ${s}\n`);
  for (const w of wide) process.stdout.write(`too wide: ${w}\n`);
  for (const f of failed) process.stdout.write(`FAILED: ${f}\n`);
  process.stdout.write(`${count} screenshots in ${OUT} (${seconds} s)\n`);
  if (failed.length) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  process.stderr.write(`screenshots: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  for (const p of portals) await p.close().catch(() => {});
  await service?.close().catch(() => {});
  await database?.drop().catch(() => {});
  if (dataTmp) rmSync(dataTmp, { recursive: true, force: true });
}
