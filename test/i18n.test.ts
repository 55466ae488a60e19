/**
 * Languages: Vietnamese first, English on request. Invariants: `?lang=en` switches a page to English and the choice is
 * remembered (a `lang` cookie) for the following pages and form answers; without a choice, Accept-Language picks
 * English for a browser that prefers it, and Vietnamese otherwise; a choice beats Accept-Language; the switch link in
 * each page's header leads to the same page in the other language.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as oidc from 'openid-client';
import type { Service } from '../src/main.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, demoPortal } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  portal = await demoPortal(service.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** The language a page is in, by its `<html lang>` and its words (both must agree). */
function languageOf(html: string): 'vi' | 'en' {
  const declared = /<html lang="(vi|en)"/.exec(html)?.[1] as 'vi' | 'en' | undefined;
  assert.ok(declared, 'the page declares its language');
  if (declared === 'en') assert.match(html, /National electronic identification/);
  else assert.match(html, /Định danh điện tử quốc gia/);
  return declared;
}

/** The header's language switch link, absolute. */
function switchLink(html: string, base: string): string {
  const header = /<header>[\s\S]*?<\/header>/.exec(html)?.[0] ?? '';
  const href = /<a class="lang" href="([^"]+)"/.exec(header)?.[1];
  assert.ok(href, 'the header has a language switch');
  return new URL(href.replace(/&amp;/g, '&'), base).toString();
}

/** Starts an authorization in `agent` and follows it to the login page, sending `headers` on every hop. */
async function loginPage(agent: Agent, headers: Record<string, string> = {}) {
  const { url } = await authorizationRequest(portal);
  let current = url.toString();
  let res = await agent.request(current, { headers });
  while (res.status === 302 || res.status === 303) {
    current = location(res, current);
    res = await agent.request(current, { headers });
  }
  assert.equal(res.status, 200);
  return { url: current, html: await res.text() };
}

