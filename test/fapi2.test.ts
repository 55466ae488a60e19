/**
 * The FAPI 2.0 Security Profile for a portal registered with `--profile fapi2`. Invariant: such a portal gets a code
 * and tokens only through a pushed request with PKCE S256, authenticated by private_key_jwt (audience the issuer),
 * with DPoP-bound tokens, ES256/PS256 signatures on everything it signs, `iss` in the authorization response and the
 * query or jwt response mode; each missing requirement is refused with its precise OAuth error, before any code or
 * token is issued; its codes live at most 60 s; its refresh token is not rotated. Other portals are untouched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  type GenerateKeyPairResult,
  generateKeyPair,
  type JWK,
} from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { Agent, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

const REDIRECT = 'http://localhost:4901/cb';
const PLAIN_REDIRECT = 'http://localhost:4902/cb';
let database: TestDatabase;
let service: Service;
let clientId: string;
/** The FAPI 2.0 portal as openid-client sees it: private_key_jwt with its ES256 key. */
let fapi: oidc.Configuration;
/** Its keys: ES256 (what it signs with) and an RSA key registered for RS256 (to show RS256 is refused anyway). */
let es: GenerateKeyPairResult;
let rs: GenerateKeyPairResult;

const insecure = { execute: [oidc.allowInsecureRequests] };
const errorOf = (e: unknown) => (e as { error?: string }).error;

/** The portal with another client authentication (same client id). */
const as = (auth: oidc.ClientAuth, metadata: Partial<oidc.ClientMetadata> = {}) =>
  oidc.discovery(new URL(service.url), clientId, metadata, auth, insecure);

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  es = await generateKeyPair('ES256', { extractable: true });
  rs = await generateKeyPair('RS256', { extractable: true });
  const pub = async (k: GenerateKeyPairResult['publicKey'], kid: string, alg: string): Promise<JWK> => ({
    ...(await exportJWK(k)),
    kid,
    alg,
    use: 'sig',
  });
  const c = await addClient(service.db, {
    name: 'Cổng thuế (FAPI 2.0)',
    redirectUris: [REDIRECT],
    tokenEndpointAuthMethod: 'private_key_jwt',
    jwks: { keys: [await pub(es.publicKey, 'es', 'ES256'), await pub(rs.publicKey, 'rs', 'RS256')] },
    profile: 'fapi2',
  });
  clientId = c.client_id;
  fapi = await as(oidc.PrivateKeyJwt({ key: es.privateKey, kid: 'es' }));
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** A pushed request with PKCE S256 (unless `params` says otherwise); the URL the browser gets, and the checks. */
async function push(config: oidc.Configuration, params: Record<string, string> = {}, options?: oidc.DPoPOptions) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = await oidc.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri: REDIRECT,
      scope: 'openid profile offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...params,
    },
    options,
  );
  return { url, verifier, state };
}

/** The citizen signs in and consents; the URL the portal receives. */
const browse = async (url: URL, redirect = REDIRECT) =>
  new URL(await loginThrough(new Agent(), url.toString(), DEMO_PIN, DEMO_PASSWORD, redirect));

/** A pushed request carried through the browser to a callback with a code (DPoP not yet involved). */
async function codeFor(params: Record<string, string> = {}) {
  const { url, verifier, state } = await push(fapi, params);
  return { callback: await browse(url), verifier, state };
}

const newDPoP = async (alg = 'ES256') => oidc.getDPoPHandle(fapi, await oidc.randomDPoPKeyPair(alg));

/** A raw form POST to one of the provider's endpoints. */
async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json()) as { error?: string; error_description?: string } };
}

