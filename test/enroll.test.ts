/**
 * Level 1 enrollment. Invariants: the details on an ID card alone create nothing: the account exists only once the
 * code sent by SMS to the phone registered to the resident is entered (H2); identity is matched against an active
 * registry record (name compared after NFC, case folding and whitespace collapsing); a person typing cannot tell
 * "no such resident", "details do not match", "no phone" apart, nor "already enrolled" from "code sent"; codes
 * expire, allow 5 tries and are limited per phone; concurrent enrollments of one resident create exactly one
 * account; passwords follow NIST 800-63B; in-person enrollment is an officer act.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { enrollInPerson, parseBirthDate } from '../src/accounts/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher, checkNewPassword, type PasswordHasher } from '../src/credentials/index.ts';
import { connect, type DB } from '../src/db/index.ts';
import { type Service, startService } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { Agent, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { resident } from './helpers/residents.ts';
import { testEnv } from './helpers/service.ts';
import { lastSms } from './helpers/sms.ts';

let database: TestDatabase;
let service: Service;
let db: Kysely<DB>;
let hasher: PasswordHasher;
let env: Record<string, string>;

before(async () => {
  database = await freshDatabase();
  env = testEnv(database.url); // one master key for the service and the CLI
  service = await startService(loadConfig(env));
  db = connect(database.url, 4);
  hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await insertResidents(db, [
    resident('001190000101', 'Phạm Thị Hồng Nhung', '1990-03-04', { sex: 'female' }),
    resident('001090000102', 'Đỗ Văn Tùng', '1990-07-08', { status: 'deceased' }),
    resident('001090000103', 'Vũ Văn Race', '1990-01-01'),
    resident('001090000104', 'Bùi Văn Web', '1990-01-02'),
    resident('001090000105', 'Hồ Văn Cli', '1990-01-03'),
    resident('001090000106', 'Lê Văn Sms', '1990-01-04', { phone: '+84912000106' }),
    resident('001090000107', 'Lê Văn Có', '1990-01-05', { phone: '+84912000107' }),
    resident('001090000108', 'Lê Văn Thử', '1990-01-06', { phone: '+84912000108' }),
    resident('001090000109', 'Lê Văn Hạn', '1990-01-07', { phone: '+84912000109' }),
    resident('001090000110', 'Lê Văn Nhiều', '1990-01-08', { phone: '+84912000110' }),
  ]);
});
after(async () => {
  await db?.destroy();
  await service?.close();
  await database?.drop();
});

describe('password rules (NIST 800-63B)', () => {
  for (const [pw, expected] of [
    ['short', 'too_short'],
    ['x'.repeat(129), 'too_long'],
    ['password', 'common'],
    ['matkhau123', 'common'],
    ['correct horse battery staple', null],
    ['ẩn-danh-Mật-khẩu', null],
  ] as const) {
    it(`${pw.slice(0, 20)}: ${expected ?? 'accepted'}`, () => assert.equal(checkNewPassword(pw), expected));
  }
  it('refuses the personal ID and the birth date', () => {
    assert.equal(checkNewPassword('001190000101', { pin: '001190000101' }), 'personal');
    assert.equal(checkNewPassword('04031990', { birthDate: '1990-03-04' }), 'personal');
  });
});

describe('birth dates', () => {
  for (const [s, expected] of [
    ['1990-03-04', '1990-03-04'],
    ['04/03/1990', '1990-03-04'],
    ['2023-02-29', null],
    ['31/04/1990', null],
    ['1990-3-4', null],
  ] as const) {
    it(`${s} -> ${expected}`, () => assert.equal(parseBirthDate(s), expected));
  }
});

describe('enrollInPerson (an officer checked the citizen)', () => {
  const input = {
    pin: '001190000101',
    fullName: 'Phạm Thị Hồng Nhung',
    birthDate: '04/03/1990',
    password: 'một mật khẩu dài',
  };

  it('refuses a wrong birth date, a deceased resident and an unknown number, creating nothing', async () => {
    assert.equal((await enrollInPerson(db, hasher, { ...input, birthDate: '1990-03-05' })).outcome, 'mismatch');
    assert.equal((await enrollInPerson(db, hasher, { ...input, fullName: 'Phạm Thị Nhung' })).outcome, 'mismatch');
    const dead = { pin: '001090000102', fullName: 'Đỗ Văn Tùng', birthDate: '1990-07-08', password: input.password };
    assert.equal((await enrollInPerson(db, hasher, dead)).outcome, 'inactive');
    assert.equal((await enrollInPerson(db, hasher, { ...input, pin: '001190009999' })).outcome, 'no_resident');
    const { rows } = await sql<{ n: string }>`select count(*) as n from accounts where resident_id in
      (select id from residents where pin in ('001190000101', '001090000102'))`.execute(db);
    assert.equal(Number(rows[0]?.n), 0);
  });

  it('matches a name typed decomposed, in capitals, with extra spaces', async () => {
    const typed = `  ${'PHẠM  THỊ hồng NHUNG'.normalize('NFD')} `;
    const r = await enrollInPerson(db, hasher, { ...input, fullName: typed });
    assert.equal(r.outcome, 'created');
    const { rows } = await sql<{
      level: number;
    }>`select level from accounts where id = ${r.outcome === 'created' ? r.accountId : ''}`.execute(db);
    assert.equal(rows[0]?.level, 1);
    assert.equal((await enrollInPerson(db, hasher, input)).outcome, 'already_enrolled');
  });

  it('creates exactly one account when two enrollments of one resident race', async () => {
    const race = {
      pin: '001090000103',
      fullName: 'Vũ Văn Race',
      birthDate: '1990-01-01',
      password: 'mật khẩu đua nhau',
    };
    const results = await Promise.all([
      enrollInPerson(db, hasher, race),
      enrollInPerson(db, hasher, race),
      enrollInPerson(db, hasher, race),
    ]);
    assert.equal(results.filter((r) => r.outcome === 'created').length, 1);
    assert.equal(results.filter((r) => r.outcome === 'already_enrolled').length, 2);
  });
});

describe('the /enroll pages', () => {
  /** Submits the card details (and a password) in a new browser; returns the agent and the code page. */
  async function start(fields: Record<string, string>) {
    const agent = new Agent();
    const form = await agent.get(`${service.url}/enroll`);
    const csrf = csrfOf(await form.text());
    const res = await agent.post(`${service.url}/enroll`, { csrf, ...fields });
    const html = await res.text();
    return { agent, status: res.status, html, body: html.replace(/value="[^"]*"/g, '') };
  }
  /** Posts a code on the code page. */
  async function enterCode(agent: Agent, html: string, code: string) {
    const handle = /name="handle" value="([^"]+)"/.exec(html)![1]!;
    const phone = /name="phone" value="([^"]*)"/.exec(html)![1]!;
    const res = await agent.post(`${service.url}/enroll/code`, { csrf: csrfOf(html), handle, phone, code });
    return { status: res.status, html: await res.text() };
  }
  const accountsOf = async (pin: string) =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from accounts a join residents r on r.id = a.resident_id
          where r.pin = ${pin}`.execute(db)
      ).rows[0]?.n,
    );
  const sms = (pin: string) => ({
    pin,
    fullName: '',
    birthDate: '',
    password: 'mật khẩu của tôi',
  });

  it('creates nothing from the card details alone; the code sent to the registered phone creates the account', async () => {
    const details = { ...sms('001090000106'), fullName: 'Lê Văn Sms', birthDate: '04/01/1990' };
    const step1 = await start(details);
    assert.equal(step1.status, 200);
    assert.match(step1.html, /<strong>\.\.06<\/strong>/, 'the last two digits of the registered phone');
    assert.equal(await accountsOf('001090000106'), 0, 'the card details alone create no account');
    // An attacker with the card and no phone: guesses fail, nothing is created.
    const guess = await enterCode(step1.agent, step1.html, '000000');
    assert.equal(guess.status, 400);
    assert.match(guess.html, /Mã không đúng hoặc đã hết hạn/);
    assert.equal(await accountsOf('001090000106'), 0);
    const message = await lastSms(db, '+84912000106');
    assert.equal(message.purpose, 'enroll');
    const ok = await enterCode(step1.agent, step1.html, message.code!);
    assert.equal(ok.status, 200, ok.html);
    assert.match(ok.html, /đã được tạo/);
    assert.equal(await accountsOf('001090000106'), 1);
    // The code works once.
    assert.equal((await enterCode(step1.agent, step1.html, message.code!)).status, 400);
  });

  it('answers unknown, mismatching, no-phone details identically, and already-enrolled like code-sent', async () => {
    const unknown = await start({ ...sms('001090000999'), fullName: 'Không Có Ai', birthDate: '02/01/1990' });
    const mismatch = await start({ ...sms('001090000107'), fullName: 'Lê Văn Khác', birthDate: '05/01/1990' });
    const noPhone = await start({ ...sms('001090000104'), fullName: 'Bùi Văn Web', birthDate: '02/01/1990' });
    for (const r of [unknown, mismatch, noPhone]) {
      assert.equal(r.status, 200);
      assert.equal(r.body, unknown.body);
      assert.doesNotMatch(r.body, /<strong>\.\./);
    }
    const sent = await start({ ...sms('001090000107'), fullName: 'Lê Văn Có', birthDate: '05/01/1990' });
    await enterCode(sent.agent, sent.html, (await lastSms(db, '+84912000107')).code!);
    const again = await start({ ...sms('001090000107'), fullName: 'Lê Văn Có', birthDate: '05/01/1990' });
    assert.equal(again.body, sent.body, 'already enrolled looks like a code was sent');
    const notice = await lastSms(db, '+84912000107');
    assert.equal(notice.purpose, 'notice', 'the enrolled citizen is told on their own phone');
    assert.equal(notice.code, undefined);
    const { rows } = await sql<{ reason: string | null }>`select reason from audit_events
      where action = 'enrollment.code_requested' order by seq`.execute(db);
    assert.deepEqual(
      rows.slice(-5).map((r) => r.reason),
      ['no_resident', 'mismatch', 'no_phone', null, 'already_enrolled'],
      'the audit log has the real reasons',
    );
  });

  it('allows five tries per code, and refuses an expired code', async () => {
    const details = { ...sms('001090000108'), fullName: 'Lê Văn Thử', birthDate: '06/01/1990' };
    const step1 = await start(details);
    const { code } = await lastSms(db, '+84912000108');
    const wrong = code === '111111' ? '222222' : '111111';
    for (let i = 0; i < 5; i++) assert.equal((await enterCode(step1.agent, step1.html, wrong)).status, 400);
    assert.equal((await enterCode(step1.agent, step1.html, code!)).status, 429, 'a sixth try is refused, right or not');
    const fresh = await start({ ...details, fullName: 'Lê Văn Thử' });
    const second = await lastSms(db, '+84912000108');
    await sql`update verification_codes set expires_at = now() - interval '1 second'
      where phone = '+84912000108' and used_at is null`.execute(db);
    assert.equal((await enterCode(fresh.agent, fresh.html, second.code!)).status, 400, 'expired');
    assert.equal(await accountsOf('001090000108'), 0);
  });

  it('sends at most three codes to one phone in 15 minutes, with the same page', async () => {
    const details = { ...sms('001090000110'), fullName: 'Lê Văn Nhiều', birthDate: '08/01/1990' };
    const pages = [];
    for (let i = 0; i < 4; i++) pages.push(await start(details));
    const { rows } = await sql<{ n: string }>`select count(*) as n from sms_outbox
      where to_phone = '+84912000110'`.execute(db);
    assert.equal(Number(rows[0]?.n), 3);
    assert.equal(pages[3]!.body, pages[0]!.body);
  });

  it('shows password problems precisely (they reveal nothing about the registry)', async () => {
    const r = await start({ pin: '001090000999', fullName: 'Ai Đó', birthDate: '02/01/1990', password: '12345678' });
    assert.equal(r.status, 400);
    assert.match(r.body, /quá phổ biến/);
  });

  it('refuses a post without its CSRF token', async () => {
    const res = await new Agent().post(
      `${service.url}/enroll`,
      { pin: '001090000104' },
      { accept: 'application/json' },
    );
    assert.equal(res.status, 403);
  });
});

describe('dinhdanh accounts enroll (in person)', () => {
  const root = path.resolve(import.meta.dirname, '..');
  const run = (args: string[], input = '') =>
    spawnSync(
      process.execPath,
      [
        'src/cli/main.ts',
        'accounts',
        'enroll',
        '--personal-id',
        '001090000105',
        '--full-name',
        'Hồ Văn Cli',
        '--birthdate',
        '1990-01-03',
        ...args,
      ],
      { cwd: root, env: { ...process.env, ...env }, input, encoding: 'utf8' },
    );

  it('needs the officer, prints a set-password code, and audits the officer', async () => {
    const anonymous = run([]);
    assert.equal(anonymous.status, 1);
    assert.match(anonymous.stderr, /--officer/);
    const weak = run(['--officer', 'CA-01', '--password-stdin'], 'password\n');
    assert.equal(weak.status, 1);
    assert.match(weak.stderr, /password refused: too common/);
    const ok = run(['--officer', 'CA-01']);
    assert.equal(ok.status, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as { account_id: string; set_password_code: string };
    assert.match(out.set_password_code, /^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
    const { rows } = await sql<{ actor_type: string; actor_id: string }>`select actor_type, actor_id from audit_events
      where action = 'enrollment' and subject = ${out.account_id}`.execute(db);
    assert.deepEqual(rows, [{ actor_type: 'officer', actor_id: 'CA-01' }]);
    const again = run(['--officer', 'CA-01']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already has an account/);
  });
});
