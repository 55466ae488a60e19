/**
 * The OpenID Foundation conformance suite's steps, as test/conformance/ replays them against a real node: a portal
 * registered the way the suite's static client is, the browser, and the checks the suite makes on what comes back
 * (its PerformStandardIdTokenChecks, userinfo and error-response conditions). openid-client plays the suite's RP; the
 * checks it does not make (kid, iat window, raw headers) are made here. Time-dependent modules age stored rows as the
 * clock would instead of sleeping.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { addClient } from '../../src/clients/index.ts';
import type { Service } from '../../src/main.ts';
import { type Agent, location } from './agent.ts';
import { DEMO_PASSWORD, DEMO_PIN, loginThrough } from './flow.ts';

/** A response openid-client received, as the suite logs it. */
export interface Seen {
  url: string;
  method: string;
  status: number;
  headers: Headers;
}

/** A registered portal with its openid-client configuration. */
export interface Portal {
  config: oidc.Configuration;
  clientId: string;
  clientSecret: string;
  /** Its one registered redirect URI (`…/callback`). */
  redirect: string;
  /** Its one registered post-logout redirect URI (`…/post_logout_redirect`, as the suite names it). */
  postLogout: string;
  /** The ID token algorithm it was registered with. */
  idTokenAlg: string;
  /** Every response openid-client received for it, oldest first. */
  seen: Seen[];
}

export interface PortalOptions {
  /** A loopback port nobody listens on: redirects are read from Location headers, never followed off the provider. */
  port: number;
  name?: string;
  auth?: 'client_secret_basic' | 'client_secret_post';
  idTokenAlg?: 'ES256' | 'PS256' | 'RS256' | 'EdDSA';
  backchannelLogoutUri?: string;
}

/** Registers a confidential portal as security staff would (`dinhdanh clients add`) and discovers the provider. */
export async function registerPortal(service: Service, o: PortalOptions): Promise<Portal> {
  const base = `http://localhost:${o.port}`;
  const redirect = `${base}/callback`;
  const postLogout = `${base}/post_logout_redirect`;
  const method = o.auth ?? 'client_secret_basic';
  const idTokenAlg = o.idTokenAlg ?? 'ES256';
  const c = await addClient(service.db, {
    name: o.name ?? `Conformance RP ${o.port}`,
    redirectUris: [redirect],
    postLogoutRedirectUris: [postLogout],
    tokenEndpointAuthMethod: method,
    idTokenAlg,
    ...(o.backchannelLogoutUri ? { backchannelLogoutUri: o.backchannelLogoutUri } : {}),
  });
  const secret = c.client_secret!;
  const auth = method === 'client_secret_post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
  const config = await oidc.discovery(
    new URL(service.url),
    c.client_id,
    { id_token_signed_response_alg: idTokenAlg },
    auth,
    { execute: [oidc.allowInsecureRequests] },
  );
  const seen: Seen[] = [];
  config[oidc.customFetch] = async (url, options) => {
    const res = await fetch(url, options as RequestInit);
    seen.push({ url, method: options.method, status: res.status, headers: res.headers });
    return res;
  };
  return { config, clientId: c.client_id, clientSecret: secret, redirect, postLogout, idTokenAlg, seen };
}

/** An authorization request and the values the RP keeps to check the answer. */
export interface AuthRequest {
  url: URL;
  verifier: string;
  /** Undefined when no state was sent. */
  state: string | undefined;
  /** Undefined when no nonce was sent. */
  nonce: string | undefined;
}

/**
 * The suite's authorization request: `state` and `nonce` always, scope `openid` unless given. dinhdanh requires PKCE
 * S256 for every portal, so unlike the suite (which sends PKCE only in oidcc-ensure-request-with-valid-pkce-succeeds)
 * every request carries it. A `null` value leaves that parameter out.
 */
