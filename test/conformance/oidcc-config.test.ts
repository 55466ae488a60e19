/**
 * The OpenID Foundation's Config OP plan (oidcc-config-certification-test-plan): its one module,
 * oidcc-discovery-endpoint-verification, asserting what it asserts of the discovery document and the JWKS. The node
 * runs as in production, behind a TLS-terminating load balancer (ISSUER https, TRUST_PROXY): the test speaks to it on
 * loopback with the headers the balancer adds, so every endpoint it advertises is the https one portals see.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { importJWK, type JWK } from 'jose';
import type { Service } from '../../src/main.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestService } from '../helpers/service.ts';

const HOST = 'id.dinhdanh.test';
let database: TestDatabase;
let service: Service;
let issuer: string;

before(async () => {
  database = await freshDatabase();
  // `:0` is replaced by the port the node listens on (the issuer is https://id.dinhdanh.test:<port>).
  service = await startTestService(database.url, { ISSUER: `https://${HOST}:0`, TRUST_PROXY: 'true' });
  issuer = service.url;
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** GET a URL of the issuer through the "balancer": loopback, with the forwarded scheme and host. */
function viaBalancer(url: string): Promise<Response> {
  const u = new URL(url);
  assert.equal(u.origin, new URL(issuer).origin, `only the issuer's own URLs are fetched: ${url}`);
  const port = (service.server.address() as AddressInfo).port;
  return fetch(`http://127.0.0.1:${port}${u.pathname}${u.search}`, {
    headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': u.host },
  });
}

