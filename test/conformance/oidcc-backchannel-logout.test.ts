/**
 * The OpenID Foundation's Back-Channel Logout OP plan (oidcc-backchannel-rp-initiated-logout-certification-test-plan),
 * one test per module, named as the suite names it. Invariant: when a citizen signs out at a portal, every portal of
 * that session registered for back-channel logout receives, server to server, a logout token it can verify (signed by
 * a key of the provider's JWKS, for it, naming the session's sid and sub, never a nonce); the browser returns to the
 * registered post-logout URI with its state; the SSO session is over.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Service } from '../../src/main.ts';
import { Agent } from '../helpers/agent.ts';
import {
  authRequest,
  checkErrorResponse,
  checkIdToken,
  type LogoutReceiver,
  logOut,
  type Portal,
  redeem,
  registerPortal,
  signIn,
  silently,
  startLogoutReceiver,
} from '../helpers/conformance.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestService } from '../helpers/service.ts';
import { until } from '../helpers/wait.ts';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
let database: TestDatabase;
let service: Service;
let receiver: LogoutReceiver;
let portal: Portal;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, { WORKER_INTERVAL_MS: '100' });
  receiver = await startLogoutReceiver();
  portal = await registerPortal(service, { port: 4731, backchannelLogoutUri: receiver.url });
});
after(async () => {
  await receiver?.close();
  await service?.close();
  await database?.drop();
});

describe('oidcc-backchannel-rp-initiated-logout-certification-test-plan', () => {
  it('oidcc-backchannel-logout-discovery-endpoint-verification', async () => {
    // That every endpoint is https behind the TLS-terminating balancer is checked on the same document in
    // oidcc-config.test.ts.
    const meta = portal.config.serverMetadata() as Record<string, unknown>;
    assert.equal(meta.backchannel_logout_supported, true);
    // Required for certification: the session id (sid) in ID tokens and logout tokens.
    assert.equal(meta.backchannel_logout_session_supported, true);
    assert.equal(typeof meta.end_session_endpoint, 'string');
    assert.equal(new URL(String(meta.end_session_endpoint)).origin, new URL(String(meta.issuer)).origin);
  });

  it('oidcc-backchannel-rp-initiated-logout', async () => {
    const agent = new Agent();
    const req = await authRequest(portal);
    const tokens = await redeem(portal, await signIn(agent, portal, req.url), req);
    const idToken = await checkIdToken(portal, tokens.id_token!, { nonce: req.nonce });
    assert.equal(typeof idToken.sid, 'string', 'the ID token carries the session id');

    const state = randomBytes(96).toString('base64url');
    const end = oidc.buildEndSessionUrl(portal.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: portal.postLogout,
      state,
    });
    end.searchParams.delete('client_id');
    const out = await logOut(agent, end, service.url);

    // The front channel: back at the registered URI with the state, and nothing else.
    assert.equal(out.url.origin + out.url.pathname, portal.postLogout);
    assert.deepEqual([...out.url.searchParams], [['state', state]]);

    // The back channel: one POST of a form with a logout token alone.
    await until('the portal is told', () => receiver.requests.length > 0, 15_000);
    assert.equal(receiver.requests.length, 1, 'told once');
    const told = receiver.requests[0]!;
    assert.equal(told.method, 'POST');
    assert.match(told.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(told.body);
    assert.deepEqual([...form.keys()], ['logout_token'], 'no other parameter');
    const logoutToken = form.get('logout_token')!;

    // ValidateLogoutTokenSignature, ValidateLogoutTokenClaims, CheckIdToken{Sub,Sid}MatchesLogoutToken,
    // CheckLogoutTokenNoNonce, CheckLogoutTokenHasSubOrSid.
    const header = decodeProtectedHeader(logoutToken);
    assert.notEqual(header.alg, 'none');
    assert.ok(header.kid, 'names its key');
    assert.equal(header.typ, 'logout+jwt', 'explicitly typed (Back-Channel Logout 1.0, 2.4)');
    const jwks = createRemoteJWKSet(new URL(portal.config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(logoutToken, jwks, {
      issuer: portal.config.serverMetadata().issuer,
      audience: portal.clientId,
      typ: 'logout+jwt',
    });
    const now = Math.floor(Date.now() / 1000);
    assert.equal(typeof payload.iat, 'number');
    assert.ok(payload.iat! <= now + 5 && payload.iat! >= now - 300, 'iat now');
    assert.equal(typeof payload.exp, 'number');
    assert.ok(payload.exp! > now, 'exp in the future');
    assert.equal(typeof payload.jti, 'string');
    assert.ok(payload.jti!.length > 0);
    const events = payload.events as Record<string, unknown>;
    assert.ok(events && typeof events === 'object' && !Array.isArray(events), 'events is an object');
    assert.deepEqual(events[BACKCHANNEL_LOGOUT_EVENT], {}, 'the back-channel logout event, an empty object');
    assert.equal(payload.nonce, undefined, 'no nonce: never mistaken for an ID token');
    assert.ok(payload.sid || payload.sub, 'sid or sub');
    assert.equal(payload.sid, idToken.sid, "the ID token's sid");
    assert.equal(payload.sub, idToken.sub, "the ID token's sub");

    // The closing step: prompt=none in that browser needs a login.
    const silent = await authRequest(portal, { prompt: 'none' });
    const back = await silently(agent, portal, silent.url);
    assert.equal(
      checkErrorResponse(portal, back, silent, ['login_required', 'interaction_required', 'consent_required']),
      'login_required',
    );
  });
});
