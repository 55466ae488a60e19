/**
 * The OpenID Foundation's FAPI 2.0 Security Profile Final plan (fapi2-security-profile-final-test-plan), one test per
 * module, named as the suite names it, for the variant dinhdanh offers: plain_fapi, private_key_jwt, DPoP,
 * openid_connect, unsigned (PAR) requests. The suite's two clients are portals registered with `profile: 'fapi2'` and
 * their own keys; openid-client is the RP; hand-made client assertions and DPoP proofs play the negative modules.
 * Invariant: a FAPI 2.0 portal's authorization request travels only through PAR with PKCE S256, its client
 * authentication is a private_key_jwt assertion for the issuer alone, and what it is issued (code, tokens) is bound to
 * it and to its DPoP key: nobody else can redeem or use them.
 */
import assert from 'node:assert/strict';
import { createHash, type webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Service } from '../../src/main.ts';
import { Agent, actionOf, csrfOf, location } from '../helpers/agent.ts';
import {
  type AuthRequest,
  ageConsumedCodes,
  checkCodeResponse,
  checkErrorResponse,
  checkIdToken,
  checkUserInfo,
  signIn,
} from '../helpers/conformance.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  assertionForm,
  clientAssertion,
  dpopProof,
  type FapiPortal,
  fapiFlow,
  postForm,
  push,
  pushedParams,
  redeemDpop,
  refused,
  registerFapiPortal,
  thumbprint,
} from '../helpers/fapi.ts';
import { DEMO_PASSWORD, DEMO_PIN, follow, submitLogin } from '../helpers/flow.ts';
import { startTestService } from '../helpers/service.ts';

let database: TestDatabase;
let service: Service;
/** The suite's first client: ES256 key. */
let client1: FapiPortal;
/** The suite's second client: an RSA key (PS256), as the RS256 module needs. */
let client2: FapiPortal;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  client1 = await registerFapiPortal(service, { port: 4741 });
  client2 = await registerFapiPortal(service, { port: 4742, alg: 'PS256' });
});
after(async () => {
  await service?.close();
  await database?.drop();
});

const meta = () => client1.config.serverMetadata();
const epoch = () => Math.floor(Date.now() / 1000);

/** The suite's resource endpoint for openid_connect: userinfo, called with DPoP (`scheme` as given). */
async function resource(at: string, proof: string | null, scheme = 'DPoP', extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { authorization: `${scheme} ${at}`, ...extra };
  if (proof !== null) headers.dpop = proof;
  return fetch(meta().userinfo_endpoint!, { headers });
}

/** A valid DPoP proof of `p`'s key for a userinfo GET with `at`. */
const resourceProof = (p: FapiPortal, at: string, o: Parameters<typeof dpopProof>[3] = {}) =>
  dpopProof(p.dpopKeys, 'GET', meta().userinfo_endpoint!, { accessToken: at, ...o });

/** A raw PAR request for `p`: the pushed parameters, its client assertion (or the one given), a DPoP proof. */
async function rawPush(
  p: FapiPortal,
  params: Record<string, string | null> = {},
  o: { assertion?: string | null; proof?: string | null; extra?: Record<string, string> } = {},
) {
  const { params: sent, req } = await pushedParams(p, params);
  const endpoint = meta().pushed_authorization_request_endpoint!;
  const assertion = o.assertion === undefined ? await clientAssertion(p) : o.assertion;
  const proof = o.proof === undefined ? await dpopProof(p.dpopKeys, 'POST', endpoint) : o.proof;
  const res = await postForm(
    endpoint,
    { client_id: p.clientId, ...sent, ...(assertion ? assertionForm(assertion) : {}), ...o.extra },
    proof ? { dpop: proof } : {},
  );
  return { res, req };
}

/** A raw token request for a code, with `p`'s credentials unless others are given. */
async function rawToken(
  p: FapiPortal,
  callback: URL,
  req: AuthRequest,
  o: {
    assertion?: string | null;
    proof?: string | null;
    form?: Record<string, string | null>;
  } = {},
) {
  const endpoint = meta().token_endpoint!;
  const assertion = o.assertion === undefined ? await clientAssertion(p) : o.assertion;
  const proof = o.proof === undefined ? await dpopProof(p.dpopKeys, 'POST', endpoint) : o.proof;
  const form: Record<string, string | null> = {
    grant_type: 'authorization_code',
    code: callback.searchParams.get('code')!,
    redirect_uri: p.redirect,
    code_verifier: req.verifier,
    client_id: p.clientId,
    ...(assertion ? assertionForm(assertion) : {}),
    ...o.form,
  };
  const kept = Object.fromEntries(Object.entries(form).filter((e): e is [string, string] => e[1] !== null));
  return postForm(endpoint, kept, proof ? { dpop: proof } : {});
}

