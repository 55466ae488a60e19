/**
 * Back-channel logout to a portal that never accepts it. Invariants: the citizen's logout never waits for the portal;
 * the delivery is retried with backoff for BACKCHANNEL_RETRY_SECONDS and then abandoned, never retried forever; the
 * abandonment is in the audit trail with its reason; the logout token is not kept once abandoned.
 * (Retries that end in a delivery are covered in tokens.test.ts.)
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { addClient } from '../src/clients/index.ts';
import type { Service } from '../src/main.ts';
import { deliverDue } from '../src/oidc/index.ts';
import { Agent, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const RETRY_SECONDS = 5;
const REDIRECT = 'http://localhost:4911/cb';
const AFTER_LOGOUT = 'http://localhost:4911/';
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let clientId: string;
let refusing: Server;
/** When each logout token reached the portal (it answers every one with 500). */
const received: number[] = [];

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, {
    BACKCHANNEL_RETRY_SECONDS: String(RETRY_SECONDS),
    WORKER_INTERVAL_MS: '100',
  });
  refusing = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(Date.now());
      res.statusCode = 500;
      res.end('down');
    });
  });
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  const c = await addClient(service.db, {
    name: 'Cổng không nhận',
    redirectUris: [REDIRECT],
    postLogoutRedirectUris: [AFTER_LOGOUT],
    backchannelLogoutUri: `http://localhost:${(refusing.address() as AddressInfo).port}/bcl`,
  });
  clientId = c.client_id;
  portal = await oidc.discovery(new URL(service.url), c.client_id, c.client_secret!, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
});
after(async () => {
  refusing?.close();
  await service?.close();
  await database?.drop();
});

/** Logs the demo citizen in to the portal; returns the ID token. */
async function login(agent: Agent): Promise<string> {
  const { url, verifier, state } = await authorizationRequest(portal, { redirect_uri: REDIRECT, scope: 'openid' });
  const callback = await loginThrough(agent, url.toString(), DEMO_PIN, DEMO_PASSWORD, REDIRECT);
  const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return tokens.id_token!;
}

/** RP-initiated logout, confirmed by the citizen; returns where the browser is sent. */
async function logout(agent: Agent, idToken: string): Promise<string> {
  const url = oidc.buildEndSessionUrl(portal, { id_token_hint: idToken, post_logout_redirect_uri: AFTER_LOGOUT });
  const html = await (await agent.get(url)).text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
  const action = /action="([^"]+)"/.exec(html)![1]!;
  const done = await agent.post(new URL(action, service.url), { xsrf, logout: 'yes' });
  assert.equal(done.status, 303, 'logout answered at once');
  let next = location(done, service.url);
  if (next.startsWith(service.url)) next = location(await agent.get(next), service.url);
  return next;
}

interface Delivery {
  attempts: number;
  body: string | null;
  lastError: string | null;
  deliveredAt: Date | null;
  failedAt: Date | null;
  createdAt: Date;
  deadline: Date;
}

async function deliveries(): Promise<Delivery[]> {
  const { rows } = await sql<Delivery>`select attempts, body, last_error as "lastError",
    delivered_at as "deliveredAt", failed_at as "failedAt", created_at as "createdAt", deadline
    from backchannel_outbox where client_id = ${clientId} order by id`.execute(service.db);
  return rows;
}

async function auditTrail(): Promise<{ outcome: string; reason: string | null; attempt: number }[]> {
  const { rows } = await sql<{ outcome: string; reason: string | null; attempt: number }>`
    select outcome, reason, (details->>'attempt')::int as attempt from audit_events
    where action = 'backchannel_logout' and client_id = ${clientId} order by seq`.execute(service.db);
  return rows;
}

describe('back-channel logout to a portal that never accepts it', () => {
  let abandoned: Delivery;

  before(async () => {
    const agent = new Agent();
    const idToken = await login(agent);
    assert.equal(await logout(agent, idToken), AFTER_LOGOUT, 'the citizen is signed out and sent back at once');
    const [queued] = await deliveries();
    assert.ok(queued, 'the logout token is queued for the portal');
    const window = queued.deadline.getTime() - queued.createdAt.getTime();
    assert.ok(Math.abs(window - RETRY_SECONDS * 1000) < 1000, `deadline: BACKCHANNEL_RETRY_SECONDS (${window} ms)`);
    await until(
      'the delivery is abandoned',
      async () => (await deliveries())[0]?.failedAt != null,
      (RETRY_SECONDS + 10) * 1000,
    );
    abandoned = (await deliveries())[0]!;
    // The row is marked first, then the attempt is audited.
    await until('the abandonment is audited', async () => (await auditTrail()).length === abandoned.attempts);
  });

  it('is retried, then abandoned by its deadline and never sent again; the token is not kept', async () => {
    assert.equal(abandoned.deliveredAt, null);
    assert.equal(abandoned.lastError, 'HTTP 500');
    assert.equal(abandoned.body, null, 'the logout token is discarded');
    assert.ok(abandoned.attempts >= 2, `retried (${abandoned.attempts} attempts)`);
    assert.equal(received.length, abandoned.attempts, 'every attempt reached the portal');
    assert.ok(
      abandoned.failedAt!.getTime() <= abandoned.deadline.getTime() + 1000,
      `abandoned by the deadline, not retried beyond it (${abandoned.failedAt!.toISOString()} vs ${abandoned.deadline.toISOString()})`,
    );
    // Nothing is left to deliver: the worker (here run directly) claims nothing, and the portal hears no more.
    assert.equal(await deliverDue(service.db), 0);
    assert.equal(received.length, abandoned.attempts);
  });

  it('the abandonment is audited with its reason, after one audited failure per retry', async () => {
    const trail = await auditTrail();
    assert.equal(trail.length, abandoned.attempts, 'one event per attempt');
    const last = trail.at(-1)!;
    assert.deepEqual(last, { outcome: 'failure', reason: 'abandoned: HTTP 500', attempt: abandoned.attempts });
    for (const [i, e] of trail.slice(0, -1).entries())
      assert.deepEqual(e, { outcome: 'failure', reason: 'retrying: HTTP 500', attempt: i + 1 });
  });

  it('is retried for the whole of BACKCHANNEL_RETRY_SECONDS: not abandoned while time is left', () => {
    // A portal that is back before the deadline must still be told: the last attempt comes at the deadline.
    assert.ok(
      abandoned.failedAt!.getTime() >= abandoned.deadline.getTime() - 200,
      `abandoned ${abandoned.deadline.getTime() - abandoned.failedAt!.getTime()} ms before its deadline`,
    );
    assert.ok(
      received.at(-1)! >= abandoned.deadline.getTime() - 200,
      `last attempt ${abandoned.deadline.getTime() - received.at(-1)!} ms before the deadline`,
    );
  });
});
