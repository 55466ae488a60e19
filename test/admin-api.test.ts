/**
 * The admin REST API, through real HTTP with tokens from the provider itself (client_credentials for the admin API's
 * resource). Invariants: no token or a token for anything else is 401; a caller without the scope (or role) gets 403
 * and the attempt is audited; each act is audited with its caller, in its transaction; errors are problem+json with
 * the field named; lists page by cursor; the OpenAPI document is valid and lists exactly the routes served; a sandbox
 * portal signs in test citizens and refuses real residents.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { OPERATIONS } from '../src/admin/api.ts';
import { denialToAudit } from '../src/admin/denials.ts';
import { addClient } from '../src/clients/index.ts';
import { type Config, loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import { authorize, grantRole, type Principal, revokeRole } from '../src/staff/index.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { consentThrough, DEMO_PIN, follow, loginThrough, submitLogin } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { testEnv } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;
let config: Config;
let api: string;
/** Tokens by scope set. */
const tokens: Record<string, string> = {};

/** A back-end service registered for `scopes` of the admin API, and a token for them. */
async function machineToken(
  scopes: string[],
  name = 'Tích hợp quản trị',
): Promise<{ clientId: string; token: string }> {
  const c = await addClient(service.db, {
    name,
    redirectUris: [],
    clientCredentials: true,
    scopes: ['openid'],
    adminScopes: scopes,
  });
  const config = await oidc.discovery(new URL(service.url), c.client_id, c.client_secret!, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const t = await oidc.clientCredentialsGrant(config, {
    resource: `${service.url}/admin/api`,
    scope: scopes.join(' '),
  });
  return { clientId: c.client_id, token: t.access_token };
}

/** A request to the API with a token; returns status, content type and the parsed body. */
async function call(token: string | undefined, method: string, path: string, body?: unknown) {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  return {
    status: res.status,
    type,
    headers: res.headers,
    text,
    body: /^application\/(problem\+)?json/.test(type) && text ? (JSON.parse(text) as Record<string, any>) : undefined,
  };
}

/** Audit rows of an action, newest first. */
async function events(action: string) {
  return (
    await sql<{
      actor_type: string;
      actor_id: string;
      outcome: string;
      subject: string | null;
      client_id: string | null;
      reason: string | null;
      ip: string | null;
      details: Record<string, unknown>;
    }>`select actor_type, actor_id, outcome, subject, client_id, reason, ip, details from audit_events
       where action = ${action} order by seq desc`.execute(service.db)
  ).rows;
}

let all: { clientId: string; token: string };

before(async () => {
  database = await freshDatabase();
  config = loadConfig(testEnv(database.url));
  service = await startService(config);
  api = `${service.url}/admin/api/v1`;
  all = await machineToken(['admin:clients', 'admin:accounts', 'admin:keys', 'admin:audit', 'admin:staff']);
  tokens.all = all.token;
  tokens.audit = (await machineToken(['admin:audit'], 'Kiểm toán')).token;
});

after(async () => {
  await service?.close();
  await database?.drop();
});

describe('admin API: authentication and authorization', () => {
  it('answers 401 problem+json without a token, with a bad one, and with a token for another resource', async () => {
    const none = await call(undefined, 'GET', '/clients');
    assert.equal(none.status, 401);
    assert.match(none.type, /^application\/problem\+json/);
    assert.equal(none.body?.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal((await call('x'.repeat(43), 'GET', '/clients')).status, 401);
    // A back-end service's ordinary token (no resource): not for the admin API.
    const plain = await addClient(service.db, {
      name: 'Dịch vụ thường',
      redirectUris: [],
      clientCredentials: true,
      scopes: ['openid'],
    });
    const config = await oidc.discovery(new URL(service.url), plain.client_id, plain.client_secret!, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const t = await oidc.clientCredentialsGrant(config);
    assert.equal((await call(t.access_token, 'GET', '/clients')).status, 401);
    // ...and it cannot get one for the admin API either.
    await assert.rejects(
      oidc.clientCredentialsGrant(config, { resource: `${service.url}/admin/api` }),
      (e: { error?: string }) => e.error === 'invalid_target',
    );
  });

  it('refuses an operation outside the caller scopes with 403, and audits the attempt', async () => {
    const r = await call(tokens.audit, 'GET', '/clients');
    assert.equal(r.status, 403);
    assert.match(r.body?.detail, /clients\.read/);
    const [denied] = await events('admin.denied');
    assert.equal(denied?.outcome, 'failure');
    assert.equal(denied?.actor_type, 'client');
    assert.deepEqual(denied?.details, { capability: 'clients.read', operation: 'listClients', via: 'api' });
    assert.ok(denied?.ip);
    assert.equal((await call(tokens.audit, 'GET', '/audit/events?limit=1')).status, 200);
    // Approval to production is a person's decision: no scope allows it.
    assert.equal((await call(tokens.all, 'POST', '/clients/demo-portal/approval', { reason: 'tested' })).status, 403);
  });

  it('each role reaches its own operations only; officers in their provinces, agency admins their agency', () => {
    const staff = (grants: Extract<Principal, { kind: 'staff' }>['grants']): Principal => ({
      kind: 'staff',
      accountId: 'a',
      grants,
      via: 'api',
    });
    const officer = staff([{ role: 'officer', provinces: ['001'], agency: null }]);
    assert.equal(authorize(officer, 'accounts.act', { pin: '001090012345', staff: false })?.role, 'officer');
    assert.equal(authorize(officer, 'accounts.act', { pin: '079195004321', staff: false }), undefined);
    assert.equal(authorize(officer, 'accounts.act', { pin: '001090012345', staff: true }), undefined, 'no staff');
    assert.equal(authorize(officer, 'accounts.act', { pin: '001090012345' }), undefined, 'fails closed');
    assert.equal(authorize(officer, 'keys.write'), undefined);
    const agency = staff([{ role: 'agency_admin', provinces: null, agency: 'bo-tai-chinh' }]);
    assert.ok(authorize(agency, 'clients.write', { agency: 'bo-tai-chinh' }));
    assert.equal(authorize(agency, 'clients.write', { agency: 'bo-y-te' }), undefined);
    assert.equal(authorize(agency, 'clients.write', { agency: null }), undefined);
    assert.equal(authorize(agency, 'clients.approve'), undefined);
    const security = staff([{ role: 'security', provinces: null, agency: null }]);
    assert.ok(authorize(security, 'clients.approve'));
    assert.ok(authorize(security, 'keys.write'));
    assert.equal(authorize(security, 'accounts.act', { pin: DEMO_PIN, staff: false }), undefined);
    const auditor = staff([{ role: 'auditor', provinces: null, agency: null }]);
    assert.ok(authorize(auditor, 'audit.read'));
    assert.equal(authorize(auditor, 'keys.write'), undefined);
    assert.equal(authorize(auditor, 'staff.write'), undefined);
    const admin = staff([{ role: 'admin', provinces: null, agency: null }]);
    assert.ok(authorize(admin, 'staff.write'));
    assert.equal(authorize(admin, 'accounts.read', { pin: DEMO_PIN, staff: false }), undefined);
    assert.ok(authorize(admin, 'accounts.act', { pin: DEMO_PIN, staff: true }), 'admins act on staff accounts');
    assert.equal(authorize(staff([]), 'audit.read'), undefined);
  });
});

describe('admin API: the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document and lists exactly the routes served', async () => {
    const res = await fetch(`${service.url}/admin/api/openapi.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(doc.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    assert.deepEqual(documented.sort(), OPERATIONS.map((o) => `${o.method} ${o.path}`).sort());
    // Every documented route is served (401 without a token, never 404 or 405).
    for (const entry of documented) {
      const [method, p] = entry.split(' ') as [string, string];
      const path = p
        .replace('{client_id}', 'demo-portal')
        .replace(/\{[a-z_]+\}/g, '00000000-0000-4000-8000-000000000000');
      const r = await call(undefined, method.toUpperCase(), path);
      assert.equal(r.status, 401, `${entry} is served`);
    }
    assert.equal((await call(tokens.all, 'GET', '/nothing-here')).status, 404);
  });
});

describe('admin API: clients', () => {
  it('registers, reads, lists by cursor, changes, rotates, disables and enables a portal, each audited', async () => {
    const created = await call(tokens.all, 'POST', '/clients', {
      client_name: 'Cổng Bộ Tài chính',
      redirect_uris: ['http://localhost:4701/cb'],
      agency: 'bo-tai-chinh',
    });
    assert.equal(created.status, 201, created.text);
    const id = created.body!.client_id as string;
    assert.ok(created.body!.client_secret, 'the secret is shown once');
    assert.equal(created.body!.environment, 'sandbox', 'a machine caller registers in the sandbox');
    const [registered] = await events('client.registered');
    assert.deepEqual(
      [registered?.actor_type, registered?.actor_id, registered?.client_id],
      ['client', all.clientId, id],
    );
    assert.equal(registered?.details.role, 'admin:clients');

    const read = await call(tokens.all, 'GET', `/clients/${id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body!.client_secret, undefined);
    assert.equal(read.body!.agency, 'bo-tai-chinh');

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await call(tokens.all, 'GET', `/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200);
      assert.ok(page.body!.items.length <= 2);
      seen.push(...page.body!.items.map((c: { client_id: string }) => c.client_id));
      cursor = page.body!.next_cursor;
    } while (cursor);
    assert.ok(seen.includes(id) && seen.includes('demo-portal'));
    assert.equal(new Set(seen).size, seen.length, 'no portal twice');

    const changed = await call(tokens.all, 'PATCH', `/clients/${id}`, { redirect_uris: ['http://localhost:4701/cb2'] });
    assert.equal(changed.status, 200, changed.text);
    assert.deepEqual(changed.body!.redirect_uris, ['http://localhost:4701/cb2']);
    const rotated = await call(tokens.all, 'POST', `/clients/${id}/secret`, { grace_seconds: 0 });
    assert.equal(rotated.status, 200, rotated.text);
    assert.ok(rotated.body!.client_secret);

    const disabled = await call(tokens.all, 'POST', `/clients/${id}/disable`);
    assert.equal(disabled.body!.disabled, true);
    // The provider forgets it at once: its secret no longer works.
    const res = await fetch(`${service.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${id}:${rotated.body!.client_secret}`).toString('base64')}`,
      },
      body: 'grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2Flocalhost%3A4701%2Fcb2&code_verifier=x',
    });
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_client');
    assert.equal((await call(tokens.all, 'POST', `/clients/${id}/disable`)).status, 409);
    assert.equal((await call(tokens.all, 'POST', `/clients/${id}/enable`)).body!.disabled, undefined);
    assert.equal((await events('client.disabled'))[0]?.client_id, id);
    const usage = await call(tokens.all, 'GET', '/clients/demo-portal/usage');
    assert.equal(usage.status, 200, usage.text);
    assert.equal(usage.body!.days.length, 14);
    assert.equal((await call(tokens.all, 'GET', '/clients/no-such-portal/usage')).status, 404);
  });

  it('answers bad input with a 400 naming the field, unknown portals with 404, nothing written', async () => {
    const before = (await events('client.registered')).length;
    const bad = await call(tokens.all, 'POST', '/clients', { client_name: 'X', redirect_uris: 'not-a-list' });
    assert.equal(bad.status, 400);
    assert.match(bad.type, /problem\+json/);
    assert.match(bad.body!.detail, /^body\.redirect_uris: /);
    const unknownField = await call(tokens.all, 'POST', '/clients', { client_name: 'X', nope: 1 });
    assert.equal(unknownField.status, 400);
    const notJson = await call(tokens.all, 'POST', '/clients', '{"client_name":');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body!.detail, 'the body is not valid JSON');
    const http = await call(tokens.all, 'POST', '/clients', {
      client_name: 'X',
      redirect_uris: ['http://portal.example.vn/cb'],
    });
    assert.equal(http.status, 400);
    assert.match(http.body!.detail, /https/);
    assert.equal((await call(tokens.all, 'GET', '/clients/no-such-portal')).status, 404);
    assert.equal((await call(tokens.all, 'GET', '/clients/bad%00id')).status, 400);
    assert.equal((await events('client.registered')).length, before);
  });
});

