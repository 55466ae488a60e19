/**
 * Portals' own keys (private_key_jwt), changes to registered portals and client secret rotation. Invariants:
 * - a portal registered with its public keys (a JWK Set file, or its jwks_uri) authenticates with private_key_jwt
 *   (ES256, PS256), and only public EC P-256 or RSA (2048 bits or more) keys, each with a kid, are ever registered;
 * - a key a portal publishes at its jwks_uri is used without a restart, once the provider's cached copy is stale;
 * - a client assertion is used once on every node: a replay, also a concurrent one on another node, is invalid_client;
 * - `clients update` checks what `clients add` checks, is audited, and running nodes honour it at once;
 * - after `clients rotate-secret`, the old and the new secret both work during the grace period, the old one never
 *   after it;
 * - bad input is one line on stderr, exit 1, and nothing written.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { type Kysely, sql } from 'kysely';
import * as oidc from 'openid-client';
import { CLIENT_CHANGES_CHANNEL, forgetCachedClients } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { type DB, listenChannel } from '../src/db/index.ts';
import { type Service, startService } from '../src/main.ts';
import { Agent } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import {
  cliJsonAsync as cliJson,
  freePort,
  type NodeProcess,
  runCliAsync as runCli,
  startNode,
} from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const REDIRECT = 'http://localhost:4701/cb';
const tmp = path.join(os.tmpdir(), `dinhdanh-client-auth-${randomBytes(4).toString('hex')}`);
let database: TestDatabase;
let env: Record<string, string>;
/** Two nodes of one issuer over one database. */
let nodeA: Service;
let nodeB: Service;
let db: Kysely<DB>;
let watch: { stop(): Promise<void> } | undefined;
let spawned: NodeProcess | undefined;

/** The portal's key server: what it publishes at its jwks_uri, and how often the provider fetched it. */
let keyServer: Server;
let published: { keys: JWK[] } = { keys: [] };
let fetches = 0;
let jwksUri: string;

before(async () => {
  database = await freshDatabase();
  const port = await freePort();
  const shared = { MASTER_KEY: randomBytes(32).toString('base64'), ISSUER: `http://localhost:${port}` };
  env = testEnv(database.url, shared);
  nodeA = await startService(loadConfig({ ...env, PORT: String(port) }));
  nodeB = await startService(loadConfig(testEnv(database.url, shared)));
  db = nodeA.db;
  // What every node does (main.ts): forget cached clients when a change is announced.
  watch = await listenChannel(database.url, CLIENT_CHANGES_CHANNEL, forgetCachedClients, () => {});
  keyServer = createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(published));
  });
  await new Promise<void>((r) => keyServer.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks.json`;
});
after(async () => {
  mock.timers.reset();
  await spawned?.stop();
  keyServer?.close();
  await watch?.stop();
  await nodeB?.close();
  await nodeA?.close();
  await database?.drop();
});

/** A key pair of `alg` and its public JWK named `kid`. */
async function keyPair(alg: 'ES256' | 'PS256', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } as JWK };
}

/** Writes a JWK Set file; returns its path. */
function jwksFile(keys: unknown[], name = `${randomBytes(4).toString('hex')}.json`): string {
  const file = path.join(tmp, name);
  writeFileSync(file, JSON.stringify({ keys }), { flag: 'w' });
  return file;
}

/** openid-client for a portal that authenticates with its private key. */
function keyPortal(clientId: string, key: { privateKey: CryptoKey; kid: string }) {
  return oidc.discovery(
    new URL(nodeA.url),
    clientId,
    { token_endpoint_auth_method: 'private_key_jwt' },
    oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }),
    { execute: [oidc.allowInsecureRequests] },
  );
}

/** A client assertion (RFC 7523) of `clientId`, for the issuer. */
function assertion(clientId: string, key: { privateKey: CryptoKey; kid: string }, alg = 'ES256') {
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: key.kid })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(nodeA.url)
    .setJti(randomBytes(16).toString('base64url'))
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key.privateKey);
}

/** A client_credentials request to `node`'s token endpoint, authenticated by `clientAssertion`. */
async function tokenWithAssertion(node: Service, clientAssertion: string) {
  const res = await fetch(`${nodeUrl(node)}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    }),
  });
  return { status: res.status, body: (await res.json()) as { error?: string; access_token?: string } };
}

