/**
 * Level 1 self-enrollment. Invariants: identity is proven against an active registry record (name compared after
 * NFC, case folding and whitespace collapsing); a person typing cannot tell "no such resident", "details do not
 * match" and "already enrolled" apart; concurrent enrollments of one resident create exactly one account;
 * passwords follow NIST 800-63B.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { enrollLevel1, parseBirthDate } from '../src/accounts/index.ts';
import { argon2idHasher, checkNewPassword, type PasswordHasher } from '../src/credentials/index.ts';
import { connect, type DB } from '../src/db/index.ts';
import type { Service } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { Agent, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { startTestService, testEnv } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;
let db: Kysely<DB>;
let hasher: PasswordHasher;

const resident = (pin: string, fullName: string, birthDate: string, sex: 'male' | 'female', status = 'active') => {
  const [familyName, ...rest] = fullName.split(' ');
  return {
    pin,
    fullName,
    familyName: familyName!,
    middleName: rest.slice(0, -1).join(' ') || null,
    givenName: rest.at(-1)!,
    birthDate,
    sex,
    placeOfOrigin: null,
    permanentResidence: null,
    currentResidence: null,
    status,
  };
};

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url);
  db = connect(database.url, 4);
  hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await insertResidents(db, [
    resident('001190000101', 'Phạm Thị Hồng Nhung', '1990-03-04', 'female'),
    resident('001090000102', 'Đỗ Văn Tùng', '1990-07-08', 'male', 'deceased'),
    resident('001090000103', 'Vũ Văn Race', '1990-01-01', 'male'),
    resident('001090000104', 'Bùi Văn Web', '1990-01-02', 'male'),
    resident('001090000105', 'Hồ Văn Cli', '1990-01-03', 'male'),
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

describe('enrollLevel1', () => {
  const input = {
    pin: '001190000101',
    fullName: 'Phạm Thị Hồng Nhung',
    birthDate: '04/03/1990',
    password: 'một mật khẩu dài',
  };

  it('refuses a wrong birth date, a deceased resident and an unknown number, creating nothing', async () => {
    assert.equal((await enrollLevel1(db, hasher, { ...input, birthDate: '1990-03-05' })).outcome, 'mismatch');
    assert.equal((await enrollLevel1(db, hasher, { ...input, fullName: 'Phạm Thị Nhung' })).outcome, 'mismatch');
    const dead = { pin: '001090000102', fullName: 'Đỗ Văn Tùng', birthDate: '1990-07-08', password: input.password };
    assert.equal((await enrollLevel1(db, hasher, dead)).outcome, 'inactive');
    assert.equal((await enrollLevel1(db, hasher, { ...input, pin: '001190009999' })).outcome, 'no_resident');
    const { rows } = await sql<{ n: string }>`select count(*) as n from accounts where resident_id in
      (select id from residents where pin in ('001190000101', '001090000102'))`.execute(db);
    assert.equal(Number(rows[0]?.n), 0);
  });

  it('matches a name typed decomposed, in capitals, with extra spaces', async () => {
    const typed = `  ${'PHẠM  THỊ hồng NHUNG'.normalize('NFD')} `;
    const r = await enrollLevel1(db, hasher, { ...input, fullName: typed });
    assert.equal(r.outcome, 'created');
    const { rows } = await sql<{
      level: number;
    }>`select level from accounts where id = ${r.outcome === 'created' ? r.accountId : ''}`.execute(db);
    assert.equal(rows[0]?.level, 1);
    assert.equal((await enrollLevel1(db, hasher, input)).outcome, 'already_enrolled');
  });

  it('creates exactly one account when two enrollments of one resident race', async () => {
    const race = {
      pin: '001090000103',
      fullName: 'Vũ Văn Race',
      birthDate: '1990-01-01',
      password: 'mật khẩu đua nhau',
    };
    const results = await Promise.all([
      enrollLevel1(db, hasher, race),
      enrollLevel1(db, hasher, race),
      enrollLevel1(db, hasher, race),
    ]);
    assert.equal(results.filter((r) => r.outcome === 'created').length, 1);
    assert.equal(results.filter((r) => r.outcome === 'already_enrolled').length, 2);
  });
});

describe('the /enroll page', () => {
  async function submit(fields: Record<string, string>) {
    const agent = new Agent();
    const form = await agent.get(`${service.url}/enroll`);
    const csrf = csrfOf(await form.text());
    const res = await agent.post(`${service.url}/enroll`, { csrf, ...fields });
    return { status: res.status, body: (await res.text()).replace(/value="[^"]*"/g, '') };
  }

  it('answers unknown, mismatching and already-enrolled details identically', async () => {
    const created = await submit({
      pin: '001090000104',
      fullName: 'Bùi Văn Web',
      birthDate: '02/01/1990',
      password: 'mật khẩu của web',
    });
    const again = await submit({
      pin: '001090000104',
      fullName: 'Bùi Văn Web',
      birthDate: '02/01/1990',
      password: 'mật khẩu khác nữa',
    });
    const mismatch = await submit({
      pin: '001090000104',
      fullName: 'Bùi Văn Khác',
      birthDate: '02/01/1990',
      password: 'mật khẩu của web',
    });
    const unknown = await submit({
      pin: '001090000999',
      fullName: 'Không Có Ai',
      birthDate: '02/01/1990',
      password: 'mật khẩu của web',
    });
    for (const r of [created, again, mismatch, unknown]) {
      assert.equal(r.status, 200);
      assert.equal(r.body, created.body);
    }
    const { rows } = await sql<{
      reason: string | null;
    }>`select reason from audit_events where action = 'enrollment' order by seq`.execute(db);
    assert.deepEqual(
      rows.map((r) => r.reason),
      [null, 'already_enrolled', 'mismatch', 'no_resident'],
      'the audit log has the real reasons',
    );
  });

  it('shows password problems precisely (they reveal nothing about the registry)', async () => {
    const r = await submit({ pin: '001090000999', fullName: 'Ai Đó', birthDate: '02/01/1990', password: '12345678' });
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

describe('dinhdanh accounts enroll', () => {
  it('enrolls with the password on standard input, and prints one answer', async () => {
    const root = path.resolve(import.meta.dirname, '..');
    const env = { ...process.env, ...testEnv(database.url) };
    const run = (pw: string) =>
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
          '--password-stdin',
        ],
        { cwd: root, env, input: `${pw}\n`, encoding: 'utf8' },
      );
    const weak = run('password');
    assert.equal(weak.status, 1);
    assert.match(weak.stderr, /password refused: too common/);
    const ok = run('mật khẩu dòng lệnh');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /If these details match/);
    const { rows } = await sql<{
      n: string;
    }>`select count(*) as n from accounts a join residents r on r.id = a.resident_id
      where r.pin = '001090000105'`.execute(db);
    assert.equal(Number(rows[0]?.n), 1);
  });
});