describe('admin API: accounts', () => {
  it('finds an account by personal ID in the body and acts on it, each act audited with the caller', async () => {
    const found = await call(tokens.all, 'POST', '/accounts/search', { personal_id: DEMO_PIN });
    assert.equal(found.status, 200, found.text);
    const id = found.body!.accountId as string;
    assert.equal(found.body!.fullName, 'Nguyễn Văn An');
    assert.equal((await events('account.viewed'))[0]?.subject, id);

    const code = await call(tokens.all, 'POST', `/accounts/${id}/in-person-verification`);
    assert.match(code.body!.activation_code, /^\S{6,}$/);
    const suspended = await call(tokens.all, 'POST', `/accounts/${id}/suspend`);
    assert.equal(suspended.body!.status, 'suspended');
    assert.equal(
      (await call(tokens.all, 'POST', '/accounts/search', { personal_id: DEMO_PIN })).body!.status,
      'suspended',
    );
    assert.equal((await call(tokens.all, 'POST', `/accounts/${id}/reactivate`)).body!.status, 'active');
    assert.equal((await call(tokens.all, 'POST', `/accounts/${id}/unlock`)).body!.unlocked, true);
    const reset = await call(tokens.all, 'POST', `/accounts/${id}/password-reset-code`);
    assert.ok(reset.body!.reset_code);
    for (const action of ['account.suspend', 'account.reactivate', 'account.verified_in_person']) {
      const [e] = await events(action);
      assert.deepEqual([e?.actor_type, e?.actor_id, e?.subject], ['client', all.clientId, id], action);
    }
    const none = await call(tokens.all, 'POST', '/accounts/search', { personal_id: '001099999999' });
    assert.equal(none.status, 404);
    const malformed = await call(tokens.all, 'POST', '/accounts/search', { personal_id: '12345' });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body!.detail, /^body\.personal_id: must be 12 digits/);
    assert.equal((await call(tokens.all, 'POST', '/accounts/not-a-uuid/suspend')).status, 400);
  });
});

