/**
 * Operator acts from the command line and their audit trail. Invariants: an operator act and its audit event commit
 * together or not at all (an act whose event cannot be written leaves nothing behind, with a one-line error and exit
 * 1); `migrate` and `seed` leave events; `keys rewrap` re-encrypts every signing key, TOTP secret and service secret
 * under a new master key, after which the service starts with the new key and tokens issued before still verify,
 * while the old key no longer opens anything; `keys retire` hands signing to a staged key; `audit verify` names the
 * first altered row.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { type Kysely, sql } from 'kysely';
import * as oidc from 'openid-client';
import { connect, createPool, type DB } from '../src/db/index.ts';
import { loadSecretRoot, pinPseudonymizer, unseal } from '../src/keys/index.ts';
import { createLimiter } from '../src/limits/index.ts';
import { Agent } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PIN, demoPortal, loginThrough } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { cliJson, freePort, type NodeProcess, runCli, startNode } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';

const root = path.resolve(import.meta.dirname, '..');
let database: TestDatabase;
let db: Kysely<DB>;
let env: Record<string, string>;
let node: NodeProcess | undefined;

/** The events of `action`, oldest first. */
async function events(action: string) {
  const { rows } = await sql<{
    actor_type: string;
    actor_id: string | null;
    subject: string | null;
    client_id: string | null;
    outcome: string;
    details: Record<string, unknown>;
  }>`select actor_type, actor_id, subject, client_id, outcome, details from audit_events
     where action = ${action} order by seq`.execute(db);
  return rows;
}

/** Runs `fn` while the audit table refuses events of `action` (the audit write of that act fails). */
async function refusingAudit(action: string, fn: () => Promise<void>) {
  await sql`alter table audit_events add constraint refuse_for_test check (action <> ${sql.lit(action)})`.execute(db);
  try {
    await fn();
  } finally {
    await sql`alter table audit_events drop constraint refuse_for_test`.execute(db);
  }
}

/** Asserts a failed command: exit 1 and one line on stderr naming the refused audit write. */
function assertRefused(r: ReturnType<typeof runCli>) {
  assert.equal(r.status, 1, r.stdout);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, /^dinhdanh: .*refuse_for_test/);
  assert.equal(r.stdout, '', 'nothing printed as if it had worked');
}

before(async () => {
  database = await freshDatabase();
  db = connect(database.url, 2);
  // The master key in a file, as in production: `keys rewrap` writes the new one to another file.
  env = testEnv(database.url);
});
after(async () => {
  await node?.stop();
  await db?.destroy();
  await database?.drop();
});

