/**
 * Account recovery ("Quên mật khẩu?"). Invariants: the card details alone reset nothing (the SMS code to the
 * registered phone is needed, and for a level-2 account the second factor too); the first step reveals neither
 * whether a number exists nor whether it has an account; an officer's reset code works once, for its own citizen;
 * a reset ends every session (other devices must sign in again), is audited, and the citizen is told by SMS and,
 * once, at the next sign-in. A browser walks it end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { Agent, csrfOf } from './helpers/agent.ts';
import { launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_REDIRECT, demoPortal, follow, loginThrough } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { resident } from './helpers/residents.ts';
import { testEnv } from './helpers/service.ts';
import { lastSms } from './helpers/sms.ts';

let database: TestDatabase;
let service: Service;
let env: Record<string, string>;
let portal: oidc.Configuration;
let nextCode: () => Promise<string>;

const ONE = resident('001090000201', 'Trịnh Văn Một', '1990-02-01', { phone: '+84912000201' });
const TWO = resident('001090000202', 'Trịnh Văn Hai', '1990-02-02', { phone: '+84912000202' });
const NONE = resident('001090000203', 'Trịnh Văn Chưa', '1990-02-03', { phone: '+84912000203' });
const DESK = resident('001090000204', 'Trịnh Văn Bàn', '1990-02-04', { phone: null });
const WEB = resident('001090000205', 'Trịnh Văn Web', '1990-02-05', { phone: '+84912000205' });
const SIX = resident('001090000206', 'Trịnh Văn Sáu', '1990-02-06', { phone: '+84912000206' });
const SEVEN = resident('001090000207', 'Trịnh Văn Bảy', '1990-02-07', { phone: '+84912000207' });
const EIGHT = resident('001090000208', 'Trịnh Văn Tám', '1990-02-08', { phone: '+84912000208' });
const NINE = resident('001090000209', 'Trịnh Văn Chín', '1990-02-09', { phone: '+84912000209' });
const PASSWORD = 'mật khẩu ban đầu';
const dmy = (iso: string) => iso.split('-').reverse().join('/');

before(async () => {
  database = await freshDatabase();
  // One master key for the service and the CLI; X-Forwarded-For trusted so that tests can come from several places.
  env = testEnv(database.url, { TRUST_PROXY: 'true' });
  const config = loadConfig(env);
  service = await startService(config);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await insertResidents(service.db, [ONE, TWO, NONE, DESK, WEB, SIX, SEVEN, EIGHT, NINE]);
  for (const r of [ONE, TWO, DESK, WEB, SIX, SEVEN, NINE])
    await createAccount(service.db, hasher, { pin: r.pin, password: PASSWORD });
  const twoId = (
    await sql<{ id: string }>`select a.id from accounts a join residents r on r.id = a.resident_id
    where r.pin = ${TWO.pin}`.execute(service.db)
  ).rows[0]!.id;
  ({ nextCode } = await makeLevel2(service.db, loadMasterKey(config), TWO.pin, twoId));
  portal = await demoPortal(service.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** The card details step in a new browser; returns the agent and the code page. */