describe('admin API: keys, audit, registry, staff', () => {
  it('lists and stages keys; an activation before the lead time is a 409 problem', async () => {
    const list = await call(tokens.all, 'GET', '/keys');
    assert.ok(list.body!.items.some((k: { state: string }) => k.state === 'active'));
    const staged = await call(tokens.all, 'POST', '/keys', { alg: 'ES256' });
    assert.equal(staged.status, 201, staged.text);
    assert.equal(staged.body!.state, 'staged');
    const early = await call(tokens.all, 'POST', `/keys/${staged.body!.kid}/activate`);
    assert.equal(early.status, 409);
    assert.match(early.body!.detail, /lead/);
    assert.equal((await events('key.generated'))[0]?.actor_id, all.clientId);
    assert.equal((await call(tokens.all, 'POST', '/keys', { alg: 'HS256' })).status, 400);
  });

  it('searches the trail newest first by cursor, exports NDJSON, verifies the chain and says when', async () => {
    const first = await call(tokens.audit, 'GET', `/audit/events?actor=${all.clientId}&limit=1`);
    assert.equal(first.status, 200);
    assert.equal(first.body!.items.length, 1);
    const second = await call(
      tokens.audit,
      'GET',
      `/audit/events?actor=${all.clientId}&limit=1&cursor=${first.body!.next_cursor}`,
    );
    assert.ok(second.body!.items[0].seq < first.body!.items[0].seq);
    const bySubject = await call(tokens.audit, 'GET', `/audit/events?actor=${all.clientId}&limit=200`);
    assert.ok(bySubject.body!.items.every((e: { actor_id: string }) => e.actor_id === all.clientId));
    assert.equal((await call(tokens.audit, 'GET', '/audit/events?since=yesterday')).status, 400);

    const exported = await call(tokens.audit, 'GET', '/audit/export?actor_type=client');
    assert.equal(exported.status, 200);
    assert.match(exported.type, /application\/x-ndjson/);
    const lines = exported.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { actorType: string });
    assert.ok(lines.length > 3, exported.text.slice(0, 300));
    assert.ok(
      lines.every((l) => l.actorType === 'client'),
      exported.text.slice(0, 600),
    );

    const verified = await call(tokens.audit, 'POST', '/audit/verification');
    assert.equal(verified.body!.ok, true, verified.text);
    const last = await call(tokens.audit, 'GET', '/audit/verification');
    assert.ok(Date.now() - Date.parse(last.body!.last_verified_at) < 60_000);
    const runs = await call(tokens.audit, 'GET', '/registry/imports');
    assert.deepEqual(runs.body, { items: [], next_cursor: null });
  });

  it('grants, lists and revokes staff roles; never the last admin', async () => {
    const granted = await call(tokens.all, 'POST', '/staff', {
      personal_id: DEMO_PIN,
      role: 'officer',
      provinces: ['001'],
    });
    assert.equal(granted.status, 201, granted.text);
    const admin = await call(tokens.all, 'POST', '/staff', { personal_id: DEMO_PIN, role: 'admin' });
    assert.equal(admin.status, 201);
    const list = await call(tokens.all, 'GET', '/staff');
    assert.deepEqual(
      list.body!.items.map((s: { role: string; provinces: string[] | null }) => [s.role, s.provinces]),
      [
        ['admin', null],
        ['officer', ['001']],
      ],
    );
    const id = granted.body!.account_id as string;
    const last = await call(tokens.all, 'DELETE', `/staff/${id}/roles/admin`);
    assert.equal(last.status, 409);
    assert.equal((await call(tokens.all, 'DELETE', `/staff/${id}/roles/officer`)).status, 200);
    assert.equal((await call(tokens.all, 'DELETE', `/staff/${id}/roles/officer`)).status, 404);
    assert.equal(
      (await call(tokens.all, 'POST', '/staff', { personal_id: DEMO_PIN, role: 'officer', provinces: ['999'] })).status,
      400,
    );
    assert.equal(
      (await call(tokens.all, 'POST', '/staff', { personal_id: DEMO_PIN, role: 'agency_admin' })).status,
      400,
    );
    const [e] = await events('staff.revoked');
    assert.deepEqual([e?.actor_id, e?.subject, e?.details.revoked], [all.clientId, id, 'officer']);
  });
});

