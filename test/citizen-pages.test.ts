/**
 * The citizen's pages as an official national service: a home page and information pages, a header and footer on
 * every page, a way forward from every page (a lock offers recovery; consent and step-up say who is signed in and
 * offer a way out; enrolling from a portal's login returns to it), the portal's `ui_locales`, dates as dd/mm/yyyy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as oidc from 'openid-client';
import { loadConfig } from '../src/config/index.ts';
import type { Service } from '../src/main.ts';
import { INFO_PAGES, useTimeZone, vnDateTime } from '../src/ui/index.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, demoPortal, follow } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, { LOGIN_MAX_FAILURES: '2' });
  portal = await demoPortal(service.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

const text = async (path: string, lang = 'vi') => {
  const res = await fetch(`${service.url}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`, {
    headers: { accept: 'text/html' },
  });
  return { status: res.status, html: await res.text() };
};

describe('the service identifies itself', () => {
  it('has a home page leading to the account, enrollment, recovery and help, in both languages', async () => {
    const vi = await text('/');
    assert.equal(vi.status, 200);
    for (const href of ['/account?lang=vi', '/enroll?lang=vi', '/recover?lang=vi', '/help?lang=vi'])
      assert.ok(vi.html.includes(`href="${href}"`), href);
    assert.match(vi.html, /<html lang="vi">/);
    const en = await text('/', 'en');
    assert.match(en.html, /<html lang="en">/);
    assert.match(en.html, /One account to sign in to government portals/);
  });

  it('has information pages (help, privacy, terms, accessibility) and links them from every page footer', async () => {
    for (const path of Object.keys(INFO_PAGES) as (keyof typeof INFO_PAGES)[]) {
      const page = await text(path);
      assert.equal(page.status, 200, path);
      assert.ok(page.html.includes(`<h1>${INFO_PAGES[path].vi.title}</h1>`), path);
    }
    for (const path of ['/', '/enroll', '/recover', '/help', '/no/such/page']) {
      const { html } = await text(path);
      assert.match(
        html,
        /<footer>[\s\S]*tel:[\s\S]*\/privacy\?lang=vi[\s\S]*\/accessibility\?lang=vi[\s\S]*<\/footer>/,
        path,
      );
    }
  });

  it('tells where to find the 12-digit number next to every field that asks for it', async () => {
    for (const path of ['/enroll', '/recover']) {
      const { html } = await text(path);
      assert.match(html, /id="pin"[^>]*aria-describedby="pin-help"/, path);
      assert.match(html, /id="pin-help">Số định danh cá nhân có 12 chữ số/, path);
    }
  });
});

describe('a way forward from every page', () => {
  it('a lock explains when to try again and offers recovery', async () => {
    const agent = new Agent();
    const start = await follow(agent, (await authorizationRequest(portal)).url.toString());
    let html = await start.res.text();
    let res: Response | undefined;
    for (let i = 0; i < 3; i++) {
      res = await agent.post(
        new URL(actionOf(html, 'login'), start.url),
        { csrf: csrfOf(html), pin: '001090000777', password: `sai mật khẩu ${i}` },
        { accept: 'text/html' },
      );
      if (res.status === 429) break;
      html = await res.text();
    }
    assert.equal(res!.status, 429);
    const page = await res!.text();
    assert.match(page, /<h1>Tạm khóa để bảo vệ tài khoản<\/h1>/);
    assert.match(page, /thử lại sau \d+ phút/);
    assert.match(page, /href="\/recover\?lang=vi"/);
  });

  it('consent says who is signed in, offers "not you?", and its refusal returns access_denied to the portal', async () => {
    const agent = new Agent();
    const req = await authorizationRequest(portal, { prompt: 'consent' });
    const start = await follow(agent, req.url.toString());
    const login = await start.res.text();
    const posted = await agent.post(new URL(actionOf(login, 'login'), start.url), {
      csrf: csrfOf(login),
      pin: DEMO_PIN,
      password: DEMO_PASSWORD,
    });
    const consent = await follow(agent, location(posted, start.url));
    const html = await consent.res.text();
    assert.match(html, /Đang đăng nhập: <strong>Nguyễn Văn An<\/strong> \(001\*{7}45\)/);
    assert.match(html, /href="\/session\/end\?lang=vi">Không phải bạn\? Đăng xuất/);
    const denied = await agent.post(new URL(actionOf(html, 'abort'), consent.url), { csrf: csrfOf(html) });
    const back = await follow(agent, location(denied, consent.url));
    assert.equal(new URL(back.url).searchParams.get('error'), 'access_denied');
    assert.equal(new URL(back.url).searchParams.get('state'), req.state);
  });

  it('the login page can be cancelled: access_denied to the portal', async () => {
    const agent = new Agent();
    const req = await authorizationRequest(portal);
    const start = await follow(agent, req.url.toString());
    const html = await start.res.text();
    const cancelled = await agent.post(new URL(actionOf(html, 'abort'), start.url), { csrf: csrfOf(html) });
    const back = await follow(agent, location(cancelled, start.url));
    assert.equal(new URL(back.url).searchParams.get('error'), 'access_denied');
  });

  it('enrolling from a portal login keeps the way back to that login (and only to a login page)', async () => {
    const agent = new Agent();
    const start = await follow(agent, (await authorizationRequest(portal)).url.toString());
    const html = await start.res.text();
    const link = /href="(\/enroll\?[^"]+)"/.exec(html)![1]!.replaceAll('&amp;', '&');
    const back = new URL(link, service.url).searchParams.get('back')!;
    assert.equal(back, new URL(start.url).pathname);
    const enroll = await (await agent.get(new URL(link, service.url))).text();
    assert.ok(enroll.includes(`name="back" value="${back}"`), 'carried through the form');
    const hostile = await (
      await agent.get(`${service.url}/enroll?back=${encodeURIComponent('https://evil.example/')}`)
    ).text();
    assert.match(hostile, /name="back" value=""/, 'anything but a login page is dropped');
  });
});

describe('language and dates', () => {
  it("follows the portal's ui_locales, unless the citizen chose a language", async () => {
    const agent = new Agent();
    const start = await follow(
      agent,
      (await authorizationRequest(portal, { ui_locales: 'fr-FR en vi' })).url.toString(),
    );
    assert.match(await start.res.text(), /<html lang="en">/);
    const chosen = new Agent();
    chosen.jar.set('lang', 'vi');
    const again = await follow(chosen, (await authorizationRequest(portal, { ui_locales: 'en' })).url.toString());
    assert.match(await again.res.text(), /<html lang="vi">/);
  });

  it('shows the birth date as dd/mm/yyyy on the account page', async () => {
    const agent = new Agent();
    let current = `${service.url}/account`;
    let res = await agent.get(current);
    for (let i = 0; i < 6 && (res.status === 302 || res.status === 303); i++) {
      current = location(res, current);
      res = await agent.get(current);
    }
    const login = await res.text();
    let next = location(
      await agent.post(new URL(actionOf(login, 'login'), current), {
        csrf: csrfOf(login),
        pin: DEMO_PIN,
        password: DEMO_PASSWORD,
      }),
      current,
    );
    res = await agent.get(next);
    for (let i = 0; i < 6 && (res.status === 302 || res.status === 303); i++) {
      next = location(res, next);
      res = await agent.get(next);
    }
    const page = await res.text();
    assert.match(page, /<dd>12\/05\/1990<\/dd>/);
    assert.doesNotMatch(page, /1990-05-12/);
    assert.doesNotMatch(page, / UTC/);
  });
});

describe('time zone and error pages', () => {
  it('shows times in TIME_ZONE (Vietnam time by default), and refuses a zone that does not exist', () => {
    const midnightUtc = new Date('2026-01-01T00:00:00Z');
    assert.match(vnDateTime(midnightUtc, 'en'), /07:00/, 'Asia/Ho_Chi_Minh is UTC+7');
    useTimeZone('UTC');
    try {
      assert.match(vnDateTime(midnightUtc, 'en'), /00:00/);
    } finally {
      useTimeZone('Asia/Ho_Chi_Minh');
    }
    assert.throws(() => loadConfig({ TIME_ZONE: 'Mars/Olympus_Mons' }), /TIME_ZONE: must be an IANA time zone/);
  });

  it('an error page has the language switch to the same page', async () => {
    const { status, html } = await text('/no/such/page');
    assert.equal(status, 404);
    assert.match(html, /class="lang" href="\/no\/such\/page\?lang=en"/);
  });
});