describe('a complete FAPI 2.0 request is served', () => {
  it('PAR + PKCE + private_key_jwt + DPoP: iss in the response, DPoP-bound tokens, ES256 ID token, code lives ≤ 60 s', async () => {
    const dpop = await newDPoP();
    const { url, verifier, state } = await push(fapi, {}, { DPoP: dpop });
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    const callback = await browse(url);
    assert.equal(callback.searchParams.get('iss'), service.url, 'RFC 9207: the issuer in the authorization response');
    const tokens = await oidc.authorizationCodeGrant(
      fapi,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state },
      undefined,
      { DPoP: dpop },
    );
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    assert.equal(decodeProtectedHeader(tokens.id_token!).alg, 'ES256');
    const info = await oidc.fetchUserInfo(fapi, tokens.access_token, oidc.skipSubjectCheck, { DPoP: dpop });
    assert.ok(info.sub);
    const bearer = await fetch(`${service.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(bearer.status, 401, 'the access token is useless without its DPoP key');
    // Side effect: the code row lived at most 60 s (FAPI 2.0 §5.3.2.1), and is consumed.
    const { rows } = await sql<{ iat: number; exp: number; row: number; consumed: boolean }>`
      select (payload->>'iat')::int as iat, (payload->>'exp')::int as exp, extract(epoch from expires_at) as row,
        consumed_at is not null as consumed
      from oidc_payloads where model = 'AuthorizationCode' and payload->>'clientId' = ${clientId}`.execute(service.db);
    assert.equal(rows.length, 1);
    const code = rows[0]!;
    assert.ok(code.exp - code.iat <= 60, `code lifetime ${code.exp - code.iat} s`);
    assert.ok(Number(code.row) < code.exp + 1, 'the row expires with the code (to the second)');
    assert.equal(code.consumed, true);
  });

  it('response_mode=jwt: the response is an ES256-signed JWT carrying iss, and the code is redeemed', async () => {
    const jarm = await as(oidc.PrivateKeyJwt({ key: es.privateKey, kid: 'es' }));
    oidc.useJwtResponseMode(jarm);
    const dpop = await newDPoP();
    const { url, verifier, state } = await push(jarm, { response_mode: 'jwt' });
    const callback = await browse(url);
    const response = callback.searchParams.get('response')!;
    assert.equal(decodeProtectedHeader(response).alg, 'ES256');
    assert.equal(decodeJwt(response).iss, service.url);
    const tokens = await oidc.authorizationCodeGrant(
      jarm,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state },
      undefined,
      { DPoP: dpop },
    );
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  });

  it('a request object signed with ES256 is accepted at PAR', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const jar = await oidc.buildAuthorizationUrlWithJAR(
      fapi,
      {
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      { key: es.privateKey, kid: 'es' },
    );
    const url = await oidc.buildAuthorizationUrlWithPAR(fapi, jar.searchParams);
    assert.ok(url.searchParams.get('request_uri'));
  });

  it('its refresh token is not rotated and needs the DPoP proof every time', async () => {
    const dpop = await newDPoP();
    const { callback, verifier, state } = await codeFor();
    const tokens = await oidc.authorizationCodeGrant(
      fapi,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state },
      undefined,
      { DPoP: dpop },
    );
    const rt = tokens.refresh_token!;
    assert.ok(rt);
    const first = await oidc.refreshTokenGrant(fapi, rt, undefined, { DPoP: dpop });
    assert.equal(first.token_type.toLowerCase(), 'dpop');
    assert.ok(first.refresh_token === undefined || first.refresh_token === rt, 'the same refresh token, not a new one');
    const second = await oidc.refreshTokenGrant(fapi, rt, undefined, { DPoP: dpop });
    assert.notEqual(second.access_token, first.access_token, 'the unrotated refresh token keeps working');
    await assert.rejects(oidc.refreshTokenGrant(fapi, rt), (e) => errorOf(e) === 'invalid_grant', 'no DPoP proof');
    // Side effect: the refresh token row was never consumed (rotation consumes it).
    const { rows } = await sql<{ consumed: boolean }>`select consumed_at is not null as consumed from oidc_payloads
      where model = 'RefreshToken' and payload->>'clientId' = ${clientId}`.execute(service.db);
    assert.ok(rows.length >= 1 && rows.every((r) => !r.consumed));
  });
});

describe('a FAPI 2.0 portal that skips a requirement is refused', () => {
  it('without PAR: invalid_request at the authorization endpoint, with iss', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(fapi, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: 'st',
    });
    const res = await new Agent().get(url);
    assert.equal(res.status, 303);
    const back = new URL(location(res, url.toString()));
    assert.equal(back.origin + back.pathname, REDIRECT);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.match(back.searchParams.get('error_description') ?? '', /Pushed Authorization Request must be used/);
    assert.equal(back.searchParams.get('iss'), service.url);
    assert.equal(back.searchParams.get('code'), null);
  });

  it('without PKCE: invalid_request at PAR', async () => {
    await assert.rejects(
      oidc.buildAuthorizationUrlWithPAR(fapi, { redirect_uri: REDIRECT, scope: 'openid' }),
      (e) =>
        errorOf(e) === 'invalid_request' &&
        /PKCE/.test(String((e as { cause?: { error_description?: string } }).cause?.error_description)),
    );
  });

  it('without redirect_uri in the pushed request: invalid_request', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    await assert.rejects(
      oidc.buildAuthorizationUrlWithPAR(fapi, {
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }),
      (e) => errorOf(e) === 'invalid_request',
    );
  });

  for (const mode of ['fragment', 'form_post', 'fragment.jwt', 'form_post.jwt']) {
    it(`with response_mode=${mode}: invalid_request at PAR`, async () => {
      await assert.rejects(push(fapi, { response_mode: mode }), (e) => errorOf(e) === 'invalid_request');
    });
  }

  it('with a client secret (basic or post): invalid_client', async () => {
    const form = { response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43) };
    const basic = `Basic ${Buffer.from(`${clientId}:some-secret`).toString('base64')}`;
    for (const r of [
      await post('/request', { ...form, code_challenge_method: 'S256' }, { authorization: basic }),
      await post('/request', { ...form, code_challenge_method: 'S256', client_id: clientId, client_secret: 's' }),
      await post('/token', { grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: basic }),
    ]) {
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_client');
    }
  });

  it('with a client assertion signed RS256, or addressed to the token endpoint instead of the issuer: invalid_client', async () => {
    const rs256 = await as(oidc.PrivateKeyJwt({ key: rs.privateKey, kid: 'rs' }));
    await assert.rejects(push(rs256), (e) => errorOf(e) === 'invalid_client');
    const tokenAud = await as(
      oidc.PrivateKeyJwt(
        { key: es.privateKey, kid: 'es' },
        {
          [oidc.modifyAssertion]: (_header, payload) => {
            payload.aud = `${service.url}/token`;
          },
        },
      ),
    );
    await assert.rejects(push(tokenAud), (e) => errorOf(e) === 'invalid_client');
  });

  it('with a request object signed RS256: invalid_request_object', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const jar = await oidc.buildAuthorizationUrlWithJAR(
      fapi,
      {
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      { key: rs.privateKey, kid: 'rs' },
    );
    await assert.rejects(
      oidc.buildAuthorizationUrlWithPAR(fapi, jar.searchParams),
      (e) => errorOf(e) === 'invalid_request_object',
    );
  });

  it('without a DPoP proof at the token endpoint: invalid_grant, and the code still works with one', async () => {
    const { callback, verifier, state } = await codeFor();
    const checks = { pkceCodeVerifier: verifier, expectedState: state };
    // invalid_grant, as oidc-provider answers and the FAPI 2.0 conformance suite expects (invalid_request or
    // invalid_grant for a missing proof; invalid_dpop_proof is for a proof that is there and wrong).
    await assert.rejects(oidc.authorizationCodeGrant(fapi, callback, checks), (e) => errorOf(e) === 'invalid_grant');
    const tokens = await oidc.authorizationCodeGrant(fapi, callback, checks, undefined, { DPoP: await newDPoP() });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  });

  it('with a DPoP proof signed Ed25519 (accepted from other portals): invalid_dpop_proof, ES256 or PS256 only', async () => {
    const { callback, verifier, state } = await codeFor();
    const checks = { pkceCodeVerifier: verifier, expectedState: state };
    await assert.rejects(
      oidc.authorizationCodeGrant(fapi, callback, checks, undefined, { DPoP: await newDPoP('Ed25519') }),
      (e) =>
        errorOf(e) === 'invalid_dpop_proof' &&
        /ES256 or PS256/.test(String((e as { error_description?: string }).error_description)),
    );
    // A PS256 proof is one of the two the profile allows.
    const tokens = await oidc.authorizationCodeGrant(fapi, callback, checks, undefined, {
      DPoP: await newDPoP('PS256'),
    });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  });

  it('with a DPoP key other than the one the request was pushed with: invalid_grant', async () => {
    const { url, verifier, state } = await push(fapi, {}, { DPoP: await newDPoP() });
    const callback = await browse(url);
    await assert.rejects(
      oidc.authorizationCodeGrant(fapi, callback, { pkceCodeVerifier: verifier, expectedState: state }, undefined, {
        DPoP: await newDPoP(),
      }),
      (e) => errorOf(e) === 'invalid_grant',
    );
  });
});

describe('registration and discovery', () => {
  it('refuses to register a FAPI 2.0 portal with a client secret or an RS256 ID token', async () => {
    await assert.rejects(
      addClient(service.db, { name: 'x', redirectUris: [REDIRECT], profile: 'fapi2' }),
      /private_key_jwt/,
    );
    const jwks = { keys: [{ ...(await exportJWK(es.publicKey)), kid: 'k' }] };
    await assert.rejects(
      addClient(service.db, {
        name: 'x',
        redirectUris: [REDIRECT],
        tokenEndpointAuthMethod: 'private_key_jwt',
        jwks,
        profile: 'fapi2',
        idTokenAlg: 'RS256',
      }),
      /ES256 or PS256/,
    );
  });

  it('advertises what applies: PAR not required globally, iss in responses, DPoP algorithms', async () => {
    const meta = fapi.serverMetadata();
    assert.equal(meta.require_pushed_authorization_requests, false);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.ok(meta.dpop_signing_alg_values_supported?.includes('ES256'));
    assert.ok(meta.dpop_signing_alg_values_supported?.includes('PS256'));
    assert.ok(meta.response_modes_supported?.includes('jwt'));
    assert.ok(meta.token_endpoint_auth_methods_supported?.includes('private_key_jwt'));
  });

  it('a portal without the profile keeps its freedom: no PAR, fragment response mode, rotated refresh token', async () => {
    const plain = await addClient(service.db, { name: 'Cổng thường', redirectUris: [PLAIN_REDIRECT] });
    const config = await oidc.discovery(
      new URL(service.url),
      plain.client_id,
      plain.client_secret!,
      undefined,
      insecure,
    );
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: PLAIN_REDIRECT,
      scope: 'openid offline_access',
      prompt: 'consent',
      response_mode: 'fragment',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const fragment = new URL(await loginThrough(new Agent(), url.toString(), DEMO_PIN, DEMO_PASSWORD, PLAIN_REDIRECT));
    assert.ok(fragment.hash.includes('code='), 'the code in the fragment');
    const callback = new URL(`${PLAIN_REDIRECT}?${fragment.hash.slice(1)}`);
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: oidc.skipStateCheck,
    });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'rotated, as before');
  });
});