async function start(r: ReturnType<typeof resident>, fullName = r.fullName, ip = '198.51.100.1') {
  const agent = new Agent();
  const form = await (await agent.get(`${service.url}/recover`)).text();
  const res = await agent.post(
    `${service.url}/recover`,
    { csrf: csrfOf(form), pin: r.pin, fullName, birthDate: dmy(r.birthDate) },
    { 'x-forwarded-for': ip },
  );
  const html = await res.text();
  return { agent, status: res.status, html, body: html.replace(/value="[^"]*"/g, '') };
}
/** Posts to a recovery step from the page `html`. */
async function post(agent: Agent, step: string, html: string, fields: Record<string, string>, ip = '198.51.100.1') {
  const handle = /name="handle" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const res = await agent.post(
    `${service.url}/recover/${step}`,
    { csrf: csrfOf(html), handle, ...fields },
    { 'x-forwarded-for': ip },
  );
  return { status: res.status, html: await res.text() };
}
/** Whether a silent authorization in this browser still finds a session. */
async function signedIn(agent: Agent): Promise<boolean> {
  const url = oidc.buildAuthorizationUrl(portal, {
    redirect_uri: DEMO_REDIRECT,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const end = await follow(agent, url.toString());
  return !new URL(end.url).searchParams.has('error');
}
const authUrl = async () =>
  oidc
    .buildAuthorizationUrl(portal, {
      redirect_uri: DEMO_REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    })
    .toString();

describe('Quên mật khẩu? (SMS)', () => {
  it('resets a level-1 password with the code to the registered phone; every session ends; the citizen is told', async () => {
    const elsewhere = new Agent();
    await loginThrough(elsewhere, await authUrl(), ONE.pin, PASSWORD);
    assert.ok(await signedIn(elsewhere));

    const step1 = await start(ONE);
    assert.match(step1.html, /<strong>\.\.01<\/strong>/);
    const wrong = await post(step1.agent, 'code', step1.html, { code: '000000', phone: '..01' });
    assert.equal(wrong.status, 400, 'the card details and a guess reset nothing');
    const { code } = await lastSms(service.db, ONE.phone!);
    const step2 = await post(step1.agent, 'code', step1.html, { code: code! });
    assert.equal(step2.status, 200);
    assert.doesNotMatch(step2.html, /name="second"/, 'level 1: no second factor asked');
    const weak = await post(step1.agent, 'password', step2.html, { password: 'password' });
    assert.equal(weak.status, 400);
    assert.match(weak.html, /quá phổ biến/);
    const NEW = 'mật khẩu mới sau khi quên';
    const done = await post(step1.agent, 'password', step2.html, { password: NEW });
    assert.equal(done.status, 200, done.html);
    assert.match(done.html, /Mật khẩu đã được đặt lại/);
    assert.equal((await post(step1.agent, 'password', step2.html, { password: NEW })).status, 400, 'used once');

    assert.equal(await signedIn(elsewhere), false, 'the other device must sign in again');
    const notice = await lastSms(service.db, ONE.phone!);
    assert.equal(notice.purpose, 'notice');
    assert.match(notice.body, /da duoc dat lai/);
    const audit = await sql<{ details: { via: string; sessionsEnded: number } }>`select details from audit_events
      where action = 'password.reset' and outcome = 'success' order by seq desc limit 1`.execute(service.db);
    assert.equal(audit.rows[0]?.details.via, 'sms');
    assert.ok(audit.rows[0]!.details.sessionsEnded >= 1);

    // The next sign-in tells the citizen, once, then goes on to the portal.
    const me = new Agent();
    const startLogin = await follow(me, await authUrl());
    const html = await startLogin.res.text();
    const login = await me.post(new URL(/action="([^"]*\/login)"/.exec(html)![1]!, startLogin.url), {
      csrf: csrfOf(html),
      pin: ONE.pin,
      password: NEW,
    });
    assert.equal(login.status, 200);
    const page = await login.text();
    assert.match(page, /Mật khẩu của bạn đã được đặt lại/);
    const next = /class="button" href="([^"]+)"/.exec(page)![1]!.replaceAll('&amp;', '&');
    const end = await follow(me, new URL(next, service.url).toString());
    assert.ok(end.url.startsWith(DEMO_REDIRECT) || /consent/.test(await end.res.text()), 'on to the portal');
    const again = new Agent();
    assert.ok((await loginThrough(again, await authUrl(), ONE.pin, NEW)).startsWith(DEMO_REDIRECT), 'told once');
  });

  it('needs the second factor too for a level-2 account', async () => {
    const step1 = await start(TWO);
    const step2 = await post(step1.agent, 'code', step1.html, { code: (await lastSms(service.db, TWO.phone!)).code! });
    assert.match(step2.html, /name="second"/);
    const NEW = 'mật khẩu mức hai mới';
    const without = await post(step1.agent, 'password', step2.html, { password: NEW, second: '000000' });
    assert.equal(without.status, 401, 'the phone alone does not reset a level-2 account');
    const ok = await post(step1.agent, 'password', step2.html, { password: NEW, second: await nextCode() });
    assert.equal(ok.status, 200, ok.html);
    assert.match(ok.html, /Mật khẩu đã được đặt lại/);
  });

  it('answers the same for unknown, mismatching and account-less details; the resident is told by SMS', async () => {
    const unknown = await start({ ...NONE, pin: '001090000299' });
    const mismatch = await start(NONE, 'Trịnh Văn Khác');
    assert.equal(mismatch.body, unknown.body);
    const noAccount = await start(NONE);
    const withAccount = await start(WEB);
    assert.equal(
      noAccount.body.replace('..03', '..NN'),
      withAccount.body.replace('..05', '..NN'),
      'no account looks like an account',
    );
    assert.equal((await lastSms(service.db, NONE.phone!)).purpose, 'notice');
  });
});

