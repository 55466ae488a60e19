/**
 * Invariant: an operator sees what a node does, and only an operator: `/metrics` is served on its own listener
 * (METRICS_PORT, loopback) and never on the public port; each family moves when its event happens; labels are
 * templates, outcomes and registered client ids, never a raw path or a personal ID.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { issueActivationCode } from '../src/accounts/index.ts';
import { recordVerification, verifyChain } from '../src/audit/index.ts';
import { addClient } from '../src/clients/index.ts';
import { currentTotp } from '../src/credentials/index.ts';
import type { Service } from '../src/main.ts';
import { createMetrics } from '../src/metrics/index.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import {
  authorizationRequest,
  DEMO_CLIENT,
  DEMO_PASSWORD,
  DEMO_PIN,
  demoPortal,
  follow,
  loginThrough,
  submitLogin,
} from './helpers/flow.ts';
import { freePort } from './helpers/process.ts';
import { startTestService } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let metricsUrl: string;

/** One sample: its family name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(): Promise<Sample[]> {
  const res = await fetch(metricsUrl);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parse(await res.text());
}

/** The sum of the samples of `name` whose labels include `labels`. */
function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

const has = (samples: Sample[], name: string) => samples.some((s) => s.name === name);

before(async () => {
  database = await freshDatabase();
  const port = await freePort();
  service = await startTestService(database.url, { METRICS_PORT: String(port), WORKER_INTERVAL_MS: '100' });
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  portal = await demoPortal(service.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

describe('metrics', () => {
  it('are not served on the public port', async () => {
    const res = await fetch(`${service.url}/metrics`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
    // ... and the metrics listener serves nothing else.
    const other = await fetch(metricsUrl.replace('/metrics', '/readyz'));
    assert.equal(other.status, 404);
    await other.body?.cancel();
  });

  it('has Node defaults, the build info and the pool gauges', async () => {
    const s = await scrape();
    for (const name of [
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'dinhdanh_db_pool_total',
      'dinhdanh_db_pool_idle',
      'dinhdanh_db_pool_waiting',
      'dinhdanh_audit_batch_lag_seconds',
    ]) {
      assert.ok(has(s, name), `${name} present`);
    }
    assert.ok(sum(s, 'dinhdanh_db_pool_total') >= 1, 'the pool holds a connection');
    const build = s.find((x) => x.name === 'dinhdanh_build_info');
    assert.equal(build?.labels.version, '0.1.0');
    const active = s.filter((x) => x.name === 'dinhdanh_signing_key_age_seconds' && x.labels.state === 'active');
    assert.ok(active.length >= 1, 'the active signing key has an age');
    assert.ok(active.every((k) => k.value >= 0 && k.labels.kid));
  });

  it('counts a failed and a successful login, the token issued and the request durations by route template', async () => {
    const before = await scrape();
    const agent = new Agent();
    const { url, verifier, state } = await authorizationRequest(portal);
    const start = await follow(agent, url.toString());
    const wrong = await submitLogin(agent, start.url, DEMO_PIN, 'not-the-password-at-all');
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const callback = await loginThrough(agent, url.toString());
    await oidc.authorizationCodeGrant(portal, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) =>
      sum(after, name, labels) - sum(before, name, labels);
    assert.equal(moved('dinhdanh_logins_total', { outcome: 'wrong_password', client: DEMO_CLIENT }), 1);
    assert.equal(moved('dinhdanh_logins_total', { outcome: 'success', level: '1', client: DEMO_CLIENT }), 1);
    assert.equal(moved('dinhdanh_tokens_issued_total', { grant_type: 'authorization_code', client: DEMO_CLIENT }), 1);

    const count = (route: string, method: string, status: string) =>
      moved('http_server_request_duration_seconds_count', { route, method, status_class: status });
    assert.equal(count('/interaction/:uid/login', 'POST', '4xx'), 1, 'the failed login, by its template');
    assert.equal(count('/interaction/:uid/login', 'POST', '3xx'), 1, 'the successful login');
    assert.ok(count('authorization', 'GET', '3xx') >= 1, "oidc-provider's routes by their name");
    assert.equal(count('token', 'POST', '2xx'), 1);
    const routes = new Set(
      after.filter((x) => x.name === 'http_server_request_duration_seconds_count').map((x) => x.labels.route),
    );
    for (const r of routes)
      assert.doesNotMatch(r!, /\/interaction\/[A-Za-z0-9_-]{10,}/, 'never a raw interaction path');
    assert.ok(!after.some((x) => Object.values(x.labels).includes(DEMO_PIN)), 'no personal ID in any label');
  });

  it('shows the back-channel backlog and counts deliveries', async () => {
    let received = 0;
    const portalServer: Server = createServer((req, res) => {
      received++;
      req.resume();
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => portalServer.listen(0, '127.0.0.1', r));
    try {
      const port = (portalServer.address() as AddressInfo).port;
      const before = await scrape();
      const deadline = new Date(Date.now() + 3600_000);
      // One logout waiting for a later retry (the backlog), one due now (delivered by the worker).
      await service.db
        .insertInto('backchannel_outbox')
        .values([
          {
            client_id: DEMO_CLIENT,
            url: `http://127.0.0.1:${port}/later`,
            body: 'logout_token=x',
            next_at: new Date(Date.now() + 3600_000),
            deadline,
          } as never,
          { client_id: DEMO_CLIENT, url: `http://127.0.0.1:${port}/now`, body: 'logout_token=y', deadline } as never,
        ])
        .execute();
      await until('the due logout is delivered', () => received === 1, 10_000);
      await until(
        'the delivery is counted',
        async () =>
          sum(await scrape(), 'dinhdanh_backchannel_deliveries_total', { outcome: 'delivered' }) >
          sum(before, 'dinhdanh_backchannel_deliveries_total', { outcome: 'delivered' }),
        10_000,
      );
      const s = await scrape();
      assert.equal(sum(s, 'dinhdanh_backchannel_queue_depth'), 1, 'the one waiting for its retry');
      assert.ok(sum(s, 'dinhdanh_backchannel_oldest_age_seconds') >= 0);
      assert.ok(has(s, 'dinhdanh_backchannel_oldest_age_seconds'));
    } finally {
      await new Promise((r) => portalServer.close(r));
    }
  });

  it('has the readiness changes and the audit verification time', async () => {
    const ready = await fetch(`${service.url}/readyz`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    const s = await scrape();
    assert.ok(sum(s, 'dinhdanh_readiness_changes_total', { status: 'ready' }) >= 1, 'the first answer is a change');
    const verified = s.find((x) => x.name === 'dinhdanh_audit_last_verified_timestamp_seconds');
    assert.equal(verified?.value, 0, 'never verified');
    // What `audit verify` does: walk the chain and record the result on it; the gauge reads the newest success.
    const r = await verifyChain(service.db);
    assert.ok(r.ok);
    await recordVerification(service.db, r, 'test');
    const at = (await scrape()).find((x) => x.name === 'dinhdanh_audit_last_verified_timestamp_seconds')?.value ?? 0;
    assert.ok(Math.abs(at - Date.now() / 1000) < 60, 'verified just now');
  });

  // Last: the demo citizen becomes level 2 here, and their second factor is locked at the end.
  it('counts the level-2 enrollment at /account and the step-up lock-out as code_locked', async () => {
    const before = await scrape();
    const moved = async (name: string, labels: Record<string, string>) =>
      sum(await scrape(), name, labels) - sum(before, name, labels);
    const agent = new Agent();
    // Signed in to the account page with the password (level 1).
    const login = await follow(agent, location(await agent.get(`${service.url}/account`), service.url));
    const signedIn = await submitLogin(agent, login.url, DEMO_PIN, DEMO_PASSWORD, await login.res.text());
    await follow(agent, location(signedIn, login.url));
    const post = async (path: string, fields: Record<string, string>) => {
      const page = await (await agent.get(`${service.url}/account`)).text();
      return agent.post(`${service.url}${path}`, { csrf: csrfOf(page), ...fields });
    };
    // The officer's activation code: a wrong one first, then the right one, then a wrong TOTP code and the right one.
    const { code } = await issueActivationCode(service.db, DEMO_PIN, 'CA-TEST');
    assert.equal((await post('/account/activate', { code: 'AAAA-BBBB-CCCC-DDDD' })).status, 400);
    assert.equal((await post('/account/activate', { code })).status, 302);
    const totp = await (await agent.get(`${service.url}/account/totp`)).text();
    const secret = /<code>([A-Z2-7 ]+)<\/code>/.exec(totp)![1]!.replace(/ /g, '');
    assert.equal((await post('/account/totp', { code: '000000' })).status, 400);
    assert.equal((await post('/account/totp', { code: await currentTotp(secret) })).status, 200);
    const enrolled = (outcome: string) => moved('dinhdanh_enrollments_total', { level: '2', outcome });
    assert.equal(await enrolled('wrong_activation_code'), 1);
    assert.equal(await enrolled('wrong_code'), 1);
    assert.equal(await enrolled('success'), 1, 'the account is level 2');

    // A portal that needs level 2: the password session steps up with its second factor; wrong codes until locked.
    const redirect = 'http://localhost:4931/cb';
    const c = await addClient(service.db, {
      name: 'Cổng mức 2',
      redirectUris: [redirect],
      tokenEndpointAuthMethod: 'none',
      minLevel: 2,
      consent: 'implicit',
    });
    const high = await oidc.discovery(
      new URL(service.url),
      c.client_id,
      { token_endpoint_auth_method: 'none' },
      oidc.None(),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const { url } = await authorizationRequest(high, { redirect_uri: redirect, scope: 'openid' });
    const step = await follow(agent, url.toString(), redirect);
    const html = await step.res.text();
    assert.doesNotMatch(html, /name="password"/, 'a step-up: the second factor only');
    const otp = new URL(actionOf(html, 'otp'), step.url);
    let wrong = 0;
    for (let i = 0; i < 20; i++) {
      const res = await agent.post(otp, { csrf: csrfOf(html), code: '000000' });
      await res.body?.cancel();
      if (res.status === 429) break;
      assert.equal(res.status, 401);
      wrong++;
    }
    const refused = await agent.post(otp, { csrf: csrfOf(html), code: await currentTotp(secret) });
    assert.equal(refused.status, 429, 'locked: even the right code is refused');
    await refused.body?.cancel();
    assert.equal(await moved('dinhdanh_step_up_total', { outcome: 'wrong_code' }), wrong);
    assert.equal(await moved('dinhdanh_step_up_total', { outcome: 'code_locked' }), 2, 'the lock-out and the refusal');
    assert.equal(await moved('dinhdanh_step_up_total', { outcome: 'success' }), 0);
  });
  it('samples the event-loop delay only while requests come, health checks aside (an idle node does not wake for it)', async () => {
    const metrics = createMetrics();
    const lagMax = async () => sum(parse(await metrics.registry.metrics()), 'nodejs_eventloop_lag_max_seconds');
    /** Blocks the event loop for `ms`, then lets it turn (a sample due meanwhile is taken late and records it). */
    const stall = async (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {}
      await new Promise((r) => setImmediate(r));
    };
    await lagMax(); // starts a period
    for (let i = 0; i < 3; i++) await stall(40);
    assert.equal(await lagMax(), 0, 'no request yet: nothing sampled');
    metrics.request('GET', '/readyz', 200, 0.001);
    metrics.request('GET', '/healthz', 200, 0.001);
    for (let i = 0; i < 3; i++) await stall(40);
    assert.equal(await lagMax(), 0, 'health checks are not traffic');
    metrics.request('GET', '/account', 200, 0.01);
    await until('a stall is measured once requests come', async () => {
      await stall(40);
      return (await lagMax()) >= 0.03;
    });
    assert.ok(has(parse(await metrics.registry.metrics()), 'nodejs_eventloop_lag_p99_seconds'), 'same families');
  });
});
