/**
 * Signing-key lifecycle across two provider processes on one PostgreSQL. Invariants: a relying party that caches
 * JWKS never fails to verify while keys rotate (a key is published for the lead time before it signs); every node
 * signs with the new key within the bound, without restart; a revoked key leaves JWKS at once on every node and its
 * tokens stop verifying; a wrong master key stops start-up with a clear message; PS256 clients get PS256 ID tokens.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import { cliJson, freePort, type NodeProcess, runCli, startNode } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const root = path.resolve(import.meta.dirname, '..');
let database: TestDatabase;
let env: Record<string, string>;
let a: NodeProcess;
let b: NodeProcess;
let issuer: string;
let nodeB: string;
let client: { client_id: string; client_secret: string };
const REDIRECT = 'http://localhost:4501/cb';

const cli = (...args: string[]) => cliJson(env, ...args);

/** How many times a node has loaded its key set (it logs each load). */
const swaps = (n: NodeProcess) => (n.output().match(/signing key set loaded/g) ?? []).length;
const jwks = async (base: string) =>
  (await (await fetch(`${base}/jwks`)).json()) as { keys: { kid: string; alg: string }[] };
const activeKid = (alg = 'ES256') =>
  (cli('keys', 'list') as { kid: string; alg: string; state: string }[]).find(
    (k) => k.alg === alg && k.state === 'active',
  )!.kid;

/**
 * A portal (confidential) that obtains a refresh token once; each refresh yields a fresh ID token. With `alg`, the
 * portal accepts only ID tokens signed with that algorithm (openid-client refuses any other `alg` header), as a
 * portal registered for it does.
 */
async function portalWithRefresh(base: string, alg?: string) {
  const metadata = { client_secret: client.client_secret, ...(alg ? { id_token_signed_response_alg: alg } : {}) };
  const config = await oidc.discovery(new URL(issuer), client.client_id, metadata, undefined, {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: (url: string, o: unknown) => fetch(url.replace(issuer, base), o as RequestInit),
  });
  const agent = new Agent();
  agent.origin = base;
  const { url, verifier, state } = await authorizationRequest(config, {
    redirect_uri: REDIRECT,
    scope: 'openid offline_access',
    prompt: 'consent',
  });
  const callback = await loginThrough(agent, url.toString(), DEMO_PIN, DEMO_PASSWORD, REDIRECT);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    idTokenExpected: true,
  });
  let refresh = tokens.refresh_token!;
  return {
    first: tokens.id_token!,
    async idToken() {
      const t = await oidc.refreshTokenGrant(config, refresh);
      refresh = t.refresh_token!;
      return t.id_token!;
    },
  };
}

before(async () => {
  database = await freshDatabase();
  const [pa, pb] = [await freePort(), await freePort()];
  issuer = `http://localhost:${pa}`;
  nodeB = `http://localhost:${pb}`;
  env = testEnv(database.url, {
    ISSUER: issuer,
    MASTER_KEY: randomBytes(32).toString('base64'),
    // info: each node logs when it loads a key set, which the cookie test waits for.
    LOG_LEVEL: 'info',
    KEY_PUBLISH_LEAD_SECONDS: '8',
    KEY_RETENTION_SECONDS: '8',
    KEY_CHECK_SECONDS: '1',
    JWKS_MAX_AGE_SECONDS: '1',
  });
  a = await startNode({ ...env, PORT: String(pa) });
  b = await startNode({ ...env, PORT: String(pb) });
  client = cli(
    'clients',
    'add',
    '--name',
    'Cổng khóa',
    '--redirect-uri',
    REDIRECT,
    '--scopes',
    'openid offline_access',
  );
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await database?.drop();
});