/** Where a node listens (both nodes share one issuer, so not `url`). */
const nodeUrl = (node: Service) => `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`;

/** A client_credentials request authenticated with a secret (HTTP Basic); the status. */
async function tokenWithSecret(clientId: string, secret: string): Promise<number> {
  const res = await fetch(`${nodeUrl(nodeA)}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  await res.body?.cancel();
  return res.status;
}

/** Registers a back-end service (client_credentials) with the CLI. */
function addService(name: string, ...args: string[]) {
  return cliJson(env, 'clients', 'add', '--name', name, '--client-credentials', '--scopes', 'openid', ...args);
}

/** The audit events of `action` about `clientId`, oldest first. */
async function events(action: string, clientId: string) {
  const { rows } = await sql<{ actor_id: string; details: Record<string, unknown> }>`
    select actor_id, details from audit_events where action = ${action} and client_id = ${clientId} order by seq`.execute(
    db,
  );
  return rows;
}

/** Asserts a refused command: exit 1, one line on stderr matching `pattern`, nothing on stdout. */
function assertRefused(r: Awaited<ReturnType<typeof runCli>>, pattern: RegExp) {
  assert.equal(r.status, 1, `exit 1: ${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, /^dinhdanh: /);
  assert.match(r.stderr, pattern);
  assert.equal(r.stdout, '');
}

describe('private_key_jwt', () => {
  let es: Awaited<ReturnType<typeof keyPair>>;
  let ps1: Awaited<ReturnType<typeof keyPair>>;
  let psClient: string;

  before(async () => {
    mkdirSync(tmp, { recursive: true });
    es = await keyPair('ES256', 'es-2026');
    ps1 = await keyPair('PS256', 'ps-1');
  });

  it('discovery offers private_key_jwt at the token endpoint', async () => {
    const doc = (await (await fetch(`${nodeUrl(nodeA)}/.well-known/openid-configuration`)).json()) as Record<
      string,
      string[]
    >;
    assert.ok(doc.token_endpoint_auth_methods_supported?.includes('private_key_jwt'));
  });

  it('discovery lists as token endpoint signing algorithms exactly those of the keys registration accepts', async () => {
    const doc = (await (await fetch(`${nodeUrl(nodeA)}/.well-known/openid-configuration`)).json()) as Record<
      string,
      string[]
    >;
    assert.deepEqual(doc.token_endpoint_auth_signing_alg_values_supported, ['ES256', 'PS256', 'RS256']);
  });

  it('a portal registered with an ES256 key in a --jwks file signs in with private_key_jwt, with no secret', async () => {
    const c = await cliJson(
      env,
      'clients',
      'add',
      '--name',
      'Cổng ký số',
      '--redirect-uri',
      REDIRECT,
      '--auth-method',
      'private_key_jwt',
      '--jwks',
      jwksFile([es.jwk]),
      '--scopes',
      'profile',
      '--operator',
      'an.tran',
    );
    assert.equal(c.client_secret, undefined, 'no secret for a portal with keys');
    assert.equal(c.token_endpoint_auth_method, 'private_key_jwt');
    assert.deepEqual(c.jwks_kids, ['es-2026']);
    const [row] = await db
      .selectFrom('clients')
      .select(['secret_sha256', 'metadata'])
      .where('client_id', '=', c.client_id)
      .execute();
    assert.equal(row?.secret_sha256, null);
    assert.deepEqual((row!.metadata.jwks as { keys: JWK[] }).keys, [es.jwk], 'the public key, as given');
    const [event] = await events('client.registered', c.client_id);
    assert.equal(event?.actor_id, 'an.tran');
    assert.deepEqual(event?.details.kids, ['es-2026']);
    assert.equal(event?.details.authMethod, 'private_key_jwt');

    const portal = await keyPortal(c.client_id, es);
    const { url, verifier, state } = await authorizationRequest(portal, { redirect_uri: REDIRECT });
    const callback = await loginThrough(new Agent(), url.toString(), DEMO_PIN, DEMO_PASSWORD, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.equal(tokens.claims()?.aud, c.client_id);
    await assert.rejects(
      oidc.refreshTokenGrant(await keyPortal(c.client_id, ps1), tokens.refresh_token ?? 'none'),
      (e: { error?: string }) => e.error === 'invalid_client',
      'a key the portal did not register is refused',
    );
  });

  it('a back-end registered by --jwks-uri authenticates with PS256; the provider fetched its keys', async () => {
    published = { keys: [ps1.jwk] };
    const c = await addService('Dịch vụ ký PS256', '--auth-method', 'private_key_jwt', '--jwks-uri', jwksUri);
    psClient = c.client_id;
    assert.equal(c.jwks_uri, jwksUri);
    assert.equal(c.client_secret, undefined);
    const t = await oidc.clientCredentialsGrant(await keyPortal(psClient, ps1));
    assert.ok(t.access_token);
    assert.equal(fetches, 1);
  });

  it("a key the portal publishes at its jwks_uri is used without a restart once the provider's copy is stale", async () => {
    // The portal publishes its next key and signs with it at once (too early: it should wait for the caches).
    const ps2 = await keyPair('PS256', 'ps-2');
    published = { keys: [ps1.jwk, ps2.jwk] };
    const before = fetches;
    await assert.rejects(
      oidc.clientCredentialsGrant(await keyPortal(psClient, ps2)),
      (e: { error?: string }) => e.error === 'invalid_client',
    );
    assert.equal(fetches, before, 'within the 60 s the copy is fresh, an unknown kid fetches nothing (rate limit)');
    // 61 s later (oidc-provider keeps a fetched set fresh for max(60 s, Cache-Control max-age, Expires)).
    mock.timers.enable({ apis: ['Date'], now: Date.now() + 61_000 });
    try {
      const t = await oidc.clientCredentialsGrant(await keyPortal(psClient, ps2));
      assert.ok(t.access_token, 'the new kid is accepted');
      assert.equal(fetches, before + 1, 'fetched once, on the unknown kid');
      const again = await oidc.clientCredentialsGrant(await keyPortal(psClient, ps1));
      assert.ok(again.access_token, 'the key still published keeps working');
    } finally {
      mock.timers.reset();
    }
  });
});

describe('a client assertion is used once, on every node', () => {
  let key: Awaited<ReturnType<typeof keyPair>>;
  let clientId: string;
  before(async () => {
    key = await keyPair('ES256', 'svc-1');
    const c = await addService('Dịch vụ liên thông', '--auth-method', 'private_key_jwt', '--jwks', jwksFile([key.jwk]));
    clientId = c.client_id;
  });

  it('a replayed assertion is invalid_client, on the node that accepted it and on another', async () => {
    const a = await assertion(clientId, key);
    const first = await tokenWithAssertion(nodeA, a);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.ok(first.body.access_token);
    for (const node of [nodeA, nodeB]) {
      const replay = await tokenWithAssertion(node, a);
      assert.equal(replay.status, 401);
      assert.equal(replay.body.error, 'invalid_client');
    }
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from oidc_payloads where model = 'ReplayDetection' and expires_at > now()`.execute(db);
    assert.ok(rows[0]!.n >= 1, 'the jti is remembered in PostgreSQL, shared by the nodes');
    const fresh = await tokenWithAssertion(nodeB, await assertion(clientId, key));
    assert.equal(fresh.status, 200, 'a new assertion works on the other node');
  });

  it('of one assertion sent to both nodes at the same time, exactly one is accepted', async () => {
    const a = await assertion(clientId, key);
    const results = await Promise.all([nodeA, nodeB, nodeA, nodeB, nodeA, nodeB].map((n) => tokenWithAssertion(n, a)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 401, 401, 401, 401, 401]);
    assert.ok(results.filter((r) => r.status === 401).every((r) => r.body.error === 'invalid_client'));
  });
});

describe('clients update', () => {
  const NEW_REDIRECT = 'http://localhost:4702/cb';

  /** The authorization endpoint's answer to `clientId` with `redirect`: 303 to the login page, or an error page. */
  async function authorize(clientId: string, redirect: string, base = nodeUrl(nodeA)): Promise<number> {
    const params = new URLSearchParams({
      client_id: clientId,
      redirect_uri: redirect,
      response_type: 'code',
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      state: 'st',
    });
    const res = await fetch(`${base}/auth?${params}`, { redirect: 'manual' });
    await res.body?.cancel();
    return res.status;
  }

  it('changes a redirect URI; a running node honours it at once, and the change is audited', async () => {
    const c = await cliJson(
      env,
      ...['clients', 'add', '--name', 'Cổng đổi địa chỉ', '--redirect-uri', REDIRECT],
      ...['--backchannel-logout-uri', 'http://localhost:4701/bcl'],
    );
    assert.equal(await authorize(c.client_id, REDIRECT), 303);
    assert.equal(await authorize(c.client_id, NEW_REDIRECT), 400, 'not registered yet');
    const u = await cliJson(
      env,
      'clients',
      'update',
      c.client_id,
      '--redirect-uri',
      NEW_REDIRECT,
      '--min-level',
      '2',
      '--no-backchannel-logout-uri',
      '--operator',
      'binh.le',
    );
    assert.deepEqual(u.redirect_uris, [NEW_REDIRECT]);
    assert.equal(u.min_level, 2);
    assert.equal(u.backchannel_logout_uri, undefined, 'removed');
    assert.equal(u.client_name, 'Cổng đổi địa chỉ', 'what was not given is unchanged');
    assert.equal(u.client_secret, undefined, 'its secret is unchanged (not shown again)');
    // At once: the change is announced on commit (a notification reaches the node a moment after the CLI exits).
    await until(
      'node A honours the new redirect URI',
      async () => (await authorize(c.client_id, NEW_REDIRECT)) === 303,
      2000,
    );
    assert.equal(await authorize(c.client_id, REDIRECT), 400, 'the old one is refused');
    assert.equal(await authorize(c.client_id, NEW_REDIRECT, nodeUrl(nodeB)), 303, 'node B too');
    const [event] = await events('client.updated', c.client_id);
    assert.equal(event?.actor_id, 'binh.le');
    assert.deepEqual((event!.details.changed as string[]).sort(), [
      'backchannel_logout_session_required',
      'backchannel_logout_uri',
      'dinhdanh_min_level',
      'redirect_uris',
    ]);
  });

  it('replaces keys from a new --jwks file: the new key works at once, the old one no longer', async () => {
    const old = await keyPair('ES256', 'k-2026');
    const next = await keyPair('PS256', 'k-2027');
    const svc = await addService('Dịch vụ đổi khoá', '--auth-method', 'private_key_jwt', '--jwks', jwksFile([old.jwk]));
    const id = svc.client_id;
    assert.equal((await tokenWithAssertion(nodeA, await assertion(id, old))).status, 200);
    const u = await cliJson(env, 'clients', 'update', id, '--jwks', jwksFile([next.jwk]));
    assert.deepEqual(u.jwks_kids, ['k-2027']);
    await until(
      'the new key works',
      async () => (await tokenWithAssertion(nodeA, await assertion(id, next, 'PS256'))).status === 200,
      2000,
    );
    const refused = await tokenWithAssertion(nodeA, await assertion(id, old));
    assert.equal(refused.body.error, 'invalid_client');
    assert.deepEqual((await events('client.updated', id))[0]?.details.kids, ['k-2027']);
  });

  it('moving from a secret to private_key_jwt drops the secret; moving back issues a new one, shown once', async () => {
    const key = await keyPair('ES256', 'm-1');
    const c = await addService('Dịch vụ chuyển cách xác thực');
    assert.equal(await tokenWithSecret(c.client_id, c.client_secret), 200);
    const toKeys = await cliJson(
      env,
      'clients',
      'update',
      c.client_id,
      '--auth-method',
      'private_key_jwt',
      '--jwks',
      jwksFile([key.jwk]),
    );
    assert.equal(toKeys.client_secret, undefined);
    const [row] = await db.selectFrom('clients').select('secret_sha256').where('client_id', '=', c.client_id).execute();
    assert.equal(row?.secret_sha256, null, 'no secret left');
    await until(
      'the secret is refused',
      async () => (await tokenWithSecret(c.client_id, c.client_secret)) === 401,
      2000,
    );
    const back = await cliJson(env, 'clients', 'update', c.client_id, '--auth-method', 'client_secret_basic');
    assert.ok(back.client_secret, 'a new secret');
    assert.notEqual(back.client_secret, c.client_secret);
    await until(
      'the new secret works',
      async () => (await tokenWithSecret(c.client_id, back.client_secret)) === 200,
      2000,
    );
    assert.equal(await tokenWithSecret(c.client_id, c.client_secret), 401, 'never the old one');
  });

  it('a node started by `dinhdanh start` honours an update at once', async () => {
    const port = await freePort();
    spawned = await startNode({ ...env, PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    const c = await cliJson(env, 'clients', 'add', '--name', 'Cổng nút riêng', '--redirect-uri', REDIRECT);
    assert.equal(await authorize(c.client_id, REDIRECT, base), 303, 'cached by the node');
    await cliJson(env, 'clients', 'update', c.client_id, '--redirect-uri', NEW_REDIRECT);
    await until('the node honours it', async () => (await authorize(c.client_id, NEW_REDIRECT, base)) === 303, 1000);
  });
});

describe('clients rotate-secret', () => {
  it('the old and the new secret both work during the grace period, the old one never after it', async () => {
    const c = await addService('Dịch vụ đổi bí mật');
    const s1 = c.client_secret as string;
    assert.equal(await tokenWithSecret(c.client_id, s1), 200);
    const r = await cliJson(env, 'clients', 'rotate-secret', c.client_id, '--grace', '3', '--operator', 'chi.pham');
    const s2 = r.client_secret as string;
    assert.notEqual(s2, s1);
    const until2 = Date.parse(r.previous_secret_valid_until);
    assert.ok(until2 > Date.now() && until2 <= Date.now() + 3000, 'valid for the grace period');
    await until('the new secret works', async () => (await tokenWithSecret(c.client_id, s2)) === 200, 2000);
    assert.equal(await tokenWithSecret(c.client_id, s1), 200, 'the old one still works during the grace period');
    assert.ok(Date.now() < until2, 'checked within the grace period');
    await until('the old secret is refused', async () => (await tokenWithSecret(c.client_id, s1)) === 401, 10_000);
    assert.ok(Date.now() >= until2, 'not before the grace period ended');
    assert.equal(await tokenWithSecret(c.client_id, s2), 200, 'the new one keeps working');
    const [event] = await events('client.secret_rotated', c.client_id);
    assert.equal(event?.actor_id, 'chi.pham');
    assert.equal(event?.details.graceSeconds, 3);
    assert.ok(!JSON.stringify(event?.details).includes(s2), 'the secret is not in the audit trail');

    // --grace 0: the current secret stops at once.
    const s3 = (await cliJson(env, 'clients', 'rotate-secret', c.client_id, '--grace', '0')).client_secret as string;
    await until('the newest secret works', async () => (await tokenWithSecret(c.client_id, s3)) === 200, 2000);
    assert.equal(await tokenWithSecret(c.client_id, s2), 401, 'with no grace, the previous one is refused at once');
    const [row] = await db
      .selectFrom('clients')
      .select(['previous_secret_sha256', 'previous_secret_expires_at'])
      .where('client_id', '=', c.client_id)
      .execute();
    assert.deepEqual(row, { previous_secret_sha256: null, previous_secret_expires_at: null });
  });
});

describe('bad input: one line, exit 1, nothing written', () => {
  let count: () => Promise<{ clients: number; events: number }>;
  before(() => {
    count = async () => {
      const { rows } = await sql<{ clients: number; events: number }>`select
        (select count(*)::int from clients) as clients,
        (select count(*)::int from audit_events where action like 'client.%') as events`.execute(db);
      return rows[0]!;
    };
  });
  const add = (...args: string[]) =>
    runCli(
      env,
      'clients',
      'add',
      '--name',
      'Cổng lỗi',
      '--redirect-uri',
      REDIRECT,
      '--auth-method',
      'private_key_jwt',
      ...args,
    );

  it('refuses private keys, symmetric keys, other curves, short RSA keys and keys without a kid', async () => {
    const before = await count();
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const p384 = await generateKeyPair('ES384');
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const es = await keyPair('ES256', 'ok');
    const cases: [unknown[], RegExp][] = [
      [[{ ...(await exportJWK(privateKey)), kid: 'leak' }], /key "leak" contains private key material \("d"\)/],
      [[{ kty: 'oct', k: randomBytes(32).toString('base64url'), kid: 'sym' }], /key "sym" is a symmetric key/],
      [[{ ...(await exportJWK(p384.publicKey)), kid: 'p384' }], /EC keys must be P-256/],
      [[{ ...rsa1024, kid: 'short' }], /RSA key of 1024 bits: at least 2048/],
      [[{ ...es.jwk, kid: undefined }], /needs a "kid"/],
      [[es.jwk, es.jwk], /the kid is used twice/],
    ];
    for (const [keys, pattern] of cases) assertRefused(await add('--jwks', jwksFile(keys)), pattern);
    const notJson = path.join(tmp, 'not.json');
    writeFileSync(notJson, 'kty: EC');
    assertRefused(await add('--jwks', notJson), /--jwks .*not\.json: not a JSON document/);
    assertRefused(await add(), /private_key_jwt needs the portal's public keys/);
    assert.deepEqual(await count(), before);
  });

  it('refuses an http jwks_uri in production mode, and one off loopback in development', async () => {
    const before = await count();
    const production = {
      ...env,
      NODE_ENV: 'production',
      ISSUER: 'https://id.example.vn',
      SMS_GATEWAY_URL: 'https://sms.example.vn/send',
    };
    const r = await runCli(
      production,
      ...['clients', 'add', '--name', 'Cổng lỗi', '--redirect-uri', REDIRECT, '--auth-method', 'private_key_jwt'],
      ...['--jwks-uri', jwksUri],
    );
    assertRefused(r, /jwks_uri must be an https URL of the portal \(production\)/);
    assertRefused(await add('--jwks-uri', 'http://keys.example.vn/jwks.json'), /jwks_uri must be https/);
    assert.deepEqual(await count(), before);
  });

  it('refuses an unknown client, a rotation without a secret, and an update that changes nothing', async () => {
    const keyed = await addService('Dịch vụ không bí mật', '--auth-method', 'private_key_jwt', '--jwks-uri', jwksUri);
    const before = await count();
    assertRefused(await runCli(env, 'clients', 'update', 'no-such-portal', '--name', 'X'), /no client no-such-portal/);
    assertRefused(await runCli(env, 'clients', 'rotate-secret', 'no-such-portal'), /no client no-such-portal/);
    assertRefused(
      await runCli(env, 'clients', 'rotate-secret', keyed.client_id),
      /authenticates with private_key_jwt: it has no secret/,
    );
    assertRefused(await runCli(env, 'clients', 'rotate-secret', keyed.client_id, '--grace', '-1'), /--grace/);
    assertRefused(
      await runCli(env, 'clients', 'update', keyed.client_id, '--name', keyed.client_name),
      /nothing to change/,
    );
    assertRefused(
      await runCli(env, 'clients', 'update', keyed.client_id, '--redirect-uri', 'ftp://x.example.vn/cb'),
      /redirect URI must be https/,
    );
    assert.deepEqual(await count(), before);
  });
});
