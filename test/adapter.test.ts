/**
 * The PostgreSQL storage adapter: every method oidc-provider calls, expiry, revokeByGrantId and, above all, atomic
 * consume: when two connections race to redeem one code, exactly one wins.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import type { Adapter as OidcAdapter } from 'oidc-provider';
import pg from 'pg';
import { POOL_MAX_USES } from '../src/db/connection.ts';
import { connect, createPool, type DB, runPrepared } from '../src/db/index.ts';
import { deleteAccountPayloads, deleteAccountTokensOutside } from '../src/oidc/adapter.repository.ts';
import { latestGrantId, prefetchedAccount, type WriteOutcome } from '../src/oidc/adapter.ts';
import {
  afterRequestCommit,
  commitRequest,
  inRequestScope,
  listAccountGrants,
  listAccountSessions,
  postgresAdapter,
  purgeExpired,
  tokenVault,
} from '../src/oidc/index.ts';
import { insertResidents } from '../src/registry/index.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { resident } from './helpers/residents.ts';
import { statementsOf } from './helpers/statements.ts';

let database: TestDatabase;
let db: Kysely<DB>;
let other: Kysely<DB>; // a second pool: another node
let Adapter: new (model: string) => OidcAdapter;

before(async () => {
  database = await freshDatabase();
  db = connect(database.url, 4);
  other = connect(database.url, 4);
  Adapter = postgresAdapter(db);
});
after(async () => {
  await db?.destroy();
  await other?.destroy();
  await database?.drop();
});

describe('storage adapter', () => {
  it('upserts, finds and replaces a payload', async () => {
    const a = new Adapter('AccessToken');
    await a.upsert('at1', { jti: 'at1', grantId: 'g1', accountId: 'x' }, 60);
    assert.deepEqual(await a.find('at1'), { jti: 'at1', grantId: 'g1', accountId: 'x' });
    await a.upsert('at1', { jti: 'at1', grantId: 'g1', accountId: 'y' }, 60);
    assert.equal((await a.find('at1'))?.accountId, 'y');
    assert.equal(await a.find('missing'), undefined);
    assert.equal(await new Adapter('RefreshToken').find('at1'), undefined, 'models are separate');
  });

  it('finds by uid and by user code', async () => {
    await new Adapter('Session').upsert('s1', { jti: 's1', uid: 'uid-1', accountId: 'a' }, 60);
    assert.equal((await new Adapter('Session').findByUid('uid-1'))?.jti, 's1');
    await new Adapter('DeviceCode').upsert('d1', { jti: 'd1', userCode: 'ABCD-EFGH', grantId: 'g9' }, 60);
    assert.equal((await new Adapter('DeviceCode').findByUserCode('ABCD-EFGH'))?.jti, 'd1');
  });

  it('hides expired rows and the purge deletes them', async () => {
    const a = new Adapter('AuthorizationCode');
    await a.upsert('old', { jti: 'old', grantId: 'g2' }, 60);
    await sql`update oidc_payloads set expires_at = now() - interval '1 second' where id = 'old'`.execute(db);
    assert.equal(await a.find('old'), undefined);
    assert.ok((await purgeExpired(db)) >= 1);
    const { rows } = await sql`select 1 from oidc_payloads where id = 'old'`.execute(db);
    assert.equal(rows.length, 0);
  });

  it('marks a consumed row', async () => {
    const a = new Adapter('AuthorizationCode');
    await a.upsert('c1', { jti: 'c1', grantId: 'g3' }, 60);
    await a.consume('c1');
    assert.equal((await a.find('c1'))?.consumed, true);
    await assert.rejects(a.consume('c1'), (e: { error?: string }) => e.error === 'invalid_grant');
  });

  it('consume is atomic: of many racing nodes exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const id = `race-${round}`;
      await new Adapter('AuthorizationCode').upsert(id, { jti: id, grantId: 'g4' }, 60);
      const nodes = [postgresAdapter(db), postgresAdapter(other), postgresAdapter(db), postgresAdapter(other)];
      const results = await Promise.allSettled(nodes.map((A) => new A('AuthorizationCode').consume(id)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one winner`);
    }
  });

  it('destroys one row', async () => {
    const a = new Adapter('Interaction');
    await a.upsert('i1', { jti: 'i1' }, 60);
    await a.destroy('i1');
    assert.equal(await a.find('i1'), undefined);
  });

  it('revokes every row of a grant in a model, and nothing else', async () => {
    const rt = new Adapter('RefreshToken');
    await rt.upsert('r1', { jti: 'r1', grantId: 'gx' }, 60);
    await rt.upsert('r2', { jti: 'r2', grantId: 'gx' }, 60);
    await rt.upsert('r3', { jti: 'r3', grantId: 'gy' }, 60);
    await rt.revokeByGrantId('gx');
    assert.equal(await rt.find('r1'), undefined);
    assert.equal(await rt.find('r2'), undefined);
    assert.ok(await rt.find('r3'));
  });

  it('stores rows without expiry', async () => {
    const a = new Adapter('Grant');
    await a.upsert('gr1', { jti: 'gr1' }, 0);
    assert.ok(await a.find('gr1'));
  });

  it('runs prepared statements on the pool and, inside a transaction, on that transaction', async () => {
    const text = 'update oidc_payloads set grant_id = $2 where model = $1 and grant_id is null';
    await new Adapter('Interaction').upsert('p1', { jti: 'p1' }, 60);
    await new Adapter('Interaction').upsert('p2', { jti: 'p2' }, 60);
    assert.equal((await runPrepared(db, 'test_set_grant', text, ['Interaction', 'gp'])).rowCount, 2);
    assert.equal((await runPrepared(db, 'test_set_grant', text, ['Interaction', 'gp'])).rowCount, 0, 'reused');
    await new Adapter('Interaction').upsert('p3', { jti: 'p3' }, 60);
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        const r = await runPrepared(trx, 'test_set_grant', text, ['Interaction', 'gq']);
        assert.equal(r.rowCount, 1);
        throw new Error('roll back');
      }),
      /roll back/,
    );
    const { rows } = await runPrepared<{ id: string; grant_id: string | null }>(
      db,
      'test_list',
      "select id, grant_id from oidc_payloads where model = 'Interaction' order by id",
      [],
    );
    assert.deepEqual(rows, [
      { id: 'p1', grant_id: 'gp' },
      { id: 'p2', grant_id: 'gp' },
      { id: 'p3', grant_id: null },
    ]);
  });

  it('closes its pool on destroy even when only prepared statements ran (a process then exits at once)', async () => {
    const pool = createPool(database.url, 1);
    const only = connect(pool);
    await runPrepared(only, 'probe_one', 'select 1 as one', []);
    await only.destroy();
    assert.equal(pool.ended, true, 'before: its idle connection kept the process alive for 10 s');
  });

  it('replaces a pool connection after its uses (no plan made for a tiny table outlives its growth)', async () => {
    const pool = createPool(database.url, { size: 1, maxUses: 3 });
    try {
      const pids = new Set<number>();
      for (let i = 0; i < 9; i++)
        pids.add((await pool.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
      assert.equal(pids.size, 3);
      assert.equal(createPool(database.url).options.maxUses, POOL_MAX_USES, 'the service default');
    } finally {
      await pool.end();
    }
  });

  it('never writes clients through the adapter', async () => {
    await assert.rejects(new Adapter('Client').upsert('c', { client_id: 'c' }, 0));
    assert.equal(await new Adapter('Client').find('no-such-client'), undefined);
  });
});

describe('tokens at rest', () => {
  // Invariant: a copy of the table yields no usable bearer artefact: rows of bearer models are keyed by a keyed hash
  // of the value and the value is kept only sealed; the adapter still behaves exactly as oidc-provider expects.
  const vault = tokenVault(randomBytes(32));
  /** The adapter as the service builds it (the pool exists once `before` ran). */
  const hashed = (model: string) => new (postgresAdapter(db, vault))(model);

  it('stores no token value anywhere in its row, and finds it by value', async () => {
    const value = 'AT-secret-value-1234567890';
    await hashed('AccessToken').upsert(value, { jti: value, grantId: 'gh', accountId: 'acc' }, 60);
    const { rows } = await sql<{ id: string; text: string }>`select id, payload::text as text from oidc_payloads
      where grant_id = 'gh'`.execute(db);
    assert.equal(rows.length, 1);
    assert.match(rows[0]!.id, /^h\./);
    assert.doesNotMatch(`${rows[0]!.id} ${rows[0]!.text}`, new RegExp(value));
    assert.deepEqual(await hashed('AccessToken').find(value), { jti: value, grantId: 'gh', accountId: 'acc' });
    assert.equal(await hashed('AccessToken').find(rows[0]!.id), undefined, 'the row id is no token');
  });

  it('gives sessions their id back when found by uid, and consumes and destroys by value', async () => {
    await hashed('Session').upsert('sess-secret', { jti: 'sess-secret', uid: 'uid-h', accountId: 'a' }, 60);
    assert.equal((await hashed('Session').findByUid('uid-h'))?.jti, 'sess-secret');
    const code = hashed('AuthorizationCode');
    await code.upsert('code-secret', { jti: 'code-secret', grantId: 'gc' }, 60);
    await code.consume('code-secret');
    await assert.rejects(code.consume('code-secret'), (e: { error?: string }) => e.error === 'invalid_grant');
    await code.destroy('code-secret');
    assert.equal(await code.find('code-secret'), undefined);
  });

  it('still finds rows written before hashing (a rolling deploy), and keeps grants as they are', async () => {
    await new Adapter('RefreshToken').upsert('legacy-rt', { jti: 'legacy-rt', grantId: 'gl' }, 60);
    assert.equal((await hashed('RefreshToken').find('legacy-rt'))?.jti, 'legacy-rt');
    await hashed('RefreshToken').consume('legacy-rt');
    assert.equal((await hashed('RefreshToken').find('legacy-rt'))?.consumed, true);
    await hashed('Grant').upsert('grant-1', { jti: 'grant-1' }, 60);
    const { rows } = await sql`select 1 from oidc_payloads where model = 'Grant' and id = 'grant-1'`.execute(db);
    assert.equal(rows.length, 1, 'a grant id is no bearer secret');
  });
});