describe('rotation', () => {
  it('a caching relying party verifies every token while the key rotates on two nodes: zero failures', async () => {
    // Caches JWKS like a real portal (here for 2 s, about the max-age the provider sends).
    const remote = createRemoteJWKSet(new URL(`${issuer}/jwks`), { cacheMaxAge: 2000, cooldownDuration: 2000 });
    const onA = await portalWithRefresh(issuer);
    const onB = await portalWithRefresh(nodeB);
    const before = activeKid();
    const oldToken = await onA.idToken();
    await jwtVerify(oldToken, remote, { issuer, audience: client.client_id }); // the portal's cache: the old set
    const rotated = cli('keys', 'rotate', '--alg', 'ES256', '--operator', 'sec-ops-1');
    assert.equal(rotated.activated, null, 'staged first: the lead time has not passed');
    await until('every node publishes the staged key', async () => {
      const sets = await Promise.all([issuer, nodeB].map(jwks));
      return sets.every((set) => set.keys.some((k) => k.kid === rotated.staged));
    });
    const kids = new Set<string>([String(decodeProtectedHeader(oldToken).kid)]);
    let failures = 0;
    // Refresh on both nodes until both sign with the new key; every token must verify against the cached set.
    await until(
      'both nodes sign with the new key',
      async () => {
        const latest: string[] = [];
        for (const p of [onA, onB]) {
          const token = await p.idToken();
          const kid = String(decodeProtectedHeader(token).kid);
          kids.add(kid);
          latest.push(kid);
          try {
            await jwtVerify(token, remote, { issuer, audience: client.client_id });
          } catch {
            failures++;
          }
        }
        return latest.every((k) => k === rotated.staged);
      },
      60_000,
    );
    assert.equal(failures, 0);
    assert.ok(kids.has(before) && kids.has(rotated.staged), `tokens signed by the old key, then the new: ${[...kids]}`);
    assert.equal(activeKid(), rotated.staged, 'the staged key became active by itself after the lead time');
    // The old key is retired but still published: a token it signed still verifies...
    const published = await jwks(nodeB);
    assert.ok(published.keys.some((k) => k.kid === before));
    await jwtVerify(oldToken, createLocalJWKSet(published), { issuer, audience: client.client_id });
    // ...until the retention time passes and it is removed.
    await until('the old key is removed after retention', async () => {
      return !(await jwks(issuer)).keys.some((k) => k.kid === before);
    });
    const listed = (cli('keys', 'list') as { kid: string; state: string }[]).find((k) => k.kid === before);
    assert.equal(listed?.state, 'removed');
  });

  it('refuses to activate a key before its lead time, with the time it can', () => {
    // A lead time of an hour for these two commands: however slowly they start, the key cannot be due yet.
    const slow = { ...env, KEY_PUBLISH_LEAD_SECONDS: '3600' };
    const staged = cliJson(slow, 'keys', 'generate', '--alg', 'EdDSA');
    const r = runCli(slow, 'keys', 'activate', '--', staged.kid);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /it can sign from 20/);
  });
});

describe('revocation', () => {
  it('removes the key from JWKS on every node at once, and its tokens stop verifying', async () => {
    const p = await portalWithRefresh(issuer);
    const victim = activeKid();
    const token = await p.idToken();
    assert.equal(decodeProtectedHeader(token).kid, victim);
    const r = runCli(env, 'keys', 'revoke', '--', victim);
    assert.equal(r.status, 1, 'asks for confirmation; refuses without a terminal');
    const revoked = cli('keys', 'revoke', '--yes', '--operator', 'sec-ops-2', '--', victim);
    assert.ok(revoked.replacement);
    await until('every node stops publishing the revoked key', async () => {
      const sets = await Promise.all([issuer, nodeB].map(jwks));
      return sets.every((set) => !set.keys.some((k) => k.kid === victim));
    });
    for (const base of [issuer, nodeB]) {
      const set = await jwks(base);
      assert.ok(!set.keys.some((k) => k.kid === victim), `${base} no longer publishes it`);
      await assert.rejects(jwtVerify(token, createLocalJWKSet(set), { issuer }), /no applicable key|JWKSNoMatchingKey/);
    }
    assert.equal(decodeProtectedHeader(await p.idToken()).kid, revoked.replacement, 'the replacement signs at once');
    const audit = runCli(env, 'audit', 'export', '--actor', 'operator');
    assert.match(audit.stdout, /"actorId":"sec-ops-2","action":"key.revoked"/);
  });
});

