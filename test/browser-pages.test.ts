/**
 * The pages oidc-provider renders itself, in a real browser (Debian's Chromium) under the service's CSP
 * (`script-src 'self'`, no inline script or style). Invariants: login, consent, the form_post response, RP-initiated
 * logout with its confirmation and success pages, the logout with nobody signed in and the error page cause no CSP
 * violation and carry no inline script (the CSP never gets a script hash); a portal using response_mode=form_post
 * receives its code and state by POST, sent by a same-origin script or, without script, by the page's button; the
 * logout confirmation ends the provider session, which the audit trail records.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { launchChromium } from './helpers/browser.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

/** A relying portal's form_post endpoint: a loopback HTTP server that keeps every form POSTed to /callback. */
interface FormPostPortal {
  redirectUri: string;
  received: URLSearchParams[];
  close(): Promise<void>;
}

async function startFormPostPortal(): Promise<FormPostPortal> {
  const received: URLSearchParams[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const posted = req.method === 'POST' && req.url === '/callback';
      if (posted) received.push(new URLSearchParams(body));
      res.writeHead(posted ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!DOCTYPE html><title>portal</title><p id="portal">${posted ? 'received' : 'not found'}</p>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    redirectUri: `http://localhost:${port}/callback`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** What a browser context saw of the provider: CSP violations, and each provider document's CSP header. */
interface Watch {
  violations: string[];
  documents: { url: string; status: number; csp: string }[];
  scriptFiles: string[];
}

/**
 * Records every CSP violation in `context` (the `securitypolicyviolation` event, reported through a binding, and
 * Chromium's own console message), the CSP of every document the provider serves, and requests for script files.
 */
async function watch(context: BrowserContext, issuer: string): Promise<Watch> {
  const w: Watch = { violations: [], documents: [], scriptFiles: [] };
  await context.exposeBinding('reportCspViolation', ({ page }, what: string) => {
    w.violations.push(`${page.url()}: ${what}`);
  });
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => {
      window.reportCspViolation([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(' '));
    });`,
  });
  context.on('console', (msg) => {
    if (/content security policy/i.test(msg.text())) w.violations.push(`console: ${msg.text()}`);
  });
  context.on('request', (req) => {
    if (req.resourceType() === 'script') w.scriptFiles.push(new URL(req.url()).pathname);
  });
  context.on('response', (res) => {
    if (res.request().resourceType() !== 'document' || !res.url().startsWith(issuer)) return;
    w.documents.push({ url: res.url(), status: res.status(), csp: res.headers()['content-security-policy'] ?? '' });
  });
  return w;
}

let database: TestDatabase;
let service: Service;
let browser: Browser;
let rp: FormPostPortal;
let portal: oidc.Configuration;
let clientId: string;

before(async () => {
  browser = await launchChromium();
  database = await freshDatabase();
  service = await startTestService(database.url);
  rp = await startFormPostPortal();
  const client = await addClient(service.db, {
    name: 'Cổng Dịch vụ công (form_post)',
    redirectUris: [rp.redirectUri],
    scopes: ['profile'],
  });
  clientId = client.client_id;
  portal = await oidc.discovery(
    new URL(service.url),
    clientId,
    { token_endpoint_auth_method: 'client_secret_basic' },
    oidc.ClientSecretBasic(client.client_secret!),
    { execute: [oidc.allowInsecureRequests] },
  );
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await service?.close();
  await database?.drop();
});

/** A new browser context (Vietnamese, as most citizens) with its watch. */
async function citizen(opts: { javaScriptEnabled?: boolean } = {}) {
  const context = await browser.newContext({ locale: 'vi-VN', ...opts });
  context.setDefaultTimeout(15_000);
  const w = await watch(context, service.url);
  return { context, page: await context.newPage(), watch: w };
}

/** An authorization request with response_mode=form_post, PKCE and state; `extra` adds parameters. */
async function formPostRequest(extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(portal, {
    redirect_uri: rp.redirectUri,
    response_mode: 'form_post',
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...extra,
  });
  return { url: url.toString(), verifier, state };
}

/** Signs the demo citizen in on the login page; stops at the consent page. */
async function signIn(page: Page): Promise<void> {
  await page.waitForURL(`${service.url}/interaction/**`);
  await page.fill('#pin', DEMO_PIN);
  await page.fill('#password', DEMO_PASSWORD);
  await page.locator('form[action$="/login"] button[type=submit]').click();
  await page.locator('form[action$="/consent"]').waitFor();
}

/** The next form the portal receives after `before` forms (polled with a deadline). */
async function nextPost(before: number): Promise<URLSearchParams> {
  await until('the portal receives the form_post', () => rp.received.length > before, 15_000);
  return rp.received[before]!;
}

/** No provider document allowed inline script: no hash or 'unsafe-inline' was ever added to its CSP. */
function assertStrictCsp(w: Watch): void {
  assert.ok(w.documents.length > 0, 'provider documents were seen');
  for (const d of w.documents) {
    assert.match(d.csp, /script-src 'self'(;|$)/, `${d.url} (${d.status}): script-src 'self' only: ${d.csp}`);
    assert.doesNotMatch(d.csp, /sha256-|unsafe-inline|nonce-/, `${d.url}: no inline script allowed`);
  }
}

describe('provider pages in Chromium under the CSP', () => {
  it('form_post, consent, logout confirmation and success pages: no CSP violation; logout ends the session', async () => {
    const { context, page, watch: w } = await citizen();

    // Login and consent, then the form_post page posts the code to the portal by itself (a same-origin script).
    const request = await formPostRequest();
    const before = rp.received.length;
    await page.goto(request.url);
    await signIn(page);
    await page.locator('form[action$="/consent"] button').first().click();
    const posted = await nextPost(before);
    assert.ok(posted.get('code'), 'the portal received a code');
    assert.equal(posted.get('state'), request.state, 'the portal received its state back');
    assert.equal(posted.get('iss'), service.url, 'and the issuer (RFC 9207)');
    await page.locator('#portal').waitFor();
    assert.ok(w.scriptFiles.includes('/static/form-post.js'), 'the page was sent by the same-origin script file');

    // The code is real: the portal redeems it (PKCE, state) from the POSTed form.
    const callback = new Request(rp.redirectUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: posted.toString(),
    });
    const tokens = await oidc.authorizationCodeGrant(portal, callback, {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
    });
    assert.ok(tokens.id_token, 'an ID token for the form_post code');

    // RP-initiated logout: the confirmation page, its button, the success page.
    const sessionId = (await context.cookies(service.url)).find((c) => c.name === '_session')?.value;
    assert.ok(sessionId, 'the browser holds a provider session');
    assert.ok(await service.host.current.Session.find(sessionId), 'the session exists before logout');
    await page.goto(oidc.buildEndSessionUrl(portal, { id_token_hint: tokens.id_token! }).toString());
    await page.locator('button[name="logout"]').click();
    await page.waitForURL(`${service.url}/session/end/success**`);
    assert.match((await page.locator('main').textContent()) ?? '', /Bạn đã đăng xuất/);
    assert.equal(await service.host.current.Session.find(sessionId), undefined, 'the session is gone');
    assert.equal(
      (await context.cookies(service.url)).some((c) => c.name === '_session'),
      false,
      'the browser no longer holds the session cookie',
    );
    await until('the audit trail records the logout', async () => {
      const { rows } = await sql<{ n: string }>`
        select count(*) as n from audit_events where action = 'logout' and client_id = ${clientId}`.execute(service.db);
      return Number(rows[0]!.n) === 1;
    });

    // A new authorization asks for the password again.
    await page.goto((await formPostRequest()).url);
    await page.locator('#password').waitFor();

    // Logout with nobody signed in: oidc-provider's self-submitting form, sent by the same script file.
    const scripts = w.scriptFiles.length;
    await page.goto(`${service.url}/session/end`);
    await page.waitForURL(`${service.url}/session/end/success**`);
    assert.ok(w.scriptFiles.length > scripts, 'the logout form was sent by the script file');

    // The provider's error page.
    const error = await page.goto(`${service.url}/auth?client_id=no-such-portal&response_type=code`);
    assert.equal(error?.status(), 400);
    assert.match((await page.locator('main').textContent()) ?? '', /invalid_client/);

    assert.deepEqual(w.violations, [], 'no CSP violation on any page');
    assertStrictCsp(w);

    // The watch does see a violation: an inline script added to a provider page is refused and reported.
    await page.evaluate(`document.body.append(Object.assign(document.createElement('script'), { text: '1' }))`);
    await until('the control violation is reported', () => w.violations.length > 0, 5_000);
    await context.close();
  });

  it('without script, the form_post page shows a button in our layout that delivers the code', async () => {
    const { context, page, watch: w } = await citizen({ javaScriptEnabled: false });
    const request = await formPostRequest();
    const before = rp.received.length;
    await page.goto(request.url);
    await signIn(page);
    await page.locator('form[action$="/consent"] button').first().click();

    // The page stays (no script runs): our layout, the hidden form, a visible button, no inline script.
    const button = page.locator('#form-post button[type=submit]');
    await button.waitFor();
    assert.ok(await button.isVisible(), 'the button is visible');
    assert.equal(await page.locator('link[rel=stylesheet][href="/static/app.css"]').count(), 1, 'our layout');
    assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline script');
    assert.equal(await page.locator('script[src="/static/form-post.js"]').count(), 1);
    assert.equal(await page.locator('#form-post').getAttribute('action'), rp.redirectUri);
    assert.equal(await page.locator('#form-post input[name=state]').getAttribute('value'), request.state);
    assert.equal(rp.received.length, before, 'nothing posted before the click');

    await button.click();
    const posted = await nextPost(before);
    assert.ok(posted.get('code'));
    assert.equal(posted.get('state'), request.state);
    assert.deepEqual(w.violations, []);
    assertStrictCsp(w);
    await context.close();
  });

  it('a refused consent reaches the portal as a form_post error, with no CSP violation', async () => {
    const { context, page, watch: w } = await citizen();
    // prompt=consent: the consent given in an earlier test is remembered, the page is asked for anyway.
    const request = await formPostRequest({ prompt: 'consent' });
    const before = rp.received.length;
    await page.goto(request.url);
    await signIn(page);
    await page.locator('form[action$="/abort"] button').click();
    const posted = await nextPost(before);
    assert.equal(posted.get('error'), 'access_denied');
    assert.equal(posted.get('state'), request.state);
    assert.equal(posted.get('code'), null);
    await page.locator('#portal').waitFor();
    assert.deepEqual(w.violations, []);
    assertStrictCsp(w);
    await context.close();
  });
});
