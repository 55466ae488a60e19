/**
 * End to end: a relying portal (openid-client) completes authorization code + PKCE against a real dinhdanh node on
 * PostgreSQL; the ID token verifies against the JWKS; userinfo answers; failures get precise errors, never a 500.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Service } from '../src/main.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import {
  authorizationRequest,
  DEMO_PASSWORD,
  DEMO_PIN,
  DEMO_REDIRECT,
  demoPortal,
  follow,
  loginThrough,
  submitLogin,
} from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';
import { labelOf, statementsOf } from './helpers/statements.ts';

let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
/** Set, so that the pairwise `sub` can be recomputed here: its formula must never change (every portal's users). */
const PAIRWISE_SECRET = 'flow-test-pairwise-secret-0123456789abcdef';

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, { PAIRWISE_SECRET });
  portal = await demoPortal(service.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

describe('authorization code + PKCE', () => {
  it('logs a citizen in, issues a verifiable ID token and answers userinfo', async () => {
    const agent = new Agent();
    const { url, verifier, state } = await authorizationRequest(portal);
    const callback = await loginThrough(agent, url.toString());
    const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.ok(tokens.access_token);
    const idToken = tokens.id_token as string;
    const jwks = createRemoteJWKSet(new URL(`${service.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(idToken, jwks, {
      issuer: service.url,
      audience: 'demo-portal',
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.acr, 'urn:dinhdanh:loa:1');
    assert.deepEqual(payload.amr, ['pwd']);
    assert.equal(typeof payload.auth_time, 'number');
    assert.notEqual(payload.sub, DEMO_PIN, 'the personal identification number is never the sub');
    const { rows } = await sql<{ id: string }>`select id from accounts`.execute(service.db);
    assert.notEqual(payload.sub, rows[0]?.id, 'pairwise by default: not even the internal id');
    assert.match(String(payload.sub), /^[\w-]{43}$/);
    // The formula is pinned: HMAC-SHA-256 under the secret (as UTF-8) of the portal's sector (the redirect URI's host)
    // and the account id. A change would give every citizen a new `sub` at every portal.
    const sector = new URL(DEMO_REDIRECT).host;
    const demo = await sql<{ id: string }>`select a.id from accounts a join residents r on r.id = a.resident_id
      where r.pin = ${DEMO_PIN}`.execute(service.db);
    const expected = createHmac('sha256', PAIRWISE_SECRET).update(`${sector}\n${demo.rows[0]?.id}`).digest('base64url');
    assert.equal(payload.sub, expected);

    const info = await oidc.fetchUserInfo(portal, tokens.access_token, String(payload.sub));
    assert.equal(info.name, 'Nguyễn Văn An');
    assert.equal(info.family_name, 'Nguyễn');
    assert.equal(info.given_name, 'An');
    assert.equal(info.birthdate, '1990-05-12');
    assert.equal(info.gender, 'male');
    assert.equal(info.address, undefined, 'no address without the address scope');

    const session = await sql<{ n: string }>`select count(*) as n from oidc_payloads where model = 'Session'`.execute(
      service.db,
    );
    assert.equal(Number(session.rows[0]?.n), 1, 'the SSO session is stored in PostgreSQL');
  });

  it('remembers consent and keeps the SSO session: a second authorization needs no login', async () => {
    const agent = new Agent();
    await loginThrough(agent, (await authorizationRequest(portal)).url.toString());
    const again = await authorizationRequest(portal);
    const { url } = await follow(agent, again.url.toString());
    assert.ok(url.startsWith(DEMO_REDIRECT), 'straight back to the portal');
    assert.ok(new URL(url).searchParams.get('code'));
  });

  it('rejects a reused authorization code with invalid_grant', async () => {
    const agent = new Agent();
    const { url, verifier, state } = await authorizationRequest(portal);
    const callback = await loginThrough(agent, url.toString());
    await oidc.authorizationCodeGrant(portal, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
    await assert.rejects(
      oidc.authorizationCodeGrant(portal, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state }),
      (err: { error?: string }) => err.error === 'invalid_grant',
    );
  });

  it('rejects a wrong PKCE verifier with invalid_grant', async () => {
    const agent = new Agent();
    const { url, state } = await authorizationRequest(portal);
    const callback = await loginThrough(agent, url.toString());
    await assert.rejects(
      oidc.authorizationCodeGrant(portal, new URL(callback), {
        pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
        expectedState: state,
      }),
      (err: { error?: string }) => err.error === 'invalid_grant',
    );
  });
});

describe('statements per login (issue 20, target 3)', () => {
  // Bound: each statement costs the provider about 50 µs of CPU and its PostgreSQL a round trip, on every login of
  // every citizen. Counted on this process's PostgreSQL clients (named statements by name, others by their text);
  // the audit event's own statements and background loops are left out (they have their own owners and tests).
  const background = /backchannel_outbox|session_terminations|signing_keys|service_secrets|from "clients"/;
  const audit = /^(begin|commit|rollback)$|audit|pg_advisory_xact_lock/i;
  /** Runs `f`, returning its result and the labels of the statements this process sent meanwhile. */
  async function counted<T>(f: () => Promise<T>): Promise<[T, string[]]> {
    const [result, sent] = await statementsOf(f);
    return [result, sent.map(labelOf)];
  }
  const ours = (labels: string[]) => labels.filter((l) => !background.test(l) && !audit.test(l));

  it('the password step: interaction, lease with the lock and IP checks, login record, cleared failures with the lease, the result; the authorization after it reads no level or sandbox flag apart from the account', async () => {
    // Consent given once: the next sign-in goes from the password straight to a code.
    await loginThrough(new Agent(), (await authorizationRequest(portal)).url.toString());
    const agent = new Agent();
    const start = await follow(agent, (await authorizationRequest(portal)).url.toString());
    const html = await start.res.text();
    const [login, passwordStep] = await counted(() => submitLogin(agent, start.url, DEMO_PIN, DEMO_PASSWORD, html));
    assert.equal(login.status, 303);
    assert.deepEqual(ours(passwordStep), [
      'oidc_find_many', // the interaction (once: the result is stored on it, not on a second read)
      'limits-acquire', // the lease, with the key's lock and the IP's block read in the same statement
      'login_record', // with the untold password reset
      'limits-succeed', // failures cleared and the lease released together
      'oidc_upsert', // the interaction's result
    ]);
    // The login's audit event: one statement (before: begin, the chain's lock, its last link, insert, commit).
    assert.deepEqual(
      passwordStep.filter((l) => audit.test(l)),
      ['audit_append'],
    );
    const [callback, authorizationStep] = await counted(() => follow(agent, location(login, start.url)));
    assert.ok(callback.url.startsWith(DEMO_REDIRECT), 'a code, consent remembered');
    const step = ours(authorizationStep);
    assert.equal(step.filter((l) => l === 'account_with_resident').length, 1, step.join('\n'));
    assert.deepEqual(
      step.filter((l) => /test_citizen|totp_secret_sealed|password_reset/.test(l)),
      [],
      'the level and the sandbox flag come with the account',
    );
  });
});

describe('bad requests get precise errors', () => {
  it('refuses an authorization request without PKCE', async () => {
    const u = new URL(`${service.url}/auth`);
    u.search = new URLSearchParams({
      client_id: 'demo-portal',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: DEMO_REDIRECT,
      state: 's1',
    }).toString();
    const res = await new Agent().get(u);
    assert.equal(res.status, 303);
    const back = new URL(location(res, u.toString()));
    assert.equal(back.origin + back.pathname, DEMO_REDIRECT);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.match(back.searchParams.get('error_description') ?? '', /PKCE/);
  });

  it('refuses a plain PKCE method', async () => {
    const { url } = await authorizationRequest(portal, { code_challenge_method: 'plain' });
    const res = await new Agent().get(url);
    const back = new URL(location(res, url.toString()));
    assert.equal(back.searchParams.get('error'), 'invalid_request');
  });

  it('refuses an unregistered redirect_uri on a page, never redirecting to it', async () => {
    const { url } = await authorizationRequest(portal, { redirect_uri: 'https://evil.example/cb' });
    const res = await new Agent().request(url, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    const html = await res.text();
    assert.match(html, /invalid_redirect_uri/);
    assert.doesNotMatch(html, /evil\.example/);
  });

  it('refuses a malformed acr request in the claims parameter with a 400, not a 500', async () => {
    const claims = JSON.stringify({ id_token: { acr: { essential: true, values: 'not-an-array' } } });
    const { url } = await authorizationRequest(portal, { claims });
    const agent = new Agent();
    const start = await follow(agent, url.toString());
    const res = await submitLogin(agent, start.url, DEMO_PIN, DEMO_PASSWORD);
    assert.equal(res.status, 400);
  });

  it('refuses a client id or token with a NUL byte as unknown, never a 500', async () => {
    const res = await new Agent().request(`${service.url}/auth?client_id=%00%ff&response_type=code`, {
      headers: { accept: 'text/html' },
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /invalid_client/);
    const intro = await fetch(`${service.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'client_id=demo-portal&token=%00abc',
    });
    assert.ok(intro.status < 500, `introspection answered ${intro.status}`);
  });

  it('refuses an unknown client', async () => {
    const { url } = await authorizationRequest(portal, { client_id: 'no-such-portal' });
    const res = await new Agent().get(url);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /invalid_client/);
  });

  for (const [label, pin, password, message] of [
    ['a wrong password', DEMO_PIN, 'not-the-password', 'không xác minh được'],
    ['an unknown personal ID', '001090099999', DEMO_PASSWORD, 'không xác minh được'],
    ['a resident without an account', '079195004321', DEMO_PASSWORD, 'không xác minh được'],
    ['a malformed personal ID', '12345', DEMO_PASSWORD, '12 chữ số'],
  ] as const) {
    it(`answers ${label} with 401 and the same clear page`, async () => {
      const agent = new Agent();
      const { url } = await authorizationRequest(portal);
      const start = await follow(agent, url.toString());
      const res = await submitLogin(agent, start.url, pin, password);
      assert.equal(res.status, 401);
      const html = await res.text();
      assert.match(html.toLowerCase(), new RegExp(message.toLowerCase()));
      assert.match(html, /name="csrf"/, 'the form is shown again');
    });
  }

  it('refuses a login post without the CSRF token (403) and one from another site', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal);
    const start = await follow(agent, url.toString());
    const html = await start.res.text();
    const action = new URL(actionOf(html, 'login'), start.url);
    const noToken = await agent.post(action, { pin: DEMO_PIN, password: DEMO_PASSWORD }, { accept: 'text/html' });
    assert.equal(noToken.status, 403);
    const crossSite = await agent.post(
      action,
      { csrf: csrfOf(html), pin: DEMO_PIN, password: DEMO_PASSWORD },
      { 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(crossSite.status, 403);
    assert.deepEqual(await crossSite.json(), { error: 'csrf', error_description: 'cross-site form post refused' });
  });

  it('refuses an oversized login form with 413, and reads broken percent-escapes as no personal ID, never 500', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal);
    const start = await follow(agent, url.toString());
    const html = await start.res.text();
    const action = new URL(actionOf(html, 'login'), start.url);
    const big = await agent.post(action, { csrf: csrfOf(html), pin: DEMO_PIN, password: 'x'.repeat(20000) });
    assert.equal(big.status, 413);
    assert.deepEqual(await big.json(), { error: 'payload_too_large' });
    // A valid CSRF token, so the body itself is what is answered: broken escapes are read leniently (as WHATWG
    // URL-encoded parsing does), and the login answers that no valid personal ID was given.
    const bad = await agent.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${encodeURIComponent(csrfOf(html))}&pin=%E0%A4%A&password=%`,
    });
    assert.equal(bad.status, 401);
    const page = await bad.text();
    assert.match(page, /Số định danh cá nhân gồm đúng 12 chữ số/);
    assert.match(page, /name="csrf"/, 'the form is shown again');
  });

  it('refuses a login body that cannot be decoded (a truncated gzip stream) with 400 invalid_request, never 500', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal);
    const start = await follow(agent, url.toString());
    const html = await start.res.text();
    const action = new URL(actionOf(html, 'login'), start.url);
    const form = new URLSearchParams({ csrf: csrfOf(html), pin: DEMO_PIN, password: 'not-the-password' });
    const gzipped = gzipSync(form.toString());
    const post = (body: Buffer) =>
      agent.request(action, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-encoding': 'gzip',
          accept: 'application/json',
        },
        body,
      });
    // Whole, the compressed form (with its valid CSRF token) is read: a wrong password, 401.
    const whole = await post(gzipped);
    assert.equal(whole.status, 401);
    await whole.arrayBuffer();
    const truncated = await post(gzipped.subarray(0, gzipped.length - 6));
    assert.equal(truncated.status, 400);
    assert.equal(((await truncated.json()) as { error: string }).error, 'invalid_request');
  });

  it('answers an interaction without its cookie with a 400 page, not a 500', async () => {
    const { url } = await authorizationRequest(portal);
    const start = await follow(new Agent(), url.toString());
    const res = await new Agent().request(start.url, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /invalid_request|session/i);
  });

  it('puts a strict CSP on every page and a CSRF token in every form', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal, { scope: 'openid profile address' });
    const login = await follow(agent, url.toString());
    const loginHtml = await login.res.text();
    const posted = await agent.post(new URL(actionOf(loginHtml, 'login'), login.url), {
      csrf: csrfOf(loginHtml),
      pin: DEMO_PIN,
      password: DEMO_PASSWORD,
    });
    const consent = await follow(agent, location(posted, login.url));
    const logout = await agent.get(`${service.url}/session/end`);
    const error = await agent.request(`${service.url}/auth?client_id=nope`, { headers: { accept: 'text/html' } });
    for (const [name, res, html] of [
      ['login', login.res, loginHtml],
      ['consent', consent.res, await consent.res.text()],
      ['logout', logout, await logout.text()],
      ['error', error, await error.text()],
    ] as const) {
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/, `${name}: CSP`);
      // Only same-origin script files (passkey.js and its library), never inline script.
      assert.doesNotMatch(html, /<script(?! src="\/static\/[\w.-]+"><\/script>)/i, `${name}: no inline script`);
      const forms = html.match(/<form/g)?.length ?? 0;
      const tokens = html.match(/name="(csrf|xsrf)"/g)?.length ?? 0;
      assert.equal(tokens, forms, `${name}: every form carries a CSRF token`);
    }
  });

  it('answers health checks and unknown paths precisely', async () => {
    assert.deepEqual(await (await fetch(`${service.url}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${service.url}/readyz`);
    assert.equal(ready.status, 200);
    const missing = await fetch(`${service.url}/no/such/page`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'not_found', error_description: 'no such page' });
  });

  it('lets response_mode=form_post auto-submit under the strict CSP: a same-origin script, no inline one', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal, { response_mode: 'form_post' });
    const start = await follow(agent, url.toString());
    const html = await start.res.text();
    const posted = await agent.post(new URL(actionOf(html, 'login'), start.url), {
      csrf: csrfOf(html),
      pin: DEMO_PIN,
      password: DEMO_PASSWORD,
    });
    let next = await follow(agent, location(posted, start.url));
    let body = await next.res.text();
    if (/\/consent"/.test(body)) {
      const consent = await agent.post(new URL(actionOf(body, 'consent'), next.url), { csrf: csrfOf(body) });
      next = await follow(agent, location(consent, next.url));
      body = await next.res.text();
    }
    assert.match(body, /<form id="form-post" method="post" action="http:\/\/localhost:3001\/callback"/);
    assert.doesNotMatch(body, /<script(?![^>]*\bsrc=)/, 'no inline script');
    assert.match(body, /<script src="\/static\/form-post.js"><\/script>/);
    const csp = next.res.headers.get('content-security-policy') ?? '';
    assert.doesNotMatch(csp, /sha256-|unsafe-inline/);
  });

  it('serves pages with a strict CSP and no inline script', async () => {
    const agent = new Agent();
    const { url } = await authorizationRequest(portal);
    const start = await follow(agent, url.toString());
    const csp = start.res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(start.res.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(await start.res.text(), /<script(?! src="\/static\/[\w.-]+"><\/script>)/i);
  });
});