export async function authRequest(portal: Portal, params: Record<string, string | null> = {}): Promise<AuthRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = params.state === null ? undefined : (params.state ?? oidc.randomState());
  const nonce = params.nonce === null ? undefined : (params.nonce ?? oidc.randomNonce());
  const all: Record<string, string | null> = {
    redirect_uri: portal.redirect,
    scope: 'openid',
    response_type: 'code',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(state ? { state } : {}),
    ...(nonce ? { nonce } : {}),
    ...params,
  };
  const url = oidc.buildAuthorizationUrl(
    portal.config,
    Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null)),
  );
  for (const [k, v] of Object.entries(params)) if (v === null) url.searchParams.delete(k);
  return { url, verifier, state, nonce };
}

/** The demo citizen signs in (and consents if asked); returns the URL the portal's callback receives. */
export async function signIn(agent: Agent, portal: Portal, url: URL | string): Promise<URL> {
  return new URL(await loginThrough(agent, url.toString(), DEMO_PIN, DEMO_PASSWORD, portal.redirect));
}

/** Follows the provider's redirects without showing a page (prompt=none, SSO); returns the callback URL. */
export async function silently(agent: Agent, portal: Portal, url: URL | string): Promise<URL> {
  let current = url.toString();
  for (let i = 0; i < 8 && !current.startsWith(portal.redirect); i++) {
    const res = await agent.get(current);
    assert.ok(res.status === 302 || res.status === 303, `no page is shown (got ${res.status} at ${current})`);
    current = location(res, current);
  }
  assert.ok(current.startsWith(portal.redirect), `back at the portal: ${current}`);
  return new URL(current);
}

/** Exchanges the code as the suite does, with openid-client checking state, nonce (absent when not sent) and iss. */
export function redeem(portal: Portal, callback: URL, req: AuthRequest) {
  return oidc.authorizationCodeGrant(portal.config, callback, {
    pkceCodeVerifier: req.verifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
    idTokenExpected: true,
  });
}

/** The suite's checks of a successful authorization response: code, the state sent back, `iss` (RFC 9207). */
export function checkCodeResponse(portal: Portal, callback: URL, req: AuthRequest): void {
  const p = callback.searchParams;
  assert.equal(callback.origin + callback.pathname, portal.redirect);
  assert.equal(p.get('error'), null, `no error: ${p.get('error')} ${p.get('error_description') ?? ''}`);
  assert.ok(p.get('code'), 'an authorization code');
  assert.equal(p.get('state') ?? undefined, req.state, 'the state sent');
  assert.equal(p.get('iss'), portal.config.serverMetadata().issuer, 'iss is the issuer (RFC 9207)');
}

/**
 * The suite's checks of an error response at the redirect URI (performGenericAuthorizationEndpointErrorResponseValidation):
 * an `error` among `allowed`, the state sent, `iss`, no code, and an error_description without CR/LF/TAB or
 * characters outside RFC 6749's NQSCHAR.
 */
export function checkErrorResponse(portal: Portal, callback: URL, req: AuthRequest, allowed: string[]): string {
  const p = callback.searchParams;
  assert.equal(callback.origin + callback.pathname, portal.redirect);
  assert.equal(p.get('code'), null, 'no code with an error');
  const error = p.get('error');
  assert.ok(error && allowed.includes(error), `error is one of ${allowed.join(', ')} (got ${error})`);
  assert.equal(p.get('state') ?? undefined, req.state, 'the state sent');
  assert.equal(p.get('iss'), portal.config.serverMetadata().issuer);
  const description = p.get('error_description');
  if (description !== null) assert.match(description, /^[\x20-\x21\x23-\x5B\x5D-\x7E]*$/, 'error_description NQSCHAR');
  return error;
}

/**
 * The suite's PerformStandardIdTokenChecks on an ID token: a `kid` naming a key of jwks_uri, the registered algorithm,
 * a valid signature; iss, aud (azp with several), exp in the future (and not absurdly so), iat neither in the future
 * nor over 5 minutes old, auth_time not in the future, a non-empty acr, the nonce sent (none when none was sent), a
 * sub of 1 to 255 ASCII characters.
 */