/** A JSON array of strings (the suite's schema check of every *_supported member). */
function stringArray(doc: Record<string, unknown>, key: string, required = false): string[] {
  const v = doc[key];
  if (v === undefined && !required) return [];
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${key} is an array of strings`);
  return v as string[];
}

/** An https URL without fragment (AbstractJsonUriIsValidAndHttps). */
function httpsUrl(doc: Record<string, unknown>, key: string): URL {
  const v = doc[key];
  assert.equal(typeof v, 'string', `${key} is present`);
  assert.ok(URL.canParse(v as string), `${key} is a URL`);
  const u = new URL(v as string);
  assert.equal(u.protocol, 'https:', `${key} is https`);
  assert.equal(u.hash, '', `${key} has no fragment`);
  return u;
}

/** RFC 6749 3.3 scope-token: 1*NQCHAR (no space, quote or backslash). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** RFC 5646 language tag, loosely (what CheckDiscEndpointLocalesSyntax accepts). */
const LANGUAGE_TAG = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

describe('oidcc-config-certification-test-plan', () => {
  it('oidcc-discovery-endpoint-verification', async () => {
    const discoveryUrl = `${issuer}/.well-known/openid-configuration`;
    assert.equal(new URL(discoveryUrl).protocol, 'https:', 'CheckDiscEndpointDiscoveryUrl: https');
    const res = await viaBalancer(discoveryUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const doc = (await res.json()) as Record<string, unknown>;

    // Issuer: what the document was fetched from, a valid https URL without query or fragment (RFC 8414 2).
    assert.equal(String(doc.issuer).replace(/\/$/, ''), discoveryUrl.replace('/.well-known/openid-configuration', ''));
    const iss = httpsUrl(doc, 'issuer');
    assert.equal(iss.search, '');

    // Response, subject, grant types; algorithms; scopes; claims.
    const responseTypes = stringArray(doc, 'response_types_supported', true);
    const oidcTypes = ['code', 'code id_token', 'id_token', 'token id_token', 'code id_token token', 'code token'];
    assert.ok(
      responseTypes.some((t) => oidcTypes.includes(t)),
      'an OpenID Connect response type',
    );
    const subjectTypes = stringArray(doc, 'subject_types_supported', true);
    assert.ok(subjectTypes.some((t) => t === 'public' || t === 'pairwise'));
    assert.ok(stringArray(doc, 'id_token_signing_alg_values_supported', true).includes('RS256'), 'RS256 offered');
    const grants = stringArray(doc, 'grant_types_supported');
    if (doc.grant_types_supported !== undefined) assert.ok(grants.length > 0, 'grant_types_supported not empty');
    const scopes = stringArray(doc, 'scopes_supported');
    assert.ok(scopes.includes('openid'), 'scopes_supported contains openid');
    for (const s of scopes) assert.match(s, SCOPE_TOKEN, `scope ${s} is a scope-token`);
    for (const key of ['claims_locales_supported', 'ui_locales_supported'])
      for (const tag of stringArray(doc, key)) assert.match(tag, LANGUAGE_TAG, `${key}: ${tag}`);
    stringArray(doc, 'claims_supported');
    for (const key of Object.keys(doc).filter((k) => k.endsWith('_supported') && !k.endsWith('parameter_supported')))
      if (typeof doc[key] !== 'boolean') stringArray(doc, key);
    for (const key of ['claims_parameter_supported', 'request_parameter_supported', 'request_uri_parameter_supported'])
      if (key in doc) assert.equal(typeof doc[key], 'boolean', `${key} is a boolean`);
    assert.equal(doc.claims_parameter_supported, true, 'the claims parameter is supported');
    if (doc.request_object_signing_alg_values_supported !== undefined)
      assert.ok(stringArray(doc, 'request_object_signing_alg_values_supported').includes('RS256'));
    const pkce = stringArray(doc, 'code_challenge_methods_supported');
    if (pkce.length) assert.ok(pkce.includes('S256'), 'code_challenge_methods_supported: S256');

    // Endpoints: the ones OpenID Connect names, and every *_endpoint, https.
    for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint']) httpsUrl(doc, key);
    assert.equal(doc.registration_endpoint, undefined, 'no dynamic registration (portals are registered by staff)');
    for (const key of Object.keys(doc).filter((k) => k.endsWith('_endpoint'))) httpsUrl(doc, key);

    // The JWKS (CheckJwksUri, FetchServerKeys, ValidateJwksSequence): public signature keys, each with a distinct
    // kid, of valid key material; RSA keys of 2048 bits or more.
    const jwksUri = httpsUrl(doc, 'jwks_uri');
    const jwksRes = await viaBalancer(jwksUri.toString());
    assert.equal(jwksRes.status, 200);
    assert.match(jwksRes.headers.get('content-type') ?? '', /^application\/(jwk-set\+)?json/);
    const { keys } = (await jwksRes.json()) as { keys: JWK[] };
    assert.ok(Array.isArray(keys) && keys.length > 0, 'keys');
    const kids = keys.map((k) => k.kid);
    assert.ok(
      kids.every((k) => typeof k === 'string' && k.length > 0),
      'CheckForKeyIdInServerJWKs: every key has a kid',
    );
    assert.equal(new Set(kids).size, kids.length, 'CheckDistinctKeyIdValueInServerJWKs');
    for (const key of keys) {
      for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) assert.ok(!(m in key), `${key.kid}: no "${m}"`);
      assert.ok(key.use === undefined || key.use === 'sig', `${key.kid} is a signature key`);
      if (key.kty === 'RSA') assert.ok(Buffer.from(key.n!, 'base64url').length * 8 >= 2048, `${key.kid}: ≥ 2048 bits`);
      if (key.kty === 'EC') assert.equal(key.crv, 'P-256');
      await importJWK(key, key.alg);
    }
  });
});

describe('beyond the suite', () => {
  it('the discovery document does not depend on the Host or X-Forwarded-Host of whoever asked first', async () => {
    // Invariant: the endpoints portals discover are the issuer's, whatever a request said about its own host.
    // A node that has served nothing yet (as after a start, or a key change that rebuilds the provider).
    const own = await freshDatabase();
    const fresh = await startTestService(own.url, { ISSUER: `https://${HOST}:0`, TRUST_PROXY: 'true' });
    try {
      const port = (fresh.server.address() as AddressInfo).port;
      const ask = (headers: Record<string, string>) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          get({ host: '127.0.0.1', port, path: '/.well-known/openid-configuration', headers }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c;
            });
            res.on('end', () => resolve(JSON.parse(body)));
          }).on('error', reject);
        });
      const forged = { host: 'attacker.example', 'x-forwarded-host': 'attacker.example', 'x-forwarded-proto': 'https' };
      await ask(forged);
      const honest = await ask({ 'x-forwarded-host': new URL(fresh.url).host, 'x-forwarded-proto': 'https' });
      for (const key of Object.keys(honest).filter((k) => k.endsWith('_endpoint') || k === 'jwks_uri'))
        assert.equal(new URL(String(honest[key])).origin, new URL(fresh.url).origin, `${key} is at the issuer`);
    } finally {
      await fresh.close();
      await own.drop();
    }
  });
});
