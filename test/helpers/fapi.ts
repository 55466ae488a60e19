/**
 * A FAPI 2.0 portal for test/conformance/fapi2-security-profile.test.ts, as the conformance suite's plain_fapi +
 * private_key_jwt + DPoP + openid_connect client: registered with `addClient` (`profile: 'fapi2'`, its public JWK Set),
 * speaking PAR and DPoP through openid-client, and the hand-made artefacts the negative modules send (client
 * assertions and DPoP proofs with a claim or header changed, missing or wrong).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID, type webcrypto } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { addClient } from '../../src/clients/index.ts';
import type { Service } from '../../src/main.ts';
import type { Agent } from './agent.ts';
import { type AuthRequest, checkIdToken, type Portal, signIn } from './conformance.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** A FAPI 2.0 portal: its signing key (private_key_jwt) and a DPoP key of its own. */
export interface FapiPortal extends Portal {
  key: CryptoKey;
  publicJwk: JWK;
  kid: string;
  alg: 'ES256' | 'PS256';
  dpopKeys: CryptoKeyPair;
  dpop: oidc.DPoPHandle;
}

/** Registers a FAPI 2.0 portal with a fresh key pair (ES256 by default) and discovers the provider. */
export async function registerFapiPortal(
  service: Service,
  o: { port: number; alg?: 'ES256' | 'PS256' },
): Promise<FapiPortal> {
  const alg = o.alg ?? 'ES256';
  const base = `http://localhost:${o.port}`;
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${o.port}`;
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const c = await addClient(
    service.db,
    {
      name: `FAPI 2.0 RP ${o.port}`,
      redirectUris: [`${base}/callback`],
      postLogoutRedirectUris: [`${base}/post_logout_redirect`],
      tokenEndpointAuthMethod: 'private_key_jwt',
      profile: 'fapi2',
      jwks: { keys: [publicJwk] },
    },
    { production: false },
  );
  const config = await oidc.discovery(
    new URL(service.url),
    c.client_id,
    { id_token_signed_response_alg: 'ES256', token_endpoint_auth_signing_alg: alg },
    oidc.PrivateKeyJwt({ key: privateKey, kid }),
    { execute: [oidc.allowInsecureRequests] },
  );
  const seen: Portal['seen'] = [];
  config[oidc.customFetch] = async (url, options) => {
    const res = await fetch(url, options as RequestInit);
    seen.push({ url, method: options.method, status: res.status, headers: res.headers });
    return res;
  };
  const dpopKeys = await oidc.randomDPoPKeyPair('ES256');
  return {
    config,
    clientId: c.client_id,
    clientSecret: '',
    redirect: `${base}/callback`,
    postLogout: `${base}/post_logout_redirect`,
    idTokenAlg: 'ES256',
    seen,
    key: privateKey,
    publicJwk,
    kid,
    alg,
    dpopKeys,
    dpop: oidc.getDPoPHandle(config, dpopKeys),
  };
}

/** The suite's pushed request: scope openid, state, nonce, PKCE S256, the registered redirect URI; `null` omits. */
export async function pushedParams(
  p: FapiPortal,
  params: Record<string, string | null> = {},
): Promise<{ params: Record<string, string>; req: Omit<AuthRequest, 'url'> }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = params.state === null ? undefined : (params.state ?? oidc.randomState());
  const nonce = params.nonce === null ? undefined : (params.nonce ?? oidc.randomNonce());
  const all: Record<string, string | null> = {
    redirect_uri: p.redirect,
    scope: 'openid',
    response_type: 'code',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(state ? { state } : {}),
    ...(nonce ? { nonce } : {}),
    ...params,
  };
  const kept = Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null));
  return { params: kept, req: { verifier, state, nonce } };
}

/** Pushes the request (PAR, authenticated with private_key_jwt, with a DPoP proof unless `dpop` is null). */
export async function push(
  p: FapiPortal,
  params: Record<string, string | null> = {},
  dpop: oidc.DPoPHandle | null = p.dpop,
): Promise<AuthRequest> {
  const { params: sent, req } = await pushedParams(p, params);
  const url = await oidc.buildAuthorizationUrlWithPAR(p.config, sent, dpop ? { DPoP: dpop } : undefined);
  return { url, ...req };
}

/** The code exchange with DPoP (`dpop` null: without a proof); openid-client checks state, nonce and iss. */
export function redeemDpop(p: FapiPortal, callback: URL, req: AuthRequest, dpop: oidc.DPoPHandle | null = p.dpop) {
  return oidc.authorizationCodeGrant(
    p.config,
    callback,
    { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true },
    undefined,
    dpop ? { DPoP: dpop } : undefined,
  );
}

/** The whole happy flow for one portal in a browser: push, sign in, redeem with DPoP, check the ID token. */
export async function fapiFlow(p: FapiPortal, agent: Agent, params: Record<string, string | null> = {}) {
  const req = await push(p, params);
  const callback = await signIn(agent, p, req.url);
  const tokens = await redeemDpop(p, callback, req);
  const claims = await checkIdToken(p, tokens.id_token!, { nonce: req.nonce });
  return { req, callback, tokens, claims };
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs a JWS with any header (so a negative test can drop or change `typ`, `alg`, `jwk`). ES256 or PS256 keys. */
export async function signJws(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: CryptoKey,
): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  const params =
    key.algorithm.name === 'ECDSA'
      ? { name: 'ECDSA', hash: 'SHA-256' }
      : key.algorithm.name === 'RSA-PSS'
        ? { name: 'RSA-PSS', saltLength: 32 }
        : { name: 'RSASSA-PKCS1-v1_5' };
  const sig = await crypto.subtle.sign(params, key, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

const epoch = () => Math.floor(Date.now() / 1000);

/** A private_key_jwt client assertion for `p`, with claims changed (`null` drops one) and an optional other key. */
export async function clientAssertion(
  p: FapiPortal,
  changes: Record<string, unknown> = {},
  o: { key?: CryptoKey; alg?: string } = {},
): Promise<string> {
  const now = epoch();
  const claims: Record<string, unknown> = {
    iss: p.clientId,
    sub: p.clientId,
    aud: p.config.serverMetadata().issuer,
    jti: randomUUID(),
    iat: now,
    nbf: now,
    exp: now + 60,
    ...changes,
  };
  for (const [k, v] of Object.entries(claims)) if (v === null) delete claims[k];
  return signJws({ alg: o.alg ?? p.alg, kid: p.kid, typ: 'JWT' }, claims, o.key ?? p.key);
}

/** The form members of private_key_jwt client authentication. */
export const assertionForm = (assertion: string) => ({
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: assertion,
});

/** A DPoP proof (RFC 9449), by default valid for `htm` `htu`; `changes` alter claims, `header` the header. */
export async function dpopProof(
  keys: CryptoKeyPair,
  htm: string,
  htu: string,
  o: {
    accessToken?: string;
    changes?: Record<string, unknown>;
    header?: Record<string, unknown>;
    key?: CryptoKey;
  } = {},
): Promise<string> {
  const jwk = await exportJWK(keys.publicKey);
  const header: Record<string, unknown> = { typ: 'dpop+jwt', alg: 'ES256', jwk, ...o.header };
  for (const [k, v] of Object.entries(header)) if (v === null) delete header[k];
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    htm,
    htu,
    iat: epoch(),
    ...(o.accessToken ? { ath: createHash('sha256').update(o.accessToken).digest('base64url') } : {}),
    ...o.changes,
  };
  for (const [k, v] of Object.entries(claims)) if (v === null) delete claims[k];
  return signJws(header, claims, o.key ?? keys.privateKey);
}

/** The JWK thumbprint (dpop_jkt) of a DPoP key. */
export async function thumbprint(keys: CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keys.publicKey));
}

/** POSTs a form; returns status, JSON body and headers. */
export async function postForm(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}

/** The suite's check of a refused token or PAR request: 400 (401 for invalid_client), JSON, an allowed error. */
export function refused(res: { status: number; body: Record<string, unknown>; headers: Headers }, allowed: string[]) {
  const error = String(res.body.error);
  assert.ok(
    allowed.includes(error),
    `error is one of ${allowed.join(', ')} (got ${error}: ${res.body.error_description})`,
  );
  assert.ok(res.status === 400 || (res.status === 401 && error === 'invalid_client'), `status 400 (got ${res.status})`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
}