describe('attacks on recovery and enrollment', () => {
  it('a stranger who knows the personal ID cannot lock the citizen out of recovery', async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await start(SIX, `Người Lạ ${i}`, '203.0.113.7')).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429], 'the stranger is limited');
    const citizen = await start(SIX, SIX.fullName, '198.51.100.9');
    assert.equal(citizen.status, 200);
    assert.match(citizen.html, /<strong>\.\.06<\/strong>/);
  });

  it('a verified code works only in the browser that asked for it', async () => {
    const mine = await start(SEVEN);
    const verified = await post(mine.agent, 'code', mine.html, {
      code: (await lastSms(service.db, SEVEN.phone!)).code!,
    });
    assert.match(verified.html, /name="password"/);
    const thief = new Agent();
    const form = await (await thief.get(`${service.url}/recover`)).text();
    const handle = /name="handle" value="([^"]+)"/.exec(verified.html)![1]!;
    const stolen = await thief.post(`${service.url}/recover/password`, {
      csrf: csrfOf(form),
      handle,
      password: 'mật khẩu của kẻ trộm',
    });
    assert.equal(stolen.status, 400, "another browser's handle is refused");
    const done = await post(mine.agent, 'password', verified.html, { password: 'mật khẩu của bảy' });
    assert.match(done.html, /Mật khẩu đã được đặt lại/);
  });

  it('answers malformed handles with 400, never 500', async () => {
    const agent = new Agent();
    const form = await (await agent.get(`${service.url}/recover`)).text();
    for (const handle of ['------------------------------------', '1234', 'x'.repeat(64), '']) {
      for (const step of ['recover/code', 'recover/password', 'enroll/code']) {
        const res = await agent.post(`${service.url}/${step}`, { csrf: csrfOf(form), handle, code: '123456' });
        assert.equal(res.status, 400, `${step} ${handle.slice(0, 8)}`);
      }
    }
  });

  it('blocks one IP guessing codes across many handles', async () => {
    const agent = new Agent();
    const form = await (await agent.get(`${service.url}/recover`)).text();
    const statuses = [];
    for (let i = 0; i < 22; i++) {
      const res = await agent.post(
        `${service.url}/recover/code`,
        { csrf: csrfOf(form), handle: randomUUID(), code: '123456' },
        { 'x-forwarded-for': '203.0.113.99' },
      );
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [...Array(21).fill(400), 429], 'the 21st different code failing blocks the IP');
  });

  it('counts every SMS to a phone against one allowance, whatever it was for', async () => {
    const enroll = async () => {
      const agent = new Agent();
      const form = await (await agent.get(`${service.url}/enroll`)).text();
      return agent.post(`${service.url}/enroll`, {
        csrf: csrfOf(form),
        pin: NINE.pin,
        fullName: NINE.fullName,
        birthDate: dmy(NINE.birthDate),
        password: 'một mật khẩu bất kỳ',
      });
    };
    const before = await sql<{ n: string }>`select count(*) as n from verification_codes
      where phone = ${NINE.phone} and created_at > now() - interval '15 minutes'`.execute(service.db);
    for (let i = 0; i < 3; i++) {
      await enroll();
      await start(NINE);
    }
    const sent = await sql<{ n: string }>`select count(*) as n from verification_codes
      where phone = ${NINE.phone} and created_at > now() - interval '15 minutes'`.execute(service.db);
    assert.equal(Number(sent.rows[0]!.n), Math.max(3, Number(before.rows[0]!.n)), 'at most 3 in 15 minutes');
  });

  it('allows ten code tries a day per resident, across codes', async () => {
    const agent = new Agent();
    const page = async () => (await agent.get(`${service.url}/enroll`)).text();
    const ask = async () =>
      (
        await agent.post(`${service.url}/enroll`, {
          csrf: csrfOf(await page()),
          pin: EIGHT.pin,
          fullName: EIGHT.fullName,
          birthDate: dmy(EIGHT.birthDate),
          password: 'mật khẩu của tám',
        })
      ).text();
    const tryCode = async (html: string, code: string) => {
      const handle = /name="handle" value="([^"]+)"/.exec(html)![1]!;
      return (await agent.post(`${service.url}/enroll/code`, { csrf: csrfOf(html), handle, code })).status;
    };
    for (let c = 0; c < 2; c++) {
      const html = await ask();
      const { code } = await lastSms(service.db, EIGHT.phone!);
      for (let i = 0; i < 5; i++) assert.equal(await tryCode(html, code === '000000' ? '111111' : '000000'), 400);
    }
    const third = await ask();
    assert.equal(await tryCode(third, (await lastSms(service.db, EIGHT.phone!)).code!), 400, 'the eleventh try fails');
  });
});