describe('finds in one statement, with the grant and account read alongside (Performance II)', () => {
  // Invariants: finds made in the same tick (introspection's three models, concurrent requests) are one statement and
  // each caller gets its own row; a token's grant and account read with it answer the same request's next lookup of
  // them once, never another request's, and never after the request wrote the grant.
  const statements: string[] = [];
  const original = pg.Client.prototype.query;
  before(() => {
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const q = args[0] as { name?: string } | string;
      if (typeof q === 'object' && q?.name?.startsWith('oidc_')) statements.push(q.name);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
  });
  after(() => {
    pg.Client.prototype.query = original;
  });
  const accountId = randomUUID();

  it('answers finds made together with one statement, each with its own row', async () => {
    const at = new Adapter('AccessToken');
    for (const n of [1, 2, 3]) await at.upsert(`b${n}`, { jti: `b${n}`, accountId: `acc${n}` }, 60);
    statements.length = 0;
    const found = await Promise.all([
      at.find('b1'),
      new Adapter('RefreshToken').find('b1'),
      at.find('b2'),
      at.find('nope'),
      at.find('b3'),
    ]);
    assert.deepEqual(
      found.map((f) => f?.accountId),
      ['acc1', undefined, 'acc2', undefined, 'acc3'],
    );
    assert.deepEqual(statements, ['oidc_find_many']);
  });

  it("serves a request's grant and account lookups from its token's read, once, and only in that request", async () => {
    await insertResidents(db, [resident('001090099001', 'Lê Văn Tám', '1990-04-30')]);
    const { rows } = await sql<{ id: string }>`select id from residents where pin = '001090099001'`.execute(db);
    await sql`insert into accounts (id, resident_id, password_hash, level, status)
      values (${accountId}, ${rows[0]!.id}, 'x', 1, 'active')`.execute(db);
    await new Adapter('Grant').upsert('gp', { jti: 'gp', accountId, clientId: 'c' }, 60);
    await new Adapter('RefreshToken').upsert('rp', { jti: 'rp', grantId: 'gp', accountId }, 60);
    await inRequestScope(async () => {
      statements.length = 0;
      assert.equal((await new Adapter('RefreshToken').find('rp'))?.grantId, 'gp');
      assert.equal((await new Adapter('Grant').find('gp'))?.clientId, 'c');
      assert.equal(prefetchedAccount(accountId)?.account_id, accountId);
      assert.deepEqual(statements, ['oidc_find_many'], 'the grant came with the token');
      assert.equal(prefetchedAccount(accountId), undefined, 'taken once');
      assert.equal((await new Adapter('Grant').find('gp'))?.clientId, 'c');
      assert.equal(statements.length, 2, 'a second lookup reads again');
    });
    // Another request, or none: nothing carried over.
    await inRequestScope(async () => {
      statements.length = 0;
      await new Adapter('Grant').find('gp');
      assert.equal(statements.length, 1);
    });
    statements.length = 0;
    await new Adapter('RefreshToken').find('rp');
    await new Adapter('Grant').find('gp');
    assert.equal(statements.length, 2, 'outside a request scope the grant is read by itself');
  });

  it('reads the grant again after the request wrote it; a token of a suspended or gone account is not live', async () => {
    await inRequestScope(async () => {
      await new Adapter('RefreshToken').find('rp');
      await new Adapter('Grant').upsert('gp', { jti: 'gp', accountId, clientId: 'changed' }, 60);
      assert.equal((await new Adapter('Grant').find('gp'))?.clientId, 'changed');
    });
    await new Adapter('Grant').destroy('gp');
    await inRequestScope(async () => {
      statements.length = 0;
      assert.ok(await new Adapter('RefreshToken').find('rp'));
      assert.equal(await new Adapter('Grant').find('gp'), undefined, 'no live grant');
      assert.deepEqual(statements, ['oidc_find_many']);
    });
    // Suspended (or its resident no longer active), then gone: its tokens are found nowhere, at once.
    await sql`update accounts set status = 'suspended' where id = ${accountId}`.execute(db);
    assert.equal(await new Adapter('RefreshToken').find('rp'), undefined, 'suspended');
    await sql`update accounts set status = 'active' where id = ${accountId}`.execute(db);
    assert.ok(await new Adapter('RefreshToken').find('rp'), 'active again');
    await sql`update residents set status = 'deceased' where pin = '001090099001'`.execute(db);
    assert.equal(await new Adapter('RefreshToken').find('rp'), undefined, 'resident no longer active');
    await sql`update residents set status = 'active' where pin = '001090099001'`.execute(db);
    await sql`delete from accounts where id = ${accountId}`.execute(db);
    assert.equal(await new Adapter('RefreshToken').find('rp'), undefined, 'gone');
  });

  it("hides a disabled portal's tokens; gives two requests reading one row in one tick their own copies", async () => {
    await sql`insert into clients (client_id, name, metadata) values ('off-portal', 'x', ${JSON.stringify({
      client_id: 'off-portal',
      dinhdanh_disabled: true,
    })}::jsonb)`.execute(db);
    await new Adapter('AccessToken').upsert('off-at', { jti: 'off-at', clientId: 'off-portal' }, 60);
    assert.equal(await new Adapter('AccessToken').find('off-at'), undefined);
    await sql`update clients set metadata = metadata - 'dinhdanh_disabled' where client_id = 'off-portal'`.execute(db);
    assert.ok(await new Adapter('AccessToken').find('off-at'), 'enabled again');
    const [a, b] = await Promise.all([
      new Adapter('AccessToken').find('off-at'),
      new Adapter('AccessToken').find('off-at'),
    ]);
    assert.deepEqual(a, b);
    assert.notEqual(a, b, 'not one object');
  });
  it("holds a request's consume and the saves after it until commitRequest: one statement, all or nothing", async () => {
    const code = new Adapter('AuthorizationCode');
    await code.upsert('hc1', { jti: 'hc1', grantId: 'gh1' }, 60);
    await code.upsert('hc2', { jti: 'hc2', grantId: 'gh2' }, 60);
    const outcomes: WriteOutcome[] = [];
    const redeem = (id: string, token: string) =>
      inRequestScope(async () => {
        statements.length = 0;
        await code.consume(id);
        await new Adapter('AccessToken').upsert(token, { jti: token, grantId: 'gh1' }, 60);
        const seen = outcomes.length;
        afterRequestCommit((ok) => outcomes.push(ok));
        assert.deepEqual(statements, [], 'nothing written before the commit');
        assert.equal(outcomes.length, seen, 'nor recorded');
        const ok = await commitRequest();
        assert.deepEqual(statements, ['oidc_consume_and_save']);
        return ok;
      });
    assert.equal(await redeem('hc1', 'at-won'), true);
    assert.equal((await code.find('hc1'))?.consumed, true);
    assert.ok(await new Adapter('AccessToken').find('at-won'));
    // The same code again (a request that read it before the first committed): refused, and nothing of it saved.
    assert.equal(await redeem('hc1', 'at-lost'), false);
    assert.equal(await new Adapter('AccessToken').find('at-lost'), undefined);
    assert.deepEqual(outcomes, ['committed', 'refused']);
    // Anything else the request does with the table writes the held ones first, in order; a lost consume is then the
    // error it would have been at the consume.
    await inRequestScope(async () => {
      await code.consume('hc2');
      await new Adapter('AccessToken').upsert('at-2', { jti: 'at-2', grantId: 'gh2' }, 60);
      assert.ok(await new Adapter('AccessToken').find('at-2'), 'read after its own write');
      await code.consume('hc2');
      await assert.rejects(
        new Adapter('AccessToken').find('at-2'),
        (e: { error?: string }) => e.error === 'invalid_grant',
      );
      assert.equal(await commitRequest(), true, 'nothing left to commit');
    });
  });
});