describe('the language choice', () => {
  it('?lang=en switches to English and is remembered by cookie, through the login and consent pages', async () => {
    const agent = new Agent();
    const start = await loginPage(agent);
    assert.equal(languageOf(start.html), 'vi', 'Vietnamese by default');
    assert.match(start.html, /Đăng nhập/);

    const english = await agent.get(`${start.url}?lang=en`);
    const html = await english.text();
    assert.equal(languageOf(html), 'en');
    assert.match(html, /Sign in/);
    assert.match(html, /Personal identification number/);
    assert.match(english.headers.getSetCookie().join('\n'), /^lang=en;/m, 'the choice is kept in a cookie');
    assert.equal(agent.jar.get('lang'), 'en');

    // Remembered: the same page without the parameter, a failed login and the consent page are in English.
    const again = await (await agent.get(start.url)).text();
    assert.equal(languageOf(again), 'en');
    const action = new URL(actionOf(again, 'login'), start.url);
    const failed = await agent.post(action, { csrf: csrfOf(again), pin: DEMO_PIN, password: 'not the password' });
    assert.equal(failed.status, 401);
    const failedHtml = await failed.text();
    assert.equal(languageOf(failedHtml), 'en');
    assert.match(failedHtml, /We could not verify these details/);
    const ok = await agent.post(action, { csrf: csrfOf(failedHtml), pin: DEMO_PIN, password: DEMO_PASSWORD });
    let next = location(ok, start.url);
    let res = await agent.get(next);
    while (res.status === 302 || res.status === 303) {
      next = location(res, next);
      res = await agent.get(next);
    }
    const consent = await res.text();
    assert.match(consent, /\/consent"/, 'the consent page');
    assert.equal(languageOf(consent), 'en');
    assert.match(consent, /Share information/);
    assert.match(consent, /Allow/);
  });

  it("the login page's switch link leads to the same page in the other language, and back", async () => {
    const agent = new Agent();
    const start = await loginPage(agent);
    const toEnglish = switchLink(start.html, start.url);
    assert.equal(new URL(toEnglish).pathname, new URL(start.url).pathname, 'the same page');
    assert.equal(new URL(toEnglish).searchParams.get('lang'), 'en');
    const english = await (await agent.get(toEnglish)).text();
    assert.equal(languageOf(english), 'en');
    assert.match(english, /\/login"/, 'still the login form');
    assert.match(english, /Tiếng Việt/, 'the switch now offers Vietnamese');

    const toVietnamese = switchLink(english, toEnglish);
    assert.equal(new URL(toVietnamese).pathname, new URL(start.url).pathname);
    assert.equal(new URL(toVietnamese).searchParams.get('lang'), 'vi');
    const vietnamese = await (await agent.get(toVietnamese)).text();
    assert.equal(languageOf(vietnamese), 'vi');
    assert.equal(agent.jar.get('lang'), 'vi', 'the new choice replaces the old one');
    assert.equal(languageOf(await (await agent.get(start.url)).text()), 'vi');
  });
});

describe('Accept-Language', () => {
  for (const [header, expected] of [
    ['en-US,en;q=0.9,vi;q=0.5', 'en'],
    ['en', 'en'],
    ['vi-VN,vi;q=0.9,en;q=0.8', 'vi'],
    ['fr-FR,fr;q=0.9', 'vi'],
    [undefined, 'vi'],
  ] as const) {
    it(`${header ?? 'absent'}: the login page in ${expected === 'en' ? 'English' : 'Vietnamese'}`, async () => {
      const page = await loginPage(new Agent(), header ? { 'accept-language': header } : {});
      assert.equal(languageOf(page.html), expected);
    });
  }

  it('a choice made with the switch beats Accept-Language', async () => {
    const agent = new Agent();
    const headers = { 'accept-language': 'en-US,en;q=0.9' };
    const start = await loginPage(agent, headers);
    assert.equal(languageOf(start.html), 'en');
    await agent.request(`${start.url}?lang=vi`, { headers });
    const page = await agent.request(start.url, { headers });
    assert.equal(languageOf(await page.text()), 'vi');
  });

  it("picks the language of oidc-provider's own error page too", async () => {
    const url = `${service.url}/auth?client_id=no-such-portal&response_type=code`;
    const en = await fetch(url, { headers: { accept: 'text/html', 'accept-language': 'en-GB,en;q=0.8' } });
    assert.equal(en.status, 400);
    const enHtml = await en.text();
    assert.equal(languageOf(enHtml), 'en');
    assert.match(enHtml, /Something went wrong/);
    const vi = await fetch(url, { headers: { accept: 'text/html' } });
    assert.match(await vi.text(), /Đã có lỗi/);
  });
});

describe('the account page', () => {
  it('remembers ?lang=en too: the next page without the parameter stays in English', async () => {
    const agent = new Agent();
    // Signed in (the login pages are in Vietnamese: no choice made yet).
    let current = `${service.url}/account`;
    let res = await agent.get(current);
    for (let i = 0; i < 10 && !(res.status === 200 && new URL(current).pathname === '/account'); i++) {
      if (res.status === 200) {
        const html = await res.text();
        res = await agent.post(new URL(actionOf(html, 'login'), current), {
          csrf: csrfOf(html),
          pin: DEMO_PIN,
          password: DEMO_PASSWORD,
        });
        continue;
      }
      current = location(res, current);
      res = await agent.get(current);
    }
    const vi = await res.text();
    assert.equal(languageOf(vi), 'vi');
    const toEnglish = switchLink(vi, current);
    assert.equal(new URL(toEnglish).pathname, '/account');
    const english = await (await agent.get(toEnglish)).text();
    assert.equal(languageOf(english), 'en');
    assert.match(english, /My e-ID account/);
    // As the "Back to my account" links do: the plain path.
    const plain = await (await agent.get(`${service.url}/account`)).text();
    assert.equal(languageOf(plain), 'en', 'the choice is remembered on the plain path');
  });
});
