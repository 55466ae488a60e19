/**
 * Device cookies (OWASP). Invariant: whoever knows a citizen's personal ID can lock it for unknown browsers, but never
 * for a browser in which the citizen proved the password before; that browser's own failures lock only itself; a
 * device cookie that is forged, tampered with or issued for another ID counts for nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { type Service, startService } from '../src/main.ts';
import { Agent, actionOf, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, demoPortal, follow } from './helpers/flow.ts';
import { testEnv } from './helpers/service.ts';

let env: Record<string, string>;
const NGOC = { pin: '079195004321', password: 'mat-khau-cua-ngoc-2026' };
const KHOA = { pin: '048203000777', password: 'mat-khau-cua-khoa-2026' };
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;

before(async () => {
  database = await freshDatabase();
  // Behind a trusted proxy, so that each test's citizen and attacker come from addresses of their own.
  env = testEnv(database.url, { TRUST_PROXY: 'true', LOGIN_MAX_FAILURES: '5' });
  const config = loadConfig(env);
  service = await startService(config);
  portal = await demoPortal(service.url);
  const hasher = await argon2idHasher(config.argon2);
  for (const c of [NGOC, KHOA]) await createAccount(service.db, hasher, c); // demo residents without an account
});
after(async () => {
  await service?.close();
  await database?.drop();
});

/** A browser holding `device` (a device cookie's value), or a new one. */
function browser(device?: string): Agent {
  const agent = new Agent();
  if (device) agent.jar.set('device', device);
  return agent;
}

/** One login from `agent` at address `ip` (the agent keeps the cookies it is given). */
async function attempt(agent: Agent, pin: string, password: string, ip: string) {
  const { url } = await authorizationRequest(portal, { prompt: 'login' });
  const start = await follow(agent, url.toString());
  const page = await (await agent.get(start.url)).text();
  const form = { csrf: csrfOf(page), pin, password };
  return agent.post(new URL(actionOf(page, 'login'), start.url), form, { 'x-forwarded-for': ip });
}

/** A browser that signed in as `pin` (and so holds a device cookie for it). */
async function knownBrowser(pin: string, password: string, ip: string): Promise<Agent> {
  const agent = browser();
  assert.equal((await attempt(agent, pin, password, ip)).status, 303);
  assert.ok(agent.jar.get('device'), 'a correct password earns a device cookie');
  return agent;
}

/** An attacker elsewhere locks `pin` for unknown browsers with wrong passwords. */
async function lockOut(pin: string, ip: string) {
  for (let i = 1; i <= 5; i++) assert.equal((await attempt(browser(), pin, `doan-mo-${i}-sai`, ip)).status, 401);
  assert.equal((await attempt(browser(), pin, 'doan-mo-6-sai', ip)).status, 429, 'locked for unknown browsers');
}

/** What the audit trail says about login failures and lockouts from `ip`. */
async function auditFrom(ip: string) {
  const { rows } = await sql<{ action: string; reason: string | null; details: { device?: string } }>`
    select action, reason, details from audit_events
    where ip = ${ip} and action in ('login', 'lockout') and (outcome = 'failure' or action = 'lockout')
    order by seq`.execute(service.db);
  return rows;
}

