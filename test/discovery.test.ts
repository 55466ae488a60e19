/**
 * A walker over the discovery document. Invariant: every capability dinhdanh advertises works. Each member of
 * `/.well-known/openid-configuration` has an exercise here, run against a real node: every endpoint is called, every
 * response mode, response type, grant type and PKCE method completes a flow, every client authentication method and
 * signing algorithm is used at the token, introspection and revocation endpoints, every ID token, request object, JARM
 * and DPoP algorithm signs something that is then verified or accepted, every scope, subject type, acr value and claim
 * is obtained. A member without an exercise (a capability advertised untested) fails the walk, and so does a value
 * of a list without one (a new algorithm or method).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  type GenerateKeyPairResult,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const L1 = 'urn:dinhdanh:loa:1';
const PORTAL_ALGS = ['ES256', 'PS256', 'RS256'] as const;
type PortalAlg = (typeof PORTAL_ALGS)[number];
type Registration = Parameters<typeof addClient>[1];

let database: TestDatabase;
let service: Service;
let doc: Record<string, unknown>;
let server: oidc.ServerMetadata;
let jwks: ReturnType<typeof createRemoteJWKSet>;
/** The citizen's browser; signs in once, then single sign-on. */
const citizen = new Agent();
/** The demo citizen's account id (what a `public` subject is). */
let accountId: string;

/** A registered portal as openid-client sees it. */
interface Portal {
  id: string;
  redirect: string;
  secret?: string;
  config: oidc.Configuration;
}

/** The portals' own keys (they sign client assertions and request objects with them). */
const keys = {} as Record<PortalAlg, GenerateKeyPairResult>;
const signer = (alg: PortalAlg) => ({ key: keys[alg].privateKey, kid: alg.toLowerCase() });

let portNo = 4300;
/** Registers a portal (implicit consent unless given, a redirect URI of its own) with the client authentication. */
async function register(
  input: Partial<Registration>,
  auth: (secret: string | undefined) => oidc.ClientAuth,
  metadata: Partial<oidc.ClientMetadata> = {},
): Promise<Portal> {
  const redirect = `http://localhost:${portNo++}/cb`;
  const service_ = !!input.clientCredentials;
  const c = await addClient(service.db, {
    name: `Cổng ${portNo}`,
    redirectUris: service_ ? [] : [redirect],
    consent: 'implicit',
    ...input,
  });
  return {
    id: c.client_id,
    redirect,
    secret: c.client_secret,
    config: configFor(c.client_id, auth(c.client_secret), metadata),
  };
}

function configFor(id: string, auth: oidc.ClientAuth, metadata: Partial<oidc.ClientMetadata> = {}): oidc.Configuration {
  const config = new oidc.Configuration(server, id, metadata, auth);
  oidc.allowInsecureRequests(config);
  return config;
}

const none = () => oidc.None();
const basic = (s: string | undefined) => oidc.ClientSecretBasic(s!);
const post = (s: string | undefined) => oidc.ClientSecretPost(s!);
const jwt = () => oidc.PrivateKeyJwt(signer('ES256'));
/** The same portal authenticating with a client assertion signed with `alg`. */
const withAlg = (p: Portal, alg: PortalAlg) => configFor(p.id, oidc.PrivateKeyJwt(signer(alg)));

const entities: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
  '&#x2F;': '/',
};
const unescapeHtml = (s: string) => s.replace(/&(amp|lt|gt|quot|#39|#x2F);/g, (m) => entities[m]!);

/** How the authorization response reached the portal. */
type Via = 'query' | 'fragment' | 'form_post';

/**
 * Carries a browser from `url` to the portal: signs in and consents when asked. Returns what the portal receives: the
 * callback URL (a fragment turned into a query, as a portal's page script would), or the form_post request.
 */
async function reach(url: URL, redirect: string, agent = citizen): Promise<{ received: URL | Request; via: Via }> {
  let current = url.toString();
  for (let i = 0; i < 12; i++) {
    if (current.startsWith(redirect)) {
      const u = new URL(current);
      if (!u.hash) return { received: u, via: 'query' };
      return { received: new URL(`${u.origin}${u.pathname}?${u.hash.slice(1)}`), via: 'fragment' };
    }
    const res = await agent.get(current);
    if (res.status === 302 || res.status === 303) {
      current = location(res, current);
      continue;
    }
    const html = await res.text();
    const form = /<form id="form-post" method="post" action="([^"]*)"/.exec(html);
    if (form && unescapeHtml(form[1]!).startsWith(redirect)) {
      const fields = [...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)];
      const received = new Request(unescapeHtml(form[1]!), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields.map((f): [string, string] => [f[1]!, unescapeHtml(f[2]!)])).toString(),
      });
      return { received, via: 'form_post' };
    }
    const step = /\/login"/.test(html) ? 'login' : /\/consent"/.test(html) ? 'consent' : undefined;
    assert.ok(step, `unexpected page (${res.status}) at ${current}`);
    const fields: Record<string, string> = step === 'login' ? { pin: DEMO_PIN, password: DEMO_PASSWORD } : {};
    const sent = await agent.post(new URL(actionOf(html, step), current), { csrf: csrfOf(html), ...fields });
    current = location(sent, current);
  }
  throw new Error('too many redirects');
}