describe('migrate and seed are audited', () => {
  it('migrate records what it applied, also when nothing was', async () => {
    const r = runCli(env, 'migrate', '--operator', 'dba-1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /database is up to date/);
    const [event] = await events('database.migrated');
    assert.deepEqual(
      { type: event?.actor_type, id: event?.actor_id, outcome: event?.outcome, details: event?.details },
      { type: 'operator', id: 'dba-1', outcome: 'success', details: { applied: [] } },
    );
  });

  it('migrate of an empty database records every migration applied', async () => {
    const empty = await freshDatabase({ migrate: false });
    const other = connect(empty.url, 1);
    try {
      const r = runCli({ ...env, DATABASE_URL: empty.url }, 'migrate', '--operator', 'dba-2');
      assert.equal(r.status, 0, r.stderr);
      const files = readdirSync(path.join(root, 'migrations'))
        .map((f) => f.replace(/\.ts$/, ''))
        .sort();
      assert.equal(r.stdout, `applied: ${files.join(', ')}\n`);
      const { rows } = await sql<{ actor_id: string; details: { applied: string[] } }>`
        select actor_id, details from audit_events where action = 'database.migrated'`.execute(other);
      assert.deepEqual(rows, [{ actor_id: 'dba-2', details: { applied: files } }]);
    } finally {
      await other.destroy();
      await empty.drop();
    }
  });

  it('seed records what it created, and a second seed that created nothing', async () => {
    assert.deepEqual(cliJson(env, 'seed', '--demo', '--operator', 'ops-1'), {
      residents: 3,
      account: true,
      client: true,
    });
    assert.deepEqual(cliJson(env, 'seed', '--demo', '--operator', 'ops-1'), {
      residents: 0,
      account: false,
      client: false,
    });
    const seeded = await events('demo.seeded');
    assert.deepEqual(
      seeded.map((e) => [e.actor_type, e.actor_id, e.details]),
      [
        ['operator', 'ops-1', { residents: 3, account: true, client: true }],
        ['operator', 'ops-1', { residents: 0, account: false, client: false }],
      ],
    );
  });
});

describe('keys rewrap', () => {
  it('re-encrypts every signing key, TOTP secret and the secret root; the service starts with the new key and old tokens still verify', async () => {
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    const nodeEnv = { ...env, ISSUER: issuer, PORT: String(port) };
    node = await startNode(nodeEnv);
    const oldMaster = Buffer.from(readFileSync(env.MASTER_KEY_FILE!, 'utf8').trim(), 'base64');

    // A token issued before: the demo citizen through the demo portal.
    const portal = await demoPortal(issuer);
    const { url, verifier, state } = await authorizationRequest(portal);
    const callback = await loginThrough(new Agent(), url.toString());
    const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const sub = String(tokens.claims()!.sub);
    // A level-2 account (a TOTP secret sealed under the master key): enrolled in person, then TOTP.
    const enroll = spawnSync(
      process.execPath,
      [
        'src/cli/main.ts',
        'accounts',
        'enroll',
        '--personal-id',
        '079195004321',
        '--full-name',
        'Trần Thị Bích Ngọc',
        '--birthdate',
        '1995-11-03',
        '--officer',
        'CA-1',
        '--password-stdin',
      ],
      { cwd: root, env: { ...process.env, ...env }, input: 'another-password-2026\n', encoding: 'utf8' },
    );
    assert.equal(enroll.status, 0, enroll.stderr);
    const { secret: totpSecret } = await makeLevel2(
      db,
      oldMaster,
      '079195004321',
      JSON.parse(enroll.stdout).account_id,
    );

    const sealedNow = async () => ({
      keys: (await db.selectFrom('signing_keys').select(['kid', 'private_jwk_sealed']).orderBy('kid').execute()).map(
        (k) => [k.kid, k.private_jwk_sealed] as const,
      ),
      secrets: (await db.selectFrom('service_secrets').select(['name', 'sealed']).orderBy('name').execute()).map(
        (s) => [s.name, s.sealed] as const,
      ),
      totp: (
        await db
          .selectFrom('accounts')
          .select(['id', 'totp_secret_sealed'])
          .where('totp_secret_sealed', 'is not', null)
          .execute()
      ).map((a) => [a.id, a.totp_secret_sealed!] as const),
    });
    const before = await sealedNow();
    assert.ok(before.keys.length >= 4 && before.secrets.some(([n]) => n === 'root') && before.totp.length === 1);

    const newKeyFile = path.join(os.tmpdir(), `dinhdanh-rewrap-${process.pid}-${Date.now()}.key`);
    const rewrapped = cliJson(env, 'keys', 'rewrap', '--new-master-key-file', newKeyFile, '--operator', 'sec-1');
    assert.deepEqual(
      { ...rewrapped, next: undefined },
      {
        signingKeys: before.keys.length,
        totpSecrets: 1,
        serviceSecrets: before.secrets.length,
        next: undefined,
      },
    );
    assert.match(rewrapped.next, new RegExp(`MASTER_KEY_FILE=${newKeyFile}`));
    assert.equal(statSync(newKeyFile).mode & 0o777, 0o600, 'the new key file is created 0600');
    const newMaster = Buffer.from(readFileSync(newKeyFile, 'utf8').trim(), 'base64');

    const now = await sealedNow();
    const same = (a: readonly (readonly [string, string])[], b: readonly (readonly [string, string])[]) =>
      assert.deepEqual(
        a.map(([id]) => id),
        b.map(([id]) => id),
      );
    same(now.keys, before.keys);
    same(now.secrets, before.secrets);
    same(now.totp, before.totp);
    for (const [list, aad] of [
      ['keys', (id: string) => id],
      ['secrets', (id: string) => `secret:${id}`],
      ['totp', (id: string) => `totp:${id}`],
    ] as const) {
      now[list].forEach(([id, sealed], i) => {
        const old = before[list][i]![1];
        assert.notEqual(sealed, old, `${list} ${id} re-encrypted`);
        assert.equal(unseal(newMaster, sealed, aad(id)), unseal(oldMaster, old, aad(id)), `${list} ${id} same secret`);
        assert.throws(() => unseal(oldMaster, sealed, aad(id)), `${list} ${id}: the old key no longer opens it`);
      });
    }
    assert.equal(unseal(newMaster, now.totp[0]![1], `totp:${now.totp[0]![0]}`), totpSecret);
    const [event] = await events('key.rewrapped');
    assert.equal(event?.actor_id, 'sec-1');

    // Every node restarts with the new key: it starts, publishes the same keys, and what it issued still verifies.
    await node.stop();
    const stale = spawnSync(process.execPath, ['src/cli/main.ts', 'start'], {
      cwd: root,
      env: { ...process.env, ...nodeEnv },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(stale.status, 1, 'the old master key opens nothing any more');
    assert.match(stale.stderr, /MASTER_KEY: the master key does not open/);
    node = await startNode({ ...nodeEnv, MASTER_KEY_FILE: newKeyFile });
    const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: { kid: string }[] };
    assert.ok(jwks.keys.some((k) => k.kid === decodeProtectedHeader(tokens.id_token!).kid));
    await jwtVerify(tokens.id_token!, createLocalJWKSet(jwks), { issuer, audience: 'demo-portal' });
    const info = await oidc.fetchUserInfo(await demoPortal(issuer), tokens.access_token, sub);
    assert.equal(info.sub, sub, 'an access token issued before the rewrap still works (same secret root)');
    // And the new node signs: a new login gets a fresh ID token that verifies.
    const again = await authorizationRequest(portal);
    const fresh = await oidc.authorizationCodeGrant(
      portal,
      new URL(await loginThrough(new Agent(), again.url.toString())),
      { pkceCodeVerifier: again.verifier, expectedState: again.state },
    );
    await jwtVerify(fresh.id_token!, createLocalJWKSet(jwks), { issuer, audience: 'demo-portal' });
    await node.stop();
    node = undefined;
    env = { ...env, MASTER_KEY_FILE: newKeyFile };
  });
});

describe('an operator act whose audit event cannot be written leaves nothing behind', () => {
  const status = async () =>
    (
      await db
        .selectFrom('accounts')
        .innerJoin('residents', 'residents.id', 'accounts.resident_id')
        .select(['accounts.status', 'accounts.id'])
        .where('residents.pin', '=', DEMO_PIN)
        .executeTakeFirstOrThrow()
    ).status;

  it('accounts suspend: the account stays active and no session is ended', async () => {
    const terminations = await db.selectFrom('session_terminations').select('id').execute();
    await refusingAudit('account.suspend', async () => {
      assertRefused(runCli(env, 'accounts', 'suspend', '--personal-id', DEMO_PIN, '--operator', 'CA-2'));
    });
    assert.equal(await status(), 'active');
    assert.equal((await db.selectFrom('session_terminations').select('id').execute()).length, terminations.length);
    assert.equal((await events('account.suspend')).length, 0);
    // With the trail writable, the same act succeeds, and its event and its effects are there together.
    assert.deepEqual(
      cliJson(env, 'accounts', 'suspend', '--personal-id', DEMO_PIN, '--operator', 'CA-2').status,
      'suspended',
    );
    assert.equal(await status(), 'suspended');
    assert.equal((await events('account.suspend'))[0]?.actor_id, 'CA-2');
    cliJson(env, 'accounts', 'reactivate', '--personal-id', DEMO_PIN);
    assert.equal(await status(), 'active');
  });

  it('accounts reset-totp: the second factor stays', async () => {
    const level = async () =>
      await db
        .selectFrom('accounts')
        .innerJoin('residents', 'residents.id', 'accounts.resident_id')
        .select(['accounts.level', 'accounts.totp_secret_sealed'])
        .where('residents.pin', '=', '079195004321')
        .executeTakeFirstOrThrow();
    const before = await level();
    assert.equal(before.level, 2);
    await refusingAudit('account.reset-totp', async () => {
      assertRefused(runCli(env, 'accounts', 'reset-totp', '--personal-id', '079195004321'));
    });
    assert.deepEqual(await level(), before);
  });

  it('clients add: no portal is registered', async () => {
    await refusingAudit('client.registered', async () => {
      assertRefused(
        runCli(
          env,
          'clients',
          'add',
          '--name',
          'X',
          '--client-id',
          'refused-portal',
          '--redirect-uri',
          'https://x.example.vn/cb',
        ),
      );
    });
    assert.equal(
      await db.selectFrom('clients').select('client_id').where('client_id', '=', 'refused-portal').executeTakeFirst(),
      undefined,
    );
  });

  it('keys generate and keys retire: the key set is unchanged', async () => {
    const keys = () => db.selectFrom('signing_keys').select(['kid', 'alg', 'state']).orderBy('kid').execute();
    const before = await keys();
    await refusingAudit('key.generated', async () => {
      assertRefused(runCli(env, 'keys', 'generate', '--alg', 'ES256'));
    });
    assert.deepEqual(await keys(), before, 'no staged key');
    const lead0 = { ...env, KEY_PUBLISH_LEAD_SECONDS: '0' };
    const staged = cliJson(lead0, 'keys', 'generate', '--alg', 'ES256').kid;
    const withStaged = await keys();
    assert.equal(withStaged.find((k) => k.kid === staged)?.state, 'staged');
    const active = withStaged.find((k) => k.alg === 'ES256' && k.state === 'active')!;
    await refusingAudit('key.retired', async () => {
      assertRefused(runCli(lead0, 'keys', 'retire', '--', active.kid));
    });
    assert.deepEqual(await keys(), withStaged, 'still active, still staged');
  });

  it('accounts unlock: the lock stays', async () => {
    const pool = createPool(database.url, 2);
    const master = Buffer.from(readFileSync(env.MASTER_KEY_FILE!, 'utf8').trim(), 'base64');
    const key = pinPseudonymizer(await loadSecretRoot(db, master))(DEMO_PIN);
    const limiter = createLimiter(pool, 'login', { maxFailures: 1, lockSeconds: 900, ipFailures: 100 });
    const locked = async () => {
      const wait = await limiter.reserve(key, '192.0.2.1');
      if (!wait) await limiter.release(key);
      return wait > 0;
    };
    try {
      assert.equal(await limiter.reserve(key, '192.0.2.1'), 0);
      assert.ok((await limiter.fail(key, '192.0.2.1')).lockedFor > 0);
      assert.equal(await locked(), true);
      await refusingAudit('account.unlocked', async () => {
        assertRefused(runCli(env, 'accounts', 'unlock', '--personal-id', DEMO_PIN, '--operator', 'CA-3'));
      });
      assert.equal(await locked(), true, 'still locked');
      const r = runCli(env, 'accounts', 'unlock', '--personal-id', DEMO_PIN, '--operator', 'CA-3');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'unlocked\n');
      assert.equal(await locked(), false);
      assert.deepEqual(
        (await events('account.unlocked')).map((e) => [e.actor_type, e.actor_id, e.subject]),
        [['officer', 'CA-3', key]],
      );
    } finally {
      await pool.end();
    }
  });
});

describe('keys retire (CLI)', () => {
  const lead0 = () => ({ ...env, KEY_PUBLISH_LEAD_SECONDS: '0' });
  const listed = () => cliJson(lead0(), 'keys', 'list') as { kid: string; alg: string; state: string }[];

  it('hands signing to a staged key past its lead time, and is audited', async () => {
    const active = listed().find((k) => k.alg === 'ES256' && k.state === 'active')!;
    const staged = listed().find((k) => k.alg === 'ES256' && k.state === 'staged')!;
    const r = cliJson(lead0(), 'keys', 'retire', '--operator', 'sec-2', '--', active.kid);
    assert.deepEqual(r, { kid: active.kid, state: 'retired', activated: staged.kid });
    const now = listed();
    assert.equal(now.find((k) => k.kid === active.kid)?.state, 'retired');
    assert.equal(now.find((k) => k.kid === staged.kid)?.state, 'active');
    const [event] = await events('key.retired');
    assert.deepEqual(
      [event?.actor_id, event?.details],
      ['sec-2', { kid: active.kid, activated: staged.kid, via: 'cli' }],
    );
  });

  it('refuses with one line when no staged key can take over, or the key is not active', () => {
    const active = listed().find((k) => k.alg === 'ES256' && k.state === 'active')!;
    const none = runCli(lead0(), 'keys', 'retire', '--', active.kid);
    assert.equal(none.status, 1);
    assert.equal(
      none.stderr,
      `dinhdanh: no staged ES256 key is ready to take over from ${active.kid}; run \`keys rotate --alg ES256\` first\n`,
    );
    const retired = listed().find((k) => k.state === 'retired')!;
    const notActive = runCli(lead0(), 'keys', 'retire', '--', retired.kid);
    assert.equal(notActive.status, 1);
    assert.match(notActive.stderr, /^dinhdanh: key .* is retired; only an active key can be retired\n$/);
    assert.equal(listed().find((k) => k.kid === active.kid)?.state, 'active');
  });
});

describe('audit verify (CLI)', () => {
  it('reports an intact chain with its length', async () => {
    const { rows } = await sql<{ n: string; last: string }>`
      select count(*) as n, max(seq) as last from audit_events`.execute(db);
    const r = runCli(env, 'audit', 'verify');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `audit chain intact: ${rows[0]!.n} events, last seq ${rows[0]!.last}\n`);
  });

  it('names the first altered row, with exit 1 and one line', async () => {
    const { rows } = await sql<{ seq: string; details: unknown }>`
      select seq, details from audit_events where action = 'key.retired'`.execute(db);
    const row = rows[0]!;
    // Behind the application's back, as an attacker with database access would: past the append-only trigger.
    const tamper = async (details: unknown) => {
      await sql`alter table audit_events disable trigger audit_events_append_only`.execute(db);
      try {
        await sql`update audit_events set details = ${JSON.stringify(details)}::jsonb where seq = ${row.seq}`.execute(
          db,
        );
      } finally {
        await sql`alter table audit_events enable trigger audit_events_append_only`.execute(db);
      }
    };
    await tamper({ kid: 'someone-else' });
    try {
      const r = runCli(env, 'audit', 'verify');
      assert.equal(r.status, 1);
      assert.equal(r.stderr, `dinhdanh: audit chain broken: row seq ${row.seq} was altered\n`);
    } finally {
      await tamper(row.details);
    }
    assert.equal(runCli(env, 'audit', 'verify').status, 0, 'intact again once restored');
  });
});