/** Pushes and signs in; returns the callback with its code, not yet redeemed. */
async function authorized(
  p: FapiPortal = client1,
  params: Record<string, string | null> = {},
  dpop: oidc.DPoPHandle | null = p.dpop,
) {
  const agent = new Agent();
  const req = await push(p, params, dpop);
  const callback = await signIn(agent, p, req.url);
  checkCodeResponse(p, callback, req);
  return { agent, req, callback };
}

/** A pushed request refused at the PAR endpoint, or (the module's other outcome) at the authorization endpoint. */
async function refusedSomewhere(p: FapiPortal, params: Record<string, string | null>, allowed: string[]) {
  try {
    const req = await push(p, params);
    const res = await new Agent().request(req.url, { headers: { accept: 'text/html' } });
    if (res.status === 400) return 'page';
    const back = new URL(location(res, req.url.toString()));
    checkErrorResponse(p, back, req, allowed);
    return 'redirect';
  } catch (e) {
    const err = e as { error?: string; status?: number };
    assert.ok(err.error && allowed.includes(err.error), `PAR refused with ${allowed.join(' or ')} (got ${err.error})`);
    assert.ok(err.status === 400 || err.status === 401, `PAR answered ${err.status}`);
    return 'par';
  }
}

/** The provider's error page: 400, no redirect anywhere, the OAuth error code shown. */
async function errorPage(res: Response, error: RegExp): Promise<void> {
  assert.equal(res.status, 400, 'an error page');
  assert.equal(res.headers.get('location'), null, 'no redirect');
  assert.match(await res.text(), error);
}

/** An authorization code of a request expires, as the clock would have it after 60 s. */
async function expireCode(req: AuthRequest): Promise<void> {
  const challenge = await oidc.calculatePKCECodeChallenge(req.verifier);
  const { numAffectedRows } = await sql`update oidc_payloads set expires_at = now() - interval '1 second',
    payload = payload || jsonb_build_object('exp', extract(epoch from now())::bigint - 1)
    where model = 'AuthorizationCode' and payload->>'codeChallenge' = ${challenge}`.execute(service.db);
  assert.equal(Number(numAffectedRows), 1, 'the code is 61 s old');
}

/** Every pushed request not used yet expires now, as the clock would have it (tests run one at a time). */
async function expirePushedRequests(): Promise<number> {
  const { numAffectedRows } = await sql`update oidc_payloads set expires_at = now() - interval '1 second'
    where model = 'PushedAuthorizationRequest' and consumed_at is null`.execute(service.db);
  return Number(numAffectedRows);
}

const PLAN = 'fapi2-security-profile-final-test-plan (plain_fapi, private_key_jwt, dpop, openid_connect, unsigned)';