export async function checkIdToken(
  portal: Portal,
  idToken: string,
  expect: { nonce: string | undefined },
): Promise<JWTPayload & Record<string, unknown>> {
  const meta = portal.config.serverMetadata();
  const header = decodeProtectedHeader(idToken);
  assert.ok(header.kid, 'the ID token header names its key (kid)');
  assert.equal(header.alg, portal.idTokenAlg, 'signed with the registered algorithm');
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!));
  const { payload } = await jwtVerify(idToken, jwks, { issuer: meta.issuer, audience: portal.clientId });
  const now = Math.floor(Date.now() / 1000);
  assert.equal(typeof payload.exp, 'number');
  assert.ok(payload.exp! > now && payload.exp! < now + 50 * 365 * 86400, 'exp in the future, in seconds');
  assert.equal(typeof payload.iat, 'number');
  assert.ok(payload.iat! <= now + 5 && payload.iat! >= now - 300, 'iat now');
  if (Array.isArray(payload.aud) && payload.aud.length > 1) assert.equal(payload.azp, portal.clientId);
  if (payload.auth_time !== undefined) {
    assert.equal(typeof payload.auth_time, 'number');
    assert.ok((payload.auth_time as number) <= now + 5, 'auth_time not in the future');
  }
  if (payload.acr !== undefined) assert.ok(typeof payload.acr === 'string' && payload.acr.length > 0, 'acr non-empty');
  assert.equal(payload.nonce, expect.nonce, expect.nonce ? 'the nonce sent' : 'no nonce when none was sent');
  assert.match(String(payload.sub), /^[\x21-\x7E]{1,255}$/, 'sub: 1 to 255 ASCII characters');
  return payload as JWTPayload & Record<string, unknown>;
}

/** The suite's ValidateUserInfoStandardClaims: each standard claim present has its JSON type. */
export function checkStandardClaims(claims: Record<string, unknown>): void {
  const strings = ['sub', 'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username'];
  strings.push('profile', 'picture', 'website', 'email', 'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number');
  for (const k of strings) if (k in claims) assert.equal(typeof claims[k], 'string', `${k} is a string`);
  for (const k of ['email_verified', 'phone_number_verified'])
    if (k in claims) assert.equal(typeof claims[k], 'boolean', `${k} is a boolean`);
  if ('updated_at' in claims) assert.equal(typeof claims.updated_at, 'number', 'updated_at is a number');
  if ('birthdate' in claims) assert.match(String(claims.birthdate), /^\d{4}(-\d{2}-\d{2})?$/);
  if ('address' in claims) {
    assert.equal(typeof claims.address, 'object');
    for (const v of Object.values(claims.address as object)) assert.equal(typeof v, 'string', 'address members');
  }
}

/** Calls userinfo as the suite's three modules do; returns the raw response. */
export function callUserInfo(
  portal: Portal,
  accessToken: string,
  how: 'get' | 'post-header' | 'post-body',
): Promise<Response> {
  const endpoint = new URL(portal.config.serverMetadata().userinfo_endpoint!);
  if (how !== 'post-body')
    return oidc
      .fetchProtectedResource(portal.config, accessToken, endpoint, how === 'get' ? 'GET' : 'POST')
      .catch((e: unknown) => {
        // openid-client throws on a WWW-Authenticate challenge (401); the suite reads the response.
        if (e instanceof Error && 'response' in e && e.response instanceof Response) return e.response;
        throw e;
      });
  // openid-client sends tokens only in the Authorization header; the body form (RFC 6750 2.2) is sent by hand.
  return fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ access_token: accessToken }).toString(),
  });
}

/** The suite's userinfo checks: 200, JSON, a sub equal to the ID token's, standard claims well typed. */
export async function checkUserInfo(res: Response, sub: string): Promise<Record<string, unknown>> {
  assert.equal(res.status, 200, 'userinfo answers 200');
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const claims = (await res.json()) as Record<string, unknown>;
  assert.equal(claims.sub, sub, 'userinfo sub is the ID token sub');
  checkStandardClaims(claims);
  return claims;
}

