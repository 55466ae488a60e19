/**
 * The per-IP limit counts personal IDs, not attempts. Invariant: citizens behind one address (a commune People's
 * Committee, a carrier's NAT) who each mistype a few times all get in; one client trying many personal IDs with
 * wrong passwords (credential stuffing) is blocked.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { type Service, startService } from '../src/main.ts';
import { generateResidents, insertResidents } from '../src/registry/index.ts';
import { Agent, actionOf, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, demoPortal, follow } from './helpers/flow.ts';
import { testEnv } from './helpers/service.ts';

const LIMIT = 5;
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
const citizens: { pin: string; password: string }[] = [];

before(async () => {
  database = await freshDatabase();
  const config = loadConfig(testEnv(database.url, { LOGIN_IP_FAILURES: String(LIMIT), LOGIN_MAX_FAILURES: '5' }));
  service = await startService(config);
  portal = await demoPortal(service.url);
  const hasher = await argon2idHasher(config.argon2);
  const residents = [...generateResidents(40, 7)].filter((r) => r.status === 'active').slice(0, LIMIT + 1);
  await insertResidents(service.db, residents);
  for (const [i, r] of residents.entries()) {
    const password = `mat-khau-rieng-${i}-2026`;
    await createAccount(service.db, hasher, { pin: r.pin, password });
    citizens.push({ pin: r.pin, password });
  }
});
after(async () => {
  await service?.close();
  await database?.drop();
});

async function attempt(pin: string, password: string): Promise<number> {
  const agent = new Agent();
  const { url } = await authorizationRequest(portal);
  const start = await follow(agent, url.toString());
  const page = await (await agent.get(start.url)).text();
  const res = await agent.post(new URL(actionOf(page, 'login'), start.url), { csrf: csrfOf(page), pin, password });
  return res.status;
}

it(`lets ${LIMIT} citizens behind one address in after two typos each (${2 * LIMIT} failures from one IP)`, async () => {
  for (const c of citizens.slice(0, LIMIT)) {
    assert.equal(await attempt(c.pin, 'lỗi-gõ-thứ-nhất'), 401);
    assert.equal(await attempt(c.pin, 'lỗi-gõ-thứ-hai'), 401);
    assert.equal(await attempt(c.pin, c.password), 303, `${c.pin} gets in`);
  }
});

it('blocks a client that tries more personal IDs than the limit allows (stuffing)', async () => {
  const extra = citizens[LIMIT]!;
  assert.equal(await attempt(extra.pin, 'nhồi-mật-khẩu'), 401, 'the sixth ID fails: the address is now blocked');
  assert.equal(await attempt(extra.pin, extra.password), 429, 'from this address, nothing more');
});