describe('sandbox portals', () => {
  it('sign in test citizens and refuse real residents; production portals refuse test citizens', async () => {
    const created = await call(tokens.all, 'POST', '/clients', {
      client_name: 'Cổng thử nghiệm',
      redirect_uris: ['http://localhost:4702/cb'],
      token_endpoint_auth_method: 'none',
      environment: 'sandbox',
      agency: 'bo-tai-chinh',
    });
    assert.equal(created.status, 201, created.text);
    const citizens = await call(tokens.all, 'GET', '/sandbox/test-citizens');
    const [level1, level2] = citizens.body!.items as {
      personal_id: string;
      password: string;
      level: number;
      totp_secret: string | null;
    }[];
    assert.deepEqual([level1?.level, level2?.level, !!level2?.totp_secret], [1, 2, true]);

    const portal = await oidc.discovery(
      new URL(service.url),
      created.body!.client_id,
      { token_endpoint_auth_method: 'none' },
      oidc.None(),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const start = async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(portal, {
        redirect_uri: 'http://localhost:4702/cb',
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: oidc.randomState(),
      });
      return url.href;
    };
    // The test citizen: code, then tokens.
    const test = new Agent();
    const back = await loginThrough(
      test,
      await start(),
      level1!.personal_id,
      level1!.password,
      'http://localhost:4702/cb',
    );
    assert.ok(new URL(back).searchParams.get('code'), back);

    // A real resident: refused with access_denied after the login, no code.
    const real = new Agent();
    const page = await follow(real, await start(), 'http://localhost:4702/cb');
    const login = await submitLogin(real, page.url, DEMO_PIN, 'demo-password-2026', await page.res.text());
    const refused = await follow(
      real,
      new URL(login.headers.get('location')!, page.url).href,
      'http://localhost:4702/cb',
    );
    const params = new URL(refused.url).searchParams;
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('code'), null);

    // The test citizen at a production portal (the demo portal): refused too.
    const demo = await oidc.discovery(
      new URL(service.url),
      'demo-portal',
      { token_endpoint_auth_method: 'none' },
      oidc.None(),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(demo, {
      redirect_uri: 'http://localhost:3001/callback',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
    });
    const again = await follow(test, url.href, 'http://localhost:3001/callback');
    assert.equal(new URL(again.url).searchParams.get('error'), 'access_denied');
  });
});

