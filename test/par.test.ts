/**
 * Pushed authorization requests (RFC 9126), as a confidential portal uses them with openid-client. Invariants: the
 * parameters travel over the authenticated back channel and the browser carries only `client_id` and an opaque
 * `request_uri`; a request_uri is good for one authorization, then refused; an unknown one, or one pushed by another
 * portal, is refused; nothing added to the front-channel URL overrides what was pushed; the request_uri is stored only
 * under a keyed hash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { Agent, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

const REDIRECT = 'http://localhost:4801/cb';
const OTHER_REDIRECT = 'http://localhost:4802/cb';
const URN = 'urn:ietf:params:oauth:request_uri:';
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let other: oidc.Configuration;

/** A confidential portal (client_secret_basic, as registered by default) with its own redirect URI. */
async function confidentialPortal(name: string, redirect: string): Promise<oidc.Configuration> {
  const c = await addClient(service.db, { name, redirectUris: [redirect] });
  return oidc.discovery(new URL(service.url), c.client_id, undefined, oidc.ClientSecretBasic(c.client_secret!), {
    execute: [oidc.allowInsecureRequests],
  });
}

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  portal = await confidentialPortal('Cổng PAR', REDIRECT);
  other = await confidentialPortal('Cổng khác', OTHER_REDIRECT);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** Pushes an authorization request; returns the front-channel URL and the portal's checks. */
async function push(p: oidc.Configuration, redirect: string, params: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = await oidc.buildAuthorizationUrlWithPAR(p, {
    redirect_uri: redirect,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state };
}

/** The browser: follows redirects, logs in and consents, until the provider sends it to `redirect`. */
async function browse(agent: Agent, start: URL | string, redirect: string): Promise<URL> {
  return new URL(await loginThrough(agent, start.toString(), DEMO_PIN, DEMO_PASSWORD, redirect));
}

describe('pushed authorization requests', () => {
  it('a confidential portal pushes, the browser carries only client_id and request_uri, and the code is redeemed', async () => {
    const { url, verifier, state } = await push(portal, REDIRECT);
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    const requestUri = url.searchParams.get('request_uri')!;
    assert.ok(requestUri.startsWith(URN), requestUri);
    const callback = await browse(new Agent(), url, REDIRECT);
    assert.equal(callback.searchParams.get('state'), state, 'the pushed state came back');
    const tokens = await oidc.authorizationCodeGrant(portal, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.ok(tokens.access_token);
    assert.equal(tokens.claims()?.aud, portal.clientMetadata().client_id);
    // Side effect: the request is stored under a keyed hash of the request_uri, never the value itself, and consumed.
    const { rows } = await sql<{ id: string; text: string; consumed: boolean }>`select id, payload::text as text,
      consumed_at is not null as consumed from oidc_payloads where model = 'PushedAuthorizationRequest'`.execute(
      service.db,
    );
    const handle = requestUri.slice(URN.length);
    assert.equal(rows.length, 1);
    assert.ok(!rows[0]!.id.includes(handle) && !rows[0]!.text.includes(handle), 'the request_uri is nowhere in clear');
    assert.equal(rows[0]!.consumed, true, 'used once: consumed');
  });

  it('a request_uri works once: the same URL again is refused with invalid_request_uri and no code', async () => {
    const { url } = await push(portal, REDIRECT);
    const agent = new Agent();
    const first = await browse(agent, url, REDIRECT);
    assert.ok(first.searchParams.get('code'), 'the first use gives a code');
    // Again, in the same browser (signed in: it would get a code at once) and in another one.
    for (const browser of [agent, new Agent()]) {
      const again = await browser.get(url);
      assert.equal(again.status, 303);
      const back = new URL(location(again, url.toString()));
      assert.equal(back.origin + back.pathname, REDIRECT);
      assert.equal(back.searchParams.get('error'), 'invalid_request_uri');
      assert.equal(back.searchParams.get('code'), null);
    }
  });

  it('refuses an unknown request_uri', async () => {
    const url = new URL(`${service.url}/auth`);
    url.search = new URLSearchParams({
      client_id: portal.clientMetadata().client_id,
      request_uri: `${URN}never-pushed-${oidc.randomState()}`,
    }).toString();
    const res = await new Agent().get(url);
    assert.equal(res.status, 303);
    const back = new URL(location(res, url.toString()));
    assert.equal(back.origin + back.pathname, REDIRECT);
    assert.equal(back.searchParams.get('error'), 'invalid_request_uri');
    assert.equal(back.searchParams.get('code'), null);
  });

  it("refuses a request_uri pushed by another portal: one portal cannot start another's request", async () => {
    const { url } = await push(portal, REDIRECT);
    const stolen = new URL(url);
    stolen.searchParams.set('client_id', other.clientMetadata().client_id);
    const res = await new Agent().request(stolen, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 303);
    const back = new URL(location(res, stolen.toString()));
    assert.equal(back.origin + back.pathname, OTHER_REDIRECT, "only the other portal's own redirect URI");
    assert.equal(back.searchParams.get('code'), null);
    assert.equal(back.searchParams.get('error'), 'invalid_request_object');
    // The pushed request itself is untouched: its own portal can still use it.
    assert.ok((await browse(new Agent(), url, REDIRECT)).searchParams.get('code'));
  });

  it('parameters added to the front-channel URL do not override the pushed ones', async () => {
    const { url, verifier, state } = await push(portal, REDIRECT, { scope: 'openid' });
    const tampered = new URL(url);
    tampered.searchParams.set('redirect_uri', 'https://evil.example/cb');
    tampered.searchParams.set('scope', 'openid profile address');
    tampered.searchParams.set('state', 'forged');
    const callback = await browse(new Agent(), tampered, REDIRECT);
    assert.equal(callback.searchParams.get('state'), state, 'the pushed state, not the forged one');
    const tokens = await oidc.authorizationCodeGrant(portal, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.equal(tokens.scope, 'openid', 'the pushed scope, not the added one');
  });

  it('refuses a push without valid client authentication', async () => {
    const res = await fetch(`${service.url}/request`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${portal.clientMetadata().client_id}:wrong-secret`).toString('base64')}`,
      },
      body: new URLSearchParams({
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: 'x'.repeat(43),
        code_challenge_method: 'S256',
      }).toString(),
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_client');
  });
});
