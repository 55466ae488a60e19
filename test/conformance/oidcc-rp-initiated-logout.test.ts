/**
 * The OpenID Foundation's RP-Initiated Logout OP plan (oidcc-rp-initiated-logout-certification-test-plan), one test
 * per module, named as the suite names it. Invariant: the provider sends the browser back only to a post-logout
 * redirect URI registered exactly for the portal an authentic id_token_hint names; anything else gets an error page
 * or a confirmation, never a redirect; a confirmed logout ends the SSO session (a prompt=none authorization then gets
 * login_required).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import type { Service } from '../../src/main.ts';
import { Agent } from '../helpers/agent.ts';
import {
  authRequest,
  checkErrorResponse,
  logOut,
  type Portal,
  redeem,
  registerPortal,
  signIn,
  silently,
} from '../helpers/conformance.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestService } from '../helpers/service.ts';

let database: TestDatabase;
let service: Service;
let portal: Portal;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  portal = await registerPortal(service, { port: 4721 });
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** A signed-in browser and the ID token of its authorization (the suite's "normal authorization flow"). */
async function signedIn(): Promise<{ agent: Agent; idToken: string }> {
  const agent = new Agent();
  const req = await authRequest(portal);
  const tokens = await redeem(portal, await signIn(agent, portal, req.url), req);
  return { agent, idToken: tokens.id_token! };
}

/** The suite's closing step: a prompt=none authorization in that browser; the error it gets (or null: a code). */
async function silentAttempt(agent: Agent): Promise<string | null> {
  const req = await authRequest(portal, { prompt: 'none' });
  const back = await silently(agent, portal, req.url);
  if (back.searchParams.get('code')) return null;
  return checkErrorResponse(portal, back, req, ['login_required', 'interaction_required']);
}

/**
 * For the modules whose request must not send the browser back: the provider shows an error page, or asks the
 * citizen to confirm and, confirmed, signs them out without sending the browser to the portal. Returns which.
 */
async function noRedirect(agent: Agent, url: URL): Promise<'error' | 'confirm'> {
  const res = await agent.request(url, { headers: { accept: 'text/html' } });
  assert.equal(res.headers.get('location'), null, 'the browser is not sent anywhere');
  assert.ok(res.status === 200 || res.status === 400, `a page (got ${res.status})`);
  const html = await res.text();
  if (res.status === 400) {
    assert.match(html, /invalid_request/, 'an error page');
    return 'error';
  }
  const out = await logOut(agent, url, service.url);
  assert.equal(out.url.origin, new URL(service.url).origin, 'confirmed: stays at the provider, not sent to the portal');
  assert.match(out.html, /đã đăng xuất|signed out/i, 'the "you are signed out" page');
  return 'confirm';
}

/** The id_token_hint with its header changed to alg none and its signature dropped. */
function unsigned(idToken: string): string {
  const [, payload] = idToken.split('.');
  return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
}

/** The same claims, signed by a key that is not the provider's (the suite's own). */
async function signedByAnother(idToken: string): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT(decodeJwt(idToken)).setProtectedHeader({ alg: 'ES256', kid: 'suite' }).sign(privateKey);
}

/** The suite's end-session request: the parameters given, and no client_id (which openid-client would add). */
function endSession(params: Record<string, string>): URL {
  const url = oidc.buildEndSessionUrl(portal.config, params);
  url.searchParams.delete('client_id');
  return url;
}

/** The suite's state at logout: 128 characters, to check it comes back uncut. */
const longState = () => randomBytes(96).toString('base64url');