interface How {
  /** Signs the request into a request object (JAR) with this key. */
  jar?: ReturnType<typeof signer>;
  /** Pushes the request (PAR). */
  par?: boolean;
  /** Another configuration of the portal for the code exchange (JARM). */
  exchange?: oidc.Configuration;
  agent?: Agent;
}

/** One authorization code flow with PKCE S256: the tokens, and what the portal's callback received. */
async function authorize(p: Portal, params: Record<string, string> = {}, how: How = {}) {
  const { config } = p;
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const all = {
    redirect_uri: p.redirect,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  };
  let url = how.jar
    ? await oidc.buildAuthorizationUrlWithJAR(config, all, how.jar)
    : oidc.buildAuthorizationUrl(config, all);
  if (how.par) url = await oidc.buildAuthorizationUrlWithPAR(config, how.jar ? url.searchParams : all);
  const { received, via } = await reach(url, p.redirect, how.agent);
  // openid-client checks `iss` against the issuer in every plain response (the server advertises it), and the JARM
  // response's signature, issuer, audience and expiry.
  const tokens = await oidc.authorizationCodeGrant(how.exchange ?? config, received, {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return { tokens, callback: received instanceof Request ? undefined : received, via };
}

/** Runs `fn` once; later calls share the result. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}

/** An exercise for each value of a list member; a value with none fails. */
function each(perValue: Record<string, () => Promise<void>>) {
  return async (values: unknown) => {
    assert.ok(Array.isArray(values) && values.length > 0, 'a non-empty list');
    for (const v of values as string[]) {
      assert.ok(v in perValue, `no exercise for the advertised value ${v}`);
      await perValue[v]!();
    }
  };
}

let pub: Portal;
let secretBasic: Portal;
let secretPost: Portal;
let keyJwt: Portal;
let full: Portal;
let publicSubject: Portal;
let loggingOut: Portal;
const idTokenPortals: Record<string, Portal> = {};
const services = {} as Record<'client_secret_basic' | 'client_secret_post' | 'private_key_jwt', Portal>;
let backchannel: Server;
const logoutTokens: string[] = [];

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  doc = (await (await fetch(`${service.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  server = doc as unknown as oidc.ServerMetadata;
  jwks = createRemoteJWKSet(new URL(String(doc.jwks_uri)));
  for (const alg of PORTAL_ALGS) keys[alg] = await generateKeyPair(alg, { extractable: true });
  const portalKeys = {
    keys: await Promise.all(
      PORTAL_ALGS.map(async (alg) => ({ ...(await exportJWK(keys[alg].publicKey)), kid: alg.toLowerCase(), alg })),
    ),
  };
  const { rows } = await sql<{ id: string }>`select a.id from accounts a join residents r on r.id = a.resident_id
    where r.pin = ${DEMO_PIN}`.execute(service.db);
  accountId = rows[0]!.id;
  // The demo citizen has no phone number on the account: give one, so the phone scope has something to release.
  await sql`update accounts set phone_number = '+84912345678' where id = ${accountId}`.execute(service.db);

  backchannel = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token) logoutTokens.push(token);
      res.end();
    });
  });
  await new Promise<void>((r) => backchannel.listen(0, '127.0.0.1', r));
  const bcl = `http://localhost:${(backchannel.address() as AddressInfo).port}/bcl`;

  pub = await register({ tokenEndpointAuthMethod: 'none' }, none, { token_endpoint_auth_method: 'none' });
  secretBasic = await register({ tokenEndpointAuthMethod: 'client_secret_basic' }, basic);
  secretPost = await register({ tokenEndpointAuthMethod: 'client_secret_post' }, post);
  keyJwt = await register({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: portalKeys }, jwt);
  full = await register({ tokenEndpointAuthMethod: 'none', allowPersonalId: true, consent: 'explicit' }, none, {
    token_endpoint_auth_method: 'none',
  });
  publicSubject = await register({ tokenEndpointAuthMethod: 'none', subjectType: 'public' }, none, {
    token_endpoint_auth_method: 'none',
  });
  for (const alg of doc.id_token_signing_alg_values_supported as string[]) {
    idTokenPortals[alg] = await register({ tokenEndpointAuthMethod: 'none', idTokenAlg: alg as never }, none, {
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: alg,
    });
  }
  loggingOut = await register({ tokenEndpointAuthMethod: 'none', backchannelLogoutUri: bcl }, none, {
    token_endpoint_auth_method: 'none',
  });
  services.client_secret_basic = await register({ clientCredentials: true, scopes: ['openid'] }, basic);
  services.client_secret_post = await register(
    { clientCredentials: true, scopes: ['openid'], tokenEndpointAuthMethod: 'client_secret_post' },
    post,
  );
  services.private_key_jwt = await register(
    { clientCredentials: true, scopes: ['openid'], tokenEndpointAuthMethod: 'private_key_jwt', jwks: portalKeys },
    jwt,
  );
});
after(async () => {
  backchannel?.close();
  await service?.close();
  await database?.drop();
});

/** A flow of the public portal (authentication `none`), shared by the exercises that need just one. */
const publicFlow = once(() => authorize(pub));

/** The full portal: every scope, consent, and the claims parameter asking for `sid`; ID token and userinfo claims. */
const fullFlow = once(async () => {
  const scope = (doc.scopes_supported as string[]).join(' ');
  const { tokens } = await authorize(full, {
    scope,
    prompt: 'consent',
    claims: JSON.stringify({ id_token: { sid: null } }),
  });
  const idToken = decodeJwt(tokens.id_token!);
  const userinfo = await oidc.fetchUserInfo(full.config, tokens.access_token, String(idToken.sub));
  return { tokens, idToken, userinfo, seen: new Set([...Object.keys(idToken), ...Object.keys(userinfo)]) };
});

/** RP-initiated logout of a fresh browser, with the portal told by back-channel. */
const logoutFlow = once(async () => {
  const agent = new Agent();
  const { tokens } = await authorize(loggingOut, {}, { agent });
  const sid = decodeJwt(tokens.id_token!).sid;
  const url = oidc.buildEndSessionUrl(loggingOut.config, { id_token_hint: tokens.id_token! });
  const confirm = await agent.get(url);
  const html = await confirm.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
  const action = unescapeHtml(/action="([^"]+)"/.exec(html)![1]!);
  const done = await agent.post(new URL(action, service.url), { xsrf, logout: 'yes' });
  assert.equal(done.status, 303);
  await until('the back-channel logout token', () => logoutTokens.length > 0);
  const { payload } = await jwtVerify(logoutTokens[0]!, jwks, { issuer: service.url, audience: loggingOut.id });
  return { payload, sid };
});

/** Client credentials of the service authenticating with `method` (private_key_jwt: signed with `alg`). */
function serviceConfig(method: keyof typeof services, alg: PortalAlg = 'ES256') {
  return method === 'private_key_jwt' ? withAlg(services.private_key_jwt, alg) : services[method].config;
}

/** Introspection by `config` of a token of its own: active. */
async function introspectOwn(config: oidc.Configuration, token: string) {
  const info = await oidc.tokenIntrospection(config, token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, config.clientMetadata().client_id);
}

/** Revocation by `config` of a token of its own: afterwards inactive. */
async function revokeOwn(config: oidc.Configuration, token: string) {
  await oidc.tokenRevocation(config, token);
  assert.equal((await oidc.tokenIntrospection(config, token)).active, false);
}

/** For each client authentication method: the configuration and a fresh token of that client. */
const tokenOf: Record<string, () => Promise<{ config: oidc.Configuration; token: string }>> = {
  none: async () => ({ config: pub.config, token: (await authorize(pub)).tokens.access_token }),
  client_secret_basic: async () => {
    const config = serviceConfig('client_secret_basic');
    return { config, token: (await oidc.clientCredentialsGrant(config)).access_token };
  },
  client_secret_post: async () => {
    const config = serviceConfig('client_secret_post');
    return { config, token: (await oidc.clientCredentialsGrant(config)).access_token };
  },
  private_key_jwt: async () => {
    const config = serviceConfig('private_key_jwt');
    return { config, token: (await oidc.clientCredentialsGrant(config)).access_token };
  },
};

/** Per algorithm, a private_key_jwt configuration of the service signing with it, and a token of the service. */
async function serviceWithAlg(alg: string) {
  const config = serviceConfig('private_key_jwt', alg as PortalAlg);
  return { config, token: (await oidc.clientCredentialsGrant(serviceConfig('private_key_jwt'))).access_token };
}

/** A JARM configuration of the public portal, for the code exchange (building URLs with it forces response_mode=jwt). */
function jarm(): oidc.Configuration {
  const config = configFor(pub.id, oidc.None(), { token_endpoint_auth_method: 'none' });
  oidc.useJwtResponseMode(config);
  return config;
}

/** How a response mode delivers: where the code (or the JARM `response`) is. */
async function responseMode(mode: string) {
  const jwtMode = mode.includes('jwt');
  const { callback, tokens, via } = await authorize(pub, { response_mode: mode }, jwtMode ? { exchange: jarm() } : {});
  assert.ok(tokens.access_token);
  assert.equal(via, mode === 'jwt' ? 'query' : mode.replace('.jwt', ''), `${mode} delivered by ${via}`);
  if (callback && jwtMode) assert.ok(callback.searchParams.get('response'), `${mode}: a JWT response`);
  if (callback && !jwtMode) assert.equal(callback.searchParams.get('iss'), service.url);
}

/** Every member of the discovery document and its exercise. */
const exercises: Record<string, (value: unknown) => Promise<void>> = {
  issuer: async (v) => {
    assert.equal(v, service.url);
    const again = await fetch(`${v}/.well-known/openid-configuration`);
    assert.equal(((await again.json()) as { issuer: string }).issuer, v);
  },
  jwks_uri: async (v) => {
    const set = (await (await fetch(String(v))).json()) as { keys: { alg: string; d?: string }[] };
    assert.ok(set.keys.length > 0 && set.keys.every((k) => k.d === undefined), 'public keys only');
    const { tokens } = await publicFlow();
    await jwtVerify(tokens.id_token!, jwks, { issuer: service.url, audience: pub.id });
  },
  authorization_endpoint: async () => {
    const { tokens } = await publicFlow();
    assert.ok(tokens.id_token);
  },
  token_endpoint: async () => {
    const { tokens } = await publicFlow();
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  },
  userinfo_endpoint: async () => {
    const { tokens } = await publicFlow();
    const info = await oidc.fetchUserInfo(pub.config, tokens.access_token, oidc.skipSubjectCheck);
    assert.ok(info.sub);
  },
  pushed_authorization_request_endpoint: async () => {
    const { tokens } = await authorize(keyJwt, {}, { par: true });
    assert.ok(tokens.access_token);
  },
  require_pushed_authorization_requests: async (v) => {
    assert.equal(v, false, 'required per portal (FAPI 2.0), never for all');
    await publicFlow(); // no PAR
  },
  introspection_endpoint: async () => {
    const { config, token } = await tokenOf.client_secret_basic!();
    await introspectOwn(config, token);
  },
  revocation_endpoint: async () => {
    const { config, token } = await tokenOf.client_secret_basic!();
    await revokeOwn(config, token);
  },
  end_session_endpoint: async () => {
    const { payload } = await logoutFlow();
    assert.ok(payload.events);
  },
  backchannel_logout_supported: async (v) => {
    assert.equal(v, true);
    const { payload } = await logoutFlow();
    assert.ok((payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
  },
  backchannel_logout_session_supported: async (v) => {
    assert.equal(v, true);
    const { payload, sid } = await logoutFlow();
    assert.ok(sid, 'the ID token carries sid');
    assert.equal(payload.sid, sid, 'the logout token names the session');
  },
  response_types_supported: each({ code: async () => void (await publicFlow()) }),
  response_modes_supported: each(
    Object.fromEntries(
      ['query', 'fragment', 'form_post', 'jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt'].map((m) => [
        m,
        () => responseMode(m),
      ]),
    ),
  ),
  grant_types_supported: each({
    authorization_code: async () => void (await publicFlow()),
    refresh_token: async () => {
      const { tokens } = await authorize(pub, { scope: 'openid offline_access', prompt: 'consent' });
      const refreshed = await oidc.refreshTokenGrant(pub.config, tokens.refresh_token!);
      assert.ok(refreshed.access_token && refreshed.id_token);
    },
    client_credentials: async () => {
      const t = await oidc.clientCredentialsGrant(serviceConfig('client_secret_basic'));
      assert.ok(t.access_token);
    },
  }),
  code_challenge_methods_supported: each({ S256: async () => void (await publicFlow()) }),
  token_endpoint_auth_methods_supported: each({
    none: async () => void (await publicFlow()),
    client_secret_basic: async () => void (await authorize(secretBasic)),
    client_secret_post: async () => void (await authorize(secretPost)),
    private_key_jwt: async () => void (await authorize(keyJwt)),
  }),
  token_endpoint_auth_signing_alg_values_supported: each(
    Object.fromEntries(
      PORTAL_ALGS.map((alg) => [
        alg,
        async () => {
          const t = await oidc.clientCredentialsGrant(serviceConfig('private_key_jwt', alg));
          assert.ok(t.access_token);
        },
      ]),
    ),
  ),
  introspection_endpoint_auth_methods_supported: each(
    Object.fromEntries(
      Object.entries(tokenOf).map(([method, get]) => [
        method,
        async () => {
          const { config, token } = await get();
          await introspectOwn(config, token);
        },
      ]),
    ),
  ),
  introspection_endpoint_auth_signing_alg_values_supported: each(
    Object.fromEntries(
      PORTAL_ALGS.map((alg) => [
        alg,
        async () => {
          const { config, token } = await serviceWithAlg(alg);
          await introspectOwn(config, token);
        },
      ]),
    ),
  ),
  revocation_endpoint_auth_methods_supported: each(
    Object.fromEntries(
      Object.entries(tokenOf).map(([method, get]) => [
        method,
        async () => {
          const { config, token } = await get();
          await revokeOwn(config, token);
        },
      ]),
    ),
  ),
  revocation_endpoint_auth_signing_alg_values_supported: each(
    Object.fromEntries(
      PORTAL_ALGS.map((alg) => [
        alg,
        async () => {
          const { config, token } = await serviceWithAlg(alg);
          await revokeOwn(config, token);
        },
      ]),
    ),
  ),
  id_token_signing_alg_values_supported: each(
    Object.fromEntries(
      ['ES256', 'PS256', 'RS256', 'EdDSA'].map((alg) => [
        alg,
        async () => {
          const p = idTokenPortals[alg]!;
          const { tokens } = await authorize(p);
          assert.equal(decodeProtectedHeader(tokens.id_token!).alg, alg);
          await jwtVerify(tokens.id_token!, jwks, { issuer: service.url, audience: p.id, algorithms: [alg] });
        },
      ]),
    ),
  ),
  request_parameter_supported: async (v) => {
    assert.equal(v, true);
    // A request object by value at the authorization endpoint (no PAR).
    const { tokens } = await authorize(keyJwt, {}, { jar: signer('ES256') });
    assert.ok(tokens.access_token);
  },
  request_object_signing_alg_values_supported: each(
    Object.fromEntries(
      PORTAL_ALGS.map((alg) => [
        alg,
        async () => {
          const { tokens } = await authorize(keyJwt, {}, { jar: signer(alg), par: true });
          assert.ok(tokens.access_token);
        },
      ]),
    ),
  ),
  request_uri_parameter_supported: async (v) => {
    assert.equal(v, false);
    // Only PAR's own request_uri: a portal-hosted one is refused.
    const url = new URL(String(doc.authorization_endpoint));
    url.search = new URLSearchParams({
      client_id: pub.id,
      request_uri: 'https://portal.example/request.jwt',
    }).toString();
    const res = await new Agent().get(url);
    const back = new URL(location(res, url.toString()));
    assert.equal(back.searchParams.get('error'), 'request_uri_not_supported');
  },
  authorization_signing_alg_values_supported: each({
    ES256: async () => {
      const { callback } = await authorize(pub, { response_mode: 'jwt' }, { exchange: jarm() });
      const response = callback!.searchParams.get('response')!;
      assert.equal(decodeProtectedHeader(response).alg, 'ES256');
      await jwtVerify(response, jwks, { issuer: service.url, audience: pub.id, algorithms: ['ES256'] });
    },
  }),
  authorization_response_iss_parameter_supported: async (v) => {
    assert.equal(v, true);
    const { callback } = await publicFlow();
    assert.equal(callback!.searchParams.get('iss'), service.url);
  },
  dpop_signing_alg_values_supported: each({
    ...Object.fromEntries(
      ['ES256', 'Ed25519', 'PS256'].map((alg) => [
        alg,
        async () => {
          const config = serviceConfig('private_key_jwt');
          const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair(alg));
          const t = await oidc.clientCredentialsGrant(config, undefined, { DPoP });
          assert.equal(t.token_type.toLowerCase(), 'dpop');
          const info = await oidc.tokenIntrospection(config, t.access_token);
          assert.ok((info.cnf as { jkt?: string } | undefined)?.jkt, 'bound to the proof key');
        },
      ]),
    ),
    // openid-client names an Ed25519 proof Ed25519: one labelled EdDSA is made by hand.
    EdDSA: async () => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const proof = await new SignJWT({ htm: 'POST', htu: String(doc.token_endpoint), jti: randomUUID() })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
        .setIssuedAt()
        .sign(privateKey);
      const svc = services.client_secret_basic;
      const res = await fetch(String(doc.token_endpoint), {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${svc.id}:${svc.secret}`).toString('base64')}`,
          dpop: proof,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'openid' }).toString(),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { token_type: string }).token_type, 'DPoP');
    },
  }),
  scopes_supported: async (v) => {
    const { tokens } = await fullFlow();
    const granted = new Set(String(tokens.scope).split(' '));
    for (const scope of v as string[]) assert.ok(granted.has(scope), `scope ${scope} granted`);
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
  },
  claims_supported: async (v) => {
    const { seen } = await fullFlow();
    for (const claim of v as string[]) assert.ok(seen.has(claim), `claim ${claim} released`);
  },
  claims_parameter_supported: async (v) => {
    assert.equal(v, true);
    const { idToken } = await fullFlow();
    assert.ok(idToken.sid, 'sid, asked for in the claims parameter');
  },
  claim_types_supported: each({
    normal: async () => {
      const { userinfo } = await fullFlow();
      assert.equal(userinfo._claim_names, undefined, 'no aggregated or distributed claims');
      assert.equal(typeof userinfo.name, 'string');
    },
  }),
  subject_types_supported: each({
    public: async () => {
      const { tokens } = await authorize(publicSubject);
      assert.equal(decodeJwt(tokens.id_token!).sub, accountId);
    },
    pairwise: async () => {
      const { tokens } = await publicFlow();
      const sub = decodeJwt(tokens.id_token!).sub;
      assert.ok(sub && sub !== accountId, 'a pairwise sub is not the account id');
    },
  }),
  acr_values_supported: async (v) => {
    for (const value of v as string[]) {
      const { tokens } = await authorize(pub, { acr_values: value });
      const acr = decodeJwt(tokens.id_token!).acr;
      // The demo citizen is at level 1: a level-1 value is echoed, a level-2 one (voluntary) gives the level reached.
      assert.ok(acr === value || acr === L1, `${value} -> ${acr}`);
    }
  },
};

describe('discovery walker', () => {
  it('every advertised member has an exercise, and every exercise is of an advertised member', () => {
    assert.deepEqual(
      Object.keys(doc).filter((k) => !(k in exercises)),
      [],
      'advertised without an exercise',
    );
    assert.deepEqual(
      Object.keys(exercises).filter((k) => !(k in doc)),
      [],
      'an exercise of something no longer advertised',
    );
  });

  for (const [member, exercise] of Object.entries(exercises)) {
    it(member, async () => {
      assert.ok(member in doc, `${member} is advertised`);
      await exercise(doc[member]);
    });
  }
});