describe('dinhdanh accounts reset-password (in person)', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['src/cli/main.ts', ...args], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });

  it('prints a one-time code that resets that citizen only, once, and is audited as the officer', async () => {
    const r = cli('accounts', 'reset-password', '--personal-id', DESK.pin, '--officer', 'CA-07');
    assert.equal(r.status, 0, r.stderr);
    const { reset_code } = JSON.parse(r.stdout) as { reset_code: string };
    const redeem = async (pin: string, code: string, ip = '198.51.100.2') => {
      const agent = new Agent();
      const form = await (await agent.get(`${service.url}/recover/officer`)).text();
      const res = await agent.post(
        `${service.url}/recover/officer`,
        { csrf: csrfOf(form), pin, code },
        { 'x-forwarded-for': ip },
      );
      return { agent, status: res.status, html: await res.text() };
    };
    assert.equal((await redeem(WEB.pin, reset_code)).status, 400, "not another citizen's code");
    // A stranger who knows the personal ID guesses from elsewhere until refused: the citizen's code still works.
    const guesses = [];
    for (let i = 0; i < 6; i++) guesses.push((await redeem(DESK.pin, 'AAAA-BBBB-CCCC-DDDD', '203.0.113.66')).status);
    assert.deepEqual(guesses, [400, 400, 400, 400, 400, 429]);
    const ok = await redeem(DESK.pin, reset_code.toLowerCase().replaceAll('-', ' '));
    assert.equal(ok.status, 200, ok.html);
    const done = await post(ok.agent, 'password', ok.html, { password: 'mật khẩu tại bàn' }, '198.51.100.2');
    assert.match(done.html, /Mật khẩu đã được đặt lại/);
    assert.equal((await redeem(DESK.pin, reset_code)).status, 400, 'once');
    const audit = await sql<{ actor_id: string }>`select actor_id from audit_events
      where action = 'account.reset_password'`.execute(service.db);
    assert.deepEqual(
      audit.rows.map((x) => x.actor_id),
      ['CA-07'],
    );
    const unknown = cli('accounts', 'reset-password', '--personal-id', NONE.pin, '--officer', 'CA-07');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no e-ID account/);
  });
});

describe('Quên mật khẩu? in Chromium', () => {
  it('walks from the login page to a new password and the notice at the next sign-in', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ locale: 'vi-VN' });
      await page.goto(`${service.url}/account`);
      await page.getByRole('link', { name: 'Quên mật khẩu?' }).click();
      await page.getByLabel('Số định danh cá nhân').fill(WEB.pin);
      await page.getByLabel('Họ và tên').fill(WEB.fullName);
      await page.getByLabel('Ngày sinh').fill(dmy(WEB.birthDate));
      await page.getByRole('button', { name: 'Gửi mã' }).click();
      await page.getByText('..05').waitFor();
      await page.getByLabel('Mã xác thực').fill((await lastSms(service.db, WEB.phone!)).code!);
      await page.getByRole('button', { name: 'Xác nhận' }).click();
      await page.getByLabel('Mật khẩu mới').fill('mật khẩu trình duyệt');
      await page.getByRole('button', { name: 'Xác nhận' }).click();
      await page.getByText('Mật khẩu đã được đặt lại').waitFor();
      await page.getByRole('link', { name: 'Tài khoản' }).click();
      await page.getByLabel('Số định danh cá nhân').fill(WEB.pin);
      await page.getByLabel('Mật khẩu', { exact: true }).fill('mật khẩu trình duyệt');
      await page.getByRole('button', { name: 'Đăng nhập', exact: true }).click();
      await page.getByRole('heading', { name: 'Mật khẩu của bạn đã được đặt lại' }).waitFor();
      await page.getByRole('link', { name: 'Tiếp tục' }).click();
      await page.waitForURL(`${service.url}/account`);
      assert.match(await page.content(), /Đổi mật khẩu/);
    } finally {
      await browser.close();
    }
  });
});
