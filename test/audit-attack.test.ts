/**
 * Attacks on the audit chain's append (audit_append) that found real faults. Invariants: whatever text an audited act
 * carries (a staff member's reason, an operator's name, a portal's name), the event is either stored and the chain
 * keeps verifying, or refused as invalid input; never a broken chain nor a database error. A backlog of queued events
 * left by an outage is written once the database answers again, whatever its size.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { createAuditQueue, recordEvent, verifyChain } from '../src/audit/index.ts';
import { connect, type DB } from '../src/db/index.ts';
import { AppError } from '../src/errors.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { until } from './helpers/wait.ts';

let database: TestDatabase;
let db: Kysely<DB>;

before(async () => {
  database = await freshDatabase();
  db = connect(database.url, 4);
});
after(async () => {
  await db?.destroy();
  await database?.drop();
});
beforeEach(async () => {
  await sql`truncate audit_events, audit_checkpoints`.execute(db);
});

/** `n` code units of text, the last of them the first half of an emoji (a text cut at `n` splits the pair). */
const cutAt = (n: number) => `${'Lý do phê duyệt. '.repeat(40).slice(0, n - 1)}🙂 đã kiểm tra`;

describe('audit chain under hostile text', () => {
  it('stays verifiable when a text column is cut inside an emoji or holds a lone surrogate', async () => {
    // A security officer's approval reason (the API accepts 5 to 500 characters; the trail keeps 200): Vietnamese
    // text with an emoji across the cut. Before the fix the cut left half a pair, PostgreSQL stored U+FFFD instead, and
    // the row no longer matched its hash: `audit verify` reports it altered for ever and archiving is refused.
    await recordEvent(db, {
      actor: { type: 'staff', id: cutAt(200) },
      action: 'client.approved',
      outcome: 'success',
      subject: cutAt(200),
      clientId: cutAt(200),
      ip: cutAt(100),
      userAgent: cutAt(500),
      reason: cutAt(200),
    });
    // A lone surrogate sent on purpose (a JSON body may spell "\ud800").
    await recordEvent(db, { actor: { type: 'staff', id: 's1' }, action: 'x', outcome: 'success', reason: 'a\ud800b' });
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 2, lastSeq: 2 });
  });

  it('stores details whose string is cut inside an emoji or holds a lone surrogate', async () => {
    // details strings are cut at 500: before the fix the half pair made the jsonb input invalid (22P02), the act failed.
    await recordEvent(db, {
      actor: { type: 'staff', id: 's1' },
      action: 'client.registered',
      outcome: 'success',
      details: { note: cutAt(500), lone: 'x\udc00' },
    });
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 1, lastSeq: 1 });
  });

  it('refuses a NUL character as invalid input or stores the event, never a database error', async () => {
    // PostgreSQL text and jsonb cannot hold U+0000: before the fix the append failed with 22021 / 22P05 (a 500).
    for (const e of [{ reason: 'lý do \u0000 NUL' }, { details: { note: 'a\u0000b' } }]) {
      try {
        await recordEvent(db, {
          actor: { type: 'staff', id: 's1' },
          action: 'client.approved',
          outcome: 'success',
          ...e,
        });
      } catch (err) {
        assert.ok(err instanceof AppError && err.code === 'invalid_input', `refused as invalid input, not ${err}`);
      }
    }
    assert.equal((await verifyChain(db)).ok, true);
  });
});

describe('audit queue after an outage', () => {
  it('writes a backlog larger than one statement can write within the statement timeout', async () => {
    // The chain's lock held (a long archive, a stuck act): the queue's writes time out and it keeps its events. Once
    // the lock is free, the retry sends the whole backlog in one audit_append; past what one statement can write in
    // DB_STATEMENT_TIMEOUT_MS it times out again at every retry, and the queue never drains (it drops the oldest
    // events once full). Measured on this machine: 60,000 events take about 2.5 s in one audit_append (about 1.5 s
    // in one insert before it); the queue's limit of 200,000 events no longer fits in the default 5 s (7.4 s).
    const timed = connect(database.url, { size: 2, statementTimeoutMs: 1000 });
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    const errors: unknown[] = [];
    const queue = createAuditQueue(timed, (err) => errors.push(err), 5);
    try {
      await holder.query('begin');
      await holder.query(`select pg_advisory_xact_lock(hashtext('dinhdanh:audit'))`);
      const event = (i: number) => ({
        actor: { type: 'client' as const, id: 'portal-0123456789' },
        action: 'token.issued',
        outcome: 'success' as const,
        subject: 'acc-0123456789abcdef',
        clientId: 'portal-0123456789',
        ip: '203.0.113.7',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)',
        details: { grantType: 'authorization_code', i },
      });
      queue.record(event(0));
      await until('the first write times out on the held lock', () => errors.length > 0);
      for (let i = 1; i < 60_000; i++) queue.record(event(i));
      await holder.query('commit');
      assert.equal(await queue.close(Date.now() + 20_000), 0, 'the backlog is written');
      assert.deepEqual(await verifyChain(db), { ok: true, rows: 60_000, lastSeq: 60_000 });
    } finally {
      await queue.close(Date.now());
      await holder.end();
      await timed.destroy();
    }
  });
});
