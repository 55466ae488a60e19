/**
 * The citizen's account page: reachable only when signed in (through the provider, PKCE), shows the registry
 * identity with a masked personal ID, the level, and the citizen's own sign-in history, failures included.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Service } from '../src/main.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, demoPortal, follow, loginThrough } from './helpers/flow.ts';
import { startTestService } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
});
after(async () => {
  await service?.close();
  await database?.drop();
});

it('signs the citizen in through the provider and shows identity, level and sign-in history', async () => {
  const portal = await demoPortal(service.url);
  const other = new Agent();
  // A failed attempt on the citizen's number and a successful portal login, both to appear in the history.
  const { url } = await authorizationRequest(portal);
  const start = await follow(other, url.toString());
  const page0 = await (await other.get(start.url)).text();
  await other.post(new URL(actionOf(page0, 'login'), start.url), {
    csrf: csrfOf(page0),
    pin: DEMO_PIN,
    password: 'wrong-guess-1',
  });
  await loginThrough(new Agent(), (await authorizationRequest(portal)).url.toString());

  const agent = new Agent();
  const first = await agent.get(`${service.url}/account`);
  assert.equal(first.status, 302);
  const login = await follow(agent, location(first, service.url));
  assert.match(login.url, /\/interaction\//, 'not signed in: sent to the login page');
  const html = await login.res.text();
  const posted = await agent.post(new URL(actionOf(html, 'login'), login.url), {
    csrf: csrfOf(html),
    pin: DEMO_PIN,
    password: DEMO_PASSWORD,
  });
  const landed = await follow(agent, location(posted, login.url));
  assert.equal(landed.res.status, 200, `landed on ${landed.url}`);
  assert.equal(new URL(landed.url).pathname, '/account');
  const body = await landed.res.text();
  assert.match(body, /Nguyễn Văn An/);
  assert.match(body, /001\*{7}45/, 'personal ID masked');
  assert.doesNotMatch(body, /001090012345/);
  assert.match(body, /Mức 1/);
  assert.match(body, /Cổng dịch vụ công \(demo\)/, 'portal named in the history');
  assert.match(body, /Không thành công/, 'the failed attempt is shown');
  assert.equal(landed.res.headers.get('cache-control'), 'no-store');
});

it('refuses a callback whose state does not match', async () => {
  const res = await new Agent().request(`${service.url}/account/callback?code=x&state=forged`, {
    headers: { accept: 'application/json' },
  });
  assert.equal(res.status, 400);
});

it('redeems the code at the callback as a client would: a forged or replayed code with the right state is refused', async () => {
  const startAccount = async (agent: Agent) => {
    const first = await agent.get(`${service.url}/account`);
    const auth = location(first, service.url);
    return { state: new URL(auth).searchParams.get('state')!, auth };
  };
  const json = { headers: { accept: 'application/json' } };
  const a = new Agent();
  const s1 = await startAccount(a);
  const forged = await a.request(`${service.url}/account/callback?code=forged&state=${s1.state}`, json);
  assert.equal(forged.status, 400, 'a code the provider did not issue');

  // A real sign-in, stopped at the callback to keep its code.
  const s2 = await startAccount(a);
  const login = await follow(a, s2.auth);
  const html = await login.res.text();
  let next = location(
    await a.post(new URL(actionOf(html, 'login'), login.url), {
      csrf: csrfOf(html),
      pin: DEMO_PIN,
      password: DEMO_PASSWORD,
    }),
    login.url,
  );
  for (let i = 0; i < 5 && !next.includes('/account/callback'); i++) next = location(await a.get(next), next);
  assert.match(next, /\/account\/callback\?code=/);
  const ok = await a.get(next);
  assert.equal(ok.status, 302);
  assert.equal(ok.headers.get('location'), '/account');

  const b = new Agent();
  const replay = new URL(next);
  replay.searchParams.set('state', (await startAccount(b)).state);
  assert.equal((await b.request(replay, json)).status, 400, 'a redeemed code does not sign anyone in');
});