/**
 * A staff member's token: a level-2 sign-in through the staff tool's client (code + PKCE, loopback redirect,
 * resource = the admin API), the way a staff tool gets one.
 */
async function staffToken(pin: string, password: string, nextCode: () => Promise<string>): Promise<string> {
  const agent = new Agent();
  const verifier = oidc.randomPKCECodeVerifier();
  // A staff tool listens on a loopback port of its own choosing (RFC 8252): any port is accepted.
  const callback = 'http://127.0.0.1:49321/callback';
  const auth = new URL(`${service.url}/auth`);
  auth.search = new URLSearchParams({
    client_id: 'dinhdanh-staff-tool',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: callback,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: oidc.randomState(),
    resource: `${service.url}/admin/api`,
    acr_values: config.acr.level2,
  }).toString();
  const page = await follow(agent, auth.href, callback);
  const login = await submitLogin(agent, page.url, pin, password, await page.res.text());
  // The second-factor form comes as the answer to the password (or after a redirect).
  const otp =
    login.status === 200 ? { url: page.url, res: login } : await follow(agent, location(login, page.url), callback);
  const html = await otp.res.text();
  const sent = await agent.post(new URL(actionOf(html, 'otp'), otp.url), {
    csrf: csrfOf(html),
    code: await nextCode(),
  });
  // A native client is always asked for consent (RFC 8252 8.6: another program could claim its client id).
  const back = await consentThrough(agent, location(sent, otp.url), callback);
  const code = new URL(back).searchParams.get('code');
  assert.ok(code, back);
  const res = await fetch(`${service.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: callback,
      code_verifier: verifier,
      client_id: 'dinhdanh-staff-tool',
      resource: `${service.url}/admin/api`,
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.ok(body.access_token, JSON.stringify(body));
  return body.access_token;
}

describe('admin API: staff tokens, per role', () => {
  it('acts with the roles the account holds now; 403 (audited) outside them; refused once signed out', async () => {
    const pin = '079195004321';
    const hasher = await argon2idHasher({ memoryKib: 1024, timeCost: 1, parallelism: 1 } as never);
    const accountId = await createAccount(service.db, hasher, { pin, password: 'staff-password-2026' });
    const { nextCode } = await makeLevel2(service.db, loadMasterKey(config), pin, accountId);
    const token = await staffToken(pin, 'staff-password-2026', nextCode);
    const denials = async () => (await events('admin.denied')).filter((e) => e.actor_id === accountId);

    // No role: nothing, and no way to tell what exists (403 before any look-up).
    assert.equal((await call(token, 'GET', '/keys')).status, 403);
    assert.equal((await call(token, 'GET', '/clients/no-such-portal')).status, 403);
    assert.equal((await denials()).length, 2);

    // An officer of Hồ Chí Minh (079): citizens of 079 only, no keys.
    // An officer of Đà Nẵng (048): citizens of 048 only, never a staff account (not even their own), no keys.
    const citizenPin = '048203000777';
    const citizenId = await createAccount(service.db, hasher, { pin: citizenPin, password: 'citizen-password-2026' });
    await grantRole(service.db, { pin, role: 'officer', provinces: ['048', '079'] }, 'test');
    assert.equal((await call(token, 'POST', '/accounts/search', { personal_id: citizenPin })).status, 200);
    const elsewhere = await call(token, 'POST', '/accounts/search', { personal_id: DEMO_PIN });
    assert.equal(elsewhere.status, 403);
    assert.equal((await call(token, 'POST', '/accounts/search', { personal_id: pin })).status, 403, 'a staff account');
    for (const act of ['password-reset-code', 'second-factor-reset', 'suspend'])
      assert.equal((await call(token, 'POST', `/accounts/${accountId}/${act}`)).status, 403, act);
    assert.equal((await call(token, 'POST', `/accounts/${citizenId}/unlock`)).status, 200);
    // A look-up that finds nothing is audited too (no silent probing of which IDs have accounts).
    assert.equal((await call(token, 'POST', '/accounts/search', { personal_id: '048299999999' })).status, 404);
    const [probe] = (await events('account.viewed')).filter((e) => e.outcome === 'failure');
    assert.deepEqual([probe?.actor_id, probe?.reason], [accountId, 'not_found']);
    assert.equal((await call(token, 'GET', '/keys')).status, 403);
    const [viewed] = (await events('account.viewed')).filter((e) => e.outcome === 'success');
    assert.deepEqual(
      [viewed?.actor_type, viewed?.actor_id, viewed?.details.role, viewed?.details.via],
      ['officer', accountId, 'officer', 'api'],
    );
    await revokeRole(service.db, pin, 'officer');

    // Security: keys and approvals, no citizens.
    await grantRole(service.db, { pin, role: 'security' }, 'test');
    assert.equal((await call(token, 'GET', '/keys')).status, 200);
    assert.equal((await call(token, 'POST', '/accounts/search', { personal_id: pin })).status, 403);
    const sandbox = await call(tokens.all, 'POST', '/clients', {
      client_name: 'Cổng chờ duyệt',
      redirect_uris: ['http://localhost:4703/cb'],
      environment: 'sandbox',
    });
    const approved = await call(token, 'POST', `/clients/${sandbox.body!.client_id}/approval`, {
      reason: 'Kiểm thử đạt yêu cầu',
    });
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body!.environment, 'production');
    const [approval] = await events('client.approved');
    assert.deepEqual(
      [approval?.actor_id, approval?.reason, approval?.details.role],
      [accountId, 'Kiểm thử đạt yêu cầu', 'security'],
    );
    await revokeRole(service.db, pin, 'security');

    // An agency admin: registers sandbox portals of its agency only, sees only them, cannot approve.
    await grantRole(service.db, { pin, role: 'agency_admin', agency: 'bo-y-te' }, 'test');
    const straight = await call(token, 'POST', '/clients', {
      client_name: 'Cổng Bộ Y tế',
      redirect_uris: ['http://localhost:4704/cb'],
      environment: 'production',
    });
    assert.equal(straight.status, 403, 'no production without approval');
    const mine = await call(token, 'POST', '/clients', {
      client_name: 'Cổng Bộ Y tế',
      redirect_uris: ['http://localhost:4704/cb'],
    });
    assert.equal(mine.status, 201, mine.text);
    assert.deepEqual([mine.body!.environment, mine.body!.agency], ['sandbox', 'bo-y-te']);
    const listed = await call(token, 'GET', '/clients?limit=200');
    assert.deepEqual(
      listed.body!.items.map((c: { client_id: string }) => c.client_id),
      [mine.body!.client_id],
    );
    assert.equal((await call(token, 'GET', '/clients/demo-portal')).status, 403);
    assert.equal((await call(token, 'PATCH', '/clients/demo-portal', { client_name: 'X' })).status, 403);
    const wider = await call(token, 'POST', '/clients', {
      client_name: 'Cổng rộng',
      redirect_uris: ['http://localhost:4705/cb'],
      scopes: ['national_id'],
    });
    assert.equal(wider.status, 403);
    assert.equal(
      (await call(token, 'POST', `/clients/${mine.body!.client_id}/approval`, { reason: 'tự duyệt' })).status,
      403,
    );
    // Once in production (approved by security), where its codes go and what it receives are security's decision.
    await sql`update clients set metadata = metadata - 'dinhdanh_environment' where client_id = ${mine.body!.client_id}`.execute(
      service.db,
    );
    const moved = await call(token, 'PATCH', `/clients/${mine.body!.client_id}`, {
      redirect_uris: ['https://attacker.example/cb'],
    });
    assert.equal(moved.status, 403, moved.text);
    const narrower = await call(token, 'PATCH', `/clients/${mine.body!.client_id}`, { scopes: ['profile'] });
    assert.equal(narrower.status, 200, "receiving less is the agency's own call");
    const more = await call(token, 'PATCH', `/clients/${mine.body!.client_id}`, { scopes: ['profile', 'address'] });
    assert.equal(more.status, 403);
    assert.equal(
      (await call(token, 'PATCH', `/clients/${mine.body!.client_id}`, { client_name: 'Cổng Bộ Y tế (mới)' })).status,
      200,
    );
    await revokeRole(service.db, pin, 'agency_admin');

    // An auditor reads the trail, changes nothing.
    await grantRole(service.db, { pin, role: 'auditor' }, 'test');
    assert.equal((await call(token, 'GET', '/audit/events?limit=5')).status, 200);
    assert.equal((await call(token, 'POST', '/keys', { alg: 'ES256' })).status, 403);
    assert.equal((await call(token, 'POST', '/staff', { personal_id: pin, role: 'admin' })).status, 403);
    assert.equal((await call(token, 'GET', '/audit/events?cursor=9999999999999999999')).status, 400);
    assert.ok((await denials()).length >= 8, 'every refusal audited');

    // Signed out: the token dies with the session.
    await sql`delete from oidc_payloads where model = 'Session'`.execute(service.db);
    const after = await call(token, 'GET', '/audit/events?limit=5');
    assert.equal(after.status, 401);
    assert.match(after.body!.detail, /session has ended|not valid/);
  });
});

describe('admin API: what a portal writer must not be able to do', () => {
  it('refuses admin scopes, production, national_id and implicit consent to machine callers', async () => {
    const base = { client_name: 'X', redirect_uris: ['http://localhost:4706/cb'] };
    const adminScoped = await call(tokens.all, 'POST', '/clients', {
      client_name: 'evil',
      client_credentials: true,
      admin_scopes: ['admin:staff'],
    });
    assert.equal(adminScoped.status, 403, adminScoped.text);
    for (const extra of [{ environment: 'production' }, { scopes: ['national_id'] }, { consent: 'implicit' }]) {
      const r = await call(tokens.all, 'POST', '/clients', { ...base, ...extra });
      assert.equal(r.status, 403, JSON.stringify(extra));
      assert.match(r.body!.detail, /security staff/);
    }
    const widened = await call(tokens.all, 'PATCH', '/clients/demo-portal', { scopes: ['profile', 'national_id'] });
    assert.equal(widened.status, 403);
  });

  it("refuses every change to dinhdanh's own clients, and their ids to anyone else", async () => {
    const hijack = await call(tokens.all, 'PATCH', '/clients/dinhdanh-staff-tool', {
      redirect_uris: ['https://evil.example/cb'],
    });
    assert.equal(hijack.status, 403, hijack.text);
    assert.equal((await call(tokens.all, 'POST', '/clients/dinhdanh-account/disable')).status, 403);
    assert.equal((await call(tokens.all, 'POST', '/clients/dinhdanh-console/secret', {})).status, 403);
    const squat = await call(tokens.all, 'POST', '/clients', {
      client_name: 'X',
      client_id: 'dinhdanh-admin-tool',
      redirect_uris: ['http://localhost:4707/cb'],
    });
    assert.equal(squat.status, 400);
  });

  it('never gives a staff role to a published test citizen', async () => {
    await call(tokens.all, 'GET', '/sandbox/test-citizens');
    const r = await call(tokens.all, 'POST', '/staff', {
      personal_id: '000194000002',
      role: 'agency_admin',
      agency: 'agency-z',
    });
    assert.equal(r.status, 400);
    assert.match(r.body!.detail, /test citizen/);
  });
});

describe('admin API: refusals cannot flood the audit trail', () => {
  it('audits the first refusal of a caller per capability, then one a minute with the count in between', async () => {
    const before = (await events('admin.denied')).length;
    for (let i = 0; i < 10; i++) assert.equal((await call(tokens.audit, 'GET', '/staff')).status, 403);
    const after = await events('admin.denied');
    assert.ok(after.length - before <= 1, `${after.length - before} events for 10 refusals`);
    const t0 = 1_000_000;
    assert.deepEqual(denialToAudit('k', t0), { audit: true, suppressed: 0 });
    assert.deepEqual(denialToAudit('k', t0 + 1000), { audit: false });
    assert.deepEqual(denialToAudit('k', t0 + 2000), { audit: false });
    assert.deepEqual(denialToAudit('k', t0 + 61_000), { audit: true, suppressed: 2 });
  });
});