describe('oidcc-rp-initiated-logout-certification-test-plan', () => {
  it('oidcc-rp-initiated-logout-discovery-endpoint-verification', async () => {
    // end_session_endpoint is advertised, at the issuer. That it and every other endpoint are https behind the
    // TLS-terminating balancer is checked on the same document in oidcc-config.test.ts.
    const meta = portal.config.serverMetadata();
    assert.equal(typeof meta.end_session_endpoint, 'string', 'end_session_endpoint is advertised');
    const end = new URL(meta.end_session_endpoint!);
    assert.equal(end.origin, new URL(meta.issuer).origin);
    assert.equal(end.hash, '');
  });

  it('oidcc-rp-initiated-logout', async () => {
    const { agent, idToken } = await signedIn();
    const state = longState();
    const out = await logOut(
      agent,
      endSession({ id_token_hint: idToken, post_logout_redirect_uri: portal.postLogout, state }),
      service.url,
    );
    assert.equal(out.url.origin + out.url.pathname, portal.postLogout, 'back at the registered URI');
    assert.deepEqual([...out.url.searchParams], [['state', state]], 'with the state, and nothing else');
    assert.equal(await silentAttempt(agent), 'login_required', 'signed out at the provider');
  });

  it('oidcc-rp-initiated-logout-bad-post-logout-redirect-uri', async () => {
    const { agent, idToken } = await signedIn();
    const url = endSession({
      id_token_hint: idToken,
      post_logout_redirect_uri: `${portal.postLogout}/${oidc.randomState()}`,
      state: longState(),
    });
    assert.equal(await noRedirect(agent, url), 'error', 'dinhdanh: an error page');
  });

  it('oidcc-rp-initiated-logout-modified-id-token-hint', async () => {
    const { agent, idToken } = await signedIn();
    const url = endSession({
      id_token_hint: unsigned(idToken),
      post_logout_redirect_uri: portal.postLogout,
      state: longState(),
    });
    assert.equal(await noRedirect(agent, url), 'error', 'dinhdanh: an error page');
  });

  it('oidcc-rp-initiated-logout-no-id-token-hint', async () => {
    const { agent } = await signedIn();
    const url = endSession({ post_logout_redirect_uri: portal.postLogout, state: longState() });
    // Without a hint nothing says which portal the URI belongs to: dinhdanh asks the citizen, and does not redirect.
    assert.equal(await noRedirect(agent, url), 'confirm');
    assert.equal(await silentAttempt(agent), 'login_required', 'confirmed: signed out');
  });

  it('oidcc-rp-initiated-logout-no-params', async () => {
    const { agent } = await signedIn();
    const url = new URL(portal.config.serverMetadata().end_session_endpoint!);
    const out = await logOut(agent, url, service.url);
    assert.equal(out.url.origin, new URL(service.url).origin, 'stays at the provider');
    assert.equal(out.status, 200);
    assert.match(out.html, /đã đăng xuất|signed out/i, 'the "you are signed out" page');
    assert.equal(await silentAttempt(agent), 'login_required');
  });

  it('oidcc-rp-initiated-logout-no-post-logout-redirect-uri', async () => {
    const { agent, idToken } = await signedIn();
    const out = await logOut(agent, endSession({ id_token_hint: idToken }), service.url);
    assert.equal(out.url.origin, new URL(service.url).origin, 'stays at the provider');
    assert.equal(out.status, 200);
    assert.match(out.html, /đã đăng xuất|signed out/i);
    assert.equal(await silentAttempt(agent), 'login_required');
  });

  it('oidcc-rp-initiated-logout-no-state', async () => {
    const { agent, idToken } = await signedIn();
    const out = await logOut(
      agent,
      endSession({ id_token_hint: idToken, post_logout_redirect_uri: portal.postLogout }),
      service.url,
    );
    assert.equal(out.url.origin + out.url.pathname, portal.postLogout);
    assert.equal(out.url.search, '', 'no state, nothing added');
    assert.equal(await silentAttempt(agent), 'login_required');
  });

  it('oidcc-rp-initiated-logout-only-state', async () => {
    const { agent } = await signedIn();
    const url = new URL(portal.config.serverMetadata().end_session_endpoint!);
    url.searchParams.set('state', longState());
    const out = await logOut(agent, url, service.url);
    assert.equal(out.url.origin, new URL(service.url).origin, 'no redirect URI: stays at the provider');
    assert.match(out.html, /đã đăng xuất|signed out/i);
    assert.equal(await silentAttempt(agent), 'login_required');
  });

  it('oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri', async () => {
    const { agent, idToken } = await signedIn();
    const url = endSession({
      id_token_hint: idToken,
      post_logout_redirect_uri: `${portal.postLogout}?foo=bar`,
      state: longState(),
    });
    assert.equal(await noRedirect(agent, url), 'error', 'compared exactly: an added query is another URI');
  });

  it('oidcc-rp-initiated-logout-bad-id-token-hint', async () => {
    const { agent, idToken } = await signedIn();
    const url = endSession({
      id_token_hint: await signedByAnother(idToken),
      post_logout_redirect_uri: portal.postLogout,
      state: longState(),
    });
    assert.equal(await noRedirect(agent, url), 'error', 'dinhdanh: an error page');
    assert.equal(await silentAttempt(agent), null, 'the session was not ended by a forged hint');
  });
});
