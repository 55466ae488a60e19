/**
 * Token lifecycle and logout for agency back-ends. Invariants: refresh tokens rotate and a reused one revokes the
 * whole grant; introspection reports revoked and expired tokens inactive; DPoP-bound tokens need their proof;
 * client_credentials only for clients registered for it; back-channel logout is retried while a portal is down and
 * delivered when it comes back, never holding up the citizen; an unregistered post_logout_redirect_uri is refused.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { Agent, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, consentThrough, DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';
import { statementsOf } from './helpers/statements.ts';

const REDIRECT = 'http://localhost:4601/cb';
const API = 'https://api.thue.example.vn';
const LAND_API = 'https://api.datdai.example.vn';
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let clientId: string;
let backchannel: Server;
let backchannelStatus = 503;
/** While set, the portal's back-channel endpoint holds every request until it resolves. */
let gate: Promise<void> | null = null;
const received: string[] = [];

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, {
    ACCESS_TOKEN_TTL_SECONDS: '30',
    RESOURCE_SERVERS: JSON.stringify([
      { indicator: API, scope: 'tax:read tax:write' },
      { indicator: LAND_API, scope: 'land:read', format: 'opaque' },
    ]),
  });
  backchannel = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push(`${backchannelStatus} ${body.slice(0, 13)}`);
      res.statusCode = backchannelStatus;
      // While the gate is closed the portal does not answer at all (a hung back-end).
      if (gate) void gate.then(() => res.end());
      else res.end();
    });
  });
  await new Promise<void>((r) => backchannel.listen(0, '127.0.0.1', r));
  const port = (backchannel.address() as AddressInfo).port;
  const c = await addClient(service.db, {
    name: 'Cổng nghiệp vụ',
    redirectUris: [REDIRECT],
    postLogoutRedirectUris: ['http://localhost:4601/'],
    backchannelLogoutUri: `http://localhost:${port}/bcl`,
  });
  clientId = c.client_id;
  portal = await oidc.discovery(new URL(service.url), c.client_id, c.client_secret!, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
});
after(async () => {
  backchannel?.close();
  await service?.close();
  await database?.drop();
});

/**
 * Signs the demo citizen in to the portal (consenting to offline access) and redeems the code. `signedIn`: the agent
 * already has a session, so there is no login page, only consent.
 */
async function login(agent: Agent, o: { dpop?: oidc.DPoPHandle; signedIn?: boolean } = {}) {
  const { url, verifier, state } = await authorizationRequest(portal, {
    redirect_uri: REDIRECT,
    scope: 'openid profile offline_access',
    prompt: 'consent',
  });
  const callback = o.signedIn
    ? await consentThrough(agent, url.toString(), REDIRECT)
    : await loginThrough(agent, url.toString(), DEMO_PIN, DEMO_PASSWORD, REDIRECT);
  return oidc.authorizationCodeGrant(
    portal,
    new URL(callback),
    { pkceCodeVerifier: verifier, expectedState: state },
    undefined,
    o.dpop ? { DPoP: o.dpop } : undefined,
  );
}

/** The account page of a signed-in agent (single sign-on through the account client). */
async function accountPage(agent: Agent): Promise<string> {
  let current = `${service.url}/account`;
  let res = await agent.get(current);
  while (res.status === 302 || res.status === 303) {
    current = location(res, current);
    res = await agent.get(current);
  }
  assert.equal(res.status, 200);
  return res.text();
}

const waitFor = async (check: () => Promise<boolean>, ms = 8000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
};

describe('statements per token request (Performance II)', () => {
  // Bound: each statement costs the provider about 50 µs of CPU and a round trip; a token's grant and account come
  // with it (adapter.ts). Counted on this process's PostgreSQL clients by statement name (the request paths' named
  // statements; background loops use others).
  it('refresh makes 2 (token with grant and account; consume with the new tokens), userinfo and introspection 1', async () => {
    const t = await login(new Agent());
    /** The request paths' named statements (background loops use others) that `f` sent. */
    const counted = async (f: () => Promise<unknown>) =>
      (await statementsOf(f))[1].flatMap((q) => (q.name && /^(oidc_|account_)/.test(q.name) ? [q.name] : []));
    let r: oidc.TokenEndpointResponse | undefined;
    assert.deepEqual(
      await counted(async () => {
        r = await oidc.refreshTokenGrant(portal, t.refresh_token!);
      }),
      ['oidc_find_many', 'oidc_consume_and_save'],
    );
    const sub = (await oidc.tokenIntrospection(portal, r!.access_token)).sub;
    assert.deepEqual(await counted(() => oidc.fetchUserInfo(portal, r!.access_token, sub!)), ['oidc_find_many']);
    assert.deepEqual(await counted(() => oidc.tokenIntrospection(portal, r!.access_token)), ['oidc_find_many']);
  });
});