/**
 * The stored SSO session an authorization request was answered from, found through its authorization code (stored
 * with the request's code_challenge and the session's uid).
 */
export async function sessionUidOf(service: Service, req: AuthRequest): Promise<string> {
  const challenge = await oidc.calculatePKCECodeChallenge(req.verifier);
  const { rows } = await sql<{ uid: string }>`select payload->>'sessionUid' as uid from oidc_payloads
    where model = 'AuthorizationCode' and payload->>'codeChallenge' = ${challenge}`.execute(service.db);
  assert.equal(rows.length, 1, 'one authorization code for this request');
  return rows[0]!.uid;
}

/** Moves the sign-in of the session that answered `req` `seconds` into the past, as the clock would. */
export async function ageSignIn(service: Service, req: AuthRequest, seconds: number): Promise<void> {
  const uid = await sessionUidOf(service, req);
  const { numAffectedRows } = await sql`update oidc_payloads set payload = jsonb_set(payload, '{loginTs}',
    to_jsonb((payload->>'loginTs')::bigint - ${seconds}::bigint)) where model = 'Session' and payload->>'uid' = ${uid}`.execute(
    service.db,
  );
  assert.equal(Number(numAffectedRows), 1, 'the session was aged');
}

/** Moves every consumed authorization code of `clientId` `seconds` into the past, as the clock would. */
export async function ageConsumedCodes(service: Service, clientId: string, seconds: number): Promise<number> {
  const { numAffectedRows } = await sql`update oidc_payloads set
      consumed_at = consumed_at - make_interval(secs => ${seconds}),
      payload = payload || jsonb_build_object('iat', (payload->>'iat')::bigint - ${seconds}::bigint,
        'exp', (payload->>'exp')::bigint - ${seconds}::bigint)
    where model = 'AuthorizationCode' and consumed_at is not null and payload->>'clientId' = ${clientId}`.execute(
    service.db,
  );
  return Number(numAffectedRows ?? 0);
}

/** The logout confirmation page's form: where it posts and its xsrf token. */
export function logoutForm(html: string): { action: string; xsrf: string } {
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  const action = /action="([^"]+)"/.exec(html)?.[1];
  assert.ok(xsrf && action, 'a logout confirmation form');
  return { action: action.replace(/&amp;/g, '&'), xsrf };
}

/**
 * RP-initiated logout in the browser: opens `url` (the end_session_endpoint), confirms on the page the provider shows,
 * and follows the provider's redirects; returns where the browser ends (the post-logout redirect URI, or the provider's
 * "you are signed out" page) with that page's body when it is one.
 */
export async function logOut(
  agent: Agent,
  url: URL | string,
  issuer: string,
): Promise<{ url: URL; status: number; html: string }> {
  const confirm = await agent.get(url);
  assert.equal(confirm.status, 200, 'the provider asks the citizen to confirm');
  const { action, xsrf } = logoutForm(await confirm.text());
  let res = await agent.post(new URL(action, issuer), { xsrf, logout: 'yes' });
  let at = new URL(action, issuer);
  for (let i = 0; i < 5 && (res.status === 302 || res.status === 303); i++) {
    at = new URL(location(res, at.toString()));
    if (at.origin !== new URL(issuer).origin) return { url: at, status: res.status, html: '' };
    res = await agent.get(at);
  }
  return { url: at, status: res.status, html: await res.text() };
}

/** A back-channel logout endpoint on loopback that records each request and answers 200 with no-store. */
export interface LogoutReceiver {
  url: string;
  requests: { headers: IncomingHttpHeaders; body: string; method: string }[];
  close(): Promise<void>;
}

export async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const requests: LogoutReceiver['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), method: req.method ?? '' });
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${port}/backchannel_logout`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