describe("an account's grants and sessions are found by index (Performance II)", () => {
  /**
   * The plan PostgreSQL makes for the statement `f` sends (its text and values, captured), with sequential scans
   * priced out: a plan that still scans has no usable index. Named statements are planned generically (as the pool
   * runs them after a few executions), others with their values.
   */
  async function planOf(f: () => Promise<unknown>, match: RegExp): Promise<string> {
    const [, sent] = await statementsOf(f);
    const q = sent.find((s) => match.test(s.text));
    assert.ok(q, `no statement matched ${match}`);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query('set enable_seqscan = off');
      await client.query(`set plan_cache_mode = ${q.name ? 'force_generic_plan' : 'force_custom_plan'}`);
      await client.query(`prepare probe as ${q.text}`);
      const args = q.values.map((v) => client.escapeLiteral(String(v))).join(', ');
      const { rows } = await client.query(`explain execute probe${args ? `(${args})` : ''}`);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    } finally {
      await client.end();
    }
  }

  it('at a sign-in (the remembered consent), on the citizen pages and at log-out everywhere', async () => {
    const accountId = randomUUID();
    const latest = await planOf(() => latestGrantId(db, accountId, 'portal'), /model = 'Grant'/);
    assert.match(latest, /oidc_payloads_account/, latest);
    const grants = await planOf(() => listAccountGrants(db, accountId), /"model" = \$1/);
    assert.match(grants, /oidc_payloads_account/, grants);
    const sessions = await planOf(() => listAccountSessions(db, accountId), /"model" = \$/);
    assert.match(sessions, /oidc_payloads_account/, sessions);
  });

  it("deletes an account's codes and tokens through its grants, without reading every row (suspension, password change)", async () => {
    const accountId = randomUUID();
    for (const [label, f] of [
      ['tokens outside a session', () => deleteAccountTokensOutside(db, accountId, 'keep')],
      ['everything of the account', () => deleteAccountPayloads(db, [accountId])],
    ] as const) {
      const plan = await planOf(f, /^delete from "oidc_payloads" where "model" in .*"grant_id" in/);
      assert.doesNotMatch(plan, /Seq Scan/, `${label}:\n${plan}`);
      assert.match(plan, /oidc_payloads_account/, `${label}:\n${plan}`);
    }
  });

  it("deletes all of an account's sessions, grants, codes, tokens and interactions, and nothing of another", async () => {
    const [mine, theirs] = [randomUUID(), randomUUID()];
    for (const accountId of [mine, theirs]) {
      const g = `g-${accountId}`;
      await new Adapter('Grant').upsert(g, { jti: g, accountId, clientId: 'portal' }, 600);
      await new Adapter('Session').upsert(
        `s-${accountId}`,
        { jti: `s-${accountId}`, uid: `u-${accountId}`, accountId },
        600,
      );
      await new Adapter('Interaction').upsert(`i-${accountId}`, { jti: `i-${accountId}`, accountId }, 600);
      for (const model of ['AccessToken', 'RefreshToken', 'AuthorizationCode'])
        await new Adapter(model).upsert(`${model}-${accountId}`, { jti: 'x', accountId, grantId: g }, 600);
    }
    const rowsOf = async (accountId: string) =>
      Number(
        (
          await sql<{
            n: string;
          }>`select count(*) as n from oidc_payloads where payload->>'accountId' = ${accountId}`.execute(db)
        ).rows[0]?.n,
      );
    assert.equal(await deleteAccountPayloads(db, [mine]), 6);
    assert.equal(await rowsOf(mine), 0);
    assert.equal(await rowsOf(theirs), 6);
  });

  it('finds the newest live grant of the account for that portal', async () => {
    const accountId = randomUUID();
    const grants = new Adapter('Grant');
    await grants.upsert('g-old', { jti: 'g-old', accountId, clientId: 'portal' }, 60);
    await grants.upsert('g-new', { jti: 'g-new', accountId, clientId: 'portal' }, 3600);
    await grants.upsert('g-other', { jti: 'g-other', accountId, clientId: 'other' }, 7200);
    await grants.upsert('g-gone', { jti: 'g-gone', accountId, clientId: 'portal' }, -1);
    assert.equal(await latestGrantId(db, accountId, 'portal'), 'g-new');
    assert.equal(await latestGrantId(db, randomUUID(), 'portal'), undefined);
  });
});