describe('refresh tokens', () => {
  it('raced: of two requests with one refresh token exactly one gets tokens; nothing of the other is kept', async () => {
    const refreshed = async () =>
      Number(
        (
          await sql<{ n: string }>`select count(*) as n from audit_events where action = 'token.refreshed'
            and client_id = ${clientId}`.execute(service.db)
        ).rows[0]?.n,
      );
    const start = await refreshed();
    const t = await login(new Agent());
    const before = Number(
      (
        await sql<{
          n: string;
        }>`select count(*) as n from oidc_payloads where model in ('AccessToken', 'RefreshToken')`.execute(service.db)
      ).rows[0]!.n,
    );
    const outcomes = await Promise.allSettled(
      Array.from({ length: 4 }, () => oidc.refreshTokenGrant(portal, t.refresh_token!)),
    );
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    assert.equal(won.length, 1, 'exactly one refresh wins');
    for (const o of outcomes)
      if (o.status === 'rejected') assert.equal((o.reason as { error?: string }).error, 'invalid_grant');
    const after = Number(
      (
        await sql<{
          n: string;
        }>`select count(*) as n from oidc_payloads where model in ('AccessToken', 'RefreshToken')`.execute(service.db)
      ).rows[0]!.n,
    );
    // A request that loses early (it saw the token consumed) revokes the grant, as a reuse does; one that loses at the
    // commit writes nothing. Either way no losing request's tokens exist: at most the winner's two.
    assert.ok(after <= before + 2, `${after - before} new token rows`);
    // The audit trail says one refresh per race (the tokens committed), not one per request that got as far as
    // building them.
    const again = await login(new Agent());
    const raced = await Promise.allSettled(
      Array.from({ length: 4 }, () => oidc.refreshTokenGrant(portal, again.refresh_token!)),
    );
    const wins = raced.filter((o) => o.status === 'fulfilled').length;
    assert.equal(wins, 1);
    assert.ok(await waitFor(async () => (await refreshed()) >= start + 2));
    assert.equal(await refreshed(), start + 2, 'one refresh recorded per race');
  });

  it('a request that fails after the consume keeps the refresh token usable (nothing of it is written)', async () => {
    const t = await login(new Agent());
    await assert.rejects(
      oidc.refreshTokenGrant(portal, t.refresh_token!, { resource: 'https://api.khac.example.vn' }),
      (e: { error?: string }) => e.error === 'invalid_target',
    );
    const r = await oidc.refreshTokenGrant(portal, t.refresh_token!);
    assert.ok(r.access_token, 'the same refresh token works on the next try');
  });

  it('rotate on every use; a reused one revokes the whole grant, and the event is recorded', async () => {
    const t = await login(new Agent());
    const r1 = await oidc.refreshTokenGrant(portal, t.refresh_token!);
    assert.notEqual(r1.refresh_token, t.refresh_token, 'rotated');
    await assert.rejects(
      oidc.refreshTokenGrant(portal, t.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    await assert.rejects(
      oidc.refreshTokenGrant(portal, r1.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
      'the grant is gone',
    );
    const info = await oidc.tokenIntrospection(portal, r1.access_token);
    assert.equal(info.active, false, 'access tokens of the grant are revoked too');
    const revokedEvents = async () =>
      Number(
        (
          await sql<{ n: string }>`select count(*) as n from audit_events where action = 'grant.revoked'`.execute(
            service.db,
          )
        ).rows[0]?.n,
      );
    assert.ok(await waitFor(async () => (await revokedEvents()) >= 1), 'the reuse is recorded');
  });
});

/** The portal's grants end in `seconds` (as a consent given long ago nears its end); returns that time (epoch s). */
async function grantsEndIn(seconds: number): Promise<number> {
  const end = Math.floor(Date.now() / 1000) + seconds;
  await sql`update oidc_payloads set expires_at = to_timestamp(${end}),
    payload = jsonb_set(payload, '{exp}', to_jsonb(${end}::bigint))
    where model = 'Grant' and payload->>'clientId' = ${clientId}`.execute(service.db);
  return end;
}

describe('grants live as long as what depends on them', () => {
  it('a sign-in renews the grant: a refresh token issued just before its original end still refreshes after it', async () => {
    const agent = new Agent();
    await login(agent);
    const end = await grantsEndIn(3);
    const t = await login(agent, { signedIn: true });
    await waitFor(async () => Date.now() > end * 1000 + 1000, 10_000);
    const r = await oidc.refreshTokenGrant(portal, t.refresh_token!);
    assert.ok(r.access_token, "refreshed after the grant's original end");
    const grant = await sql<{ left: number }>`select extract(epoch from expires_at - now())::int as left
      from oidc_payloads where model = 'Grant' and payload->>'clientId' = ${clientId} order by expires_at desc limit 1`.execute(
      service.db,
    );
    assert.ok(grant.rows[0]!.left > 364 * 86400, 'renewed for CONSENT_TTL_DAYS (365) from the sign-in');
  });

  it('a refresh token never outlives its grant', async () => {
    const t = await login(new Agent());
    const end = await grantsEndIn(120);
    const r = await oidc.refreshTokenGrant(portal, t.refresh_token!);
    // The expiry the provider enforces, as introspection reports it.
    const info = await oidc.tokenIntrospection(portal, r.refresh_token!);
    assert.equal(info.active, true);
    assert.ok(Number(info.exp) <= end, 'the rotated refresh token ends with its grant, not after it');
  });
});

describe('introspection and revocation', () => {
  it('reports active, then revoked tokens inactive', async () => {
    const t = await login(new Agent());
    const active = await oidc.tokenIntrospection(portal, t.access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, clientId);
    await oidc.tokenRevocation(portal, t.access_token);
    assert.equal((await oidc.tokenIntrospection(portal, t.access_token)).active, false);
  });

  it('reports expired tokens inactive', async () => {
    const t = await login(new Agent());
    await sql`update oidc_payloads set expires_at = now() - interval '1 second' where model = 'AccessToken'`.execute(
      service.db,
    );
    assert.equal((await oidc.tokenIntrospection(portal, t.access_token)).active, false);
  });

  it("tell another portal nothing: it cannot introspect or revoke a portal's tokens", async () => {
    // Invariant: a token's contents (pairwise sub, sid, scope) reach only its own portal or the API it is for.
    const t = await login(new Agent());
    const other = await addClient(service.db, { name: 'Cổng khác', redirectUris: [REDIRECT] });
    const otherPortal = await oidc.discovery(new URL(service.url), other.client_id, other.client_secret!, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    for (const token of [t.access_token, t.refresh_token!]) {
      assert.deepEqual(await oidc.tokenIntrospection(otherPortal, token), { active: false });
      await oidc.tokenRevocation(otherPortal, token);
      assert.equal((await oidc.tokenIntrospection(portal, token)).active, true, 'still valid for its own portal');
    }
  });

  it('let the API a token was issued for introspect it, and no other API', async () => {
    const caller = await addClient(service.db, {
      name: 'Cổng đất đai (back-end)',
      redirectUris: [],
      clientCredentials: true,
      scopes: ['openid'],
      resources: [LAND_API],
    });
    const callerConfig = await oidc.discovery(
      new URL(service.url),
      caller.client_id,
      caller.client_secret!,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const t = await oidc.clientCredentialsGrant(callerConfig, { resource: LAND_API, scope: 'land:read' });
    const asApi = async (indicator: string) => {
      const api = await addClient(service.db, {
        name: `API ${indicator}`,
        redirectUris: [],
        resourceServer: indicator,
      });
      return oidc.discovery(new URL(service.url), api.client_id, api.client_secret!, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
    };
    const land = await oidc.tokenIntrospection(await asApi(LAND_API), t.access_token);
    assert.equal(land.active, true);
    assert.equal(land.scope, 'land:read');
    assert.deepEqual(await oidc.tokenIntrospection(await asApi(API), t.access_token), { active: false });
  });

  it('refuses introspection without client authentication', async () => {
    const res = await fetch(`${service.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=abc',
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
  });
});

describe('tokens at rest', () => {
  it('a database copy yields no usable token: no stored row id or payload works as a bearer token', async () => {
    const t = await login(new Agent());
    const me = (token: string) => fetch(`${service.url}/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await me(t.access_token)).status, 200);
    const { rows } = await sql<{ id: string; text: string }>`select id, payload::text as text from oidc_payloads
      where model in ('AccessToken', 'RefreshToken', 'AuthorizationCode', 'Session')`.execute(service.db);
    assert.ok(rows.length >= 3);
    for (const r of rows) {
      assert.ok(!r.id.includes(t.access_token) && !r.text.includes(t.access_token), 'the value is nowhere in clear');
      assert.ok(!r.text.includes(t.refresh_token!));
    }
    for (const r of rows.filter((x) => x.id.startsWith('h.')).slice(0, 5)) assert.equal((await me(r.id)).status, 401);
  });
});

describe('DPoP', () => {
  it('binds the access token to the key; userinfo needs the proof', async () => {
    const dpop = oidc.getDPoPHandle(portal, await oidc.randomDPoPKeyPair('ES256'));
    const t = await login(new Agent(), { dpop });
    assert.equal(t.token_type.toLowerCase(), 'dpop');
    const info = await oidc.fetchUserInfo(portal, t.access_token, oidc.skipSubjectCheck, { DPoP: dpop });
    assert.equal(info.name, 'Nguyễn Văn An');
    const bare = await fetch(`${service.url}/me`, { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(bare.status, 401, 'a stolen DPoP token without its key is useless');
  });
});

describe('client_credentials', () => {
  it('works for a back-end registered for it, and for no one else', async () => {
    const svc = await addClient(service.db, {
      name: 'Dịch vụ liên thông',
      redirectUris: [],
      clientCredentials: true,
      scopes: ['openid'],
    });
    const config = await oidc.discovery(new URL(service.url), svc.client_id, svc.client_secret!, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const t = await oidc.clientCredentialsGrant(config);
    assert.ok(t.access_token);
    await assert.rejects(oidc.clientCredentialsGrant(portal), (e: { error?: string }) => e.error === 'invalid_request');
  });
});

describe('resource indicators (RFC 8707)', () => {
  it('issues a JWT access token for a registered API, audience the API, scopes of the API only', async () => {
    const svc = await addClient(service.db, {
      name: 'Cổng thuế (back-end)',
      redirectUris: [],
      clientCredentials: true,
      scopes: ['openid'],
      resources: [API],
    });
    const config = await oidc.discovery(new URL(service.url), svc.client_id, svc.client_secret!, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const t = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'tax:read' });
    const { payload } = await jwtVerify(t.access_token, createRemoteJWKSet(new URL(`${service.url}/jwks`)), {
      issuer: service.url,
      audience: API,
    });
    assert.equal(payload.scope, 'tax:read');
    assert.equal(payload.client_id, svc.client_id);
    await assert.rejects(
      oidc.clientCredentialsGrant(config, { resource: 'https://api.other.example.vn' }),
      (e: { error?: string }) => e.error === 'invalid_target',
    );
  });

  it('refuses the API to a client not registered for it', async () => {
    const other = await addClient(service.db, {
      name: 'Khác',
      redirectUris: [],
      clientCredentials: true,
      scopes: ['openid'],
    });
    const config = await oidc.discovery(new URL(service.url), other.client_id, other.client_secret!, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    await assert.rejects(
      oidc.clientCredentialsGrant(config, { resource: API }),
      (e: { error?: string }) => e.error === 'invalid_target',
    );
  });
});

describe('logout', () => {
  it('refuses an unregistered post_logout_redirect_uri', async () => {
    const t = await login(new Agent());
    const url = oidc.buildEndSessionUrl(portal, {
      id_token_hint: t.id_token!,
      post_logout_redirect_uri: 'https://evil.example/',
    });
    const res = await new Agent().request(url, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /invalid_request/);
  });

  it('retries back-channel delivery while the portal is down and delivers when it is back, without delaying logout', async () => {
    const agent = new Agent();
    const t = await login(agent);
    backchannelStatus = 503;
    received.length = 0;
    const url = oidc.buildEndSessionUrl(portal, {
      id_token_hint: t.id_token!,
      post_logout_redirect_uri: 'http://localhost:4601/',
      state: 'xyz',
    });
    const count = await sql<{ n: string }>`select count(*) as n from oidc_payloads where model = 'Session'`.execute(
      service.db,
    );
    const sessionsBefore = Number(count.rows[0]?.n);
    const confirm = await agent.get(url);
    const html = await confirm.text();
    assert.match(html, /Đăng xuất/);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const action = /action="([^"]+)"/.exec(html)![1]!;
    // The portal hangs: logout must still answer (it never waits for a portal).
    let open = () => {};
    gate = new Promise<void>((r) => {
      open = r;
    });
    const done = await agent.request(new URL(action, service.url), {
      method: 'POST',
      body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(done.status, 303, 'logout answered while the portal has not answered');
    gate = null;
    open();
    let final = new URL(location(done, service.url));
    if (final.origin === service.url) final = new URL(location(await agent.get(final), service.url));
    assert.equal(final.origin + final.pathname, 'http://localhost:4601/');
    assert.equal(final.searchParams.get('state'), 'xyz');
    assert.ok(await waitFor(async () => received.length >= 2), 'retried while down');
    backchannelStatus = 200;
    assert.ok(
      await waitFor(async () => received.some((r) => r.startsWith('200 logout_token='))),
      'delivered once back',
    );
    const outcomes = async () =>
      (
        await sql<{ outcome: string; reason: string | null }>`
          select outcome, reason from audit_events where action = 'backchannel_logout' order by seq`.execute(service.db)
      ).rows;
    assert.ok(await waitFor(async () => (await outcomes()).at(-1)?.outcome === 'success'));
    const rows = await outcomes();
    assert.ok(rows.some((r) => r.outcome === 'failure' && r.reason?.startsWith('retrying: HTTP 503')));
    assert.equal(rows.at(-1)?.outcome, 'success');
    const sessions = await sql<{ n: string }>`select count(*) as n from oidc_payloads where model = 'Session'`.execute(
      service.db,
    );
    assert.equal(Number(sessions.rows[0]?.n), sessionsBefore - 1, 'this SSO session ended');
  });

  it('ending a session from the account page tells the portals too', async () => {
    backchannelStatus = 200;
    received.length = 0;
    const agent = new Agent();
    await login(agent);
    const html = await accountPage(agent);
    assert.match(html, /Phiên đăng nhập đang hoạt động/);
    const uid = /name="session" value="([^"]+)"/.exec(html)![1]!;
    const ended = await agent.post(`${service.url}/account/sessions/end`, { csrf: csrfOf(html), session: uid });
    assert.equal(ended.status, 200);
    assert.ok(await waitFor(async () => received.some((r) => r.startsWith('200 logout_token='))));
  });
});

describe('a password change', () => {
  const change = async (agent: Agent, current: string, next: string, extra: Record<string, string> = {}) => {
    const html = await accountPage(agent);
    return agent.post(`${service.url}/account/password`, { csrf: csrfOf(html), current, next, ...extra });
  };

  it('ends every other session and revokes their refresh tokens, with back-channel logout; this device stays', async () => {
    // Invariant: whoever holds another session or a refresh token (a stolen phone, a forgotten kiosk) loses it
    // when the citizen changes the password.
    backchannelStatus = 200;
    received.length = 0;
    const elsewhere = new Agent();
    const stolen = await login(elsewhere);
    const me = new Agent();
    const mine = await login(me);
    const NEW = 'sông Hồng mùa thu 2026';
    const res = await change(me, DEMO_PASSWORD, NEW);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Mọi phiên đăng nhập khác của bạn đã kết thúc/);
    await assert.rejects(
      oidc.refreshTokenGrant(portal, stolen.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
      "the other device's refresh token is revoked",
    );
    // The other device's session is gone: a silent authorization there needs a login again.
    const silent = oidc.buildAuthorizationUrl(portal, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      prompt: 'none',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    let url = silent.toString();
    for (let i = 0; i < 5 && !url.startsWith(REDIRECT); i++) url = location(await elsewhere.get(url), url);
    assert.equal(new URL(url).searchParams.get('error'), 'login_required');
    assert.ok(await waitFor(async () => received.some((r) => r.startsWith('200 logout_token='))), 'portal told');
    // This device: still signed in, its refresh token still works.
    assert.match(await accountPage(me), /Đổi mật khẩu/);
    assert.ok((await oidc.refreshTokenGrant(portal, mine.refresh_token!)).access_token);
    const event = await sql<{ details: { sessionsEnded: number } }>`select details from audit_events
      where action = 'password.changed' and outcome = 'success' order by seq desc limit 1`.execute(service.db);
    assert.ok(event.rows[0]!.details.sessionsEnded >= 1);
    // Back to the demo password, signing out here too (the choice offered on the form).
    const back = await change(me, NEW, DEMO_PASSWORD, { end_all: 'yes' });
    assert.match(await back.text(), /kể cả trên thiết bị này/);
    assert.equal((await me.get(`${service.url}/account`)).status, 302, 'signed out on this device too');
  });
});