describe('cookie keys', () => {
  it('rotate on every node: the previous generation still verifies, the one before no longer does', async () => {
    const agent = new Agent();
    agent.origin = nodeB;
    let res = await agent.get(`${issuer}/account`);
    let current = location(res, issuer);
    for (let i = 0; i < 6 && res.status !== 200; i++) {
      res = await agent.get(current);
      if (res.status === 200 && /\/login"/.test(await res.clone().text())) {
        const html = await res.text();
        res = await agent.post(new URL(actionOf(html, 'login'), current), {
          csrf: csrfOf(html),
          pin: DEMO_PIN,
          password: DEMO_PASSWORD,
        });
      }
      if (res.status === 302 || res.status === 303) current = location(res, current);
    }
    assert.equal((await agent.get(`${issuer}/account`)).status, 200, 'signed in');
    const signedBefore = new Map(agent.jar); // cookies signed with generation 0, as a browser that stays away keeps them
    let seen = [swaps(a), swaps(b)];
    assert.equal(cli('keys', 'rotate-cookies', '--operator', 'sec-ops-3').generation, 1);
    await until('both nodes load the new cookie keys', () => swaps(a) > seen[0]! && swaps(b) > seen[1]!);
    agent.origin = issuer;
    assert.equal((await agent.get(`${issuer}/account`)).status, 200, 'previous generation still verifies (node A)');
    agent.origin = nodeB;
    assert.equal((await agent.get(`${issuer}/account`)).status, 200, 'and on node B');
    seen = [swaps(a), swaps(b)];
    assert.equal(cli('keys', 'rotate-cookies').generation, 2);
    await until('both nodes load the newer cookie keys', () => swaps(a) > seen[0]! && swaps(b) > seen[1]!);
    assert.equal(
      (await agent.get(`${issuer}/account`)).status,
      200,
      'a browser that came back meanwhile was re-signed',
    );
    agent.jar.clear();
    for (const [k, v] of signedBefore) agent.jar.set(k, v);
    assert.equal((await agent.get(`${issuer}/account`)).status, 302, 'two generations later an old cookie is refused');
  });
});

describe('algorithms and master key', () => {
  it('gives PS256 ID tokens to a client registered for PS256', async () => {
    const ps = cli(
      'clients',
      'add',
      '--name',
      'RSA portal',
      '--redirect-uri',
      REDIRECT,
      '--id-token-alg',
      'PS256',
      '--scopes',
      'openid offline_access',
    );
    const saved = client;
    client = ps;
    try {
      // The portal expects PS256: an ID token signed otherwise (the ES256 default) fails the code exchange.
      const p = await portalWithRefresh(issuer, 'PS256');
      const header = decodeProtectedHeader(p.first);
      assert.equal(header.alg, 'PS256');
      assert.equal(activeKid('PS256'), header.kid, 'signed by the active PS256 key');
      await jwtVerify(p.first, createLocalJWKSet(await jwks(issuer)), { issuer, audience: ps.client_id });
      // And on refresh (another code path of the provider).
      assert.equal(decodeProtectedHeader(await p.idToken()).alg, 'PS256');
      // The expectation has teeth: a portal expecting ES256 refuses these PS256 tokens.
      await assert.rejects(portalWithRefresh(issuer, 'ES256'), (e: Error) =>
        /unexpected JWT "alg" header parameter/.test(String((e.cause as Error | undefined)?.message)),
      );
    } finally {
      client = saved;
    }
  });

  it('stops start-up with a clear message when the master key is wrong', () => {
    const r = spawnSync(process.execPath, ['src/cli/main.ts', 'start'], {
      cwd: root,
      env: { ...process.env, ...env, MASTER_KEY: randomBytes(32).toString('base64'), PORT: '0' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /MASTER_KEY: the master key does not open/);
  });
});
