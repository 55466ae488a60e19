/**
 * Level 2. Invariants: an activation code works once, for its account, within 15 minutes; the in-person check it
 * records serves only the session that redeemed it, once, within IN_PERSON_VALID_HOURS, and is spent by an officer's
 * reset (the password alone never registers an authenticator); the account becomes level 2 only after a TOTP code
 * confirms the authenticator; TOTP codes are not accepted twice; each recovery code
 * works once; officers can show, reset and suspend; argon2 hashes with old parameters are upgraded at login.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { verifyPassword, verifySecondFactor } from '../src/accounts/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher, currentTotp } from '../src/credentials/index.ts';
import { connect, type DB } from '../src/db/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import type { Service } from '../src/main.ts';
import { startService } from '../src/main.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN, follow } from './helpers/flow.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

const root = path.resolve(import.meta.dirname, '..');
let database: TestDatabase;
let service: Service;
let db: Kysely<DB>;
let env: Record<string, string>;
let master: Buffer;
let accountId: string;
const agent = new Agent();

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { ...r, json: () => JSON.parse(r.stdout) };
}

async function accountPage(): Promise<string> {
  const res = await agent.get(`${service.url}/account`);
  assert.equal(res.status, 200);
  return res.text();
}

async function post(pathname: string, html: string, fields: Record<string, string>) {
  return agent.post(`${service.url}${pathname}`, { csrf: csrfOf(html), ...fields });
}

/** A new browser signed in to the account page with the password only. */
async function signedInAgent(): Promise<Agent> {
  return signIn(new Agent());
}

/** Signs `a` in to the account page with the password only. */
async function signIn(a: Agent): Promise<Agent> {
  const first = await a.get(`${service.url}/account`);
  const login = await follow(a, location(first, service.url));
  const html = await login.res.text();
  const posted = await a.post(new URL(actionOf(html, 'login'), login.url), {
    csrf: csrfOf(html),
    pin: DEMO_PIN,
    password: DEMO_PASSWORD,
  });
  await follow(a, location(posted, login.url));
  return a;
}

async function pageOf(a: Agent): Promise<string> {
  const res = await a.get(`${service.url}/account`);
  assert.equal(res.status, 200);
  return res.text();
}

before(async () => {
  database = await freshDatabase();
  env = testEnv(database.url);
  const config = loadConfig(env);
  master = loadMasterKey(config);
  service = await startService(config);
  db = connect(database.url, 2);
  accountId = (await sql<{ id: string }>`select id from accounts`.execute(db)).rows[0]!.id;
  await signIn(agent);
});
after(async () => {
  await db?.destroy();
  await service?.close();
  await database?.drop();
});

