/**
 * `dinhdanh staff ...` and the portal life-cycle commands (sandbox, approve, disable) from the host. Invariants: the
 * first admin is made on the command line; every grant, revocation and approval is audited with the operator, and a
 * refused one (bad role, unknown province, the last admin, no reason) is one line on stderr, exit 1, nothing written.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { connect, type DB } from '../src/db/index.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PIN } from './helpers/flow.ts';
import { cliJson, runCli } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';

let database: TestDatabase;
let db: Kysely<DB>;
let env: Record<string, string>;

async function events(action: string) {
  const { rows } = await sql<{
    actor_type: string;
    actor_id: string | null;
    subject: string | null;
    client_id: string | null;
    reason: string | null;
    details: Record<string, unknown>;
  }>`select actor_type, actor_id, subject, client_id, reason, details from audit_events
     where action = ${action} order by seq`.execute(db);
  return rows;
}

/** A refused command: exit 1, one line naming the problem, nothing on stdout. */
function refused(args: string[], why: RegExp) {
  const r = runCli(env, ...args);
  assert.equal(r.status, 1, r.stdout);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, why);
}

before(async () => {
  database = await freshDatabase();
  db = connect(database.url, 2);
  env = testEnv(database.url);
  cliJson(env, 'seed', '--demo');
});
after(async () => {
  await db?.destroy();
  await database?.drop();
});

describe('dinhdanh staff', () => {
  it('grants the first admin and an officer scoped to provinces, lists them, revokes, audited', async () => {
    const admin = cliJson(env, 'staff', 'grant', '--personal-id', DEMO_PIN, '--role', 'admin', '--operator', 'root-1');
    assert.equal(admin.role, 'admin');
    cliJson(
      env,
      'staff',
      'grant',
      '--personal-id',
      DEMO_PIN,
      '--role',
      'officer',
      '--province',
      '001',
      '--province',
      '079',
    );
    const list = cliJson(env, 'staff', 'list') as { role: string; provinces: string[] | null; full_name: string }[];
    assert.deepEqual(
      list.map((s) => [s.full_name, s.role, s.provinces]),
      [
        ['Nguyễn Văn An', 'admin', null],
        ['Nguyễn Văn An', 'officer', ['001', '079']],
      ],
    );
    const [granted] = await events('staff.granted');
    assert.deepEqual(
      [granted?.actor_type, granted?.actor_id, granted?.subject, granted?.details],
      ['operator', 'root-1', admin.account_id, { granted: 'admin', via: 'cli' }],
    );
    cliJson(env, 'staff', 'revoke', '--personal-id', DEMO_PIN, '--role', 'officer');
    assert.equal((await events('staff.revoked')).length, 1);
  });

  it('refuses bad grants and the last admin with one line, writing nothing', async () => {
    const before = (await events('staff.granted')).length;
    refused(
      ['staff', 'grant', '--personal-id', DEMO_PIN, '--role', 'officer', '--province', '999'],
      /unknown province code 999/,
    );
    refused(['staff', 'grant', '--personal-id', DEMO_PIN, '--role', 'agency_admin'], /needs an agency/);
    refused(
      ['staff', 'grant', '--personal-id', DEMO_PIN, '--role', 'security', '--agency', 'bo-y-te'],
      /only agency admins/,
    );
    refused(['staff', 'grant', '--personal-id', '048203000777', '--role', 'auditor'], /no e-ID account/);
    refused(['staff', 'grant', '--personal-id', DEMO_PIN, '--role', 'king'], /invalid/);
    refused(['staff', 'revoke', '--personal-id', DEMO_PIN, '--role', 'admin'], /last active admin/);
    assert.equal((await events('staff.granted')).length, before);
    assert.equal((await events('staff.revoked')).length, 1);
  });
});

describe('portal life cycle on the command line', () => {
  it('registers in the sandbox, approves to production with a reason, disables and enables', async () => {
    const c = cliJson(
      env,
      'clients',
      'add',
      '--name',
      'Cổng thử',
      '--redirect-uri',
      'http://localhost:4801/cb',
      '--sandbox',
      '--agency',
      'bo-tai-chinh',
    );
    assert.deepEqual([c.environment, c.agency], ['sandbox', 'bo-tai-chinh']);
    refused(['clients', 'approve', c.client_id, '--reason', 'ok'], /reason must be 5 to 500 characters/);
    const approved = cliJson(
      env,
      'clients',
      'approve',
      c.client_id,
      '--reason',
      'Đã kiểm thử xong',
      '--operator',
      'sec-1',
    );
    assert.equal(approved.environment, 'production');
    const [e] = await events('client.approved');
    assert.deepEqual([e?.actor_id, e?.client_id, e?.reason], ['sec-1', c.client_id, 'Đã kiểm thử xong']);
    refused(['clients', 'approve', c.client_id, '--reason', 'again please'], /already in production/);
    assert.equal(cliJson(env, 'clients', 'disable', c.client_id).disabled, true);
    refused(['clients', 'disable', c.client_id], /already disabled/);
    assert.equal(cliJson(env, 'clients', 'enable', c.client_id).disabled, undefined);
    refused(
      ['clients', 'add', '--name', 'X', '--redirect-uri', 'http://localhost:1/cb', '--agency', 'Bộ'],
      /agency must be/,
    );
  });
});