describe('device cookies', () => {
  it('keep the citizen’s known browser open while an attacker locks the ID for every unknown browser', async () => {
    const home = '203.0.113.10';
    const attacker = '198.51.100.66';
    const first = browser();
    const ok = await attempt(first, DEMO_PIN, DEMO_PASSWORD, home);
    assert.equal(ok.status, 303);
    const set = ok.headers.getSetCookie().find((c) => c.startsWith('device='));
    assert.ok(set, 'a device cookie is issued with the successful login');
    assert.match(set, /;\s*path=\/interaction(;|$)/i);
    assert.match(set, /;\s*httponly/i);
    assert.match(set, /;\s*samesite=lax/i);
    assert.doesNotMatch(set, /;\s*secure/i, 'plain http here; Secure over https');
    const device = first.jar.get('device')!;

    await lockOut(DEMO_PIN, attacker);
    const stranger = await attempt(browser(), DEMO_PIN, DEMO_PASSWORD, home);
    assert.equal(stranger.status, 429, 'a new browser waits out the lock, even with the right password');
    assert.ok(Number(stranger.headers.get('retry-after')) > 0);

    assert.equal((await attempt(browser(device), DEMO_PIN, DEMO_PASSWORD, home)).status, 303, 'the known browser');
    // Several tabs of the known browser at once: checks of its key run one at a time and none counts as a failure.
    const tabs = await Promise.all(
      Array.from({ length: 10 }, () => attempt(browser(device), DEMO_PIN, DEMO_PASSWORD, home)),
    );
    assert.deepEqual(
      tabs.map((r) => r.status),
      Array(10).fill(303),
    );

    const events = await auditFrom(attacker);
    assert.equal(events.filter((e) => e.reason === 'wrong_password' && e.details.device === 'unknown').length, 5);
    assert.deepEqual(
      events.filter((e) => e.action === 'lockout').map((e) => e.details.device),
      ['unknown'],
    );
    assert.deepEqual(
      (await auditFrom(home)).map((e) => [e.reason, e.details.device]),
      [['locked', 'unknown']],
      'only the stranger was refused',
    );
  });

  it('lock a known browser after its own failures, leaving unknown browsers and the citizen’s other devices open', async () => {
    const ip = '203.0.113.20';
    const phone = await knownBrowser(NGOC.pin, NGOC.password, ip);
    const tablet = await knownBrowser(NGOC.pin, NGOC.password, '203.0.113.21');
    assert.notEqual(phone.jar.get('device'), tablet.jar.get('device'), 'each browser has its own nonce');

    for (let i = 1; i <= 5; i++) assert.equal((await attempt(phone, NGOC.pin, `quen-mat-khau-${i}`, ip)).status, 401);
    const locked = await attempt(phone, NGOC.pin, NGOC.password, ip);
    assert.equal(locked.status, 429, 'five wrong passwords from the phone lock the phone');
    assert.equal((await attempt(tablet, NGOC.pin, NGOC.password, '203.0.113.21')).status, 303, 'the tablet');
    assert.equal((await attempt(browser(), NGOC.pin, NGOC.password, ip)).status, 303, 'an unknown browser');

    const events = await auditFrom(ip);
    assert.deepEqual(
      events.map((e) => [e.action, e.reason, e.details.device]),
      [
        ...Array(5).fill(['login', 'wrong_password', 'known']),
        ['lockout', null, 'known'],
        ['login', 'locked', 'known'],
      ],
    );
    // An officer's unlock lifts the device's lock too.
    const unlock = spawnSync(
      process.execPath,
      ['src/cli/main.ts', 'accounts', 'unlock', '--personal-id', NGOC.pin, '--operator', 'officer-3'],
      { cwd: path.resolve(import.meta.dirname, '..'), env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    assert.equal(unlock.status, 0, unlock.stderr);
    assert.equal((await attempt(phone, NGOC.pin, NGOC.password, ip)).status, 303, 'unlocked by the officer');
  });

  it('ignore a device cookie that is forged, tampered with or issued for another ID', async () => {
    const ip = '203.0.113.30';
    // A shared family phone: known for Khoa and then Ngọc, one entry each (newest first).
    const shared = await knownBrowser(KHOA.pin, KHOA.password, ip);
    assert.equal((await attempt(shared, NGOC.pin, NGOC.password, ip)).status, 303);
    const entries = shared.jar.get('device')!.split('~');
    assert.equal(entries.length, 2);
    const [ngocEntry, khoaEntry] = entries as [string, string];

    await lockOut(KHOA.pin, '198.51.100.77');
    const [nonce, exp, mac] = khoaEntry.split('.') as [string, string, string];
    const flip = (s: string) => (s.at(-1) === 'A' ? `${s.slice(0, -1)}B` : `${s.slice(0, -1)}A`);
    const refused = {
      'another ID’s entry': ngocEntry,
      'a tampered MAC': `${nonce}.${exp}.${flip(mac)}`,
      'a tampered nonce': `${flip(nonce)}.${exp}.${mac}`,
      'an extended expiry': `${nonce}.${Number(exp) + 86_400_000}.${mac}`,
      'a made-up entry': `${'n'.repeat(22)}.${Date.now() + 86_400_000}.${'m'.repeat(43)}`,
    };
    for (const [what, cookie] of Object.entries(refused))
      assert.equal((await attempt(browser(cookie), KHOA.pin, KHOA.password, ip)).status, 429, what);
    assert.equal((await attempt(shared, KHOA.pin, KHOA.password, ip)).status, 303, 'the genuine entry still counts');

    const locked = (await auditFrom(ip)).filter((e) => e.reason === 'locked');
    assert.deepEqual(
      locked.map((e) => e.details.device),
      Array(5).fill('unknown'),
    );
  });
});