describe('in-person verification and TOTP enrollment', () => {
  let code: string;
  let secret: string;

  it('the officer gets a one-time activation code, stored only hashed, and the act is audited', async () => {
    const r = cli('accounts', 'verify-in-person', '--personal-id', DEMO_PIN, '--officer', 'CA-HN-0042');
    assert.equal(r.status, 0, r.stderr);
    code = r.json().activation_code;
    assert.match(code, /^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
    const rows = (await sql<{ code_sha256: string }>`select code_sha256 from activation_codes`.execute(db)).rows;
    assert.doesNotMatch(JSON.stringify(rows), new RegExp(code.replace(/-/g, '')));
    const audit = await sql<{
      actor_id: string;
    }>`select actor_id from audit_events where action = 'account.verified_in_person'`.execute(db);
    assert.equal(audit.rows[0]?.actor_id, 'CA-HN-0042');
    assert.equal(cli('accounts', 'verify-in-person', '--personal-id', '001090099999', '--officer', 'x').status, 1);
  });

  it('a wrong or expired code is refused; the right one (any case, any separators) is accepted once', async () => {
    let page = await accountPage();
    assert.equal((await post('/account/activate', page, { code: 'AAAA-BBBB-CCCC-DDDD' })).status, 400);
    const other = cli('accounts', 'verify-in-person', '--personal-id', DEMO_PIN, '--officer', 'CA-HN-0042').json()
      .activation_code;
    await sql`update activation_codes set expires_at = now() - interval '1 second' where used_at is null and code_sha256 <> ''`.execute(
      db,
    );
    page = await accountPage();
    assert.equal((await post('/account/activate', page, { code: other })).status, 400, 'expired');
    await sql`update activation_codes set expires_at = now() + interval '15 minutes' where used_at is null`.execute(db);
    const ok = await post('/account/activate', page, { code: code.toLowerCase().replace(/-/g, ' ') });
    assert.equal(ok.status, 302);
    assert.equal(ok.headers.get('location'), '/account/totp');
    page = await accountPage();
    assert.equal((await post('/account/activate', page, { code })).status, 400, 'used codes do not work twice');
    const { rows } = await sql<{ level: number; verified_by: string }>`select level, verified_by from accounts`.execute(
      db,
    );
    assert.deepEqual(rows[0], { level: 1, verified_by: 'CA-HN-0042' }, 'verified in person, still level 1');
  });

  it('shows the authenticator key and QR code, and confirms with a valid code only', async () => {
    const res = await agent.get(`${service.url}/account/totp`);
    const html = await res.text();
    secret = /<code>([A-Z2-7 ]+)<\/code>/.exec(html)![1]!.replace(/ /g, '');
    const qr = await agent.get(`${service.url}/account/totp/qr.svg`);
    assert.equal(qr.headers.get('content-type'), 'image/svg+xml');
    assert.match(await qr.text(), /^<svg/);
    assert.equal((await post('/account/totp', html, { code: '000000' })).status, 400);
    const good = await post('/account/totp', html, { code: await currentTotp(secret) });
    assert.equal(good.status, 200);
    const codes = [...(await good.text()).matchAll(/<li><code>([A-Z2-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    assert.equal(codes.length, 10);
    const { rows } = await sql<{
      level: number;
      sealed: string;
    }>`select level, totp_secret_sealed as sealed from accounts`.execute(db);
    assert.equal(rows[0]?.level, 2);
    assert.doesNotMatch(rows[0]!.sealed, new RegExp(secret), 'the TOTP secret is sealed at rest');
    const rc = await sql<{ n: string }>`select count(*) as n from recovery_codes where used_at is null`.execute(db);
    assert.equal(Number(rc.rows[0]?.n), 10);
    // Second factor checks (used by logins at level 2).
    const later = await currentTotp(secret, Math.floor(Date.now() / 1000) + 30);
    assert.equal(await verifySecondFactor(db, master, accountId, later), 'otp');
    assert.equal(await verifySecondFactor(db, master, accountId, later), null, 'a TOTP code is never accepted twice');
    assert.equal(await verifySecondFactor(db, master, accountId, codes[0]!), 'recovery');
    assert.equal(await verifySecondFactor(db, master, accountId, codes[0]!), null, 'a recovery code works once');
    assert.equal(await verifySecondFactor(db, master, accountId, 'NOPE-NOPE-NOPE'), null);
  });
});

describe('replacing the authenticator', () => {
  it('needs level 2 or a fresh in-person verification, never the password alone', async () => {
    await sql`update accounts set verified_in_person_at = now() - interval '1 hour'`.execute(db);
    const page = await accountPage();
    const res = await agent.post(
      `${service.url}/account/totp/start`,
      { csrf: csrfOf(page) },
      { accept: 'application/json' },
    );
    assert.equal(res.status, 401);
    const { rows } = await sql<{
      n: string;
    }>`select count(*) as n from accounts where totp_pending_sealed is not null`.execute(db);
    assert.equal(Number(rows[0]?.n), 0, 'no enrollment started');
  });
});

describe('officer operations', () => {
  it('show reveals state, never secrets, and the look-up is audited', async () => {
    const r = cli('accounts', 'show', '--personal-id', DEMO_PIN, '--operator', 'CA-09');
    assert.equal(r.status, 0, r.stderr);
    const shown = r.json();
    assert.equal(shown.level, 2);
    assert.equal(shown.totp, true);
    assert.equal(shown.recoveryCodesLeft, 9);
    assert.doesNotMatch(r.stdout, /sealed|hash|v1\./);
    const { rows } = await sql<{ actor_id: string; subject: string }>`select actor_id, subject from audit_events
      where action = 'account.viewed'`.execute(service.db);
    assert.deepEqual(rows, [{ actor_id: 'CA-09', subject: shown.accountId }]);
  });

  it('reset-totp returns the account to level 1', async () => {
    assert.equal(cli('accounts', 'reset-totp', '--personal-id', DEMO_PIN, '--operator', 'CA-HN-7').status, 0);
    const requested = await sql<{ reason: string }>`select reason from session_terminations`.execute(db);
    assert.ok(
      requested.rows.some((r) => r.reason === 'totp_reset'),
      'sessions that reached level 2 end too',
    );
    const { rows } = await sql<{
      level: number;
      t: string | null;
    }>`select level, totp_secret_sealed as t from accounts`.execute(db);
    assert.deepEqual(rows[0], { level: 1, t: null });
  });

  it('after a reset, the password alone cannot register an authenticator: level 2 needs a new in-person check', async () => {
    // Invariant (H1): whoever knows only the password never reaches level 2, whatever the account's history.
    // The reset ended every session through the worker: wait for it, or it could end the session signed in below.
    await until('the reset carried out', async () => {
      const { rows } = await sql<{ n: string }>`select count(*) as n from session_terminations
        where done_at is null`.execute(db);
      return Number(rows[0]?.n) === 0;
    });
    const thief = await signedInAgent();
    const page = await pageOf(thief);
    assert.doesNotMatch(page, /totp\/start/, 'no enrollment offered');
    const start = await thief.post(
      `${service.url}/account/totp/start`,
      { csrf: csrfOf(page) },
      { accept: 'application/json' },
    );
    assert.equal(start.status, 401);
    const confirm = await thief.post(
      `${service.url}/account/totp`,
      { csrf: csrfOf(page), code: '123456' },
      { accept: 'application/json' },
    );
    assert.equal(confirm.status, 401);
    const { rows } = await sql<{
      level: number;
      p: string | null;
    }>`select level, totp_pending_sealed as p from accounts`.execute(db);
    assert.deepEqual(rows[0], { level: 1, p: null });
  });

  it('an in-person check serves only the session that redeemed it, once, within its window', async () => {
    const citizen = await signedInAgent();
    const thief = await signedInAgent();
    const code = cli('accounts', 'verify-in-person', '--personal-id', DEMO_PIN, '--officer', 'CA-HN-9').json()
      .activation_code;
    let page = await pageOf(citizen);
    assert.equal((await citizen.post(`${service.url}/account/activate`, { csrf: csrfOf(page), code })).status, 302);
    // The other session (the password alone) sees no secret and can start nothing.
    assert.equal((await thief.get(`${service.url}/account/totp`)).status, 302, 'no secret shown to another session');
    assert.equal((await thief.get(`${service.url}/account/totp/qr.svg`)).status, 404);
    page = await pageOf(thief);
    const start = await thief.post(
      `${service.url}/account/totp/start`,
      { csrf: csrfOf(page) },
      { accept: 'application/json' },
    );
    assert.equal(start.status, 401);
    // An old check does not count (a month ago, as in the report), even in the session that redeemed it.
    await sql`update accounts set verified_in_person_at = now() - interval '30 days'`.execute(db);
    page = await pageOf(citizen);
    const old = await citizen.post(
      `${service.url}/account/totp/start`,
      { csrf: csrfOf(page) },
      { accept: 'application/json' },
    );
    assert.equal(old.status, 401);
    await sql`update accounts set verified_in_person_at = now()`.execute(db);
    // The redeeming session enrolls; the check is then spent.
    const totp = await (await citizen.get(`${service.url}/account/totp`)).text();
    const key = /<code>([A-Z2-7 ]+)<\/code>/.exec(totp)![1]!.replace(/ /g, '');
    const done = await citizen.post(`${service.url}/account/totp`, {
      csrf: csrfOf(totp),
      code: await currentTotp(key),
    });
    assert.equal(done.status, 200);
    const { rows } = await sql<{
      level: number;
      spent: Date | null;
    }>`select level, in_person_spent_at as spent from accounts`.execute(db);
    assert.equal(rows[0]!.level, 2);
    assert.ok(rows[0]!.spent, 'the in-person check is spent');
    assert.equal(cli('accounts', 'reset-totp', '--personal-id', DEMO_PIN, '--operator', 'CA-HN-7').status, 0);
  });

  it('suspend ends the sessions within seconds and stops logins; reactivate restores', async () => {
    assert.equal(cli('accounts', 'suspend', '--personal-id', DEMO_PIN).status, 0);
    // The service carries the request out within a worker interval (back-channel logout first).
    await until('sessions ended', async () => {
      const n = await sql<{ n: string }>`select count(*) as n from oidc_payloads where model = 'Session'`.execute(db);
      return Number(n.rows[0]?.n) === 0;
    });
    assert.equal((await agent.get(`${service.url}/account`)).status, 302, 'signed out');
    const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
    assert.deepEqual(await verifyPassword(db, hasher, DEMO_PIN, DEMO_PASSWORD), {
      ok: false,
      reason: 'account_disabled',
    });
    assert.equal(cli('accounts', 'reactivate', '--personal-id', DEMO_PIN).status, 0);
    assert.equal((await verifyPassword(db, hasher, DEMO_PIN, DEMO_PASSWORD)).ok, true);
  });

  it('gives a one-line error for a malformed or unknown personal ID', () => {
    const bad = cli('accounts', 'show', '--personal-id', '12ab');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /12 digits/);
    assert.match(cli('accounts', 'show', '--personal-id', '001090099999').stderr, /no e-ID account/);
  });
});

describe('argon2 parameters', () => {
  it('upgrades a hash made with old parameters at the next successful login', async () => {
    const stronger = await argon2idHasher({ memoryCost: 2048, timeCost: 2, parallelism: 1 });
    const before = (await sql<{ h: string }>`select password_hash as h from accounts`.execute(db)).rows[0]!.h;
    assert.match(before, /m=1024/);
    assert.equal((await verifyPassword(db, stronger, DEMO_PIN, DEMO_PASSWORD)).ok, true);
    const afterHash = (await sql<{ h: string }>`select password_hash as h from accounts`.execute(db)).rows[0]!.h;
    assert.match(afterHash, /m=2048,p=1,t=2/);
  });
});