describe(PLAN, () => {
  it('fapi2-security-profile-final-discovery-end-point-verification', () => {
    const m = meta() as Record<string, unknown>;
    assert.ok((m.response_types_supported as string[]).includes('code'));
    assert.equal(m.authorization_response_iss_parameter_supported, true, 'RFC 9207 iss');
    assert.equal(typeof m.pushed_authorization_request_endpoint, 'string', 'PAR');
    if ('require_pushed_authorization_requests' in m)
      assert.equal(typeof m.require_pushed_authorization_requests, 'boolean');
    const fapiAlgs = ['PS256', 'ES256', 'EdDSA', 'Ed25519'];
    for (const key of [
      'dpop_signing_alg_values_supported',
      'id_token_signing_alg_values_supported',
      'token_endpoint_auth_signing_alg_values_supported',
    ])
      assert.ok(
        (m[key] as string[]).some((a) => fapiAlgs.includes(a)),
        `${key}: a FAPI 2.0 algorithm`,
      );
    assert.ok((m.token_endpoint_auth_methods_supported as string[]).includes('private_key_jwt'));
    assert.ok((m.code_challenge_methods_supported as string[]).includes('S256'));
    assert.ok((m.scopes_supported as string[]).includes('openid'));
    assert.ok((m.subject_types_supported as string[]).length > 0);
    for (const key of ['token_endpoint', 'authorization_endpoint', 'jwks_uri']) assert.ok(URL.canParse(String(m[key])));
    // https for every endpoint behind the balancer: the same document, checked in oidcc-config.test.ts.
  });

  it('fapi2-security-profile-final-happy-flow', async () => {
    for (const p of [client1, client2]) {
      const agent = new Agent();
      const { req, callback, tokens, claims } = await fapiFlow(p, agent);
      // The front channel carried only client_id and a request_uri (no parameter twice).
      assert.deepEqual([...req.url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
      const par = p.seen.find((s) => s.url === meta().pushed_authorization_request_endpoint)!;
      assert.equal(par.status, 201, 'PAR answers 201');
      assert.ok(callback.searchParams.get('code')!.length >= 22, 'a code of 128 bits or more');
      assert.equal(tokens.token_type.toLowerCase(), 'dpop', 'a DPoP-bound access token');
      assert.ok(tokens.expires_in! > 0);
      assert.ok(tokens.access_token.length >= 22);
      assert.equal(decodeProtectedHeader(tokens.id_token!).alg, 'ES256');
      await checkUserInfo(
        await resource(tokens.access_token, await resourceProof(p, tokens.access_token)),
        String(claims.sub),
      );
      assert.equal((await resource(tokens.access_token, null, 'Bearer')).status, 401, 'not usable as a bearer token');
    }
  });

  it('fapi2-security-profile-final-user-rejects-authentication', async (t) => {
    // The citizen declines on the consent page: access_denied at the redirect URI, with the state and iss.
    const agent = new Agent();
    const req = await push(client1, { prompt: 'consent' });
    const start = await follow(agent, req.url.toString(), client1.redirect);
    const login = await submitLogin(agent, start.url, DEMO_PIN, DEMO_PASSWORD, await start.res.text());
    const consent = await follow(agent, location(login, start.url), client1.redirect);
    const html = await consent.res.text();
    const abort = await agent.post(new URL(actionOf(html, 'abort'), consent.url), { csrf: csrfOf(html) });
    const back = await follow(agent, location(abort, consent.url), client1.redirect);
    checkErrorResponse(client1, new URL(back.url), req, ['access_denied']);
    // As the suite runs it (no prompt=consent, the portal already consented to): the login screen is the only page.
    await t.test('cancelling on the login screen', {}, async () => {
      const other = new Agent();
      const again = await push(client1);
      const page = await follow(other, again.url.toString(), client1.redirect);
      const loginHtml = await page.res.text();
      const cancel = await other.post(new URL(actionOf(loginHtml, 'abort'), page.url), { csrf: csrfOf(loginHtml) });
      const out = await follow(other, location(cancel, page.url), client1.redirect);
      checkErrorResponse(client1, new URL(out.url), again, ['access_denied']);
    });
  });

  it('fapi2-security-profile-final-ensure-authorization-request-without-state-success', async () => {
    const { callback, req } = await authorized(client1, { state: null });
    assert.equal(callback.searchParams.get('state'), null, 'no state returned');
    await redeemDpop(client1, callback, req);
  });

  it('fapi2-security-profile-final-ensure-authorization-request-without-nonce-success', async () => {
    const { claims } = await fapiFlow(client1, new Agent(), { nonce: null });
    assert.equal(claims.nonce, undefined);
  });

  it('fapi2-security-profile-final-ensure-authorization-request-with-64-char-nonce-success', async () => {
    const nonce = 'n'.repeat(32) + oidc.randomNonce().slice(0, 32);
    assert.equal(nonce.length, 64);
    const { claims } = await fapiFlow(client1, new Agent(), { nonce });
    assert.equal(claims.nonce, nonce);
  });

  it('fapi2-security-profile-final-ensure-other-scope-order-succeeds', async () => {
    const { tokens } = await fapiFlow(client1, new Agent(), { scope: 'email openid' });
    assert.deepEqual(new Set(tokens.scope!.split(' ')), new Set(['openid', 'email']));
  });

  it('fapi2-security-profile-final-test-claims-parameter-identity-claims', async () => {
    assert.equal(meta().claims_parameter_supported, true);
    const wanted = Object.fromEntries(['name', 'email', 'birthdate', 'unknown_claim_xyz'].map((c) => [c, null]));
    const claims = JSON.stringify({ id_token: wanted, userinfo: wanted });
    const { tokens, claims: idToken } = await fapiFlow(client1, new Agent(), {
      scope: 'openid profile email',
      claims,
    });
    assert.equal(idToken.unknown_claim_xyz, undefined, 'unknown claims are ignored');
    const info = await checkUserInfo(
      await resource(tokens.access_token, await resourceProof(client1, tokens.access_token)),
      String(idToken.sub),
    );
    assert.ok(info.name ?? idToken.name, 'name returned in the ID token or userinfo');
    assert.ok(info.email ?? idToken.email, 'email returned in the ID token or userinfo');
  });

  it('fapi2-security-profile-final-access-token-type-header-case-sensitivity', async () => {
    const { tokens } = await fapiFlow(client1, new Agent());
    for (const scheme of ['dpop', 'DPOP', 'DPoP']) {
      const res = await resource(tokens.access_token, await resourceProof(client1, tokens.access_token), scheme);
      assert.equal(res.status, 200, `scheme ${scheme} is case-insensitive (RFC 9110 11.1)`);
    }
  });

  it('fapi2-security-profile-final-check-dpop-proof-nbf-exp', async () => {
    const now = epoch();
    const windowed = oidc.getDPoPHandle(client1.config, client1.dpopKeys, {
      [oidc.modifyAssertion]: (_h, p) => {
        p.nbf = now - 5;
        p.exp = now + 60;
      },
    });
    const req = await push(client1, {}, windowed);
    const callback = await signIn(new Agent(), client1, req.url);
    const tokens = await redeemDpop(client1, callback, req, windowed);
    const proof = await resourceProof(client1, tokens.access_token, { changes: { nbf: now - 5, exp: now + 60 } });
    assert.equal((await resource(tokens.access_token, proof)).status, 200);
  });

  for (const [name, shift] of [
    ['fapi2-security-profile-final-ensure-dpopproof-with-iat-10seconds-before-succeeds', -10],
    ['fapi2-security-profile-final-ensure-dpopproof-with-iat-10seconds-after-succeeds', 10],
  ] as const) {
    it(name, async () => {
      const skewed = oidc.getDPoPHandle(client1.config, client1.dpopKeys, {
        [oidc.modifyAssertion]: (_h, p) => {
          p.iat = epoch() + shift;
        },
      });
      const req = await push(client1, {}, skewed);
      const callback = await signIn(new Agent(), client1, req.url);
      const tokens = await redeemDpop(client1, callback, req, skewed);
      const proof = await resourceProof(client1, tokens.access_token, { changes: { iat: epoch() + shift } });
      assert.equal((await resource(tokens.access_token, proof)).status, 200);
    });
  }

  it('fapi2-security-profile-final-ensure-mismatched-dpop-jkt-fails', async () => {
    const other = await oidc.randomDPoPKeyPair('ES256');
    const { res } = await rawPush(client1, { dpop_jkt: await thumbprint(other) });
    refused(res, ['invalid_request', 'invalid_dpop_proof']);
  });

  it('fapi2-security-profile-final-ensure-token-endpoint-fails-with-mismatched-dpop-proof-jkt', async () => {
    const { callback, req } = await authorized(client1);
    const other = await oidc.randomDPoPKeyPair('ES256');
    const res = await rawToken(client1, callback, req, {
      proof: await dpopProof(other, 'POST', meta().token_endpoint!),
    });
    refused(res, ['invalid_grant', 'invalid_dpop_proof', 'invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-token-endpoint-fails-with-mismatched-dpop-jkt', async () => {
    const other = await oidc.randomDPoPKeyPair('ES256');
    const { callback, req } = await authorized(client1, { dpop_jkt: await thumbprint(other) }, null);
    const res = await rawToken(client1, callback, req);
    refused(res, ['invalid_grant', 'invalid_dpop_proof', 'invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-dpopproof-at-par-endpoint-binding-success', async () => {
    const { callback, req } = await authorized(client1);
    const tokens = await redeemDpop(client1, callback, req);
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  });

  it('fapi2-security-profile-final-ensure-dpop-auth-code-binding-success', async () => {
    const { callback, req } = await authorized(client1, { dpop_jkt: await thumbprint(client1.dpopKeys) });
    const tokens = await redeemDpop(client1, callback, req);
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  });

  it('fapi2-security-profile-final-ensure-different-nonce-inside-and-outside-request-object', async () => {
    const req = await push(client1);
    const url = new URL(req.url);
    url.searchParams.set('nonce', oidc.randomNonce());
    const agent = new Agent();
    const callback = await signIn(agent, client1, url);
    const tokens = await redeemDpop(client1, callback, req);
    assert.equal(
      (await checkIdToken(client1, tokens.id_token!, { nonce: req.nonce })).nonce,
      req.nonce,
      'the pushed nonce',
    );
  });

  it('fapi2-security-profile-final-ensure-different-state-inside-and-outside-request-object', async () => {
    const req = await push(client1);
    const url = new URL(req.url);
    url.searchParams.set('state', oidc.randomState());
    const callback = await signIn(new Agent(), client1, url);
    assert.equal(callback.searchParams.get('state'), req.state, 'the pushed state');
  });

  it('fapi2-security-profile-final-ensure-authorization-request-with-long-nonce', async () => {
    const nonce = `${oidc.randomNonce()}${'n'.repeat(384)}`.slice(0, 384);
    const { claims } = await fapiFlow(client1, new Agent(), { nonce });
    assert.equal(claims.nonce, nonce, 'returned whole, not truncated');
  });

  it('fapi2-security-profile-final-ensure-authorization-request-with-long-state', async () => {
    const state = `${oidc.randomState()}${'s'.repeat(384)}`.slice(0, 384);
    const { callback } = await authorized(client1, { state });
    assert.equal(callback.searchParams.get('state'), state, 'returned whole');
  });

  it('fapi2-security-profile-final-state-only-outside-request-object-not-used', async () => {
    const req = await push(client1, { state: null });
    const url = new URL(req.url);
    url.searchParams.set('state', oidc.randomState());
    const callback = await signIn(new Agent(), client1, url);
    assert.ok(callback.searchParams.get('code'));
    assert.equal(callback.searchParams.get('state'), null, 'the state outside the pushed request is not used');
  });

  it('fapi2-security-profile-final-ensure-request-object-without-redirect-uri-fails', async () => {
    assert.equal(await refusedSomewhere(client1, { redirect_uri: null }, ['invalid_request']), 'par');
  });

  it('fapi2-security-profile-final-ensure-registered-redirect-uri', { skip: 'n.a.: not run for plain_fapi' }, () => {});

  it('fapi2-security-profile-final-plain-fapi-tolerate-unregistered-redirect-uri', async () => {
    // RFC 9126 2.4 allows an unregistered redirect URI at PAR; dinhdanh refuses it (also permitted).
    const { res } = await rawPush(client1, { redirect_uri: `${client1.redirect}/unregistered` });
    refused(res, ['invalid_redirect_uri', 'invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-unsigned-authorization-request-without-using-par-fails', async () => {
    const { params, req } = await pushedParams(client1);
    const url = oidc.buildAuthorizationUrl(client1.config, params);
    // The module accepts an error page or invalid_request at the redirect URI; dinhdanh redirects.
    const res = await new Agent().request(url, { headers: { accept: 'text/html' } });
    checkErrorResponse(client1, new URL(location(res, url.toString())), { url, ...req }, ['invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-redirect-uri-in-authorization-request', async () => {
    // Permitted: refused at PAR, an error page, or the one registered URI used.
    // dinhdanh: refused at PAR (FAPI 2.0 requires the redirect URI in the pushed request).
    const { res } = await rawPush(client1, { redirect_uri: null });
    refused(res, ['invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-response-type-code-idtoken-fails', async () => {
    // dinhdanh: refused at the PAR endpoint.
    assert.equal(
      await refusedSomewhere(client1, { response_type: 'code id_token' }, [
        'unsupported_response_type',
        'invalid_request',
        'unauthorized_client',
      ]),
      'par',
    );
  });

  it('fapi2-security-profile-final-australia-connectid-ensure-invalid-purpose-fails', {
    skip: 'n.a.: ConnectID (Australia) only',
  }, () => {});

  it('fapi2-security-profile-final-ensure-response-type-token-fails', async () => {
    // dinhdanh: refused at the PAR endpoint.
    assert.equal(
      await refusedSomewhere(client1, { response_type: 'token' }, [
        'unsupported_response_type',
        'invalid_request',
        'unauthorized_client',
      ]),
      'par',
    );
  });

  it('fapi2-security-profile-final-ensure-client-id-in-token-endpoint', async () => {
    const { callback, req } = await authorized(client1);
    const res = await rawToken(client1, callback, req, { form: { client_id: client2.clientId } });
    refused(res, ['invalid_client', 'invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-holder-of-key-required', async () => {
    const { callback, req } = await authorized(client1);
    const res = await rawToken(client1, callback, req, { proof: null });
    refused(res, ['invalid_client', 'invalid_grant', 'invalid_request', 'invalid_dpop_proof']);
  });

  it('fapi2-security-profile-final-ensure-authorization-code-is-bound-to-client', async () => {
    const { callback, req } = await authorized(client1);
    const res = await rawToken(client2, callback, req, { form: { redirect_uri: client1.redirect } });
    refused(res, ['invalid_grant']);
  });

  it('fapi2-security-profile-final-attempt-reuse-authorization-code-after-one-second', async () => {
    const { callback, req } = await authorized(client1);
    const tokens = await redeemDpop(client1, callback, req);
    assert.ok((await ageConsumedCodes(service, client1.clientId, 1)) >= 1, 'used a second ago');
    refused(await rawToken(client1, callback, req), ['invalid_grant']);
    const res = await resource(tokens.access_token, await resourceProof(client1, tokens.access_token));
    assert.equal(res.status, 401, 'what the code gave is revoked');
  });

  it('fapi2-security-profile-final-ensure-token-endpoint-fails-with-expired-auth-code', async () => {
    const { callback, req } = await authorized(client1);
    await expireCode(req);
    refused(await rawToken(client1, callback, req), ['invalid_grant']);
  });

  it('fapi2-security-profile-final-ensure-signed-client-assertion-with-RS256-fails', async () => {
    // client2 has an RSA key (PS256): the same key used with RS256, which FAPI 2.0 forbids.
    const { callback, req } = await authorized(client2);
    const jwk = (await crypto.subtle.exportKey('jwk', client2.key)) as webcrypto.JsonWebKey;
    delete jwk.alg;
    delete jwk.key_ops;
    const rsa = await crypto.subtle.importKey('jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, [
      'sign',
    ]);
    const assertion = await clientAssertion(client2, {}, { key: rsa, alg: 'RS256' });
    refused(await rawToken(client2, callback, req, { assertion }), ['invalid_client']);
  });

  it('fapi2-security-profile-final-ensure-client-assertion-in-token-endpoint', async () => {
    const { callback, req } = await authorized(client1);
    refused(await rawToken(client1, callback, req, { assertion: null }), ['invalid_client', 'invalid_request']);
  });

  it('fapi2-security-profile-final-ensure-client-assertion-with-exp-is-5-minutes-in-past-fails', async () => {
    const { callback, req } = await authorized(client1);
    const now = epoch();
    const assertion = await clientAssertion(client1, { iat: now - 360, nbf: now - 360, exp: now - 300 });
    refused(await rawToken(client1, callback, req, { assertion }), ['invalid_client']);
  });

  it('fapi2-security-profile-final-ensure-client-assertion-with-wrong-aud-fails', async () => {
    const { callback, req } = await authorized(client1);
    const assertion = await clientAssertion(client1, { aud: 'https://other-server.example/' });
    refused(await rawToken(client1, callback, req, { assertion }), ['invalid_client']);
  });

  it('fapi2-security-profile-final-ensure-client-assertion-with-no-sub-fails', async () => {
    const { callback, req } = await authorized(client1);
    const assertion = await clientAssertion(client1, { sub: null });
    refused(await rawToken(client1, callback, req, { assertion }), ['invalid_client']);
  });

  it('fapi2-security-profile-final-dpop-negative-tests', async () => {
    const { tokens } = await fapiFlow(client1, new Agent());
    const at = tokens.access_token;
    const htu = meta().userinfo_endpoint!;
    const ok = async (label: string, proof: string, extra: Record<string, string> = {}) =>
      assert.equal((await resource(at, proof, 'DPoP', extra)).status, 200, `accepted: ${label}`);
    const no = async (label: string, proof: string | null, scheme = 'DPoP') => {
      const res = await resource(at, proof, scheme);
      assert.ok(res.status === 400 || res.status === 401, `refused: ${label} (got ${res.status})`);
    };
    await ok('a valid proof', await resourceProof(client1, at));
    const twice = await fetch(htu, {
      headers: [
        ['authorization', `DPoP ${at}`],
        ['dpop', await resourceProof(client1, at)],
        ['dpop', await resourceProof(client1, at)],
      ],
    });
    assert.ok(twice.status === 400 || twice.status === 401, 'refused: two DPoP headers');
    await no('not a JWT', 'not.a-jwt');
    await no('no typ', await resourceProof(client1, at, { header: { typ: null } }));
    await no('wrong typ', await resourceProof(client1, at, { header: { typ: 'JWT' } }));
    await no('no jwk', await resourceProof(client1, at, { header: { jwk: null } }));
    for (const claim of ['jti', 'htm', 'htu', 'iat', 'ath'])
      await no(`no ${claim}`, await resourceProof(client1, at, { changes: { [claim]: null } }));
    const valid = await resourceProof(client1, at);
    await no(
      'alg none',
      `${Buffer.from('{"typ":"dpop+jwt","alg":"none"}').toString('base64url')}.${valid.split('.')[1]}.`,
    );
    await no('invalid signature', `${valid.slice(0, -4)}AAAA`);
    const leaky = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = (await exportJWK(leaky.privateKey)) as JWK;
    await no(
      'a private key in jwk',
      await dpopProof(leaky, 'GET', htu, { accessToken: at, header: { jwk: privateJwk } }),
    );
    await no('wrong htm', await resourceProof(client1, at, { changes: { htm: 'POST' } }));
    await no('another htu', await resourceProof(client1, at, { changes: { htu: `${htu}/other` } }));
    await no('iat an hour ahead', await resourceProof(client1, at, { changes: { iat: epoch() + 3600 } }));
    await no('iat an hour ago', await resourceProof(client1, at, { changes: { iat: epoch() - 3600 } }));
    await no(
      'wrong ath',
      await resourceProof(client1, at, { changes: { ath: createHash('sha256').update('x').digest('base64url') } }),
    );
    const stranger = await oidc.randomDPoPKeyPair('ES256');
    await no('another key', await dpopProof(stranger, 'GET', htu, { accessToken: at }));
    await no('no proof', null);
    await no('no proof, Bearer', null, 'Bearer');
    await ok('htu with a query', await resourceProof(client1, at, { changes: { htu: `${htu}?x=1` } }));
    await ok(
      'extra claims and header members',
      await resourceProof(client1, at, { changes: { extra: 1 }, header: { x: 1 } }),
    );
    const upper = new URL(htu);
    await ok(
      'scheme and host in upper case',
      await resourceProof(client1, at, {
        changes: { htu: `${upper.protocol.toUpperCase()}//${upper.host.toUpperCase()}${upper.pathname}` },
      }),
    );
    await ok('a correct proof still works', await resourceProof(client1, at));
  });

  it('fapi2-security-profile-final-refresh-token', async () => {
    const { tokens } = await fapiFlow(client1, new Agent(), { scope: 'openid offline_access', prompt: 'consent' });
    const refresh = tokens.refresh_token!;
    assert.ok(refresh, 'a refresh token');
    // A new DPoP key: a confidential portal's refresh token is bound to its authentication, not to a DPoP key.
    const fresh = oidc.getDPoPHandle(client1.config, await oidc.randomDPoPKeyPair('ES256'));
    const renewed = await oidc.refreshTokenGrant(client1.config, refresh, undefined, { DPoP: fresh });
    assert.equal(renewed.token_type.toLowerCase(), 'dpop');
    // Without client authentication: refused (RFC 6749 6).
    const endpoint = meta().token_endpoint!;
    const bare = await postForm(
      endpoint,
      { grant_type: 'refresh_token', refresh_token: renewed.refresh_token ?? refresh, client_id: client1.clientId },
      { dpop: await dpopProof(client1.dpopKeys, 'POST', endpoint) },
    );
    refused(bare, ['invalid_client', 'invalid_request']);
    // client2's refresh token presented by client1: refused.
    const other = await fapiFlow(client2, new Agent(), { scope: 'openid offline_access', prompt: 'consent' });
    await assert.rejects(
      oidc.refreshTokenGrant(client1.config, other.tokens.refresh_token!, undefined, { DPoP: client1.dpop }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
  });

  it('fapi2-security-profile-final-ensure-server-handles-non-matching-intent-id', {
    skip: 'n.a.: Open Banking UK only',
  }, () => {});
  it('fapi2-security-profile-final-test-essential-acr-sca-claim', { skip: 'n.a.: Open Banking UK only' }, () => {});
  it('fapi2-security-profile-final-brazil-ensure-bad-payment-signature-fails', {
    skip: 'n.a.: Open Finance Brazil only',
  }, () => {});
  it('fapi2-security-profile-final-australia-connectid-test-claims-parameter-idtoken-identity-claims', {
    skip: 'n.a.: ConnectID (Australia) only',
  }, () => {});

  it('fapi2-security-profile-final-par-ensure-reused-request-uri-prior-to-auth-completion-succeeds', async () => {
    const req = await push(client1);
    const first = await new Agent().get(req.url);
    assert.ok(first.status === 302 || first.status === 303, 'the first visit starts an interaction');
    const callback = await signIn(new Agent(), client1, req.url);
    await redeemDpop(client1, callback, req);
  });

  it('fapi2-security-profile-final-par-attempt-reuse-request_uri', async () => {
    const { agent, req } = await authorized(client1);
    // The module accepts an error page or invalid_request_uri at the redirect URI; dinhdanh shows the page.
    await errorPage(await agent.request(req.url, { headers: { accept: 'text/html' } }), /invalid_request_uri/);
  });

  it('fapi2-security-profile-final-par-attempt-to-use-expired-request_uri', async () => {
    const req = await push(client1);
    assert.ok((await expirePushedRequests()) >= 1, 'the request_uri has expired');
    await errorPage(await new Agent().request(req.url, { headers: { accept: 'text/html' } }), /invalid_request_uri/);
  });

  it('fapi2-security-profile-final-par-ensure-jwt-client-assertions-nbf-8-seconds-in-the-future-is-accepted', async () => {
    const now = epoch();
    const { res } = await rawPush(
      client1,
      {},
      {
        assertion: await clientAssertion(client1, { iat: now + 8, nbf: now + 8, exp: now + 68 }),
      },
    );
    assert.equal(res.status, 201, `accepted (${JSON.stringify(res.body)})`);
  });

  it('fapi2-security-profile-final-par-ensure-jwt-client-assertions-nbf-over-60-seconds-in-the-future-fails', async () => {
    const now = epoch();
    const { res } = await rawPush(
      client1,
      {},
      {
        assertion: await clientAssertion(client1, { iat: now + 65, nbf: now + 65, exp: now + 125 }),
      },
    );
    refused(res, ['invalid_client', 'invalid_request']);
  });

  it('fapi2-security-profile-final-par-attempt-to-use-request_uri-for-different-client', async () => {
    const req = await push(client1);
    const stolen = new URL(req.url);
    stolen.searchParams.set('client_id', client2.clientId);
    await errorPage(
      await new Agent().request(stolen, { headers: { accept: 'text/html' } }),
      /invalid_request_uri|invalid_request_object|invalid_request/,
    );
  });

  it('fapi2-security-profile-final-par-authorization-request-containing-request_uri-form-param', async () => {
    const { res } = await rawPush(client1, { request_uri: 'urn:ietf:params:oauth:request_uri:forged' });
    refused(res, ['invalid_request', 'invalid_request_object', 'request_uri_not_supported']);
  });

  it('fapi2-security-profile-final-par-attempt-invalid-http-method', async (t) => {
    // The module: a PUT to the PAR endpoint gets an HTTP error (4xx or 5xx).
    const put = await fetch(meta().pushed_authorization_request_endpoint!, { method: 'PUT' });
    assert.ok(put.status >= 400 && put.status < 600, `PUT: an HTTP error (${put.status})`);
    await t.test('RFC 9126 2.3: a method other than POST gets 405 Method Not Allowed', {}, async () => {
      for (const method of ['GET', 'PUT']) {
        const res = await fetch(meta().pushed_authorization_request_endpoint!, { method });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.get('allow'), 'POST');
      }
    });
  });

  it('fapi2-security-profile-final-par-ensure-pkce-required', async () => {
    const where = await refusedSomewhere(client1, { code_challenge: null, code_challenge_method: null }, [
      'invalid_request',
    ]);
    assert.equal(where, 'par', 'dinhdanh: refused at the PAR endpoint');
  });

  it('fapi2-security-profile-final-ensure-pkce-code-verifier-required', async () => {
    const { callback, req } = await authorized(client1);
    refused(await rawToken(client1, callback, req, { form: { code_verifier: null } }), ['invalid_grant']);
  });

  it('fapi2-security-profile-final-incorrect-pkce-code-verifier-rejected', async () => {
    const { callback, req } = await authorized(client1);
    const wrong = { form: { code_verifier: oidc.randomPKCECodeVerifier() } };
    refused(await rawToken(client1, callback, req, wrong), ['invalid_grant']);
  });

  it('fapi2-security-profile-final-par-plain-pkce-rejected', async () => {
    const where = await refusedSomewhere(client1, { code_challenge_method: 'plain' }, ['invalid_request']);
    assert.equal(where, 'par', 'dinhdanh: refused at the PAR endpoint');
  });

  it('fapi2-security-profile-final-par-without-duplicate-parameters', async () => {
    const req = await push(client1);
    assert.deepEqual([...req.url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    const callback = await signIn(new Agent(), client1, req.url);
    await redeemDpop(client1, callback, req);
  });

  for (const [name, aud] of [
    ['fapi2-security-profile-final-par-test-array-as-audience-fails', () => [meta().issuer]],
    [
      'fapi2-security-profile-final-par-test-par-endpoint-url-as-audience-fails',
      () => meta().pushed_authorization_request_endpoint,
    ],
    ['fapi2-security-profile-final-par-test-token-endpoint-url-as-audience-fails', () => meta().token_endpoint],
  ] as const) {
    it(name, async () => {
      const { res } = await rawPush(client1, {}, { assertion: await clientAssertion(client1, { aud: aud() }) });
      refused(res, ['invalid_client', 'invalid_request']);
    });
  }
});
