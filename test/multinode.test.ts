/**
 * Scale-out: two dinhdanh processes on one PostgreSQL behave as one provider. A flow started on one node finishes on
 * the other (interaction, session, code and tokens live in the database; cookie and signing keys are shared).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_CLIENT, DEMO_PASSWORD, DEMO_PIN, DEMO_REDIRECT, follow } from './helpers/flow.ts';
import { freePort, type NodeProcess, startNode } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';

let database: TestDatabase;
let a: NodeProcess;
let b: NodeProcess;
let issuer: string;
let nodeB: string;

before(async () => {
  database = await freshDatabase();
  const [pa, pb] = [await freePort(), await freePort()];
  issuer = `http://localhost:${pa}`;
  nodeB = `http://localhost:${pb}`;
  const shared = testEnv(database.url, {
    ISSUER: issuer,
    MASTER_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
  });
  [a, b] = await Promise.all([startNode({ ...shared, PORT: String(pa) }), startNode({ ...shared, PORT: String(pb) })]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await database?.drop();
});

it('a flow started on node A finishes on node B', async () => {
  const onB: oidc.CustomFetch = (url, options) => fetch(url.replace(issuer, nodeB), options as RequestInit);
  const portal = await oidc.discovery(
    new URL(issuer),
    DEMO_CLIENT,
    { token_endpoint_auth_method: 'none' },
    oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
  const portalOnB = await oidc.discovery(
    new URL(issuer),
    DEMO_CLIENT,
    { token_endpoint_auth_method: 'none' },
    oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: onB,
    },
  );
  const agent = new Agent();
  const { url, verifier, state } = await authorizationRequest(portal);
  const start = await follow(agent, url.toString()); // authorize on A
  agent.origin = nodeB; // the load balancer now sends the browser to B
  const page = await (await agent.get(start.url)).text();
  const login = await agent.post(new URL(actionOf(page, 'login'), start.url), {
    csrf: csrfOf(page),
    pin: DEMO_PIN,
    password: DEMO_PASSWORD,
  });
  assert.equal(login.status, 303);
  agent.origin = issuer; // resume on A
  const consentStep = await follow(agent, location(login, start.url));
  agent.origin = nodeB; // consent on B
  const html = await (await agent.get(consentStep.url)).text();
  const consent = await agent.post(new URL(actionOf(html, 'consent'), consentStep.url), { csrf: csrfOf(html) });
  agent.origin = issuer;
  const done = await follow(agent, location(consent, consentStep.url));
  assert.ok(done.url.startsWith(DEMO_REDIRECT));

  const tokens = await oidc.authorizationCodeGrant(portalOnB, new URL(done.url), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  const { payload } = await jwtVerify(tokens.id_token as string, createRemoteJWKSet(new URL(`${nodeB}/jwks`)), {
    issuer,
    audience: DEMO_CLIENT,
  });
  assert.equal(payload.acr, 'urn:dinhdanh:loa:1');
  const info = await oidc.fetchUserInfo(portal, tokens.access_token, String(payload.sub)); // on A
  assert.equal(info.name, 'Nguyễn Văn An');
  const jwksA = await (await fetch(`${issuer}/jwks`)).json();
  const jwksB = await (await fetch(`${nodeB}/jwks`)).json();
  assert.deepEqual(jwksA, jwksB, 'both nodes publish the same key set');
});
